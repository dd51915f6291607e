import { eq } from "drizzle-orm";
import { serviceAccounts } from "../../db/schema.ts";
import { auditInsert } from "../audit/audit-log.ts";
import { isUnauthenticated, principalOf, unauthenticated } from "../credentials/bearer.ts";
import { failureKeys, limitFailedAttempts } from "../credentials/failure-limits.ts";
import { resolveCredential } from "../credentials/resolver.ts";
import { DomainError } from "../shared/errors.ts";
import type { Ctx } from "../shared/context.ts";
import type { Principal } from "../shared/principal.ts";
import { mintJwt, revokeJti } from "../signing/jwt.ts";
import { consoleSessionLimits, jwtLifetime } from "../signing/lifetime.ts";
import { isolateState } from "../shared/isolate-state.ts";
import { TtlCache } from "../../lib/ttl-cache.ts";

/** Account names for the page header, per isolate (a rename shows within this long; nothing is decided on them). */
const NAME_TTL_MS = 30_000;
const names = isolateState("console-names", () => ({ cache: new TtlCache<string>(NAME_TTL_MS, 1000) }));

/**
 * Console sessions: a Keyward JWT for the audience `<ISSUER>/console`, minted from the credential
 * signed in with (an access token, or one of our JWTs for the API). The audience keeps the two
 * apart: the management API verifies JWTs for `<ISSUER>` only, the console for its own only. The
 * session carries its credential's lineage, so revoking that credential ends the session too; a
 * session opened with a JWT carries that JWT's scope and org limit.
 */

export const consoleAudience = (ctx: Pick<Ctx, "config">) => `${ctx.config.ISSUER}/console`;

export interface ConsoleSession {
  /** The session JWT (what the cookie holds). */
  jws: string;
  jti: string;
  /** Epoch seconds. */
  exp: number;
  accountId: string;
}

/** Signs in with a credential: a session JWT, or unauthenticated (failures count under the API's limits). */
export async function openConsoleSession(ctx: Ctx, presented: string): Promise<ConsoleSession> {
  const credential = await limitFailedAttempts(ctx, () => failureKeys(ctx, null, "api"), isUnauthenticated, async () => {
    const found = presented ? await resolveCredential(ctx, presented, { purpose: "exchange", accessToken: true, jwtAudience: ctx.config.ISSUER }) : null;
    if (!found) throw unauthenticated("The credential is invalid, expired or revoked");
    return found;
  });
  if (!credential.derivedSource) throw new DomainError("bad_request", "This JWT was exchanged too many times to derive a session: sign in with the access token");
  const ttlSeconds = jwtLifetime({ mode: "clip", limits: consoleSessionLimits(), source: { name: "the credential", expiresAt: credential.expiresAt }, now: ctx.now() });
  const { jws, jti, exp } = await mintJwt(ctx, {
    account: credential.account,
    scope: credential.scopeLimit ?? [],
    audience: consoleAudience(ctx),
    ttlSeconds,
    source: credential.derivedSource,
    orgId: credential.orgLimit ?? null,
  });
  const accountId = credential.account.accountId;
  await auditInsert({ ...ctx, meta: { ...ctx.meta, actorId: accountId } }, {
    action: "console.session.opened",
    orgId: credential.account.orgId,
    targetType: "console_session",
    targetId: jti,
    details: { credential: credential.kind, exp },
  });
  return { jws, jti, exp, accountId };
}

export interface ResumedSession {
  principal: Principal;
  /** The signed-in account's name, for the page header. */
  name: string;
  jti: string;
  exp: number;
}

/** The session a cookie holds, or null when it is invalid, expired, revoked or its account is gone. */
export async function resumeConsoleSession(ctx: Ctx, jws: string): Promise<ResumedSession | null> {
  const credential = await resolveCredential(ctx, jws, { purpose: "act", accessToken: false, jwtAudience: consoleAudience(ctx) });
  const jwt = credential?.jwt;
  if (!credential || !jwt) return null;
  const principal = principalOf(credential);
  // Opened with an access token (no JWT in its lineage): the session acts as that token, unlimited
  // unless the token had its own scopes (then the session's scope is theirs).
  if (!jwt.source_jtis || jwt.source_jtis.length === 0) {
    if (!jwt.scope) principal.scopeLimit = undefined;
    principal.orgLimit = undefined;
  }
  let name = names.cache.get(principal.accountId, ctx.now());
  if (name === undefined) {
    const row = await ctx.db.select({ name: serviceAccounts.name }).from(serviceAccounts).where(eq(serviceAccounts.id, principal.accountId)).get();
    if (!row) return null;
    names.cache.set(principal.accountId, (name = row.name), ctx.now());
  }
  return { principal, name, jti: jwt.jti, exp: jwt.exp };
}

/** Signs out: the session's jti is revoked until it would have expired. */
export async function closeConsoleSession(ctx: Ctx, session: { principal: Principal; jti: string; exp: number }): Promise<void> {
  await revokeJti(ctx, session.jti, session.exp);
  await auditInsert(ctx, { action: "console.session.closed", orgId: session.principal.orgId, targetType: "console_session", targetId: session.jti, details: {} });
}
