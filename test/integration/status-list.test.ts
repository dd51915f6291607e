import { env, exports } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { BASE, call, expectStatus, platformRoot } from "../helpers.ts";
import {
  ACCESS_TOKEN_TYPE,
  API_AUDIENCE,
  assertionGrant,
  clientAssertion,
  ISSUER,
  jwtFor,
  newClient,
  newKeyClient,
  postForm,
  servedJwks,
  TOKEN_EXCHANGE,
  type Client,
} from "./oauth-helpers.ts";
import { addPolicy, githubActionsClaims, jwtBearer, testIssuer, type TestIssuer } from "./federation-helpers.ts";
import { accountPath, tokenPath } from "./token-helpers.ts";

/**
 * Issue 19, token status lists (draft-ietf-oauth-status-list): every JWT names its credential's bit
 * in `status.status_list`, and GET /statuslists/{n} serves the signed list. The list is read here
 * the way an offline verifier reads it, with a decoder written from the draft (not the service's
 * encoder): verify the JWT against the JWKS with typ statuslist+jwt, base64url-decode `lst`,
 * inflate it (zlib, RFC 1950), take bit idx % 8 of byte floor(idx / 8).
 */

const LIST_TYP = "statuslist+jwt";

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

interface StatusRef {
  idx: number;
  uri: string;
}

function statusRefOf(jwt: string): StatusRef {
  const claims = jose.decodeJwt(jwt) as { status?: { status_list?: StatusRef } };
  const ref = claims.status?.status_list;
  expect(ref, `status claim of ${JSON.stringify(claims)}`).toBeDefined();
  expect(Number.isInteger(ref!.idx) && ref!.idx >= 0).toBe(true);
  expect(ref!.uri.startsWith(`${ISSUER}/statuslists/`), ref!.uri).toBe(true);
  return ref!;
}

const fetchList = (path: string, headers: Record<string, string> = {}) =>
  exports.default.fetch(new Request(BASE + path, { headers: { accept: "application/statuslist+jwt", ...headers } }));

/** The list at `uri` as a verifier decodes it; `fresh` drops the edge cache's copy first (what the TTL does in time). */
async function readList(uri: string, fresh = true) {
  if (fresh) await caches.default.delete(uri);
  const res = await fetchList(new URL(uri).pathname);
  const text = new TextDecoder().decode(await res.arrayBuffer());
  expect(res.status, text).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/statuslist+jwt");
  const { keys } = await servedJwks();
  const { payload, protectedHeader } = await jose.jwtVerify(text, jose.createLocalJWKSet({ keys }), { typ: LIST_TYP, subject: uri });
  expect(protectedHeader.typ).toBe(LIST_TYP);
  const list = payload.status_list as { bits: number; lst: string };
  expect(list.bits).toBe(1);
  const bytes = await inflate(jose.base64url.decode(list.lst));
  return { bytes, payload, res, text };
}

const bitAt = (bytes: Uint8Array, idx: number) => (bytes[idx >> 3]! >> (idx & 7)) & 1;

/** The status a verifier reading the list sees for the JWT: 0 valid, 1 invalid. */
async function statusOf(jwt: string): Promise<number> {
  const ref = statusRefOf(jwt);
  return bitAt((await readList(ref.uri)).bytes, ref.idx);
}

const introspect = (token: string) => postForm("/oauth/introspect", { token }, { basic: [root.id, root.token] });

/** What introspection says and what the status list says about the JWT agree, and equal `active`. */
async function expectAgreement(jwt: string, active: boolean, why: string) {
  const res = await introspect(jwt);
  expect(res.json?.active, `${why}: introspection ${res.text}`).toBe(active);
  expect(await statusOf(jwt), `${why}: status list bit`).toBe(active ? 0 : 1);
}

const setStatus = (c: Client, status: "active" | "disabled") =>
  call("PATCH", accountPath(c.org.id, c.account.id), { token: root.token, body: { status } });

async function clientCredentialsJwt(c: Client) {
  const res = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [c.account.id, c.token] });
  expectStatus(res, 200);
  return res.json.access_token as string;
}

describe("status claim", () => {
  it("every JWT from an access token names a bit, 0 while the token lives; the exchange and client_credentials JWTs name the same one", async () => {
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const a = await jwtFor(c.token);
    const b = await clientCredentialsJwt(c);
    const claims = jose.decodeJwt(a);
    expect(claims.status).toEqual({ status_list: statusRefOf(a) });
    expect(statusRefOf(b)).toEqual(statusRefOf(a));
    expect(await statusOf(a)).toBe(0);
    const other = await newClient(root.token, { roles: [{ role: "viewer" }] });
    expect(statusRefOf(await jwtFor(other.token)), "another token, another bit").not.toEqual(statusRefOf(a));
  });

  it("a JWT exchanged from a JWT (RFC 8693) carries its root credential's status, and dies with it", async () => {
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const first = await jwtFor(c.token);
    const res = await postForm(
      "/oauth/token",
      { grant_type: TOKEN_EXCHANGE, subject_token: first, subject_token_type: ACCESS_TOKEN_TYPE, audience: API_AUDIENCE },
      { basic: [c.account.id, c.token] },
    );
    expectStatus(res, 200);
    const second = res.json.access_token as string;
    expect(jose.decodeJwt(second).source_jtis).toEqual([jose.decodeJwt(first).jti]);
    expect(statusRefOf(second)).toEqual(statusRefOf(first));
    expectStatus(await call("DELETE", tokenPath(c.org.id, c.account.id, c.tokenId), { token: root.token }), 204);
    expect(await statusOf(second)).toBe(1);
  });

  it("credentials created at once on different accounts (different Durable Objects) get distinct indexes", async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => newClient(root.token, { roles: [{ role: "viewer" }] })));
    const jwts = await Promise.all(clients.map((c) => jwtFor(c.token)));
    const refs = jwts.map((j) => JSON.stringify(statusRefOf(j)));
    expect(new Set(refs).size).toBe(clients.length);
    const rows = await Promise.all(clients.map((c) => env.DB.prepare("SELECT idx FROM credential_status WHERE credential_id = ?").bind(c.tokenId).first<{ idx: number }>()));
    expect(rows.map((r) => r!.idx % 131_072)).toEqual(jwts.map((j) => statusRefOf(j).idx));
  });

  it("the status claim is signed: a JWT whose status was edited does not verify", async () => {
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const jwt = await jwtFor(c.token);
    const [h, , s] = jwt.split(".");
    const claims = { ...jose.decodeJwt(jwt), status: { status_list: { idx: 0, uri: `${ISSUER}/statuslists/0` } } };
    const edited = `${h}.${jose.base64url.encode(JSON.stringify(claims))}.${s}`;
    expect((await introspect(edited)).json).toEqual({ active: false });
    expectStatus(await call("GET", "/api/v1/orgs", { token: edited }), 401);
  });
});

describe("revocation flips the bits (and introspection agrees)", () => {
  it("revoking the access token sets its bit; a JWT revoked alone by jti leaves it", async () => {
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const jwt = await jwtFor(c.token);
    const single = await jwtFor(c.token);
    await expectAgreement(jwt, true, "before");
    // RFC 7009 on one JWT: that JWT dies by jti, the credential's bit stays (other JWTs still live).
    expectStatus(await postForm("/oauth/revoke", { token: single }, { basic: [c.account.id, c.token] }), 200);
    expect((await introspect(single)).json).toEqual({ active: false });
    expect(await statusOf(single)).toBe(0);
    expectStatus(await call("DELETE", tokenPath(c.org.id, c.account.id, c.tokenId), { token: root.token }), 204);
    await expectAgreement(jwt, false, "after the token's revocation");
  });

  it("disabling the account sets the bits of all its credentials; enabling clears the live ones, never a revoked token's", async () => {
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const second = await call("POST", `${accountPath(c.org.id, c.account.id)}/tokens`, { token: root.token, body: {} });
    // An org's policy may allow one active token: revoke the first then, keeping a revoked one and a live one.
    let live = c.token;
    let dead: string | null = null;
    if (second.status === 201) {
      live = second.json.token as string;
      dead = await jwtFor(c.token);
      expectStatus(await call("DELETE", tokenPath(c.org.id, c.account.id, c.tokenId), { token: root.token }), 204);
    } else {
      dead = await jwtFor(c.token);
      expectStatus(await call("DELETE", tokenPath(c.org.id, c.account.id, c.tokenId), { token: root.token }), 204);
      const third = await call("POST", `${accountPath(c.org.id, c.account.id)}/tokens`, { token: root.token, body: {} });
      expectStatus(third, 201);
      live = third.json.token as string;
    }
    const liveJwt = await jwtFor(live);
    await expectAgreement(liveJwt, true, "before");
    await expectAgreement(dead, false, "a revoked token's JWT");
    expectStatus(await setStatus(c, "disabled"), 200);
    await expectAgreement(liveJwt, false, "disabled");
    await expectAgreement(dead, false, "disabled, revoked token");
    expectStatus(await setStatus(c, "active"), 200);
    await expectAgreement(liveJwt, true, "enabled again");
    await expectAgreement(dead, false, "enabled again: the revoked token stays revoked");
  });

  it("deleting the account sets every bit; the status rows stay after the credentials are gone", async () => {
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const jwt = await jwtFor(c.token);
    await expectAgreement(jwt, true, "before");
    expectStatus(await call("DELETE", accountPath(c.org.id, c.account.id), { token: root.token }), 204);
    expect((await introspect(jwt)).json).toEqual({ active: false });
    expect(await statusOf(jwt)).toBe(1);
    const rows = await env.DB.prepare("SELECT revoked FROM credential_status WHERE account_id = ?").bind(c.account.id).all<{ revoked: number }>();
    expect(rows.results.length).toBeGreaterThan(0);
    expect(rows.results.every((r) => r.revoked === 1)).toBe(true);
  });
});

describe("key-based and federated JWTs", () => {
  it("a private_key_jwt client's JWT names its key's bit: set while the account is disabled, cleared when enabled", async () => {
    const c = await newKeyClient(root.token, "ES256", "pem");
    const assertion = await clientAssertion(c.privateKey, c.clientId, { kid: c.kid });
    const res = await assertionGrant(assertion, { grant_type: "client_credentials" });
    expectStatus(res, 200);
    const jwt = res.json.access_token as string;
    const row = await env.DB.prepare("SELECT idx FROM credential_status WHERE account_id = ? AND credential_type = 'public_key'").bind(c.clientId).first<{ idx: number }>();
    expect(statusRefOf(jwt).idx).toBe(row!.idx % 131_072);
    await expectAgreement(jwt, true, "before");
    expectStatus(await setStatus(c, "disabled"), 200);
    await expectAgreement(jwt, false, "disabled");
    expectStatus(await setStatus(c, "active"), 200);
    await expectAgreement(jwt, true, "enabled");
  });

  it("a federated JWT names its trust policy's bit (a policy written straight to D1 gets one from the trigger)", async () => {
    const gha: TestIssuer = await testIssuer("gha", "RS256");
    const c = await newClient(root.token, { roles: [{ role: "viewer" }], issueToken: false });
    const policy = await addPolicy({ id: c.account.id, orgId: c.org.id }, { issuer: gha.url, claims: { repository: "acme/status-list" } });
    const res = await jwtBearer(await gha.sign(githubActionsClaims("acme/status-list", "prod", { jti: crypto.randomUUID() })));
    expectStatus(res, 200);
    const jwt = res.json.access_token as string;
    const row = await env.DB.prepare("SELECT idx, credential_type FROM credential_status WHERE credential_id = ?").bind(policy.id).first<{ idx: number; credential_type: string }>();
    expect(row?.credential_type).toBe("federated_credential");
    expect(statusRefOf(jwt)).toEqual({ idx: row!.idx % 131_072, uri: `${ISSUER}/statuslists/${Math.floor(row!.idx / 131_072)}` });
    await expectAgreement(jwt, true, "before");
    expectStatus(await setStatus(c, "disabled"), 200);
    await expectAgreement(jwt, false, "disabled");
  });
});

describe("GET /statuslists/{n}", () => {
  it("serves a signed statuslist+jwt with sub, iat, exp and ttl, and caching headers", async () => {
    const { res, payload } = await readList(`${ISSUER}/statuslists/0`);
    expect(res.headers.get("cache-control")).toBe("public, max-age=60");
    expect(payload.ttl).toBe(60);
    expect(payload.exp! - payload.iat!).toBe(60);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(30);
    expect(Date.parse(res.headers.get("last-modified")!) / 1000).toBe(payload.iat);
  });

  it("is served from the cache within its TTL (max-age counting down), and re-rendered after", async () => {
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const jwt = await jwtFor(c.token);
    const ref = statusRefOf(jwt);
    const first = await readList(ref.uri);
    expect(bitAt(first.bytes, ref.idx)).toBe(0);
    expectStatus(await call("DELETE", tokenPath(c.org.id, c.account.id, c.tokenId), { token: root.token }), 204);
    const cached = await readList(ref.uri, false);
    expect(cached.text, "the cached copy, until its TTL ends").toBe(first.text);
    expect(Number(/max-age=(\d+)/.exec(cached.res.headers.get("cache-control")!)![1])).toBeLessThanOrEqual(60);
    const fresh = await readList(ref.uri);
    expect(bitAt(fresh.bytes, ref.idx)).toBe(1);
  });

  it("a query string does not skip the cache", async () => {
    const uri = `${ISSUER}/statuslists/0`;
    const first = await readList(uri);
    const res = await fetchList(`/statuslists/0?bust=${crypto.randomUUID()}`);
    expect(new TextDecoder().decode(await res.arrayBuffer())).toBe(first.text);
  });

  it("a list past the last one is a 404 problem; a malformed number is a 400 problem", async () => {
    const beyond = await call("GET", "/statuslists/999999");
    expectStatus(beyond, 404);
    expect(beyond.headers.get("content-type")).toMatch(/application\/problem\+json/);
    expect(beyond.json.code).toBe("status_list_not_found");
    for (const bad of ["-1", "01", "1.5", "abc", "9999999999"]) {
      const res = await call("GET", `/statuslists/${bad}`);
      expectStatus(res, 400);
      expect(res.json.code).toBe("validation_failed");
    }
  });

  it("every list has 2^17 bits, whatever the number of credentials", async () => {
    const { bytes } = await readList(`${ISSUER}/statuslists/0`);
    expect(bytes.length).toBe(131_072 / 8);
  });
});
