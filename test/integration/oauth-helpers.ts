import { forgetCredentials } from "../../src/domain/credentials/record-cache.ts";
import { env } from "cloudflare:workers";
import * as jose from "jose";
import { expect } from "vitest";
import { hashToken } from "../../src/domain/credentials/access-token.ts";
import { KEYSET_KEY, tokenKey, type TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import { unwrapSigningKey, type Keyset } from "../../src/domain/signing/keyset.ts";
import { call, expectStatus, unique } from "../helpers.ts";

/** Shared helpers of the JWT, token exchange and OAuth 2.0 integration tests. */

export type Res = Awaited<ReturnType<typeof call>>;

export const ISSUER = "http://localhost:8787"; // wrangler.toml [vars]
export const API_AUDIENCE = "https://api.example.test"; // ALLOWED_AUDIENCES in vitest.config.ts
export const DEFAULT_TTL = 300;
export const MAX_TTL = 3600;
export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
export const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const nowS = () => Math.floor(Date.now() / 1000);

/** application/x-www-form-urlencoded, keeping repeated parameters (arrays) repeated. */
export function formBody(params: Record<string, string | string[] | undefined>): string {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) out.append(k, item);
  }
  return out.toString();
}

/** RFC 6749 §2.3.1: Basic over the form-urlencoded client id and secret. */
export function basic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
  return `Basic ${btoa(`${enc(clientId)}:${enc(secret)}`)}`;
}

/** POSTs a form to an OAuth endpoint, optionally with Basic client credentials. */
export function postForm(
  path: string,
  params: Record<string, string | string[] | undefined>,
  options: { basic?: [string, string]; headers?: Record<string, string> } = {},
): Promise<Res> {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", ...options.headers };
  if (options.basic) headers.authorization = basic(...options.basic);
  return call("POST", path, { body: formBody(params), headers });
}

/** An RFC 6749 §5.2 error: status, exactly {error, error_description}, JSON, never cached. */
export function expectOAuthError(res: Res, status: number, error: string) {
  const msg = `${res.status} ${res.headers.get("content-type")}: ${res.text}`;
  expect(res.status, msg).toBe(status);
  expect(res.headers.get("content-type") ?? "", msg).toMatch(/^application\/json/);
  expect(res.headers.get("cache-control") ?? "", msg).toMatch(/no-store/);
  expect(res.json, msg).toBeTypeOf("object");
  expect(Object.keys(res.json ?? {}).sort(), msg).toEqual(["error", "error_description"]);
  expect(res.json.error, msg).toBe(error);
  expect(res.json.error_description, msg).toBeTypeOf("string");
  return res.json as { error: string; error_description: string };
}

/** A management-API 401: problem+json `unauthenticated` with a Bearer challenge. */
export function expectUnauthorized(res: Res) {
  const msg = `${res.status}: ${res.text}`;
  expect(res.status, msg).toBe(401);
  expect(res.headers.get("content-type") ?? "", msg).toMatch(/^application\/problem\+json/);
  expect(res.json?.code, msg).toBe("unauthenticated");
  expect(res.headers.get("www-authenticate") ?? "", msg).toMatch(/^Bearer\b/);
}

/** A management-API problem with the given status and code. */
export function expectProblemCode(res: Res, status: number, code: string) {
  const msg = `${res.status}: ${res.text}`;
  expect(res.status, msg).toBe(status);
  expect(res.headers.get("content-type") ?? "", msg).toMatch(/^application\/problem\+json/);
  expect(res.json?.code, msg).toBe(code);
  return res.json;
}

export interface Client {
  org: { id: string; slug: string };
  account: any;
  /** The access token (also the OAuth client_secret). */
  token: string;
  tokenId: string;
}

/** A fresh org and, in it, an account (with its first token) created by root. */
export async function newClient(rootToken: string, body: Record<string, unknown> = {}, orgId?: string): Promise<Client> {
  let org: { id: string; slug: string };
  if (orgId) {
    org = { id: orgId, slug: "" };
  } else {
    const slug = unique("org");
    const created = await call("POST", "/api/v1/orgs", { token: rootToken, body: { slug, name: `Org ${slug}` } });
    expectStatus(created, 201);
    org = created.json;
  }
  const res = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, {
    token: rootToken,
    body: { name: unique("sa"), issueToken: true, ...body },
  });
  expectStatus(res, 201);
  return { org, account: res.json, token: res.json.token?.token, tokenId: res.json.token?.id };
}

/** POST /api/auth/access-tokens/jwt. */
export function exchange(accessToken: string, extra: { duration_seconds?: number; scope?: string } = {}) {
  return call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: accessToken, ...extra } });
}

/** A JWT from the exchange endpoint (asserting success). */
export async function jwtFor(accessToken: string, extra: { duration_seconds?: number; scope?: string } = {}): Promise<string> {
  const res = await exchange(accessToken, extra);
  expectStatus(res, 200);
  expect(res.json.jwt, res.text).toBeTypeOf("string");
  return res.json.jwt as string;
}

/** The served JWKS (GET /.well-known/jwks.json). */
export async function servedJwks(): Promise<{ keys: (jose.JWK & { kid: string })[]; res: Res }> {
  const res = await call("GET", "/.well-known/jwks.json");
  expectStatus(res, 200);
  expect(Array.isArray(res.json?.keys), res.text).toBe(true);
  return { keys: res.json.keys, res };
}

/** Verifies a JWT the way a resource server would: against the served JWKS, our issuer, RFC 9068 typ. */
export async function verifyAgainstJwks(jwt: string, audience: string = ISSUER) {
  const { keys } = await servedJwks();
  return jose.jwtVerify(jwt, jose.createLocalJWKSet({ keys }), { issuer: ISSUER, audience, typ: "at+jwt" });
}

export type AssertionAlg = "ES256" | "RS256" | "EdDSA";

export async function keyPair(alg: AssertionAlg) {
  return jose.generateKeyPair(alg, { extractable: true, ...(alg === "RS256" ? { modulusLength: 2048 } : {}) });
}

export interface AssertionOptions {
  alg?: AssertionAlg;
  kid?: string | undefined;
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  jti?: string | null;
  typ?: string;
}

/** A private_key_jwt client assertion (RFC 7523): iss = sub = client_id, aud = issuer, exp in a minute, random jti. */
export function clientAssertion(privateKey: CryptoKey, clientId: string, o: AssertionOptions = {}): Promise<string> {
  const header: jose.JWTHeaderParameters = { alg: o.alg ?? "ES256" };
  if (o.kid !== undefined) header.kid = o.kid;
  if (o.typ !== undefined) header.typ = o.typ;
  const jwt = new jose.SignJWT({})
    .setProtectedHeader(header)
    .setIssuer(o.iss ?? clientId)
    .setSubject(o.sub ?? clientId)
    .setAudience(o.aud ?? ISSUER)
    .setIssuedAt()
    .setExpirationTime(o.exp ?? nowS() + 60);
  if (o.jti !== null) jwt.setJti(o.jti ?? crypto.randomUUID());
  return jwt.sign(privateKey);
}

/** A client_credentials request authenticated by private_key_jwt. */
export function assertionGrant(assertion: string, extra: Record<string, string | undefined> = {}, path = "/oauth/token") {
  return postForm(path, { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: assertion, ...extra });
}

/** Registers a public key on an account (POST .../keys). */
export async function addPublicKey(token: string, orgId: string, accountId: string, body: Record<string, unknown>) {
  return call("POST", `/api/v1/orgs/${orgId}/service-accounts/${accountId}/keys`, { token, body });
}

/**
 * Signs a JWT with the service's own signing key, unwrapped from the KV keyset with the test
 * SIGNING_KEY_ENCRYPTION_KEY: the only way to test the claim checks (typ, iss, aud, exp) with a
 * valid signature. The key is the one the Worker currently signs with (taken from a fresh JWT).
 */
export async function signWithServiceKey(accessToken: string, header: Record<string, unknown>, payload: jose.JWTPayload): Promise<string> {
  const kid = jose.decodeProtectedHeader(await jwtFor(accessToken)).kid;
  const keyset = await env.TOKENS.get<Keyset>(KEYSET_KEY, "json");
  const key = keyset?.keys.find((k) => k.kid === kid);
  expect(key, `signing key ${kid} not in the KV keyset`).toBeDefined();
  const privateKey = await unwrapSigningKey(key!, env.SIGNING_KEY_ENCRYPTION_KEY!);
  return new jose.SignJWT(payload).setProtectedHeader({ alg: key!.alg, kid: key!.kid, ...header } as jose.JWTHeaderParameters).sign(privateKey);
}

/** Standard claims of a JWT we would issue to `accountId`, for crafting variants. */
export function standardClaims(accountId: string, overrides: jose.JWTPayload = {}): jose.JWTPayload {
  const iat = nowS();
  return { iss: ISSUER, sub: accountId, aud: ISSUER, iat, exp: iat + 300, jti: crypto.randomUUID(), client_id: accountId, scope: "", ...overrides };
}

/** Base64url of a JSON value (for hand-made JWTs). */
export const b64json = (v: unknown) => jose.base64url.encode(new TextEncoder().encode(JSON.stringify(v)));

/**
 * Makes an access token look expired where it is checked: its KV record keeps existing (KV expiry
 * is lazy and has a 60 s floor) but says it expired a second ago.
 */
export async function expireTokenInKv(accessToken: string): Promise<void> {
  const key = tokenKey(await hashToken(accessToken));
  const record = await env.TOKENS.get<TokenRecord>(key, "json");
  expect(record, `no KV record for ${accessToken.slice(0, 8)}`).not.toBeNull();
  const past = Date.now() - 1000;
  await env.TOKENS.put(key, JSON.stringify({ ...record!, expiresAt: past, tokenExpiresAt: past }));
  // A KV write behind the service's back reaches an isolate's token cache only after its TTL; skip that wait.
  forgetCredentials({ tokenId: record!.tokenId });
}

/** A 200 token response: exact members, Bearer, no-store, and a JWT that verifies against the JWKS. */
export async function expectTokenResponse(res: Res, accountId: string, extra: string[] = []) {
  const msg = `${res.status}: ${res.text}`;
  expect(res.status, msg).toBe(200);
  expect(res.headers.get("cache-control") ?? "", msg).toMatch(/no-store/);
  expect(Object.keys(res.json).sort(), msg).toEqual(["access_token", "expires_in", "scope", "token_type", ...extra].sort());
  expect(res.json.token_type, msg).toBe("Bearer");
  expect(res.json.expires_in, msg).toBeTypeOf("number");
  const audience = jose.decodeJwt(res.json.access_token).aud as string;
  const { payload } = await verifyAgainstJwks(res.json.access_token, audience);
  expect(payload.sub, msg).toBe(accountId);
  expect(payload.client_id, msg).toBe(accountId);
  expect(payload.scope ?? "", msg).toBe(res.json.scope);
  expect(payload.exp! - payload.iat!, msg).toBe(res.json.expires_in);
  return payload;
}

/** A fresh viewer account with one registered public key (no access token at all) and its private key. */
export async function newKeyClient(rootToken: string, alg: AssertionAlg, format: "pem" | "jwk", options: { algHint?: boolean } = {}) {
  const client = await newClient(rootToken, { roles: [{ role: "viewer" }], issueToken: false });
  const { publicKey, privateKey } = await keyPair(alg);
  const body: Record<string, unknown> =
    format === "pem" ? { publicKey: await jose.exportSPKI(publicKey) } : { publicKey: { ...(await jose.exportJWK(publicKey)), kid: `jwk-${alg}-1` } };
  if (options.algHint) body.alg = alg;
  const res = await addPublicKey(rootToken, client.org.id, client.account.id, body);
  expectStatus(res, 201);
  expect(res.json.alg, res.text).toBe(alg);
  return { ...client, clientId: client.account.id as string, privateKey, kid: res.json.kid as string, alg };
}
