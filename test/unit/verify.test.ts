import { exports } from "cloudflare:workers";
import { Hono } from "hono";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { createKeywardVerifier, KeywardJwtError, keywardAuth, memoryReplayCache, verifyKeywardJwt, withKeywardAuth, type KeywardAuthEnv, type KeywardVerifierOptions } from "../../src/verify/index.ts";
import { expectStatus, call, platformRoot } from "../helpers.ts";
import { API_AUDIENCE, b64json, ISSUER, jwtFor, newClient, servedJwks, type Client } from "../integration/oauth-helpers.ts";
import { tokenPath } from "../integration/token-helpers.ts";

/**
 * keyward/verify (issue 21): the verifier a service runs, against the real Worker (its JWKS, its
 * JWTs, its status lists, fetched through the Worker's default export) and against an issuer made
 * here (its own keys, JWKS and status lists) for the claims Keyward does not mint yet (cnf.jkt)
 * and for lists it never serves.
 */

/** The Worker as the network: every URL goes to its default export. */
const workerFetch: typeof fetch = (input, init) => exports.default.fetch(new Request(input as RequestInfo, init));

async function refusedWith(promise: Promise<unknown>, code: string, secret?: string): Promise<KeywardJwtError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected a refusal with ${code}`).toBeInstanceOf(KeywardJwtError);
  const e = err as KeywardJwtError;
  expect(e.code, e.message).toBe(code);
  if (secret) {
    expect(e.message).not.toContain(secret);
    expect(e.message).not.toContain(secret.split(".")[2] ?? secret);
  }
  return e;
}

const realOptions = (extra: Partial<KeywardVerifierOptions> = {}): KeywardVerifierOptions => ({ issuer: ISSUER, audience: ISSUER, fetch: workerFetch, ...extra });

let root: { id: string; token: string };
let client: Client;
let jwt: string;
beforeAll(async () => {
  root = await platformRoot();
  client = await newClient(root.token, { roles: [{ role: "viewer" }] });
  jwt = await jwtFor(client.token);
});

describe("verifyKeywardJwt against the Worker's JWTs", () => {
  it("accepts a JWT the Worker minted: claims, scopes as a list", async () => {
    const claims = await createKeywardVerifier(realOptions()).verify(jwt);
    expect(claims.sub).toBe(client.account.id);
    expect(claims.iss).toBe(ISSUER);
    expect(claims.scopes).toEqual((claims.scope ?? "").split(" ").filter(Boolean));
    expect(claims.scopes.length).toBeGreaterThan(0);
    // Through the shared-verifier entry point as well.
    const again = await verifyKeywardJwt(jwt, realOptions({ requiredScopes: claims.scopes.slice(0, 1) }));
    expect(again.jti).toBe(claims.jti);
  });

  it("expired: refused past exp plus the clock tolerance, accepted within it", async () => {
    const { exp } = jose.decodeJwt(jwt);
    await refusedWith(createKeywardVerifier(realOptions({ now: () => exp! * 1000 + 6_000, checkStatus: false })).verify(jwt), "expired", jwt);
    await createKeywardVerifier(realOptions({ now: () => exp! * 1000 + 3_000, checkStatus: false })).verify(jwt);
    await refusedWith(createKeywardVerifier(realOptions({ now: () => exp! * 1000 + 1_000, clockTolerance: 0, checkStatus: false })).verify(jwt), "expired", jwt);
  });

  it("wrong audience and wrong issuer", async () => {
    await refusedWith(createKeywardVerifier(realOptions({ audience: API_AUDIENCE })).verify(jwt), "wrong_audience", jwt);
    // Same keys (the Worker answers every host), another issuer name.
    await refusedWith(createKeywardVerifier(realOptions({ issuer: "http://keyward.elsewhere.test" })).verify(jwt), "wrong_issuer", jwt);
  });

  it("required scopes: all of them, or 403 insufficient_scope naming what is missing", async () => {
    const narrow = await jwtFor(client.token, { scope: "service-accounts.read" });
    const e = await refusedWith(createKeywardVerifier(realOptions({ requiredScopes: ["service-accounts.read", "audit.read"] })).verify(narrow), "insufficient_scope", narrow);
    expect(e.message).toContain("audit.read");
    expect(e.status).toBe(403);
    await createKeywardVerifier(realOptions({ requiredScopes: ["service-accounts.read"] })).verify(narrow);
  });

  it("forged: the real kid signed with another key, an unknown kid, a tampered payload", async () => {
    const { kid } = jose.decodeProtectedHeader(jwt);
    const claims = jose.decodeJwt(jwt);
    const other = await jose.generateKeyPair("ES256");
    const forged = await new jose.SignJWT({ ...claims, scope: "platform.root" }).setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" }).sign(other.privateKey);
    await refusedWith(createKeywardVerifier(realOptions()).verify(forged), "bad_signature", forged);
    const unknownKid = await new jose.SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "not-a-keyward-kid", typ: "at+jwt" }).sign(other.privateKey);
    await refusedWith(createKeywardVerifier(realOptions()).verify(unknownKid), "bad_signature", unknownKid);
    const [h, , s] = jwt.split(".");
    const tampered = `${h}.${b64json({ ...claims, sub: "sa_someone_else" })}.${s}`;
    await refusedWith(createKeywardVerifier(realOptions()).verify(tampered), "bad_signature", tampered);
    await refusedWith(createKeywardVerifier(realOptions()).verify("not.a.jwt"), "malformed");
    await refusedWith(createKeywardVerifier(realOptions()).verify(""), "missing_token");
  });

  it("alg confusion: HS256 keyed with the published public key, alg none, a pinned subset", async () => {
    const claims = jose.decodeJwt(jwt);
    const { kid } = jose.decodeProtectedHeader(jwt);
    const { keys } = await servedJwks();
    const published = keys.find((k) => k.kid === kid)!;
    for (const secret of [JSON.stringify(published), published.x ?? published.n ?? ""]) {
      const hs = await new jose.SignJWT(claims).setProtectedHeader({ alg: "HS256", kid, typ: "at+jwt" }).sign(new TextEncoder().encode(secret));
      await refusedWith(createKeywardVerifier(realOptions()).verify(hs), "alg_not_allowed", hs);
    }
    const none = `${b64json({ alg: "none", typ: "at+jwt", kid })}.${b64json(claims)}.`;
    await refusedWith(createKeywardVerifier(realOptions()).verify(none), "alg_not_allowed");
    const alg = jose.decodeProtectedHeader(jwt).alg as "ES256" | "RS256" | "EdDSA";
    const others = (["ES256", "RS256", "EdDSA"] as const).filter((a) => a !== alg);
    await refusedWith(createKeywardVerifier(realOptions({ algorithms: others })).verify(jwt), "alg_not_allowed", jwt);
    expect(() => createKeywardVerifier(realOptions({ algorithms: ["HS256" as never] }))).toThrow(TypeError);
  });

  it("revoked: the access token's revocation reaches the verifier through the status list, once its cached copy is stale", async () => {
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const token = await jwtFor(c.token);
    const ref = (jose.decodeJwt(token) as { status?: { status_list?: { uri: string; idx: number } } }).status?.status_list;
    expect(ref?.uri.startsWith(`${ISSUER}/statuslists/`), JSON.stringify(ref)).toBe(true);
    await caches.default.delete(ref!.uri);
    let clock = Date.now();
    const verifier = createKeywardVerifier(realOptions({ now: () => clock }));
    await verifier.verify(token);
    expectStatus(await call("DELETE", tokenPath(c.org.id, c.account.id, c.tokenId), { token: root.token }), 204);
    // Within the list's ttl the verifier's copy stands (the documented bound on how late a revocation is seen).
    await verifier.verify(token);
    await caches.default.delete(ref!.uri);
    await refusedWith(createKeywardVerifier(realOptions()).verify(token), "revoked", token);
    clock += 62_000;
    const e = await refusedWith(verifier.verify(token), "revoked", token);
    expect(e.message).toContain(ref!.uri);
    // A credential that is not revoked still passes with a fresh list.
    await createKeywardVerifier(realOptions()).verify(jwt);
    // checkStatus: false skips the list (for services that accept the exp bound alone).
    await createKeywardVerifier(realOptions({ checkStatus: false })).verify(token);
  });
});

/** An issuer made here: its key, its JWKS and status lists served by `fetch`, counting requests. */
async function fakeIssuer(base = "https://issuer.fake.test", alg: "ES256" | "RS256" | "EdDSA" = "ES256") {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: "fake-1", alg, use: "sig" };
  const served = new Map<string, () => Response>();
  const counts = new Map<string, number>();
  served.set("/.well-known/jwks.json", () => Response.json({ keys: [jwk] }));
  const fetchImpl: typeof fetch = async (input) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    counts.set(url.pathname, (counts.get(url.pathname) ?? 0) + 1);
    await new Promise((r) => setTimeout(r, 5));
    const make = url.origin === new URL(base).origin ? served.get(url.pathname) : undefined;
    return make ? make() : new Response("not found", { status: 404 });
  };
  const sign = (payload: jose.JWTPayload, header: Partial<jose.JWTHeaderParameters> = {}) =>
    new jose.SignJWT(payload).setProtectedHeader({ alg, kid: "fake-1", typ: "at+jwt", ...header }).sign(privateKey);
  const nowS = Math.floor(Date.now() / 1000);
  const accessToken = (extra: jose.JWTPayload = {}, header: Partial<jose.JWTHeaderParameters> = {}) =>
    sign({ iss: base, sub: "sa_test", aud: "https://api.example.test", iat: nowS, exp: nowS + 300, jti: crypto.randomUUID(), scope: "a b", ...extra }, header);
  /** Serves list `n` with `revoked` bits set; `payload` overrides its claims. */
  async function serveList(n: number, revoked: number[], payload: jose.JWTPayload = {}, header: Partial<jose.JWTHeaderParameters> = {}) {
    const bytes = new Uint8Array(1024);
    for (const i of revoked) bytes[i >> 3]! |= 1 << (i & 7);
    const deflated = new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
    const uri = `${base}/statuslists/${n}`;
    const list = await sign({ sub: uri, iat: nowS, exp: nowS + 60, ttl: 60, status_list: { bits: 1, lst: jose.base64url.encode(deflated) }, ...payload }, { typ: "statuslist+jwt", ...header });
    served.set(`/statuslists/${n}`, () => new Response(list, { headers: { "content-type": "application/statuslist+jwt" } }));
    return uri;
  }
  const options = (extra: Partial<KeywardVerifierOptions> = {}): KeywardVerifierOptions => ({ issuer: base, audience: "https://api.example.test", fetch: fetchImpl, ...extra });
  return { base, accessToken, serveList, options, counts, served };
}

describe("verifier rules on an issuer made here", () => {
  it("each algorithm Keyward may sign with verifies, the status list too", async () => {
    for (const alg of ["ES256", "RS256", "EdDSA"] as const) {
      const issuer = await fakeIssuer(`https://${alg.toLowerCase()}.fake.test`, alg);
      const uri = await issuer.serveList(0, [3]);
      const verifier = createKeywardVerifier(issuer.options());
      expect((await verifier.verify(await issuer.accessToken({ status: { status_list: { idx: 2, uri } } }))).sub, alg).toBe("sa_test");
      await refusedWith(verifier.verify(await issuer.accessToken({ status: { status_list: { idx: 3, uri } } })), "revoked");
      const pinned = createKeywardVerifier(issuer.options({ algorithms: ["ES256", "RS256", "EdDSA"].filter((a) => a !== alg) as never }));
      await refusedWith(pinned.verify(await issuer.accessToken()), "alg_not_allowed");
    }
  });

  it("typ: missing, JWT, or a status list token presented as an access token are refused", async () => {
    const issuer = await fakeIssuer();
    const verifier = createKeywardVerifier(issuer.options());
    await verifier.verify(await issuer.accessToken());
    await verifier.verify(await issuer.accessToken({}, { typ: "application/at+jwt" }));
    await refusedWith(verifier.verify(await issuer.accessToken({}, { typ: undefined })), "wrong_type");
    await refusedWith(verifier.verify(await issuer.accessToken({}, { typ: "JWT" })), "wrong_type");
    await refusedWith(verifier.verify(await issuer.accessToken({}, { typ: "statuslist+jwt" })), "wrong_type");
    await refusedWith(verifier.verify(await issuer.accessToken({ jti: undefined })), "missing_claim");
    await refusedWith(verifier.verify(await issuer.accessToken({ exp: undefined })), "missing_claim");
    await refusedWith(verifier.verify(await issuer.accessToken({ nbf: Math.floor(Date.now() / 1000) + 600 })), "not_yet_valid");
  });

  it("status lists: the bit decides; one fetch per list for concurrent calls, kept for its ttl", async () => {
    const issuer = await fakeIssuer();
    const uri = await issuer.serveList(0, [7, 9]);
    let clock = Date.now();
    const verifier = createKeywardVerifier(issuer.options({ now: () => clock }));
    const good = await issuer.accessToken({ status: { status_list: { idx: 8, uri } } });
    const bad = await issuer.accessToken({ status: { status_list: { idx: 9, uri } } });
    await Promise.all(Array.from({ length: 10 }, () => verifier.verify(good)));
    expect(issuer.counts.get("/statuslists/0")).toBe(1);
    await refusedWith(verifier.verify(bad), "revoked", bad);
    expect(issuer.counts.get("/statuslists/0")).toBe(1);
    await issuer.serveList(0, [8]);
    await verifier.verify(good);
    clock += 61_000;
    await refusedWith(verifier.verify(good), "revoked", good);
    expect(issuer.counts.get("/statuslists/0")).toBe(2);
  });

  it("status lists that do not verify, or are not the issuer's, refuse (fail closed) with status_unavailable", async () => {
    const issuer = await fakeIssuer();
    const verifier = () => createKeywardVerifier(issuer.options());
    const at = (uri: string, idx = 1) => issuer.accessToken({ status: { status_list: { idx, uri } } });
    const wrongSub = await issuer.serveList(1, [], { sub: `${issuer.base}/statuslists/2` });
    await refusedWith(verifier().verify(await at(wrongSub)), "status_unavailable");
    const wrongTyp = await issuer.serveList(3, [], {}, { typ: "at+jwt" });
    await refusedWith(verifier().verify(await at(wrongTyp)), "status_unavailable");
    const expired = await issuer.serveList(4, [], { exp: Math.floor(Date.now() / 1000) - 600 });
    await refusedWith(verifier().verify(await at(expired)), "status_unavailable");
    await refusedWith(verifier().verify(await at(`${issuer.base}/statuslists/99`)), "status_unavailable");
    await refusedWith(verifier().verify(await at("https://evil.test/statuslists/0")), "status_unavailable");
    const fine = await issuer.serveList(5, []);
    await refusedWith(verifier().verify(await at(fine, 1_000_000)), "status_unavailable");
    await refusedWith(verifier().verify(await issuer.accessToken({ status: { status_list: { idx: "1", uri: fine } } })), "malformed");
    // A list signed by another key under the issuer's kid.
    const other = await jose.generateKeyPair("ES256");
    const forgedList = await new jose.SignJWT({ sub: `${issuer.base}/statuslists/6`, status_list: { bits: 1, lst: "eJwDAAAAAAE" } }).setProtectedHeader({ alg: "ES256", kid: "fake-1", typ: "statuslist+jwt" }).sign(other.privateKey);
    issuer.served.set("/statuslists/6", () => new Response(forgedList));
    await refusedWith(verifier().verify(await at(`${issuer.base}/statuslists/6`)), "status_unavailable");
  });

  it("an unreachable JWKS is jwks_unavailable (503), not a bad token", async () => {
    const issuer = await fakeIssuer();
    issuer.served.delete("/.well-known/jwks.json");
    const e = await refusedWith(createKeywardVerifier(issuer.options()).verify(await issuer.accessToken()), "jwks_unavailable");
    expect(e.status).toBe(503);
  });
});

describe("DPoP-bound tokens (cnf.jkt, RFC 9449)", () => {
  const URL_ = "https://api.example.test/things?page=2";
  async function dpopKey() {
    const pair = await jose.generateKeyPair("ES256", { extractable: true });
    const jwk = await jose.exportJWK(pair.publicKey);
    return { ...pair, jwk, jkt: await jose.calculateJwkThumbprint(jwk, "sha256") };
  }
  const ath = async (token: string) => jose.base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token))));
  async function proof(key: Awaited<ReturnType<typeof dpopKey>>, token: string, o: { htm?: string; htu?: string; iat?: number; typ?: string; ath?: string; jti?: string } = {}) {
    return new jose.SignJWT({ htm: o.htm ?? "GET", htu: o.htu ?? "https://api.example.test/things", iat: o.iat ?? Math.floor(Date.now() / 1000), jti: o.jti ?? crypto.randomUUID(), ath: o.ath ?? (await ath(token)) })
      .setProtectedHeader({ alg: "ES256", typ: o.typ ?? "dpop+jwt", jwk: key.jwk })
      .sign(key.privateKey);
  }

  it("a proof by the bound key, for this request and this token, passes once", async () => {
    const issuer = await fakeIssuer();
    const key = await dpopKey();
    const token = await issuer.accessToken({ cnf: { jkt: key.jkt } });
    const verifier = createKeywardVerifier(issuer.options());
    const p = await proof(key, token);
    const claims = await verifier.verify(token, { dpop: { proof: p, method: "GET", url: URL_ } });
    expect(claims.cnf?.jkt).toBe(key.jkt);
    await refusedWith(verifier.verify(token, { dpop: { proof: p, method: "GET", url: URL_ } }), "dpop_replayed", token);
  });

  it("refuses: no proof, another key, another method or URL, another token's ath, an old iat, a wrong typ, a private key in the header", async () => {
    const issuer = await fakeIssuer();
    const key = await dpopKey();
    const token = await issuer.accessToken({ cnf: { jkt: key.jkt } });
    const verifier = createKeywardVerifier(issuer.options());
    const req = (p: string | null, method = "GET", url = URL_) => verifier.verify(token, { dpop: { proof: p, method, url } });
    await refusedWith(verifier.verify(token), "dpop_required", token);
    await refusedWith(req(null), "dpop_required", token);
    await refusedWith(req(await proof(await dpopKey(), token)), "dpop_mismatch", token);
    await refusedWith(req(await proof(key, token), "POST"), "dpop_mismatch", token);
    await refusedWith(req(await proof(key, token), "GET", "https://api.example.test/other"), "dpop_mismatch", token);
    await refusedWith(req(await proof(key, token, { ath: await ath("another token") })), "dpop_mismatch", token);
    await refusedWith(req(await proof(key, token, { iat: Math.floor(Date.now() / 1000) - 600 })), "dpop_invalid", token);
    await refusedWith(req(await proof(key, token, { iat: Math.floor(Date.now() / 1000) + 600 })), "dpop_invalid", token);
    await refusedWith(req(await proof(key, token, { typ: "JWT" })), "dpop_invalid", token);
    const withPrivate = await new jose.SignJWT({ htm: "GET", htu: URL_, iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID(), ath: await ath(token) })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: await jose.exportJWK(key.privateKey) })
      .sign(key.privateKey);
    await refusedWith(req(withPrivate), "dpop_invalid", token);
    const hs = await new jose.SignJWT({ htm: "GET", htu: URL_, iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID(), ath: await ath(token) })
      .setProtectedHeader({ alg: "HS256", typ: "dpop+jwt", jwk: key.jwk })
      .sign(new TextEncoder().encode("k"));
    await refusedWith(req(hs), "dpop_invalid", token);
    await refusedWith(req("garbage"), "dpop_invalid", token);
  });

  it("the bounded in-memory replay cache forgets expired jtis and the oldest once full", () => {
    let t = 0;
    const cache = memoryReplayCache(2, () => t);
    expect(cache.use("a", 100)).toBe(true);
    expect(cache.use("a", 100)).toBe(false);
    t = 150;
    expect(cache.use("a", 300)).toBe(true);
    expect(cache.use("b", 300)).toBe(true);
    expect(cache.use("c", 300)).toBe(true);
    expect(cache.use("a", 300)).toBe(true);
  });
});

describe("the Hono middleware and the fetch-handler wrapper", () => {
  it("keywardAuth sets c.var.keyward, answers 401 with WWW-Authenticate, 403 for a missing scope, never echoing the token", async () => {
    const logged: KeywardJwtError[] = [];
    const app = new Hono<KeywardAuthEnv>();
    app.use("/api/*", keywardAuth({ ...realOptions(), onRefused: (e) => logged.push(e) }));
    app.get("/api/me", (c) => c.json({ sub: c.var.keyward.sub }));
    const scoped = new Hono<KeywardAuthEnv>();
    scoped.use("*", keywardAuth(realOptions({ requiredScopes: ["no.such-scope"] })));
    scoped.get("/x", (c) => c.text("no"));

    const ok = await app.request("/api/me", { headers: { authorization: `Bearer ${jwt}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ sub: client.account.id });

    const none = await app.request("/api/me");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="keyward"');

    const [h, p] = jwt.split(".");
    const broken = `${h}.${p}.AAAA${jwt.split(".")[2]!.slice(4)}`;
    const bad = await app.request("/api/me", { headers: { authorization: `Bearer ${broken}` } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const body = await bad.text();
    expect(JSON.parse(body).code).toBe("bad_signature");
    expect(body + bad.headers.get("www-authenticate")).not.toContain(broken.split(".")[2]);
    expect(logged.map((e) => e.code)).toEqual(["missing_token", "bad_signature"]);

    const forbidden = await scoped.request("/x", { headers: { authorization: `Bearer ${jwt}` } });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
  });

  it("a DPoP-bound token must come with the DPoP scheme and proof; an unbound one not with DPoP", async () => {
    const issuer = await fakeIssuer();
    const pair = await jose.generateKeyPair("ES256", { extractable: true });
    const jwk = await jose.exportJWK(pair.publicKey);
    const token = await issuer.accessToken({ cnf: { jkt: await jose.calculateJwkThumbprint(jwk, "sha256") } });
    const ath = jose.base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token))));
    const proof = () =>
      new jose.SignJWT({ htm: "GET", htu: "http://localhost/api/me", iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID(), ath }).setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk }).sign(pair.privateKey);
    const handler = withKeywardAuth((_req, claims) => Response.json({ sub: claims.sub }), issuer.options());
    const ok = await handler(new Request("http://localhost/api/me", { headers: { authorization: `DPoP ${token}`, dpop: await proof() } }));
    expect(ok.status, await ok.clone().text()).toBe(200);
    const asBearer = await handler(new Request("http://localhost/api/me", { headers: { authorization: `Bearer ${token}`, dpop: await proof() } }));
    expect(asBearer.status).toBe(401);
    expect(((await asBearer.json()) as { code: string }).code).toBe("dpop_required");
    const unbound = await handler(new Request("http://localhost/api/me", { headers: { authorization: `DPoP ${await issuer.accessToken()}` } }));
    expect(((await unbound.json()) as { code: string }).code).toBe("dpop_invalid");
  });

  it("withKeywardAuth passes the Worker's env and ctx through to the handler", async () => {
    const handler = withKeywardAuth((_req, claims, env: { name: string }) => new Response(`${env.name}:${claims.sub}`), realOptions());
    const res = await handler(new Request("http://svc.test/", { headers: { authorization: `Bearer ${jwt}` } }), { name: "env" });
    expect(await res.text()).toBe(`env:${client.account.id}`);
    const refused = await handler(new Request("http://svc.test/", { headers: { authorization: "Basic abc" } }), { name: "env" });
    expect(refused.status).toBe(401);
  });
});
