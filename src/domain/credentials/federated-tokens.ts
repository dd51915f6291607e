import { getTableName } from "drizzle-orm";
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";
import { auditEvents } from "../../db/schema.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import { auditInsert, auditRow } from "../audit/audit-log.ts";
import type { Ctx } from "../shared/context.ts";
import { DomainError } from "../shared/errors.ts";
import { isolateState } from "../shared/isolate-state.ts";
import { FOREIGN_JWT_CLOCK_SKEW_SECONDS } from "../signing/jwt.ts";
import { rememberOnce } from "./replay.ts";
import { policyMatches } from "./claim-conditions.ts";
import { policiesForIssuer, type TrustPolicy } from "./federated-credentials.ts";
import { issuerKeys } from "./issuer-keys.ts";
import { cachedTrustPolicies } from "./trust-policy-cache.ts";
import { recallVerified, rememberVerified } from "./verified-tokens.ts";

/**
 * Verification of an external OIDC token (a GitHub Actions ID token, a Kubernetes projected
 * service-account token, any issuer in FEDERATION_ALLOWED_ISSUERS) against the trust policies
 * naming its issuer. In order, cheapest first, and nothing fetched for a token no policy could take:
 *
 *  1. a compact JWS of at most MAX_TOKEN_BYTES, alg RS256, ES256 or EdDSA (never `none`, never
 *     HS*: an HMAC "signed" with an issuer's public key must not verify), an `iss` in the allow-list
 *     with at least one enabled policy;
 *  2. the signature against the issuer's keys (issuer-keys.ts), `iss` exact, `exp` required, and
 *     `exp`/`nbf`/`iat` with FEDERATION_CLOCK_SKEW_S of skew;
 *  3. each policy: `aud` one of its audiences (the Keyward issuer by default), the token's age
 *     (now - iat) within its maxTokenAgeSeconds, then its subject and claim conditions;
 *  4. among the policies that hold: those of the account `client_id` names, if one was sent; they
 *     must all be of one account ("several accounts match; send client_id" otherwise);
 *  5. a `jti`, where present, accepted once (until the token's exp plus the skew), unless the
 *     chosen policy has singleUse false: then the token may be exchanged again while it lives.
 * The account's being alive and its network bounds are the credential resolver's to check.
 */

/** External tokens are signed on their issuer's clock (a CI runner's, a cluster's): the skew of client assertions. */
export const FEDERATION_CLOCK_SKEW_S = FOREIGN_JWT_CLOCK_SKEW_SECONDS;
export const MAX_TOKEN_BYTES = 16 * 1024;
const ALGORITHMS = ["RS256", "ES256", "EdDSA", "Ed25519"];
const cachedPolicies = (ctx: Ctx, issuer: string) => cachedTrustPolicies(issuer, ctx.now(), () => policiesForIssuer(ctx.env, issuer));

export interface FederatedMatch {
  policy: TrustPolicy;
  /** The external token's verified claims. */
  claims: JWTPayload & { iss: string; exp: number };
  /** The external token's subject (empty when it has none). */
  sub: string;
}

/** Why a token was refused: `reason` for the audit log, never for the caller. */
export interface FederatedRefusal {
  reason: string;
  iss?: string | undefined;
  sub?: string | undefined;
  /** The accounts whose policies the token was tried against (the orgs that learn of the refusal). */
  candidates: TrustPolicy[];
  /** Why each policy did not take the token, by policy id (each org's event names only its own policies). */
  policyReasons?: Record<string, string> | undefined;
}

export type FederatedOutcome = { ok: true; match: FederatedMatch } | ({ ok: false } & FederatedRefusal);

const refuseWith = (reason: string, more: Partial<FederatedRefusal> = {}): { ok: false } & FederatedRefusal => ({ ok: false, reason, candidates: [], ...more });
const refuse = (reason: string, more: Partial<FederatedRefusal> = {}): FederatedOutcome => refuseWith(reason, more);

/** Whether a token's unverified `iss` is another issuer's than ours (so the federation path, not our own JWTs', takes it). */
export function isForeignToken(token: string, ownIssuer: string): boolean {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === "string" && iss !== ownIssuer;
  } catch {
    return false;
  }
}

function verifyFailure(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim ${err.claim} invalid (${err.reason})`;
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "no key of the issuer matches the token's kid and alg";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "signature does not verify";
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "algorithm not allowed";
  if (err instanceof joseErrors.JOSEError) return `not verifiable (${err.code})`;
  return "not verifiable";
}

/** True when the token's signature was never verified (no key, a bad signature, an algorithm refused). */
function unsignedFailure(err: unknown): boolean {
  return !(err instanceof DomainError || err instanceof joseErrors.JWTExpired || err instanceof joseErrors.JWTClaimValidationFailed);
}

/** Why a policy does not take the verified token, or null when it does. */
function policyRefusal(ctx: Ctx, policy: TrustPolicy, claims: JWTPayload): string | null {
  const audiences = policy.audiences.length > 0 ? policy.audiences : [ctx.config.ISSUER];
  const aud = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!aud.some((a) => audiences.includes(a))) return "aud is not one of the policy's audiences";
  if (policy.maxTokenAgeSeconds !== null) {
    if (typeof claims.iat !== "number") return "iat missing (the policy bounds the token's age)";
    if (ctx.now() / 1000 - claims.iat > policy.maxTokenAgeSeconds + FEDERATION_CLOCK_SKEW_S) return "token older than the policy's maxTokenAgeSeconds";
  }
  const matched = policyMatches(policy, claims as Record<string, unknown>);
  return matched.ok ? null : matched.reason;
}

/** Steps 1 and 2: the token's verified claims and the policies naming its issuer, or a refusal. */
async function verifiedToken(ctx: Ctx, token: string): Promise<{ claims: FederatedMatch["claims"]; candidates: TrustPolicy[] } | ({ ok: false } & FederatedRefusal)> {
  const hash = sha256Hex(token);
  const known = recallVerified(hash, ctx.now(), FEDERATION_CLOCK_SKEW_S);
  if (known) {
    const candidates = ctx.config.FEDERATION_ALLOWED_ISSUERS.includes(known.iss) ? await cachedPolicies(ctx, known.iss) : [];
    if (candidates.length > 0) return { claims: known, candidates };
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverified: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch {
    return refuseWith("not a JWT");
  }
  const iss = typeof unverified.iss === "string" ? unverified.iss : undefined;
  const claimedSub = typeof unverified.sub === "string" ? unverified.sub.slice(0, 256) : undefined;
  if (!iss) return refuseWith("iss missing");
  const who = { iss: iss.slice(0, 256), sub: claimedSub };
  if (!ALGORITHMS.includes(header.alg ?? "")) return refuseWith(`alg ${String(header.alg).slice(0, 16)} not accepted`, who);
  if (!ctx.config.FEDERATION_ALLOWED_ISSUERS.includes(iss)) return refuseWith("issuer not allowed", who);
  const candidates = await cachedPolicies(ctx, iss);
  if (candidates.length === 0) return refuseWith("no trust policy names this issuer", who);

  let claims: JWTPayload;
  try {
    const keys = await issuerKeys(ctx, iss, header.kid);
    ({ payload: claims } = await jwtVerify(token, keys.resolve, {
      algorithms: ALGORITHMS,
      issuer: iss,
      requiredClaims: ["exp"],
      clockTolerance: FEDERATION_CLOCK_SKEW_S,
      currentDate: new Date(ctx.now()),
    }));
  } catch (err) {
    const reason = err instanceof DomainError ? err.detail : verifyFailure(err);
    // Claims of a token whose signature did not verify are anyone's to write: such a refusal goes
    // to the platform's log on the issuer, not into the logs of every org trusting that issuer.
    return refuseWith(reason, unsignedFailure(err) ? who : { ...who, candidates });
  }
  if (typeof claims.iat === "number" && claims.iat > ctx.now() / 1000 + FEDERATION_CLOCK_SKEW_S) return refuseWith("iat is in the future", { ...who, candidates });
  const verifiedClaims = claims as FederatedMatch["claims"];
  rememberVerified(hash, verifiedClaims, ctx.now());
  return { claims: verifiedClaims, candidates };
}

/**
 * Verifies an external token against the trust policies of its issuer (the steps above).
 * `clientId`, when given, names the account the caller wants. Never throws for a bad token.
 */
export async function verifyFederatedToken(ctx: Ctx, token: string, clientId?: string): Promise<FederatedOutcome> {
  if (token.length > MAX_TOKEN_BYTES) return refuse("token too large");
  const verified = await verifiedToken(ctx, token);
  if ("reason" in verified) return verified;
  const { claims, candidates } = verified;
  const who = { iss: claims.iss.slice(0, 256), sub: typeof claims.sub === "string" ? claims.sub.slice(0, 256) : undefined };

  const policyReasons: Record<string, string> = {};
  const holding = candidates.filter((policy) => {
    const why = policyRefusal(ctx, policy, claims);
    if (why) policyReasons[policy.id] = why;
    return why === null;
  });
  const wanted = clientId === undefined ? holding : holding.filter((p) => p.serviceAccountId === clientId);
  if (wanted.length === 0) {
    const reason = holding.length > 0 ? "no policy of the account client_id names holds" : "no policy holds";
    return refuse(reason, { ...who, candidates, policyReasons });
  }
  if (new Set(wanted.map((p) => p.serviceAccountId)).size > 1) return refuse("several accounts match; send client_id", { ...who, candidates: wanted });
  const policy = [...wanted].sort((a, b) => (a.id < b.id ? -1 : 1))[0]!;

  if (claims.jti !== undefined) {
    if (typeof claims.jti !== "string" || claims.jti.length > 256) return refuse("jti malformed", { ...who, candidates: [policy] });
    if (policy.singleUse) {
      const fresh = await rememberOnce(ctx, "federation", claims.iss, claims.jti, claims.exp! * 1000 + FEDERATION_CLOCK_SKEW_S * 1000);
      if (!fresh) return refuse("jti already used", { ...who, candidates: [policy] });
    }
  }
  return { ok: true, match: { policy, claims: claims as FederatedMatch["claims"], sub: typeof claims.sub === "string" ? claims.sub : "" } };
}

/**
 * Audits a refused external token as `credential.federation_refused`, off the response path:
 * one event per account whose policies were tried (at most 10), in that account's org, or one
 * platform-level event when no policy was tried.
 */
export function auditFederationRefused(ctx: Ctx, refusal: FederatedRefusal): void {
  const base = { iss: refusal.iss ?? null, sub: refusal.sub ?? null };
  const byAccount = new Map<string, TrustPolicy[]>();
  for (const p of refusal.candidates) byAccount.set(p.serviceAccountId, [...(byAccount.get(p.serviceAccountId) ?? []), p]);
  /** The refusal as one org reads it: the reasons of its own account's policies, never another org's. */
  const reasonFor = (own: TrustPolicy[]) => {
    const why = own.filter((p) => refusal.policyReasons?.[p.id]).map((p) => `${p.id}: ${refusal.policyReasons![p.id]}`);
    return (why.length > 0 ? `${refusal.reason} (${why.join("; ")})` : refusal.reason).slice(0, 1000);
  };
  const events =
    byAccount.size === 0
      ? [auditInsert(ctx, { action: "credential.federation_refused", orgId: null, targetType: "issuer", targetId: (refusal.iss ?? "unknown").slice(0, 256), details: { ...base, reason: refusal.reason } })]
      : [...byAccount.values()].slice(0, 10).map((own) =>
          auditInsert(ctx, {
            action: "credential.federation_refused",
            orgId: own[0]!.orgId,
            targetType: "service_account",
            targetId: own[0]!.serviceAccountId,
            details: { ...base, reason: reasonFor(own) },
          }),
        );
  ctx.waitUntil(Promise.all(events).then(() => undefined, () => undefined));
}

/**
 * Successes are audited without a D1 write per token: each isolate buffers them and writes them
 * in one D1 batch at most SUCCESS_FLUSH_MS after the first (a timer kept alive by the
 * request's waitUntil), or at once when SUCCESS_BATCH are waiting. Refusals are written one by one
 * (the failure limiters bound how many there are).
 */
const SUCCESS_FLUSH_MS = 1000;
const SUCCESS_BATCH = 100;
const INSERT_AUDIT_ROW = `INSERT INTO ${getTableName(auditEvents)} (${[
  auditEvents.id,
  auditEvents.orgId,
  auditEvents.actorId,
  auditEvents.action,
  auditEvents.targetType,
  auditEvents.targetId,
  auditEvents.requestId,
  auditEvents.ip,
  auditEvents.userAgent,
  auditEvents.details,
  auditEvents.createdAt,
]
  .map((c) => c.name)
  .join(", ")}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`;
const successes = isolateState("federated-audit", () => ({ rows: [] as ReturnType<typeof auditRow>[], timer: false }));

function flushSuccesses(ctx: Ctx): Promise<void> {
  const rows = successes.rows.splice(0);
  successes.timer = false;
  if (rows.length === 0) return Promise.resolve();
  // One batch (one round trip) of single-row inserts (D1 bounds the parameters of one statement),
  // prepared by hand: building a query per row through the ORM cost the isolate more than the grant.
  const insert = ctx.env.DB.prepare(INSERT_AUDIT_ROW);
  const statements = rows.map((r) =>
    insert.bind(r.id, r.orgId, r.actorId, r.action, r.targetType, r.targetId, r.requestId, r.ip, r.userAgent, JSON.stringify(r.details), r.createdAt),
  );
  return ctx.env.DB.batch(statements)
    .then(
      () => undefined,
      (err) => console.error(JSON.stringify({ level: "warn", event: "federated_audit_flush_failed", error: String(err) })),
    );
}

/** Audits a JWT issued for an external token as `credential.federated` (in the account's org), buffered as above. */
export function auditFederated(ctx: Ctx, match: FederatedMatch, issuedJti: string | undefined): void {
  successes.rows.push(
    auditRow(ctx, {
      action: "credential.federated",
      orgId: match.policy.orgId,
      targetType: "service_account",
      targetId: match.policy.serviceAccountId,
      details: { iss: match.claims.iss, sub: match.sub, policyId: match.policy.id, externalJti: match.claims.jti ?? null, jti: issuedJti ?? null },
    }),
  );
  if (successes.rows.length >= SUCCESS_BATCH) {
    ctx.waitUntil(flushSuccesses(ctx));
  } else if (!successes.timer) {
    successes.timer = true;
    ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, SUCCESS_FLUSH_MS)).then(() => flushSuccesses(ctx)));
  }
}
