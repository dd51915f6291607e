import { env } from "cloudflare:workers";
import * as jose from "jose";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { issuerKeys, MIN_FRESH_S, REFRESH_EVERY_MS } from "../../src/domain/credentials/issuer-keys.ts";
import { createCtx } from "../../src/domain/shared/context.ts";
import { DomainError } from "../../src/domain/shared/errors.ts";
import { resetIsolateState } from "../../src/domain/shared/isolate-state.ts";
import { testIssuerUrl } from "../federation/issuers.ts";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { b64json, expectOAuthError, ISSUER, jwtFor, newClient, nowS, type Client } from "./oauth-helpers.ts";
import {
  addPolicy,
  forgetFederationCaches,
  githubActionsClaims,
  jwtBearer,
  kubernetesClaims,
  signingKey,
  testIssuer,
  waitForAudit,
  type TestIssuer,
} from "./federation-helpers.ts";

/**
 * Issue 18, the federated grants' security cases, each its own test: what a forged, stale,
 * misaddressed or replayed external token gets (invalid_grant, one generic description), what a
 * misbehaving issuer gets (nothing fetched elsewhere, nothing trusted), and that the refusal's
 * reason reaches the audit log and not the caller.
 */

let root: { id: string; token: string };
let main: TestIssuer;
let account: Client;
const accountOf = (c: Client) => ({ id: c.account.id as string, orgId: c.org.id });
const REPO = "acme/secure";
const claims = (overrides: jose.JWTPayload = {}) => githubActionsClaims(REPO, "prod", overrides);
const GENERIC = "The token was not accepted by any trust policy";

/** The request was refused as invalid_grant, with the one generic description. */
function expectRefused(res: Awaited<ReturnType<typeof jwtBearer>>) {
  const body = expectOAuthError(res, 400, "invalid_grant");
  expect(body.error_description, res.text).toBe(GENERIC);
}

/** The reason of the account's latest credential.federation_refused event that matches `reason`. */
async function refusalReason(targetId: string, reason: RegExp): Promise<string> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const rows = await waitForAudit(targetId, "credential.federation_refused", 1);
    const found = rows.map((r: any) => JSON.parse(r.details)).find((d: any) => reason.test(d.reason));
    if (found) return found.reason;
    if (Date.now() > deadline) throw new Error(`no refusal matching ${reason}: ${JSON.stringify(rows.map((r: any) => r.details))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fresh account trusting `issuer` for `repo:acme/secure:environment:prod`. */
async function trustingAccount(issuer: string, policy: Partial<Parameters<typeof addPolicy>[1]> = {}, body: Record<string, unknown> = {}) {
  const c = await newClient(root.token, { roles: [{ role: "viewer" }], ...body });
  const p = await addPolicy(accountOf(c), { issuer, subject: `repo:${REPO}:environment:prod`, ...policy });
  return { client: c, policy: p };
}

beforeAll(async () => {
  root = await platformRoot();
  main = await testIssuer("sec-main");
  ({ client: account } = await trustingAccount(main.url));
});

describe("the token itself", () => {
  it("control: a well-formed token is accepted (so each refusal below is about its one difference)", async () => {
    expectStatus(await jwtBearer(await main.sign(claims())), 200);
  });

  it("wrong issuer: a token claiming another allowed issuer but signed with this one's key", async () => {
    const other = await testIssuer("sec-two");
    const { client } = await trustingAccount(other.url);
    expectRefused(await jwtBearer(await main.sign(claims({ iss: other.url }))));
    // Its claims are unverified: the refusal is the platform's, on the issuer, and the trusting
    // org's log gets nothing an outsider wrote.
    expect(await refusalReason(other.url, /signature|no key/)).toBeTruthy();
    const own = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE target_id = ? AND action = 'credential.federation_refused'").bind(client.account.id).first<{ n: number }>();
    expect(own?.n).toBe(0);
  });

  it("issuer not allowed: a policy naming it (written past the routes' check) takes nothing, and nothing is fetched from it", async () => {
    const url = testIssuerUrl(env.TEST_ISSUER_BASE, "not-allowed");
    const outsider = await testIssuer("not-allowed");
    await trustingAccount(url);
    expectRefused(await jwtBearer(await outsider.sign(claims())));
    expect(await outsider.hits()).toEqual({ discovery: 0, jwks: 0 });
  });

  it("wrong audience: aud must be one of the policy's audiences (the Keyward issuer by default)", async () => {
    expectRefused(await jwtBearer(await main.sign(claims({ aud: "https://someone-else.example" }))));
    expect(await refusalReason(account.account.id, /aud/)).toMatch(/audiences/);
  });

  it("a policy with its own audiences takes those and not the default", async () => {
    const { client } = await trustingAccount(main.url, { subject: "repo:acme/aud:environment:prod", audiences: ["sts.keyward.example"] });
    const sign = (aud: string) => main.sign(githubActionsClaims("acme/aud", "prod", { aud }));
    expectStatus(await jwtBearer(await sign("sts.keyward.example"), { client_id: client.account.id }), 200);
    expectRefused(await jwtBearer(await sign(ISSUER), { client_id: client.account.id }));
  });

  it("expired (beyond the 30 s skew)", async () => {
    expectRefused(await jwtBearer(await main.sign(claims({ iat: nowS() - 600, nbf: nowS() - 600, exp: nowS() - 31 }))));
    expect(await refusalReason(account.account.id, /expired/)).toBe("expired");
  });

  it("past exp but within the skew: it verifies, yet has no lifetime left to give (invalid_grant, nothing issued)", async () => {
    const res = await jwtBearer(await main.sign(claims({ iat: nowS() - 600, nbf: nowS() - 600, exp: nowS() - 10 })));
    expect(expectOAuthError(res, 400, "invalid_grant").error_description).toMatch(/external token/);
  });

  it("not yet valid (nbf beyond the skew)", async () => {
    expectRefused(await jwtBearer(await main.sign(claims({ nbf: nowS() + 120 }))));
    expect(await refusalReason(account.account.id, /nbf/)).toMatch(/nbf/);
  });

  it("issued in the future (iat beyond the skew)", async () => {
    expectRefused(await jwtBearer(await main.sign(claims({ iat: nowS() + 120, nbf: undefined }))));
  });

  it("without exp", async () => {
    expectRefused(await jwtBearer(await main.sign(claims({ exp: undefined }))));
  });

  it("too old: iat further back than the policy's maxTokenAgeSeconds", async () => {
    const { client } = await trustingAccount(main.url, { subject: "repo:acme/fresh:environment:prod", maxTokenAgeSeconds: 60 });
    const aged = (age: number) => main.sign(githubActionsClaims("acme/fresh", "prod", { iat: nowS() - age, nbf: nowS() - age, exp: nowS() + 300 }));
    expectStatus(await jwtBearer(await aged(10)), 200);
    expectRefused(await jwtBearer(await aged(200)));
    expect(await refusalReason(client.account.id, /older/)).toMatch(/maxTokenAgeSeconds/);
  });

  it("replayed jti: the second use of a token is refused", async () => {
    const token = await main.sign(claims());
    expectStatus(await jwtBearer(token), 200);
    expectRefused(await jwtBearer(token));
    expect(await refusalReason(account.account.id, /jti/)).toBe("jti already used");
  });

  it("a token without jti may be used again while it lives (jti is checked where present)", async () => {
    const token = await main.sign(claims({ jti: undefined }));
    expectStatus(await jwtBearer(token), 200);
    expectStatus(await jwtBearer(token), 200);
  });

  it("alg none", async () => {
    const unsigned = `${b64json({ alg: "none", typ: "JWT" })}.${b64json({ ...claims(), iss: main.url, aud: ISSUER, iat: nowS(), exp: nowS() + 300 })}.`;
    expectRefused(await jwtBearer(unsigned));
    // Refused before any policy is looked at: the event is the platform's, on the issuer.
    expect(await refusalReason(main.url, /alg/)).toMatch(/none not accepted/);
  });

  it("HS256 with the issuer's public key as the HMAC secret", async () => {
    const rsa = await testIssuer("sec-two", "RS256");
    await trustingAccount(rsa.url);
    const pem = await jose.exportSPKI((await jose.importJWK(rsa.key.publicJwk, "RS256")) as CryptoKey);
    for (const secret of [pem, JSON.stringify(rsa.key.publicJwk)]) {
      const forged = await new jose.SignJWT({ ...claims(), iss: rsa.url, aud: ISSUER })
        .setProtectedHeader({ alg: "HS256", kid: rsa.key.kid })
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(new TextEncoder().encode(secret));
      expectRefused(await jwtBearer(forged));
    }
  });

  it("a key of the right kid but another algorithm than the token says (RS256 header, EC key)", async () => {
    const forged = await main.sign(claims(), { header: { alg: "RS256" }, key: { ...(await signingKey("RS256")), kid: main.key.kid } });
    expectRefused(await jwtBearer(forged));
  });

  it("a Keyward JWT is not an external assertion", async () => {
    const own = await jwtFor(account.token);
    expectRefused(await jwtBearer(own));
  });

  it("garbage and oversized assertions", async () => {
    expectRefused(await jwtBearer("not.a.jwt"));
    expectRefused(await jwtBearer("x".repeat(8000)));
  });
});

describe("policies and accounts", () => {
  it("a policy of account A never yields account B: client_id of B with only A's policy holding", async () => {
    const b = await newClient(root.token, { roles: [{ role: "viewer" }] });
    await addPolicy(accountOf(b), { issuer: main.url, subject: "repo:acme/b-only:environment:prod" });
    expectRefused(await jwtBearer(await main.sign(claims()), { client_id: b.account.id }));
    const asB = await jwtBearer(await main.sign(claims()), { client_id: account.account.id });
    expectStatus(asB, 200);
    expect(jose.decodeJwt(asB.json.access_token).sub).toBe(account.account.id);
  });

  it("a client that authenticates as B cannot use A's token", async () => {
    const b = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const res = await call("POST", "/oauth/token", {
      body: `grant_type=${encodeURIComponent("urn:ietf:params:oauth:grant-type:jwt-bearer")}&assertion=${await main.sign(claims())}&client_id=${b.account.id}&client_secret=${b.token}`,
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expectRefused(res as never);
  });

  it("a disabled policy is ignored", async () => {
    await trustingAccount(main.url, { subject: "repo:acme/off:environment:prod", enabled: false });
    expectRefused(await jwtBearer(await main.sign(githubActionsClaims("acme/off", "prod"))));
  });

  it("a disabled account gets nothing (and the refusal is audited)", async () => {
    const { client } = await trustingAccount(main.url, { subject: "repo:acme/disabled:environment:prod" });
    const res = await call("PATCH", `/api/v1/orgs/${client.org.id}/service-accounts/${client.account.id}`, { token: root.token, body: { status: "disabled" } });
    expectStatus(res, 200);
    expectRefused(await jwtBearer(await main.sign(githubActionsClaims("acme/disabled", "prod"))));
    expect(await refusalReason(client.account.id, /not active/)).toMatch(/not active/);
  });

  it("outside the account's CIDRs: refused; inside: served", async () => {
    const { client } = await trustingAccount(main.url, { subject: "repo:acme/net:environment:prod" }, { allowedCidrs: ["10.0.0.0/8"] });
    const sign = () => main.sign(githubActionsClaims("acme/net", "prod"));
    expectRefused(await jwtBearer(await sign(), {}, { "cf-connecting-ip": "192.0.2.7" }));
    expectStatus(await jwtBearer(await sign(), {}, { "cf-connecting-ip": "10.1.2.3" }), 200);
    expect((await waitForAudit(client.account.id, "credential.refused_network", 1)).length).toBe(1);
  });

  it("the refusal's reason goes to the audit log with the external iss and sub, never to the caller", async () => {
    const { client } = await trustingAccount(main.url, { subject: null as never, claims: { repository: "acme/audited", environment: "prod" } });
    const res = await jwtBearer(await main.sign(githubActionsClaims("acme/audited", "staging")));
    expectRefused(res);
    const [row] = await waitForAudit(client.account.id, "credential.federation_refused", 1);
    const details = JSON.parse(row!.details);
    expect(details, row!.details).toMatchObject({ iss: main.url, sub: "repo:acme/audited:environment:staging" });
    expect(details.reason, row!.details).toMatch(/claim environment does not match/);
    expect(res.text).not.toMatch(/environment|acme/);
  });

  it("each org's refusal event names only its own policies", async () => {
    const first = await trustingAccount(main.url, { subject: "repo:acme/org-a:environment:prod" });
    const second = await trustingAccount(main.url, { subject: "repo:acme/org-b:environment:prod" });
    expectRefused(await jwtBearer(await main.sign(githubActionsClaims("acme/org-c", "prod"))));
    const [a] = (await waitForAudit(first.client.account.id, "credential.federation_refused", 1)).map((r: any) => JSON.parse(r.details).reason);
    const [b] = (await waitForAudit(second.client.account.id, "credential.federation_refused", 1)).map((r: any) => JSON.parse(r.details).reason);
    expect(a).toContain(first.policy.id);
    expect(a).not.toContain(second.policy.id);
    expect(b).toContain(second.policy.id);
    expect(b).not.toContain(first.policy.id);
  });

  it("failed attempts count against the failure limiter of the address (429 once over it)", async () => {
    const ip = "198.51.100.77";
    let limited: Awaited<ReturnType<typeof jwtBearer>> | undefined;
    for (let i = 0; i <= 201 && !limited; i++) {
      const res = await jwtBearer("not.a.jwt", {}, { "cf-connecting-ip": ip });
      if (res.status === 429) limited = res;
      else expect(i, "refused before the limit").toBeLessThan(201);
    }
    expect(limited?.json.error, limited?.text).toBe("slow_down");
    expect(limited?.headers.get("retry-after")).toMatch(/^\d+$/);
  });
});

describe("glob conditions end to end", () => {
  it("`*` does not cross `:`; `**` does", async () => {
    const glob = await testIssuer("sec-glob");
    const single = await trustingAccount(glob.url, { subject: null as never, claims: { sub: "repo:acme/*:environment:prod" } });
    const sign = (sub: string) => glob.sign({ ...claims(), sub });
    expectStatus(await jwtBearer(await sign("repo:acme/x:environment:prod"), { client_id: single.client.account.id }), 200);
    expectRefused(await jwtBearer(await sign("repo:acme/x:y:environment:prod"), { client_id: single.client.account.id }));
    expectRefused(await jwtBearer(await sign("repo:acme/x:environment:prod:extra"), { client_id: single.client.account.id }));
    const double = await trustingAccount(glob.url, { subject: null as never, claims: { sub: "repo:acme/**:environment:prod" } });
    expectStatus(await jwtBearer(await sign("repo:acme/x:y:environment:prod"), { client_id: double.client.account.id }), 200);
    expectRefused(await jwtBearer(await sign("repo:acmeX/x:environment:prod"), { client_id: double.client.account.id }));
  });

  it("array claims: any element may match; a missing claim fails", async () => {
    const glob = await testIssuer("sec-glob");
    const { client } = await trustingAccount(glob.url, { subject: null as never, claims: { groups: "deploy-*" } });
    const sign = (extra: jose.JWTPayload) => glob.sign({ ...claims(), ...extra });
    expectStatus(await jwtBearer(await sign({ groups: ["readers", "deploy-prod"] }), { client_id: client.account.id }), 200);
    expectRefused(await jwtBearer(await sign({ groups: ["readers"] }), { client_id: client.account.id }));
    expectRefused(await jwtBearer(await sign({}), { client_id: client.account.id }));
  });
});

describe("the issuer's keys", () => {
  it("unknown kid: one refresh, then refused; a second unknown kid within the minute fetches nothing", async () => {
    const issuer = await testIssuer("sec-kid");
    await trustingAccount(issuer.url);
    await forgetFederationCaches([issuer.url]);
    expectStatus(await jwtBearer(await issuer.sign(claims())), 200);
    await issuer.resetHits();
    const stranger = await signingKey();
    expectRefused(await jwtBearer(await issuer.sign(claims(), { key: stranger })));
    // The keys were fetched less than a minute ago: no refresh at all.
    expect(await issuer.hits()).toEqual({ discovery: 0, jwks: 0 });
    expectRefused(await jwtBearer(await issuer.sign(claims(), { key: await signingKey() })));
    expect(await issuer.hits()).toEqual({ discovery: 0, jwks: 0 });
  });

  it("a rotated-in key is found by the refresh an unknown kid triggers once the minute is over (service test, clock moved)", async () => {
    const issuer = await testIssuer("sec-cache");
    await forgetFederationCaches([issuer.url]);
    const t0 = Date.now();
    const at = (ms: number) => ({ ...createCtx(env, { actorId: "t", requestId: null, ip: null, userAgent: null }), now: () => t0 + ms });
    await issuerKeys(at(0), issuer.url, issuer.key.kid);
    const rotated = await signingKey();
    await issuer.serve([issuer.key, rotated]);
    await issuer.resetHits();
    const soon = await issuerKeys(at(REFRESH_EVERY_MS - 1000), issuer.url, rotated.kid);
    expect(soon.jwks.keys.map((k) => k.kid), "within the minute: the cached set").toEqual([issuer.key.kid]);
    expect((await issuer.hits()).jwks).toBe(0);
    const later = await issuerKeys(at(REFRESH_EVERY_MS + 1000), issuer.url, rotated.kid);
    expect(later.jwks.keys.map((k) => k.kid).sort()).toEqual([issuer.key.kid, rotated.kid].sort());
    expect((await issuer.hits()).jwks).toBe(1);
    // Fresh and knowing the kid: nothing more is fetched.
    await issuerKeys(at(REFRESH_EVERY_MS + 2000), issuer.url, rotated.kid);
    expect((await issuer.hits()).jwks).toBe(1);
  });

  it("an unknown kid after the minute: exactly one refresh, then refused, and no second refresh within the next minute (service test, clock moved)", async () => {
    const issuer = await testIssuer("sec-cache");
    const t0 = Date.now();
    const at = (ms: number) => ({ ...createCtx(env, { actorId: "t", requestId: null, ip: null, userAgent: null }), now: () => t0 + ms });
    await issuerKeys(at(0), issuer.url, issuer.key.kid);
    await issuer.resetHits();
    const unknown = "kid-nobody-has";
    const first = await issuerKeys(at(REFRESH_EVERY_MS + 1000), issuer.url, unknown);
    expect(first.jwks.keys.some((k) => k.kid === unknown), "still unknown: the token will not verify").toBe(false);
    expect(await issuer.hits()).toEqual({ discovery: 1, jwks: 1 });
    await issuerKeys(at(REFRESH_EVERY_MS + 5000), issuer.url, unknown);
    await issuerKeys(at(2 * REFRESH_EVERY_MS), issuer.url, "another-unknown");
    expect(await issuer.hits(), "at most one refresh per issuer per minute").toEqual({ discovery: 1, jwks: 1 });
  });

  it("Cache-Control max-age is honoured within the floor and the ceiling", async () => {
    const issuer = await testIssuer("sec-cache");
    const t0 = Date.now();
    const at = (ms: number) => ({ ...createCtx(env, { actorId: "t", requestId: null, ip: null, userAgent: null }), now: () => t0 + ms });
    for (const [header, seconds] of [["public, max-age=600", 600], ["max-age=5", MIN_FRESH_S], ["no-store", MIN_FRESH_S], ["max-age=999999", 86_400]] as const) {
      await issuer.mode("ok", header);
      await forgetFederationCaches([issuer.url]);
      const entry = await issuerKeys(at(0), issuer.url, undefined);
      expect(entry.freshUntil - entry.fetchedAt, header).toBe(seconds * 1000);
    }
  });

  it("issuer down: cached keys keep working, fresh and stale", async () => {
    const issuer = await testIssuer("sec-down");
    await trustingAccount(issuer.url);
    await forgetFederationCaches([issuer.url]);
    expectStatus(await jwtBearer(await issuer.sign(claims())), 200);
    await issuer.mode("down");
    expectStatus(await jwtBearer(await issuer.sign(claims())), 200);
    const t0 = Date.now();
    const stale = { ...createCtx(env, { actorId: "t", requestId: null, ip: null, userAgent: null }), now: () => t0 + 2 * 3600_000 };
    const entry = await issuerKeys(stale, issuer.url, issuer.key.kid);
    expect(entry.freshUntil, "stale").toBeLessThan(t0 + 2 * 3600_000);
    expect(entry.jwks.keys.map((k) => k.kid)).toEqual([issuer.key.kid]);
  });

  it("issuer down with nothing cached: refused (fail closed)", async () => {
    const issuer = await testIssuer("sec-nocache");
    const { client } = await trustingAccount(issuer.url);
    await forgetFederationCaches([issuer.url]);
    await issuer.mode("down");
    expectRefused(await jwtBearer(await issuer.sign(claims())));
    expect(await refusalReason(client.account.id, /not available/)).toMatch(/status 503/);
  });

  const misbehaving = [
    ["sec-big", "big-jwks", /over 65536 bytes/],
    ["sec-otherhost", "discovery-other-host", /another host/],
    ["sec-redirect", "redirect-jwks", /redirect/],
    ["sec-wrongiss", "discovery-wrong-issuer", /names another issuer/],
    ["sec-html", "html", /not JSON/],
  ] as const;
  for (const [name, mode, reason] of misbehaving) {
    it(`${mode}: refused, and nothing is fetched from another host`, async () => {
      const issuer = await testIssuer(name);
      const { client } = await trustingAccount(issuer.url);
      await forgetFederationCaches([issuer.url]);
      await issuer.mode(mode);
      expectRefused(await jwtBearer(await issuer.sign(claims())));
      expect(await refusalReason(client.account.id, reason)).toMatch(reason);
      if (mode === "discovery-other-host") expect((await issuer.hits()).jwks, "the other host's key set was never fetched").toBe(0);
    });
  }

  it("an issuer that does not answer within 3 s: refused, quickly", async () => {
    const issuer = await testIssuer("sec-slow");
    const { client } = await trustingAccount(issuer.url);
    await forgetFederationCaches([issuer.url]);
    await issuer.mode("slow");
    const started = Date.now();
    expectRefused(await jwtBearer(await issuer.sign(claims())));
    expect(Date.now() - started).toBeLessThan(4500);
    expect(await refusalReason(client.account.id, /no answer/)).toMatch(/3000 ms/);
    await issuer.mode("ok");
  });

  it("no usable key in the set: nothing verifies", async () => {
    const issuer = await testIssuer("sec-nocache");
    await issuer.mode("ok");
    await issuer.serve([]);
    await forgetFederationCaches([issuer.url]);
    const ctx = createCtx(env, { actorId: "t", requestId: null, ip: null, userAgent: null });
    await expect(issuerKeys(ctx, issuer.url, undefined)).rejects.toBeInstanceOf(DomainError);
  });
});

// Last in the file: these move the clock of the test and the Worker (one isolate), which would
// stamp the issuer's cached keys and refresh limiter "in the future" for any test after them.
describe("singleUse: a Kubernetes projected token a pod re-reads from its file", () => {
  /** Moves the clock of the test and of the Worker (same isolate) by `ms`. */
  const advanceClock = (ms: number) => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + ms);
  };
  // Not sec-main: a refusal is audited for at most 10 of the accounts trusting the issuer, and
  // this file puts many more than that on sec-main.
  let pod: TestIssuer;
  beforeAll(async () => {
    pod = await testIssuer("sec-kid");
  });
  afterEach(async () => {
    vi.useRealTimers();
    await forgetFederationCaches([pod.url]);
  });

  /** A fresh account trusting main's tokens of `system:serviceaccount:<namespace>:api`. */
  async function podAccount(policy: Partial<Parameters<typeof addPolicy>[1]>) {
    const namespace = `ns-${crypto.randomUUID().slice(0, 8)}`;
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const p = await addPolicy(accountOf(c), { issuer: pod.url, subject: `system:serviceaccount:${namespace}:api`, ...policy });
    // The kubelet's token: a jti, an hour of life (expirationSeconds 3600), read again and again.
    const token = (o: jose.JWTPayload = {}) => pod.sign({ ...kubernetesClaims(namespace, "api"), exp: nowS() + 3600, ...o });
    return { client: c, policy: p, token };
  }

  it("singleUse true (the default): the pod's second read of the same token is refused, as a replay", async () => {
    const { client, policy, token } = await podAccount({});
    expect(policy.singleUse).toBe(true);
    const t = await token();
    expectStatus(await jwtBearer(t), 200);
    expectRefused(await jwtBearer(t));
    expect(await refusalReason(client.account.id, /jti/)).toBe("jti already used");
  });

  it("singleUse false: the same token, jti and all, is exchanged again and again while it lives", async () => {
    const { client, token } = await podAccount({ singleUse: false });
    const t = await token();
    for (let i = 0; i < 3; i++) {
      const res = await jwtBearer(t);
      expectStatus(res, 200);
      expect(jose.decodeJwt(res.json.access_token).sub).toBe(client.account.id);
    }
    // Ten minutes on (the pod's next JWT, before the kubelet rotates the file), still good.
    advanceClock(600_000);
    expectStatus(await jwtBearer(t), 200);
  });

  it("a token verified before: a copy with another signature is not taken for it", async () => {
    const { token } = await podAccount({ singleUse: false });
    const t = await token();
    expectStatus(await jwtBearer(t), 200);
    const [h, p, sig] = t.split(".");
    const forged = `${h}.${p}.${sig!.slice(0, -4)}${sig!.slice(-4) === "AAAA" ? "BBBB" : "AAAA"}`;
    expectRefused(await jwtBearer(forged));
    expectStatus(await jwtBearer(t), 200);
  });

  it("a token verified before: its policy is read again on every presentation (disabled: refused)", async () => {
    const { policy, token } = await podAccount({ singleUse: false });
    const t = await token();
    expectStatus(await jwtBearer(t), 200);
    await env.DB.prepare("UPDATE federated_credentials SET enabled = 0 WHERE id = ?").bind(policy.id).run();
    resetIsolateState("trust-policies");
    expectRefused(await jwtBearer(t));
  });

  it("singleUse false: once expired (beyond the skew) the token is refused", async () => {
    const { client, token } = await podAccount({ singleUse: false });
    const t = await token({ exp: nowS() + 120 });
    expectStatus(await jwtBearer(t), 200);
    advanceClock(160_000);
    expectRefused(await jwtBearer(t));
    vi.useRealTimers();
    expect(await refusalReason(client.account.id, /expired/)).toBe("expired");
  });

  it("singleUse false: older than maxTokenAgeSeconds the token is refused, though it has not expired", async () => {
    const { client, token } = await podAccount({ singleUse: false, maxTokenAgeSeconds: 600 });
    const t = await token();
    expectStatus(await jwtBearer(t), 200);
    expectStatus(await jwtBearer(t), 200);
    advanceClock(700_000);
    expectRefused(await jwtBearer(t));
    vi.useRealTimers();
    expect(await refusalReason(client.account.id, /older/)).toMatch(/maxTokenAgeSeconds/);
  });

  it("the chosen policy decides: client_id naming the account whose policy is single-use spends the jti there", async () => {
    const reusable = await podAccount({ singleUse: false });
    const once = await newClient(root.token, { roles: [{ role: "viewer" }] });
    await addPolicy(accountOf(once), { issuer: pod.url, subject: reusable.policy.subject });
    const t = await reusable.token();
    expectStatus(await jwtBearer(t, { client_id: reusable.client.account.id }), 200);
    expectStatus(await jwtBearer(t, { client_id: once.account.id }), 200);
    expectRefused(await jwtBearer(t, { client_id: once.account.id }));
    // The reusable policy's account is not held back by the other's spent jti.
    expectStatus(await jwtBearer(t, { client_id: reusable.client.account.id }), 200);
  });
});
