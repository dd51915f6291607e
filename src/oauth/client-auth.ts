import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload } from "jose";
import type { TokenEndpointAuthMethod } from "../db/schema.ts";
import { rememberOnce } from "../domain/credentials/replay.ts";
import type { Ctx } from "../domain/shared/context.ts";
import { resolveAccount, resolveCredential } from "../domain/credentials/resolver.ts";
import { FOREIGN_JWT_CLOCK_SKEW_SECONDS, NO_SOURCE, type JwtSource } from "../domain/signing/jwt.ts";
import type { AccountClaims, AccountKey } from "../domain/credentials/kv-records.ts";
import { invalidClient, OAuthError } from "./errors.ts";
import { clientJwks } from "../domain/credentials/client-jwks.ts";
import { KeysUnavailable } from "../domain/credentials/remote-keys.ts";
import { isolateState } from "../domain/shared/isolate-state.ts";

export const JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** Clock skew accepted on client assertions: unlike our own JWTs they are signed on the client's clock. */
const CLIENT_CLOCK_SKEW_S = FOREIGN_JWT_CLOCK_SKEW_SECONDS;

export interface ClientForm {
  client_id?: string | undefined;
  client_secret?: string | undefined;
  client_assertion?: string | undefined;
  client_assertion_type?: string | undefined;
}

export interface AuthenticatedClient {
  clientId: string;
  account: AccountClaims;
  method: TokenEndpointAuthMethod;
  /** When what authenticated the client stops being valid (bounds the JWTs it gets). */
  expiresAt: number | null;
  /** What a JWT issued to the client carries as its source: the access token used as client secret, or nothing (a key). */
  source: JwtSource;
  /** The access token used as client secret, if one was. */
  tokenId?: string | undefined;
}

/**
 * What the client authenticates for: `act` at introspection and revocation (its secret's use is
 * recorded at once), `exchange` at the token endpoint (recorded with the JWT it gets).
 */
export type ClientPurpose = "act" | "exchange";

/** Clients' registered public keys, imported (at most 1,000 at a time). */
const clientKeys = isolateState("client-keys", () => ({ byJwk: new Map<string, Promise<CryptoKey>>() }));

function verifyKey(key: AccountKey): Promise<CryptoKey> {
  const id = JSON.stringify(key.jwk);
  let k = clientKeys.byJwk.get(id);
  if (!k) {
    if (clientKeys.byJwk.size > 1000) clientKeys.byJwk.clear();
    k = importJWK({ ...key.jwk, alg: key.alg } as never, key.alg) as Promise<CryptoKey>;
    clientKeys.byJwk.set(id, k);
    k.catch(() => clientKeys.byJwk.delete(id));
  }
  return k;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const BASIC = /^Basic[ ]+([A-Za-z0-9+/=]{1,2048})[ ]*$/i;

/** application/x-www-form-urlencoded decoding of one Basic half; null when the escapes are broken. */
function decodeFormComponent(s: string): string | null {
  if (!s.includes("%") && !s.includes("+")) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return null;
  }
}

/** RFC 6749 §2.3.1: Basic with form-urlencoded id and secret. */
function parseBasic(header: string): { id: string; secret: string } | null {
  const match = BASIC.exec(header);
  if (!match) return null;
  let decoded: string;
  try {
    const binary = atob(match[1]!);
    let ascii = true;
    for (let i = 0; i < binary.length && ascii; i++) ascii = binary.charCodeAt(i) < 0x80;
    decoded = ascii ? binary : strictUtf8.decode(Uint8Array.from(binary, (ch) => ch.charCodeAt(0)));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  const id = decodeFormComponent(decoded.slice(0, colon));
  const secret = decodeFormComponent(decoded.slice(colon + 1));
  return id === null || secret === null ? null : { id, secret };
}

/** client_secret_basic and client_secret_post: the secret is an access token of the client_id's account. */
async function bySecret(ctx: Ctx, secret: { id: string; secret: string; method: TokenEndpointAuthMethod; usedBasic: boolean }, purpose: ClientPurpose): Promise<AuthenticatedClient> {
  const { id, method, usedBasic } = secret;
  const token = await resolveCredential(ctx, secret.secret, { purpose, accessToken: true, jwtAudience: false, accountId: id });
  if (!token) throw invalidClient("Client authentication failed", usedBasic);
  // An access token is the root of its lineage: its derived source is never at the chain's bound.
  const client = { clientId: id, account: token.account, method, expiresAt: token.expiresAt, source: token.derivedSource!, tokenId: token.id };
  return assertRegisteredMethod(client, usedBasic);
}

/** Where a private_key_jwt assertion may be addressed: the issuer or either token endpoint URL, or the URL it was sent to. */
function assertionAudiences(ctx: Ctx, requestUrl: string): string[] {
  const issuer = ctx.config.ISSUER;
  const url = new URL(requestUrl);
  return [issuer, `${issuer}/oauth/token`, `${issuer}/api/m2m/oauth/token`, url.origin + url.pathname];
}

/**
 * RFC 7523 private_key_jwt: iss = sub = client_id, aud = us, exp at most
 * MAX_CLIENT_ASSERTION_LIFETIME_SECONDS ahead, and a jti used once (remembered until the assertion expires).
 */
async function byAssertion(ctx: Ctx, form: ClientForm, requestUrl: string): Promise<AuthenticatedClient> {
  const fail = (why: string) => invalidClient(`Client assertion rejected: ${why}`, false);
  const assertion = form.client_assertion!;
  if (form.client_assertion_type !== JWT_BEARER_ASSERTION) throw new OAuthError("invalid_request", `client_assertion_type must be ${JWT_BEARER_ASSERTION}`);
  let claims: ReturnType<typeof decodeJwt>;
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    claims = decodeJwt(assertion);
    header = decodeProtectedHeader(assertion);
  } catch {
    throw fail("not a JWT");
  }
  const clientId = typeof claims.sub === "string" ? claims.sub : "";
  if (form.client_id !== undefined && form.client_id !== clientId) throw fail("client_id does not match the assertion's subject");
  const record = await resolveAccount(ctx, clientId);
  if (!record) throw fail("unknown or inactive client");
  const alg = header.alg === "Ed25519" ? "EdDSA" : header.alg;
  const now = ctx.now();
  const keys = record.keys.filter((k) => k.alg === alg && (header.kid === undefined || k.kid === header.kid) && (k.expiresAt == null || k.expiresAt > now));
  const options = {
    issuer: clientId,
    subject: clientId,
    audience: assertionAudiences(ctx, requestUrl),
    requiredClaims: ["exp", "jti"],
    clockTolerance: CLIENT_CLOCK_SKEW_S,
    currentDate: new Date(now),
  };
  let payload: JWTPayload | undefined;
  let verifiedBy: AccountKey | undefined;
  for (const key of keys) {
    try {
      ({ payload } = await jwtVerify(assertion, await verifyKey(key), { ...options, algorithms: key.alg === "EdDSA" ? ["EdDSA", "Ed25519"] : [key.alg] }));
      verifiedBy = key;
      break;
    } catch {
      continue;
    }
  }
  // Registered keys first; then the account's own JWKS, if it names one (fetched and cached by remote-keys.ts).
  if (!payload && record.jwksUri) {
    let jwks;
    try {
      jwks = await clientJwks(ctx, record.jwksUri, header.kid);
    } catch (err) {
      throw fail(`the client's jwksUri gave no keys (${err instanceof KeysUnavailable ? err.message : "fetch failed"})`);
    }
    try {
      ({ payload } = await jwtVerify(assertion, jwks.resolve, { ...options, algorithms: ["ES256", "RS256", "EdDSA", "Ed25519"] }));
    } catch {
      payload = undefined;
    }
  }
  if (payload) {
    const expMs = payload.exp! * 1000;
    const maxLifetime = ctx.config.MAX_CLIENT_ASSERTION_LIFETIME_SECONDS;
    if (expMs > now + (maxLifetime + CLIENT_CLOCK_SKEW_S) * 1000) {
      throw fail(`exp is more than MAX_CLIENT_ASSERTION_LIFETIME_SECONDS (${maxLifetime} s) ahead: sign assertions that expire sooner`);
    }
    if (typeof payload.jti !== "string" || payload.jti.length > 256) throw fail("jti missing or too long");
    if (payload.iat !== undefined && payload.iat > now / 1000 + CLIENT_CLOCK_SKEW_S) throw fail("iat is in the future");
    // Remembered as long as the assertion could still pass verification (exp plus the skew).
    const fresh = await rememberOnce(ctx, "client-jwt", clientId, payload.jti, expMs + CLIENT_CLOCK_SKEW_S * 1000);
    if (!fresh) throw fail("this assertion was already used");
    return { clientId, account: record.account, method: "private_key_jwt", expiresAt: record.account.expiresAt, source: { ...NO_SOURCE, statusIdx: verifiedBy?.statusIdx ?? null } };
  }
  throw fail("signature, issuer, subject, audience or expiry does not verify against a registered key or the client's jwksUri");
}

/** The client id a request claims (before anything is verified), for counting its failures. */
export function claimedClientId(authorization: string | undefined, form: ClientForm): string | null {
  if (isBasic(authorization)) return parseBasic(authorization)?.id ?? null;
  if (form.client_id) return form.client_id;
  if (!form.client_assertion) return null;
  try {
    const sub = decodeJwt(form.client_assertion).sub;
    return typeof sub === "string" ? sub : null;
  } catch {
    return null;
  }
}

const isBasic = (authorization: string | undefined): authorization is string => authorization !== undefined && /^Basic /i.test(authorization);

/** Whether the request presents client credentials (Basic, client_secret or client_assertion): those are verified. */
export function presentsClientCredentials(authorization: string | undefined, form: ClientForm): boolean {
  return isBasic(authorization) || form.client_secret !== undefined || form.client_assertion !== undefined;
}

/**
 * Authenticates the client of a token, introspection or revocation request by exactly one of
 * client_secret_basic, client_secret_post or private_key_jwt (RFC 6749 §2.3: never two at once).
 * Throws at once when the request is malformed.
 */
export async function authenticateClient(
  ctx: Ctx,
  request: { authorization: string | undefined; form: ClientForm; url: string },
  purpose: ClientPurpose,
): Promise<AuthenticatedClient> {
  const { authorization, form } = request;
  const usedBasic = isBasic(authorization);
  const methods = Number(usedBasic) + Number(form.client_secret !== undefined) + Number(form.client_assertion !== undefined);
  if (methods > 1) throw new OAuthError("invalid_request", "Use exactly one client authentication method");
  if (usedBasic) {
    const basic = parseBasic(authorization!);
    if (!basic) throw invalidClient("Malformed Basic credentials", true);
    if (form.client_id !== undefined && form.client_id !== basic.id) throw new OAuthError("invalid_request", "client_id differs from the Basic credentials");
    return bySecret(ctx, { ...basic, method: "client_secret_basic", usedBasic: true }, purpose);
  }
  if (form.client_secret !== undefined) {
    if (!form.client_id) throw new OAuthError("invalid_request", "client_secret_post needs client_id");
    return bySecret(ctx, { id: form.client_id, secret: form.client_secret, method: "client_secret_post", usedBasic: false }, purpose);
  }
  if (form.client_assertion !== undefined) return assertRegisteredMethod(await byAssertion(ctx, form, request.url), false);
  throw invalidClient("Client authentication is required", true);
}

/** A client registered for one method (platform clients) may use only that one. */
function assertRegisteredMethod(client: AuthenticatedClient, usedBasic: boolean): AuthenticatedClient {
  const method = client.account.tokenEndpointAuthMethod;
  if (method && method !== client.method) throw invalidClient(`This client is registered for ${method}`, usedBasic);
  return client;
}
