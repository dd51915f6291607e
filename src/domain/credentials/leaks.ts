import { inArray, or } from "drizzle-orm";
import { accessTokens, type AccessToken } from "../../db/schema.ts";
import { chunks, SQL_IN_CHUNK } from "../../lib/chunks.ts";
import { auditInsert } from "../audit/audit-log.ts";
import type { Ctx } from "../shared/context.ts";
import { DomainError } from "../shared/errors.ts";
import { revokeJti } from "../signing/jwt.ts";
import { hashToken, isWellFormedAccessToken, TOKEN_PREFIX } from "./access-token.ts";
import { accountObject } from "./account-object.ts";
import { isTokenLive, type LeakReport } from "./plans.ts";
import { resolveCredential } from "./resolver.ts";

/**
 * Leaked-token response (docs/leaked-tokens.md): a secret someone found in public is revoked at
 * once, through its account's Durable Object, with an `access_token.leaked` event (a webhook
 * event) written in the same batch as the revocation. Two reporters: GitHub's secret scanning
 * partner programme (signed batches, answered with a label per token) and anyone at all through
 * POST /api/v1/leaked-tokens (answered the same whatever was reported).
 */

export type LeakLabel = "true_positive" | "false_positive";

export interface ReportedSecret {
  token: string;
  source: string | null;
  url: string | null;
}

/** How long a reporter's free text (source, url) is kept in the audit event. */
const MAX_FACT_LENGTH = 512;
const fact = (value: string | null) => (value === null ? null : value.slice(0, MAX_FACT_LENGTH));

/** A token of ours whose current or previous secret has this hash, with whether that secret still authenticates. */
interface Match {
  token: AccessToken;
  live: boolean;
}

/**
 * The tokens whose current or previous (regenerate grace) secret has one of the hashes, from D1,
 * the record of every token we issued, revoked and expired ones included: one query per 45 hashes.
 */
async function tokensBySecretHash(ctx: Ctx, hashes: string[]): Promise<Map<string, Match>> {
  const found = new Map<string, Match>();
  const now = ctx.now();
  for (const part of chunks([...new Set(hashes)], SQL_IN_CHUNK / 2)) {
    const rows = await ctx.db
      .select()
      .from(accessTokens)
      .where(or(inArray(accessTokens.secretHash, part), inArray(accessTokens.previousSecretHash, part)));
    const asked = new Set(part);
    for (const token of rows) {
      if (asked.has(token.secretHash)) found.set(token.secretHash, { token, live: isTokenLive(token, now) });
      const previous = token.previousSecretHash;
      if (previous && asked.has(previous)) {
        found.set(previous, { token, live: isTokenLive(token, now) && (token.previousSecretExpiresAt ?? 0) > now });
      }
    }
  }
  return found;
}

/** Revokes a token reported leaked (idempotent: a token revoked meanwhile gets no second event). */
async function revokeLeaked(ctx: Ctx, token: AccessToken, leak: LeakReport): Promise<void> {
  await accountObject(ctx, token.accountId).revokeToken(token.accountId, token.id, ctx.meta, "leaked", leak);
}

/**
 * A batch of secrets reported by the secret scanning programme. A secret whose checksum fails is
 * not ours (false_positive) and costs no lookup; the rest cost one D1 query per 45. A secret we
 * issued is a true_positive, whether it still worked or not (revoked, expired, its account gone
 * from the token's records: ours all the same); one that still worked is revoked now. JWTs are
 * never reported by the programme's pattern and are false_positive here.
 */
export async function handleScannedSecrets(ctx: Ctx, items: ReportedSecret[], reporter: LeakReport["reporter"]): Promise<LeakLabel[]> {
  const hashes = items.map((item) => (isWellFormedAccessToken(item.token) ? hashToken(item.token) : null));
  const found = await tokensBySecretHash(ctx, hashes.filter((h): h is string => h !== null));
  const revoking = new Map<string, Promise<void>>();
  items.forEach((item, i) => {
    const match = hashes[i] ? found.get(hashes[i]!) : undefined;
    if (match?.live && !revoking.has(match.token.id)) {
      revoking.set(match.token.id, revokeLeaked(ctx, match.token, { reporter, source: fact(item.source), url: fact(item.url) }));
    }
  });
  await Promise.all(revoking.values());
  return hashes.map((h) => (h !== null && found.has(h) ? "true_positive" : "false_positive"));
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * A report from anyone (POST /api/v1/leaked-tokens): revokes what it names if it is alive, and
 * says nothing back. Whatever was sent, an access-token-like string costs its hash and one D1
 * query (no checksum shortcut, so a garbage string takes as long as a real one); only a secret
 * that works goes on to be revoked, which its holder could have learnt by using it anyway. Our
 * own JWTs are revoked by their jti (the `jwt.revoked` event, with the report's facts).
 */
export async function reportLeakedToken(ctx: Ctx, presented: string, url: string | null): Promise<void> {
  if (!presented.startsWith(TOKEN_PREFIX) && JWT_SHAPE.test(presented)) {
    const resolved = await resolveCredential(ctx, presented, { purpose: "inspect", accessToken: false, jwtAudience: null });
    const jwt = resolved?.jwt;
    if (!resolved || !jwt) return;
    await revokeJti(ctx, jwt.jti, jwt.exp);
    await auditInsert(ctx, {
      action: "jwt.revoked",
      orgId: jwt.org_id ?? resolved.account.orgId,
      targetType: "jwt",
      targetId: jwt.jti,
      details: { accountId: resolved.account.accountId, exp: jwt.exp, reason: "leaked", reporter: "report", url: fact(url) },
    });
    return;
  }
  const hash = hashToken(presented);
  const match = (await tokensBySecretHash(ctx, [hash])).get(hash);
  if (match?.live && isWellFormedAccessToken(presented)) await revokeLeaked(ctx, match.token, { reporter: "report", source: null, url: fact(url) });
}

/** How long a reporter over its LEAK_REPORTS limit is told to wait (the binding's period). */
const REPORT_RETRY_SECONDS = 60;

/** Every report counts per source IP (LEAK_REPORTS); over the limit, 429. A missing or failing limiter limits nothing. */
export async function assertReportAllowed(ctx: Ctx): Promise<void> {
  const limiter = ctx.env.LEAK_REPORTS;
  if (!limiter) return;
  const outcome = await limiter.limit({ key: `leak:ip:${ctx.meta.ip ?? "-"}` }).catch(() => ({ success: true }));
  if (!outcome.success) throw new DomainError("rate_limited", "Too many reports from this address; retry later", { retryAfterSeconds: REPORT_RETRY_SECONDS });
}
