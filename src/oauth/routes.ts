import { Hono, type Context } from "hono";
import { accountObject } from "../domain/account-do.ts";
import { auditInsert } from "../domain/audit.ts";
import { liveAccountRecord, verifyAccessToken } from "../domain/authn.ts";
import { verifyJwt, revokeJti } from "../domain/jwt.ts";
import type { Ctx } from "../domain/context.ts";
import { credentialExpiry } from "../domain/kv-records.ts";
import { isPlatformRoot } from "../domain/permissions.ts";
import type { AppEnv } from "../env.ts";
import { limitBody } from "../middleware/request.ts";
import { mediaType, withSecurityHeaders } from "../lib/http.ts";
import { eachFormPair } from "../lib/form.ts";
import { andThen, type MaybePromise } from "../lib/maybe-promise.ts";
import { framed } from "../lib/text.ts";
import { ctxOf } from "../routes/common.ts";
import { failureKeys, guarded } from "../domain/rate-limit.ts";
import { authenticateClient, claimedClientId, type AuthenticatedClient, type ClientForm } from "./client-auth.ts";
import { OAuthError, onOAuthError } from "./errors.ts";
import type { IssuedJwt } from "../domain/exchange.ts";
import { ACCESS_TOKEN_TYPE, clientCredentials, TOKEN_EXCHANGE_GRANT, tokenExchange } from "./grants.ts";

/**
 * The parameters each form takes: `one` at most once (RFC 6749 §3.2), at most 8,192 characters;
 * `many` (RFC 8707 `resource`, `audience`) up to 10 values of at most 2,048. Others are ignored.
 */
type FormSpec = Record<string, "one" | "many">;
type FormOf<S extends FormSpec> = { [K in keyof S]?: S[K] extends "many" ? string | string[] : string };

const clientFields = { client_id: "one", client_secret: "one", client_assertion: "one", client_assertion_type: "one" } as const;
const tokenForm = {
  grant_type: "one",
  scope: "one",
  resource: "many",
  audience: "many",
  subject_token: "one",
  subject_token_type: "one",
  requested_token_type: "one",
  org: "one",
  ...clientFields,
} as const;
const tokenQueryForm = { token: "one", token_type_hint: "one", ...clientFields } as const;

const MAX_PARAM = 8192;
const MAX_REPEATED_PARAM = 2048;
const MAX_REPEATS = 10;

const utf8 = new TextDecoder();

/**
 * The parameters of a form body (its bytes); every problem is an RFC 6749 invalid_request. Parsed
 * by hand: FormData costs a Response and a multipart-capable parser per request, and a zod object
 * parse runs its interpreted path in workerd (no code generation there), a few per cent of a request.
 * Bytes, not .text(): workerd warns on every text() of a form body.
 */
function formOf<S extends FormSpec>(body: ArrayBuffer, spec: S): FormOf<S> {
  // A plain object: only the spec's names are stored (never `__proto__`), and a null-prototype
  // object is a hash table, the largest allocation of a token request.
  const fields: Record<string, string | string[]> = {};
  eachFormPair(utf8.decode(body), (key, value) => {
    const kind = Object.hasOwn(spec, key) ? spec[key] : undefined;
    if (kind === undefined) return;
    const prev = fields[key];
    if (kind === "one") {
      if (prev !== undefined) throw new OAuthError("invalid_request", "A parameter is repeated or not a string");
      if (value.length > MAX_PARAM) throw new OAuthError("invalid_request", "Malformed parameters");
      fields[key] = value;
    } else {
      if (value.length > MAX_REPEATED_PARAM) throw new OAuthError("invalid_request", "Malformed parameters");
      if (prev === undefined) fields[key] = value;
      else if (!Array.isArray(prev)) fields[key] = [prev, value];
      else if (prev.length < MAX_REPEATS) prev.push(value);
      else throw new OAuthError("invalid_request", "Malformed parameters");
    }
  });
  return fields as FormOf<S>;
}

const asList = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const NO_AUDIENCES: string[] = [];

const noStore = { "cache-control": "no-store", pragma: "no-cache" };

/** The OAuth endpoints take form bodies only. */
export function assertFormBody(contentType: string | null | undefined): void {
  if (mediaType(contentType) !== "application/x-www-form-urlencoded") throw new OAuthError("invalid_request", "Send the parameters as application/x-www-form-urlencoded");
}

/** Form bodies only, at most MAX_BODY_BYTES. */
const requireForm = async (c: Context<AppEnv>, next: () => Promise<void>) => {
  assertFormBody(c.req.header("content-type"));
  await limitBody(c, next);
};

const isFailure = (code: string) => (err: unknown) => err instanceof OAuthError && err.error === code;
const isInvalidClient = isFailure("invalid_client");
const isInvalidGrant = isFailure("invalid_grant");

/** Client authentication, with its failures counted per IP and client id (429 once over the limit). */
function authenticated(ctx: Ctx, request: Request, body: ClientForm): MaybePromise<AuthenticatedClient> {
  const authorization = request.headers.get("authorization") ?? undefined;
  const keys = () => failureKeys(ctx, claimedClientId(authorization, body));
  return guarded(ctx, keys, isInvalidClient, () => authenticateClient(ctx, authorization, body, request.url));
}

/** RFC 6749 §4.4 client_credentials and RFC 8693 token exchange. Served by the hot path (src/hot-path.ts), and by the app with CORS on. */
export async function tokenEndpoint(request: Request, ctx: Ctx, requestId: string): Promise<Response> {
  const body = formOf(await request.arrayBuffer(), tokenForm);
  const audiences = body.resource === undefined && body.audience === undefined ? NO_AUDIENCES : [...asList(body.resource), ...asList(body.audience)];
  let pending: MaybePromise<IssuedJwt>;
  if (body.grant_type === "client_credentials") {
    pending = andThen(authenticated(ctx, request, body), (client) => clientCredentials(ctx, client, body.scope, audiences, body.org));
  } else if (body.grant_type === TOKEN_EXCHANGE_GRANT) {
    pending = guarded(ctx, () => failureKeys(ctx), isInvalidGrant, () => tokenExchange(ctx, body, audiences));
  } else if (body.grant_type === undefined) {
    throw new OAuthError("invalid_request", "grant_type is required");
  } else {
    throw new OAuthError("unsupported_grant_type", "Supported: client_credentials and token-exchange (RFC 8693)");
  }
  const issued = await pending;
  // {"access_token":"<JWT>","token_type":...}: the JWT's bytes as they are (base64url and dots:
  // nothing to escape), the rest written around them (the scope escaped by JSON.stringify).
  const issuedType = body.grant_type === TOKEN_EXCHANGE_GRANT ? `,"issued_token_type":"${ACCESS_TOKEN_TYPE}"` : "";
  const rest = `","token_type":"Bearer","expires_in":${issued.expiresIn},"scope":${JSON.stringify(issued.scope.join(" "))}${issuedType}}`;
  const json = framed('{"access_token":"', issued.jws, rest);
  return new Response(json, { status: 200, headers: withSecurityHeaders(requestId, { "content-type": "application/json", "cache-control": "no-store", pragma: "no-cache" }) });
}

const token = new Hono<AppEnv>().post("/", requireForm, (c) => tokenEndpoint(c.req.raw, ctxOf(c), c.get("requestId")));

/** RFC 7662: `{active: false}` for anything not active, and nothing else about it. */
const introspect = new Hono<AppEnv>().post("/", requireForm, async (c) => {
  const body = formOf(await c.req.raw.arrayBuffer(), tokenQueryForm);
  const ctx = ctxOf(c);
  await authenticated(ctx, c.req.raw, body);
  const value = body.token ?? "";
  const now = ctx.now();
  const record = value.startsWith("sat_") ? await verifyAccessToken(ctx.env, value, now) : null;
  if (record) {
    const exp = credentialExpiry(record);
    return c.json(
      {
        active: true,
        token_type: "access_token",
        client_id: record.account.accountId,
        sub: record.account.accountId,
        scope: record.account.scopes.join(" "),
        iss: ctx.config.ISSUER,
        ...(exp !== null ? { exp: Math.floor(exp / 1000) } : {}),
        ...(record.account.orgId ? { org_id: record.account.orgId } : {}),
      },
      200,
      noStore,
    );
  }
  const jwt = value.startsWith("sat_") ? null : await verifyJwt(ctx, value, null);
  if (jwt && (await liveAccountRecord(ctx.env, jwt.sub, now))) {
    const { sub, client_id, scope, exp, iat, iss, aud, jti, org_id } = jwt;
    return c.json({ active: true, token_type: "Bearer", sub, client_id, scope, exp, iat, iss, aud, jti, ...(org_id ? { org_id } : {}) }, 200, noStore);
  }
  return c.json({ active: false }, 200, noStore);
});

/**
 * RFC 7009: 200 for unknown or dead tokens. A client may revoke its own tokens (the platform root
 * any): an access token through its account's Durable Object, a JWT by putting its jti on the list.
 */
const revoke = new Hono<AppEnv>().post("/", requireForm, async (c) => {
  const body = formOf(await c.req.raw.arrayBuffer(), tokenQueryForm);
  const client = await authenticated(ctxOf(c), c.req.raw, body);
  const ctx = ctxOf(c, client.clientId);
  const value = body.token ?? "";
  const mayRevoke = (owner: string) => {
    const root = isPlatformRoot({ accountId: client.clientId, orgId: null, platformPermissions: client.account.platformPermissions, credential: { type: "jwt", jti: "" } });
    if (owner !== client.clientId && !root) throw new OAuthError("unauthorized_client", "A client may revoke only its own tokens");
  };
  const record = value.startsWith("sat_") ? await verifyAccessToken(ctx.env, value, ctx.now()) : null;
  if (record) {
    mayRevoke(record.account.accountId);
    await accountObject(ctx, record.account.accountId).revokeToken(record.account.accountId, record.tokenId, ctx.meta);
  } else if (!value.startsWith("sat_")) {
    const jwt = await verifyJwt(ctx, value, null);
    if (jwt) {
      mayRevoke(jwt.sub);
      await revokeJti(ctx, jwt.jti, jwt.exp);
      await auditInsert(ctx, { action: "jwt.revoked", orgId: jwt.org_id ?? null, targetType: "jwt", targetId: jwt.jti, details: { accountId: jwt.sub, exp: jwt.exp } });
    }
  }
  return c.body(null, 200, noStore);
});

/** The OAuth 2.0 endpoints, with their own RFC 6749 error handling. */
export const oauthRoutes = new Hono<AppEnv>().route("/token", token).route("/introspect", introspect).route("/revoke", revoke);
oauthRoutes.onError(onOAuthError);
export const m2mRoutes = new Hono<AppEnv>().route("/token", token);
m2mRoutes.onError(onOAuthError);
