import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { claimsOf, sa, sas, waitForAudit } from "./authz-helpers.ts";
import {
  assertionGrant,
  clientAssertion,
  expectOAuthError,
  expectTokenResponse,
  newKeyClient,
  postForm,
  TOKEN_EXCHANGE,
  ACCESS_TOKEN_TYPE,
  JWT_BEARER,
  type Res,
} from "./oauth-helpers.ts";
import { auditRows, expectUnauthenticated, newAccount } from "./registry-helpers.ts";

/**
 * Issue 4, network bounds: allowed CIDRs per account, checked against CF-Connecting-IP on every use
 * of its credentials (bearer auth, the token exchange, /oauth/token); a use from outside is refused
 * exactly like a bad credential, and audited.
 */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const V4_INSIDE = "10.1.2.3";
const V4_OUTSIDE = "192.0.2.1";
const V6_INSIDE = "2001:db8::5";
const V6_OUTSIDE = "2001:db9::1";

const from = (ip: string | undefined): Record<string, string> => (ip === undefined ? {} : { "cf-connecting-ip": ip });

/** A viewer account with the given bounds (and its token) in a fresh org. */
async function boundedAccount(allowedCidrs?: string[]) {
  const { org, adminToken } = await orgWithAdmin(root.token);
  const { account, token } = await newAccount(adminToken, org.id, { roles: [{ role: "viewer" }], ...(allowedCidrs ? { allowedCidrs } : {}) });
  return { org, adminToken, account, token: token as string };
}

/** Bearer auth: the account reads itself. */
const readSelf = (a: { org: { id: string }; account: { id: string } }, token: string, ip?: string) => call("GET", sa(a.org.id, a.account.id), { token, headers: from(ip) });
const exchangeFrom = (token: string, ip?: string) => call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: token }, headers: from(ip) });
const basicGrant = (clientId: string, secret: string, ip?: string) => postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [clientId, secret], headers: from(ip) });

/** The same token with its last character changed: fails the checksum, i.e. a plainly bad credential. */
const corrupt = (token: string) => token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");

/** The parts of a refusal that must not differ between "outside the bounds" and "bad credential". */
const refusal = (res: Res) => ({
  status: res.status,
  contentType: res.headers.get("content-type"),
  challenge: res.headers.get("www-authenticate"),
  body: res.json && typeof res.json === "object" ? { ...res.json, requestId: undefined } : res.text,
});

/** Every credential use works from `ip`. */
async function expectUsable(a: Awaited<ReturnType<typeof boundedAccount>>, ip: string | undefined) {
  const label = `from ${ip ?? "(no cf-connecting-ip)"}`;
  const bearer = await readSelf(a, a.token, ip);
  expect(bearer.status, `${label} bearer: ${bearer.text}`).toBe(200);
  const exchanged = await exchangeFrom(a.token, ip);
  expect(exchanged.status, `${label} exchange: ${exchanged.text}`).toBe(200);
  const jwtUse = await readSelf(a, exchanged.json.jwt, ip);
  expect(jwtUse.status, `${label} JWT: ${jwtUse.text}`).toBe(200);
  const granted = await basicGrant(a.account.id, a.token, ip);
  expect(granted.status, `${label} /oauth/token: ${granted.text}`).toBe(200);
}

/** Every credential use is refused from `ip`, exactly as a bad credential is. */
async function expectRefused(a: Awaited<ReturnType<typeof boundedAccount>>, ip: string | undefined, jwt?: string) {
  const label = `from ${ip ?? "(no cf-connecting-ip)"}`;
  const bearer = await readSelf(a, a.token, ip);
  expectUnauthenticated(bearer);
  expect(refusal(bearer), `${label} bearer`).toEqual(refusal(await readSelf(a, corrupt(a.token), ip)));
  if (jwt) expectUnauthenticated(await readSelf(a, jwt, ip));

  const exchanged = await exchangeFrom(a.token, ip);
  expect(exchanged.status, `${label} exchange: ${exchanged.text}`).toBe(401);
  expect(exchanged.json?.code, exchanged.text).toBe("unauthenticated");
  expect(refusal(exchanged), `${label} exchange`).toEqual(refusal(await exchangeFrom(corrupt(a.token), ip)));

  const granted = await basicGrant(a.account.id, a.token, ip);
  expectOAuthError(granted, 401, "invalid_client");
  expect(granted.headers.get("www-authenticate") ?? "", granted.text).toMatch(/^Basic\b/i);
  expect(refusal(granted), `${label} /oauth/token`).toEqual(refusal(await basicGrant(a.account.id, corrupt(a.token), ip)));
}

describe("allowedCidrs: writing them", () => {
  it("set at creation, read back, replaced and cleared with PATCH", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const res = await call("POST", sas(org.id), { token: adminToken, body: { name: unique("net"), allowedCidrs: ["10.0.0.0/8", "2001:db8::/32", "10.0.0.0/8"] } });
    expectStatus(res, 201);
    expect(res.json.allowedCidrs, res.text).toEqual(["10.0.0.0/8", "2001:db8::/32"]);
    const got = await call("GET", sa(org.id, res.json.id), { token: adminToken });
    expect(got.json.allowedCidrs, got.text).toEqual(["10.0.0.0/8", "2001:db8::/32"]);

    const patched = await call("PATCH", sa(org.id, res.json.id), { token: adminToken, body: { allowedCidrs: ["192.0.2.0/24"] } });
    expectStatus(patched, 200);
    expect(patched.json.allowedCidrs, patched.text).toEqual(["192.0.2.0/24"]);
    const cleared = await call("PATCH", sa(org.id, res.json.id), { token: adminToken, body: { allowedCidrs: [] } });
    expectStatus(cleared, 200);
    expect(cleared.json.allowedCidrs, cleared.text).toEqual([]);

    const none = await call("POST", sas(org.id), { token: adminToken, body: { name: unique("open") } });
    expectStatus(none, 201);
    expect(none.json.allowedCidrs, none.text).toEqual([]);
  });

  it.each(["10.0.0.0/33", "2001:db8::/129", "300.1.1.1/8", "abc", ":::", "1::2::3", "10.0.0.0/8/1", ""])(
    "a malformed CIDR %j is a 400 naming allowedCidrs, at creation and in PATCH, and changes nothing",
    async (bad) => {
      const { org, adminToken } = await orgWithAdmin(root.token);
      const name = unique("net");
      const created = await call("POST", sas(org.id), { token: adminToken, body: { name, allowedCidrs: ["10.0.0.0/8", bad] } });
      expect(created.status, created.text).toBe(400);
      expect(created.json?.code, created.text).toBe("validation_failed");
      expect((created.json?.errors ?? []).some((e: { path: string }) => e.path.includes("allowedCidrs")), created.text).toBe(true);
      const list = await call("GET", `${sas(org.id)}?q=${name}`, { token: adminToken });
      expect(list.json.items, list.text).toEqual([]);

      const ok = await call("POST", sas(org.id), { token: adminToken, body: { name, allowedCidrs: ["10.0.0.0/8"] } });
      expectStatus(ok, 201);
      const patched = await call("PATCH", sa(org.id, ok.json.id), { token: adminToken, body: { allowedCidrs: [bad] } });
      expect(patched.status, patched.text).toBe(400);
      expect((patched.json?.errors ?? []).some((e: { path: string }) => e.path.includes("allowedCidrs")), patched.text).toBe(true);
      const got = await call("GET", sa(org.id, ok.json.id), { token: adminToken });
      expect(got.json.allowedCidrs, got.text).toEqual(["10.0.0.0/8"]);
    },
  );
});

describe("allowedCidrs: checked on every use of the credentials", () => {
  it("none set: any address works, and so does a request without CF-Connecting-IP", async () => {
    const a = await boundedAccount();
    for (const ip of [V4_INSIDE, V4_OUTSIDE, V6_INSIDE, V6_OUTSIDE, undefined]) await expectUsable(a, ip);
  });

  it("IPv4: inside 10.0.0.0/8 works for bearer, exchange and /oauth/token; outside is refused like a bad credential", async () => {
    const a = await boundedAccount(["10.0.0.0/8"]);
    await expectUsable(a, V4_INSIDE);
    await expectUsable(a, "10.255.255.255");
    await expectUsable(a, `::ffff:${V4_INSIDE}`);
    const jwt = (await exchangeFrom(a.token, V4_INSIDE)).json.jwt as string;
    await expectRefused(a, V4_OUTSIDE, jwt);
    await expectRefused(a, "11.0.0.1", jwt);
    await expectRefused(a, V6_INSIDE, jwt);
  });

  it("a refused use is audited as credential.refused_network, with the address", async () => {
    const a = await boundedAccount(["10.0.0.0/8"]);
    expectUnauthenticated(await readSelf(a, a.token, V4_OUTSIDE));
    const bearerRows = await waitForAudit(a.account.id, "credential.refused_network");
    expect(bearerRows.length, JSON.stringify(await auditRows(a.account.id))).toBe(1);
    expect(bearerRows[0]!.org_id).toBe(a.org.id);
    expect(JSON.parse(bearerRows[0]!.details).ip, bearerRows[0]!.details).toBe(V4_OUTSIDE);

    expect((await exchangeFrom(a.token, "192.0.2.2")).status).toBe(401);
    expectOAuthError(await basicGrant(a.account.id, a.token, "192.0.2.3"), 401, "invalid_client");
    const rows = await waitForAudit(a.account.id, "credential.refused_network", 3);
    expect(rows.map((r) => JSON.parse(r.details).ip).sort(), JSON.stringify(rows)).toEqual([V4_OUTSIDE, "192.0.2.2", "192.0.2.3"].sort());
    // Uses from inside are not audited as refusals.
    await expectUsable(a, V4_INSIDE);
    expect((await waitForAudit(a.account.id, "credential.refused_network", 4, 500)).length).toBe(3);
  });

  it("IPv6: inside 2001:db8::/32 works, 2001:db9::1 and IPv4 clients are refused", async () => {
    const a = await boundedAccount(["2001:db8::/32"]);
    await expectUsable(a, V6_INSIDE);
    await expectUsable(a, "2001:0db8:ffff::1");
    const jwt = (await exchangeFrom(a.token, V6_INSIDE)).json.jwt as string;
    await expectRefused(a, V6_OUTSIDE, jwt);
    await expectRefused(a, V4_INSIDE, jwt);
    const rows = await waitForAudit(a.account.id, "credential.refused_network", 1);
    expect(rows.map((r) => JSON.parse(r.details).ip), JSON.stringify(rows)).toContain(V6_OUTSIDE);
  });

  it("mixed IPv4 and IPv6 bounds allow both families", async () => {
    const a = await boundedAccount(["10.0.0.0/8", "2001:db8::/32"]);
    await expectUsable(a, V4_INSIDE);
    await expectUsable(a, V6_INSIDE);
    await expectRefused(a, V4_OUTSIDE);
    await expectRefused(a, V6_OUTSIDE);
  });

  it("with bounds set, a request without CF-Connecting-IP (or with garbage in it) is refused", async () => {
    const a = await boundedAccount(["10.0.0.0/8"]);
    const jwt = (await exchangeFrom(a.token, V4_INSIDE)).json.jwt as string;
    await expectRefused(a, undefined, jwt);
    await expectRefused(a, "not-an-ip", jwt);
    await expectRefused(a, "", jwt);
  });

  it("narrowing the bounds with PATCH takes effect at once, for the access token and JWTs already issued", async () => {
    const a = await boundedAccount(["10.0.0.0/8"]);
    await expectUsable(a, V4_INSIDE);
    const jwt = (await exchangeFrom(a.token, V4_INSIDE)).json.jwt as string;
    expectStatus(await call("PATCH", sa(a.org.id, a.account.id), { token: a.adminToken, body: { allowedCidrs: ["10.9.0.0/16"] } }), 200);
    await expectRefused(a, V4_INSIDE, jwt);
    await expectUsable(a, "10.9.1.1");
    expectStatus(await readSelf(a, jwt, "10.9.1.1"), 200);
    // Setting bounds on an account that had none takes effect at once too.
    expectStatus(await call("PATCH", sa(a.org.id, a.account.id), { token: a.adminToken, body: { allowedCidrs: [] } }), 200);
    await expectUsable(a, V4_OUTSIDE);
    expectStatus(await call("PATCH", sa(a.org.id, a.account.id), { token: a.adminToken, body: { allowedCidrs: ["2001:db8::/32"] } }), 200);
    await expectRefused(a, V4_OUTSIDE);
    await expectUsable(a, V6_INSIDE);
  });

  it("the bounds are the account's own: other accounts of the org are unaffected", async () => {
    const a = await boundedAccount(["10.0.0.0/8"]);
    const other = await newAccount(a.adminToken, a.org.id, { roles: [{ role: "viewer" }] });
    expectStatus(await call("GET", sa(a.org.id, a.account.id), { token: other.token, headers: from(V4_OUTSIDE) }), 200);
    // The admin reads and manages the bounded account from anywhere.
    expectStatus(await call("GET", sa(a.org.id, a.account.id), { token: a.adminToken, headers: from(V4_OUTSIDE) }), 200);
  });

  it("client_secret_post and RFC 8693 token exchange at /oauth/token are bounded too", async () => {
    const a = await boundedAccount(["10.0.0.0/8"]);
    const post = (ip: string) => postForm("/oauth/token", { grant_type: "client_credentials", client_id: a.account.id, client_secret: a.token }, { headers: from(ip) });
    await expectTokenResponse(await post(V4_INSIDE), a.account.id);
    expectOAuthError(await post(V4_OUTSIDE), 401, "invalid_client");

    const exchange = (subject: string, type: string, ip: string) =>
      postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: type }, { headers: from(ip) });
    const inside = await exchange(a.token, ACCESS_TOKEN_TYPE, V4_INSIDE);
    expectStatus(inside, 200);
    expect(claimsOf(inside.json.access_token).sub, inside.text).toBe(a.account.id);
    expectOAuthError(await exchange(a.token, ACCESS_TOKEN_TYPE, V4_OUTSIDE), 400, "invalid_grant");
    expectOAuthError(await exchange(inside.json.access_token, "urn:ietf:params:oauth:token-type:jwt", V4_OUTSIDE), 400, "invalid_grant");
  });

  it("private_key_jwt is bounded too", async () => {
    const client = await newKeyClient(root.token, "ES256", "pem");
    expectStatus(await call("PATCH", sa(client.org.id, client.clientId), { token: root.token, body: { allowedCidrs: ["10.0.0.0/8"] } }), 200);
    const grant = async (ip: string) =>
      postForm(
        "/oauth/token",
        { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: await clientAssertion(client.privateKey, client.clientId, { kid: client.kid }) },
        { headers: from(ip) },
      );
    await expectTokenResponse(await grant(V4_INSIDE), client.clientId);
    expectOAuthError(await grant(V4_OUTSIDE), 401, "invalid_client");
    // Without the header at all.
    expectOAuthError(await assertionGrant(await clientAssertion(client.privateKey, client.clientId, { kid: client.kid })), 401, "invalid_client");
    const rows = await waitForAudit(client.clientId, "credential.refused_network", 2);
    expect(rows.length, JSON.stringify(rows)).toBe(2);
  });
});
