import { and, eq } from "drizzle-orm";
import { forgetTrustPolicies } from "./trust-policy-cache.ts";
import { credentialStatus, federatedCredentials } from "../../db/schema.ts";
import { getConfig, type Bindings } from "../../env.ts";
import { newId } from "../../lib/ids.ts";
import { dbFor, type Ctx } from "../shared/context.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { withPermission } from "../access/permissions.ts";
import { accountFor } from "../registry/accounts.ts";
import { accountObject, unwrap } from "./account-object.ts";
import { patternProblem } from "./claim-conditions.ts";
import type { FederatedChange, TrustPolicy, TrustPolicyPatch } from "./federated-plans.ts";

export type { TrustPolicy, TrustPolicyPatch } from "./federated-plans.ts";
export { MAX_POLICIES_PER_ACCOUNT } from "./federated-plans.ts";

/**
 * Federated credentials: trust policies letting tokens of an external OIDC issuer (a CI job's, a
 * Kubernetes workload's) act as a service account, with no secret stored (docs/federation.md).
 * Changes run through the account's Durable Object, like its keys; the grant looks them up by
 * issuer (policiesForIssuer).
 */

export const POLICY_LIMITS = {
  name: 64,
  description: 512,
  claims: 20,
  claimName: 128,
  audiences: 10,
  audience: 256,
  subject: 256,
  minTokenAgeSeconds: 60,
  maxTokenAgeSeconds: 86_400,
} as const;

/** What a claim name may be: printable ASCII, no space (dots reach into nested claims). */
export const CLAIM_NAME = /^[\x21-\x7e]+$/;

/** Claims the verification itself checks (signature, times, audience, replay): no condition may name them. */
const VERIFIED_CLAIMS = new Set(["iss", "aud", "exp", "nbf", "iat", "jti"]);

/** A new policy: a patch's fields, with name and issuer required (audiences default to ISSUER; singleUse to true). */
export type TrustPolicyInput = TrustPolicyPatch & { name: string; issuer: string };

const invalid = (path: string, message: string) => new DomainError("validation_failed", message, { errors: [{ path, message }] });

/** Issuer allowed by FEDERATION_ALLOWED_ISSUERS, exactly (federation off: none is). */
function assertIssuerAllowed(ctx: Ctx, issuer: string): void {
  const allowed = ctx.config.FEDERATION_ALLOWED_ISSUERS;
  if (allowed.length === 0) throw new DomainError("issuer_not_allowed", "Federation is off: FEDERATION_ALLOWED_ISSUERS names no issuer");
  if (!allowed.includes(issuer)) {
    throw new DomainError("issuer_not_allowed", `The issuer ${issuer} is not in FEDERATION_ALLOWED_ISSUERS (the issuers this deployment trusts)`);
  }
}

/** The checks a schema cannot express (the HTTP schema bounds lengths and counts too). */
function assertConditions(p: Pick<TrustPolicy, "subject" | "claims" | "audiences">): void {
  if (p.subject !== null && p.subject.length === 0) throw invalid("body.subject", "subject must not be empty (null for none)");
  const entries = Object.entries(p.claims);
  if (entries.length > POLICY_LIMITS.claims) throw invalid("body.claims", `At most ${POLICY_LIMITS.claims} claim conditions`);
  for (const [name, pattern] of entries) {
    if (name.length === 0 || name.length > POLICY_LIMITS.claimName || !CLAIM_NAME.test(name) || name === "__proto__") {
      throw invalid("body.claims", `Claim names are 1-${POLICY_LIMITS.claimName} printable ASCII characters`);
    }
    if (VERIFIED_CLAIMS.has(name)) throw invalid(`body.claims.${name}`, `${name} is checked by the verification itself (use issuer, audiences, maxTokenAgeSeconds)`);
    if (typeof pattern !== "string") throw invalid(`body.claims.${name}`, "A condition is a string pattern");
    const problem = patternProblem(pattern);
    if (problem) throw invalid(`body.claims.${name}`, problem);
  }
  if (p.audiences.length === 0 || p.audiences.length > POLICY_LIMITS.audiences) throw invalid("body.audiences", `1-${POLICY_LIMITS.audiences} audiences`);
  if (p.audiences.some((a) => a.length === 0 || a.length > POLICY_LIMITS.audience)) throw invalid("body.audiences", `Audiences are 1-${POLICY_LIMITS.audience} characters`);
  if (p.subject === null && entries.length === 0) {
    throw new DomainError("policy_too_broad", "A federated credential needs a subject or at least one claim condition: one with neither would let every token of its issuer act as the account", {
      errors: [{ path: "body", message: "Give subject or claims" }],
    });
  }
}

async function change(ctx: Ctx, accountId: string, c: FederatedChange): Promise<TrustPolicy | null> {
  try {
    return unwrap(await accountObject(ctx, accountId).changeFederatedCredential(accountId, c, ctx.meta)).policy;
  } finally {
    forgetTrustPolicies();
  }
}

/** A trust policy hands the account's identity to tokens of another issuer: guarded like adding a key. */
export const createFederatedCredential = withPermission(
  "service-accounts.federated-credentials.edit",
  async (gate, orgRef: string, accountId: string, input: TrustPolicyInput): Promise<TrustPolicy> => {
    const { account } = await accountFor(gate, orgRef, accountId, "grants");
    const ctx = gate.ctx;
    assertIssuerAllowed(ctx, input.issuer);
    const now = ctx.now();
    const policy: TrustPolicy = {
      id: newId("federatedCredential"),
      orgId: account.orgId!,
      serviceAccountId: account.id,
      name: input.name,
      description: input.description ?? null,
      issuer: input.issuer,
      audiences: [...new Set(input.audiences ?? [ctx.config.ISSUER])],
      subject: input.subject ?? null,
      claims: { ...input.claims },
      maxTokenAgeSeconds: input.maxTokenAgeSeconds ?? null,
      enabled: input.enabled ?? true,
      singleUse: input.singleUse ?? true,
      createdAt: now,
      createdBy: ctx.meta.actorId,
      updatedAt: now,
    };
    assertConditions(policy);
    return (await change(ctx, account.id, { kind: "create", policy }))!;
  },
  { guard: "covers" },
);

export const listFederatedCredentials = withPermission("service-accounts.read", async (gate, orgRef: string, accountId: string): Promise<TrustPolicy[]> => {
  const { account } = await accountFor(gate, orgRef, accountId);
  const t = federatedCredentials;
  return gate.ctx.db.select().from(t).where(eq(t.serviceAccountId, account.id)).orderBy(t.createdAt, t.id);
});

async function policyOf(ctx: Ctx, accountId: string, id: string): Promise<TrustPolicy> {
  const t = federatedCredentials;
  const row = await ctx.db.select().from(t).where(and(eq(t.id, id), eq(t.serviceAccountId, accountId))).get();
  if (!row) throw notFound("Federated credential");
  return row;
}

export const readFederatedCredential = withPermission("service-accounts.read", async (gate, orgRef: string, accountId: string, id: string) => {
  const { account } = await accountFor(gate, orgRef, accountId);
  return policyOf(gate.ctx, account.id, id);
});

/** Any edit may widen what the policy lets in (a new issuer, a looser pattern, enabling it): guarded as a grant. */
export const updateFederatedCredential = withPermission(
  "service-accounts.federated-credentials.edit",
  async (gate, orgRef: string, accountId: string, id: string, patch: TrustPolicyPatch): Promise<TrustPolicy> => {
    const { account } = await accountFor(gate, orgRef, accountId, "grants");
    const ctx = gate.ctx;
    const existing = await policyOf(ctx, account.id, id);
    if (patch.issuer !== undefined) assertIssuerAllowed(ctx, patch.issuer);
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<TrustPolicy>;
    if (patch.audiences) defined.audiences = [...new Set(patch.audiences)];
    assertConditions({ ...existing, ...defined });
    return (await change(ctx, account.id, { kind: "update", id: existing.id, patch: defined as TrustPolicyPatch, updatedAt: ctx.now() }))!;
  },
  { guard: "covers" },
);

/** Deleting one takes access away: the guard lets the account itself, and incident response, do it. */
export const deleteFederatedCredential = withPermission(
  "service-accounts.federated-credentials.edit",
  async (gate, orgRef: string, accountId: string, id: string): Promise<void> => {
    const { account } = await accountFor(gate, orgRef, accountId, "removes");
    await policyOf(gate.ctx, account.id, id);
    await change(gate.ctx, account.id, { kind: "delete", id });
  },
  { guard: "covers" },
);

/**
 * The enabled trust policies naming `issuer`, of every account (the grant's lookup). An issuer no
 * longer in FEDERATION_ALLOWED_ISSUERS has none: removing it from the configuration switches its
 * policies off without touching them.
 */
export async function policiesForIssuer(env: Bindings, issuer: string): Promise<TrustPolicy[]> {
  if (!getConfig(env).FEDERATION_ALLOWED_ISSUERS.includes(issuer)) return [];
  const t = federatedCredentials;
  const rows = await dbFor(env.DB)
    .select({ policy: t, statusIdx: credentialStatus.idx })
    .from(t)
    .leftJoin(credentialStatus, eq(credentialStatus.credentialId, t.id))
    .where(and(eq(t.issuer, issuer), eq(t.enabled, true)));
  return rows.map((r) => ({ ...r.policy, statusIdx: r.statusIdx }));
}
