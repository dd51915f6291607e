import { Hono, type Context } from "hono";
import type { Ctx } from "../domain/shared/context.ts";
import { resolveCredential } from "../domain/credentials/resolver.ts";
import type { IssuedJwt } from "../domain/issuance/exchange.ts";
import { failureKeys, limitFailedAttempts } from "../domain/credentials/failure-limits.ts";
import { INSPECTED, introspection, revokeInspected, revokeSelf } from "../domain/credentials/inspection.ts";
import type { AppEnv } from "../http/app-env.ts";
import { mediaType } from "../lib/http.ts";
import { limitBody } from "../http/middleware/request.ts";
import { ctxOf } from "../http/routes/common.ts";
import { authenticateClient, claimedClientId, presentsClientCredentials, type AuthenticatedClient, type ClientForm, type ClientPurpose } from "./client-auth.ts";
import { OAuthError, onOAuthError } from "./errors.ts";
import { asList, CLIENT_FIELDS, formOf } from "./form.ts";
import type { Grant } from "./grants.ts";
import { grantFor, TOKEN_FORM } from "./grants/index.ts";
import { currentNonce, verifyDpopProof, type VerifiedProof } from "../domain/credentials/dpop.ts";

const tokenQueryForm = { token: "one", token_type_hint: "one", ...CLIENT_FIELDS } as const;

const noStore = { "cache-control": "no-store", pragma: "no-cache" };

/** The OAuth endpoints take form bodies only. */
function assertFormBody(contentType: string | null | undefined): void {
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

/** Client authentication, its failures counted under the claimed client id and the IP together (429 once over the limit). */
function authenticated(ctx: Ctx, request: Request, form: ClientForm, purpose: ClientPurpose): Promise<AuthenticatedClient> {
  const authorization = request.headers.get("authorization") ?? undefined;
  const keys = () => failureKeys(ctx, claimedClientId(authorization, form), "token");
  return limitFailedAttempts(ctx, keys, isInvalidClient, () => authenticateClient(ctx, { authorization, form, url: request.url }, purpose));
}

/** The client of a grant: authenticated when the grant requires it, or when client credentials were sent at all. */
async function clientFor(ctx: Ctx, request: Request, form: ClientForm, grant: Grant): Promise<AuthenticatedClient | null> {
  const presented = presentsClientCredentials(request.headers.get("authorization") ?? undefined, form);
  return grant.clientAuthentication === "required" || presented ? authenticated(ctx, request, form, "exchange") : null;
}

/** RFC 6749 5.1: the token response's body (RFC 9449 5: `token_type: DPoP` for a bound JWT). */
function tokenResponse(issued: IssuedJwt, grant: Grant, proof: VerifiedProof | null) {
  return {
    access_token: issued.jws,
    token_type: proof ? "DPoP" : "Bearer",
    expires_in: issued.expiresIn,
    scope: issued.scope.join(" "),
    ...(grant.issuedTokenType ? { issued_token_type: grant.issuedTokenType } : {}),
  };
}

/** The token endpoint (RFC 6749 section 3.2): dispatch over the grant registry. */
async function tokenEndpoint(ctx: Ctx, request: Request) {
  const form = formOf(await request.arrayBuffer(), TOKEN_FORM);
  const grant = grantFor(form.grant_type);
  // RFC 9449 5: the proof is checked before the client authenticates, so that a nonce round
  // trip does not spend a client assertion's jti.
  const dpop = request.headers.get("dpop");
  const proof = dpop === null ? null : await verifyDpopProof(ctx, dpop, { method: request.method, url: request.url });
  const client = await clientFor(ctx, request, form, grant);
  const audiences = [...asList(form.resource), ...asList(form.audience)];
  const keys = () => failureKeys(ctx, client?.clientId ?? null, "token");
  const issued = await limitFailedAttempts(ctx, keys, isInvalidGrant, () => grant.handle(ctx, { form, client, audiences, proof }));
  return tokenResponse(issued, grant, proof);
}

const token = new Hono<AppEnv>().post("/", requireForm, async (c) => {
  const ctx = ctxOf(c);
  const body = await tokenEndpoint(ctx, c.req.raw);
  // RFC 9449 8.2: a fresh nonce for the client's next proof.
  const nonce: Record<string, string> = body.token_type === "DPoP" && ctx.config.DPOP_REQUIRE_NONCE ? { "dpop-nonce": await currentNonce(ctx) } : {};
  return c.json(body, 200, { ...noStore, ...nonce });
});

/** RFC 7662: `{active: false}` for anything not active or not the client's to see, and nothing else about it. */
const introspect = new Hono<AppEnv>().post("/", requireForm, async (c) => {
  const body = formOf(await c.req.raw.arrayBuffer(), tokenQueryForm);
  const ctx = ctxOf(c);
  const client = await authenticated(ctx, c.req.raw, body, "act");
  const resolved = await resolveCredential(ctx, body.token ?? "", INSPECTED);
  return c.json(introspection(ctx, client.account, resolved), 200, noStore);
});

/**
 * RFC 7009: 200 for unknown or dead tokens; a client may revoke its own tokens (the platform root
 * anyone's). Without client credentials the token authenticates itself: whoever holds it may
 * revoke it (docs/leaked-tokens.md), and the answer is the same 200 whatever it was.
 */
const revoke = new Hono<AppEnv>().post("/", requireForm, async (c) => {
  const body = formOf(await c.req.raw.arrayBuffer(), tokenQueryForm);
  if (!presentsClientCredentials(c.req.header("authorization"), body)) {
    await revokeSelf(ctxOf(c), body.token ?? "", body.client_id);
    return c.body(null, 200, noStore);
  }
  const client = await authenticated(ctxOf(c), c.req.raw, body, "act");
  const ctx = ctxOf(c, client.clientId);
  await revokeInspected(ctx, client.account, await resolveCredential(ctx, body.token ?? "", INSPECTED));
  return c.body(null, 200, noStore);
});

/** The OAuth 2.0 endpoints, with their own RFC 6749 error handling. */
export const oauthRoutes = new Hono<AppEnv>().route("/token", token).route("/introspect", introspect).route("/revoke", revoke);
oauthRoutes.onError(onOAuthError);
export const m2mRoutes = new Hono<AppEnv>().route("/token", token);
m2mRoutes.onError(onOAuthError);
