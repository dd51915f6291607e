import { and, count, eq } from "drizzle-orm";
import { federatedCredentials, serviceAccounts, type FederatedCredential } from "../../db/schema.ts";
import { auditInsert } from "../audit/audit-log.ts";
import { statement, type Change } from "./change.ts";
import type { Ctx } from "../shared/context.ts";
import type { Outcome } from "./plans.ts";
import type { ErrorCode } from "../shared/errors.ts";
import { allocateStatusIdx, statusInsert } from "./status-index.ts";

/**
 * A trust policy (federated credential): which tokens of an external OIDC issuer may act as the
 * account. The row as stored; federated-credentials.ts is its service, claim-conditions.ts its rule.
 */
export type TrustPolicy = FederatedCredential & {
  /** Its status list index, where read with it (the federated grants' policies; docs/status-list.md). */
  statusIdx?: number | null | undefined;
};

/** What a PATCH may change (null clears a nullable field). */
export interface TrustPolicyPatch {
  name?: string | undefined;
  description?: string | null | undefined;
  issuer?: string | undefined;
  audiences?: string[] | undefined;
  subject?: string | null | undefined;
  claims?: Record<string, string> | undefined;
  maxTokenAgeSeconds?: number | null | undefined;
  enabled?: boolean | undefined;
  /** Default true: a token's jti is accepted once. False: a token may be exchanged again while it lives. */
  singleUse?: boolean | undefined;
}

/** A change to an account's trust policies, planned and applied by the account's Durable Object. */
export type FederatedChange =
  | { kind: "create"; policy: TrustPolicy }
  | { kind: "update"; id: string; patch: TrustPolicyPatch; updatedAt: number }
  | { kind: "delete"; id: string };

export const MAX_POLICIES_PER_ACCOUNT = 20;

const fail = (code: ErrorCode, detail: string): Outcome<never> => ({ ok: false, code, detail });

const hasCondition = (p: Pick<TrustPolicy, "subject" | "claims">) => p.subject !== null || Object.keys(p.claims).length > 0;

/** The fields an update audit event names (never a value that could be long: only which fields changed). */
const changedFields = (patch: TrustPolicyPatch) => Object.keys(patch).filter((k) => patch[k as keyof TrustPolicyPatch] !== undefined);

/**
 * Plans a trust-policy change under the account's lock, so the per-account cap and name checks
 * are race-free and no policy outlives (or is created after) the account's deletion.
 */
export async function planFederatedChange(ctx: Ctx, accountId: string, change: FederatedChange): Promise<Outcome<{ change: Change; policy: TrustPolicy | null }>> {
  const account = await ctx.db.select({ id: serviceAccounts.id, orgId: serviceAccounts.orgId }).from(serviceAccounts).where(eq(serviceAccounts.id, accountId)).get();
  if (!account || account.orgId === null) return fail("not_found", "Service account not found");
  const t = federatedCredentials;
  const named = (name: string) => ctx.db.select({ id: t.id }).from(t).where(and(eq(t.serviceAccountId, accountId), eq(t.name, name))).get();
  const audit = (action: string, policy: TrustPolicy, details: Record<string, unknown>) =>
    statement(auditInsert(ctx, { action, orgId: policy.orgId, targetType: "federated_credential", targetId: policy.id, details: { accountId, name: policy.name, ...details } }));

  if (change.kind === "create") {
    const policy = change.policy;
    if (policy.serviceAccountId !== accountId || policy.orgId !== account.orgId) return fail("not_found", "Service account not found");
    const [held] = await ctx.db.select({ n: count() }).from(t).where(eq(t.serviceAccountId, accountId));
    if ((held?.n ?? 0) >= MAX_POLICIES_PER_ACCOUNT) {
      return fail("federated_credential_limit_reached", `An account holds at most ${MAX_POLICIES_PER_ACCOUNT} federated credentials`);
    }
    if (await named(policy.name)) return fail("name_taken", `A federated credential named '${policy.name}' already exists on this account`);
    const statusIdx = await allocateStatusIdx(ctx);
    const d1 = [
      statusInsert(ctx, statusIdx, "federated_credential", policy.id, accountId),
      statement(ctx.db.insert(t).values(policy).onConflictDoNothing()),
      audit("federated_credential.created", policy, { issuer: policy.issuer, subject: policy.subject, claims: Object.keys(policy.claims), enabled: policy.enabled, singleUse: policy.singleUse }),
    ];
    return { ok: true, value: { change: { kvBefore: [], d1, kvAfter: [] }, policy } };
  }

  const existing = await ctx.db.select().from(t).where(and(eq(t.id, change.id), eq(t.serviceAccountId, accountId))).get();
  if (!existing) return fail("not_found", "Federated credential not found");

  if (change.kind === "delete") {
    const d1 = [statement(ctx.db.delete(t).where(eq(t.id, existing.id))), audit("federated_credential.deleted", existing, { issuer: existing.issuer })];
    return { ok: true, value: { change: { kvBefore: [], d1, kvAfter: [] }, policy: null } };
  }

  const set = Object.fromEntries(Object.entries(change.patch).filter(([, v]) => v !== undefined)) as Partial<TrustPolicy>;
  const updated: TrustPolicy = { ...existing, ...set, updatedAt: change.updatedAt };
  // Two PATCHes each dropping one condition must not leave a policy with none.
  if (!hasCondition(updated)) return fail("policy_too_broad", "A federated credential needs a subject or at least one claim condition");
  if (updated.name !== existing.name && (await named(updated.name))) {
    return fail("name_taken", `A federated credential named '${updated.name}' already exists on this account`);
  }
  const d1 = [
    statement(ctx.db.update(t).set({ ...set, updatedAt: change.updatedAt }).where(eq(t.id, existing.id))),
    audit("federated_credential.updated", updated, { changed: changedFields(change.patch), issuer: updated.issuer, enabled: updated.enabled, singleUse: updated.singleUse }),
  ];
  return { ok: true, value: { change: { kvBefore: [], d1, kvAfter: [] }, policy: updated } };
}
