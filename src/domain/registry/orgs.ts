import { and, eq, inArray, or, sql } from "drizzle-orm";
import { orgs, roleAssignments, serviceAccounts, type Org, type OrgPolicy } from "../../db/schema.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { newId } from "../../lib/ids.ts";
import { keyset, toPage, type PageQuery } from "../shared/pagination.ts";
import { isUniqueViolation } from "../shared/sql-errors.ts";
import { auditInsert } from "../audit/audit-log.ts";
import type { Ctx } from "../shared/context.ts";
import { effectiveOperations, isPlatformRoot, OPERATIONS, withPermission, type Gate } from "../access/permissions.ts";
import type { Principal } from "../shared/principal.ts";

export const DEFAULT_POLICY: OrgPolicy = {
  maxActiveTokensPerAccount: 1,
  maxTokenLifetimeDays: null,
  unusedTokenRevokeAfterDays: null,
  scopes: [],
};

/** An org's policy with the defaults of fields it was stored without. */
export const policyOf = (org: Pick<Org, "policy"> | null): OrgPolicy => ({ ...DEFAULT_POLICY, ...org?.policy });

/** Finds an org by id or slug, without revealing anything: callers authorize before using it. */
export async function findOrg(ctx: Ctx, ref: string): Promise<Org | undefined> {
  return ctx.db.select().from(orgs).where(or(eq(orgs.id, ref), eq(orgs.slug, ref.toLowerCase()))).get();
}

/** An org the principal holds anything in, at any level (404 if it does not exist or is invisible). */
export async function visibleOrg(ctx: Ctx, principal: Principal, ref: string): Promise<Org> {
  const org = await findOrg(ctx, ref);
  if (!org || (await effectiveOperations(ctx, principal, { orgId: org.id })) === null) throw notFound("Organization");
  return org;
}

/** An org where the gate's principal holds the gate's permission at org level. */
export async function orgFor(gate: Gate, ref: string): Promise<Org> {
  const org = await visibleOrg(gate.ctx, gate.principal, ref);
  await gate.authorize({ orgId: org.id });
  return org;
}

export const readOrg = withPermission("orgs.read", (gate, ref: string) => orgFor(gate, ref));

const scopeError = (detail: string) => new DomainError("invalid_scope", detail, { errors: [{ path: "body.policy.scopes", message: detail }] });

/**
 * The scopes an org declares for its downstream APIs (`policy.scopes`): the only scopes its
 * accounts' allowedScopes may name. A Keyward operation is never one of them, so a downstream API
 * can never mistake a declared scope for one of Keyward's own powers (those come from roles).
 */
function declaredScopes(names: string[]): string[] {
  const keyward = names.filter((s) => s in OPERATIONS);
  if (keyward.length > 0) {
    throw scopeError(`policy.scopes may not name Keyward operations (${keyward.join(", ")}): Keyward's permissions come from roles; declare the scopes of your downstream APIs here`);
  }
  return [...new Set(names)];
}

/** Refuses allowedScopes outside the org's declared set, and any that name a Keyward operation. */
export function assertDeclaredScopes(org: Org, scopes: string[]): void {
  const path = "body.allowedScopes";
  const keyward = scopes.filter((s) => s in OPERATIONS);
  if (keyward.length > 0) {
    const detail = `allowedScopes may not name Keyward operations (${keyward.join(", ")}): Keyward's permissions come from roles; assign a role instead`;
    throw new DomainError("invalid_scope", detail, { errors: [{ path, message: detail }] });
  }
  const declared = new Set(policyOf(org).scopes);
  const unknown = scopes.filter((s) => !declared.has(s));
  if (unknown.length > 0) {
    const detail = `Not declared in the org's policy.scopes: ${unknown.join(", ")}; an org admin declares downstream scopes first (PATCH /api/v1/orgs/${org.slug} {"policy": {"scopes": [...]}})`;
    throw new DomainError("invalid_scope", detail, { errors: [{ path, message: detail }] });
  }
}

/** Declared scopes that accounts of the org still carry in their allowedScopes. */
async function scopesInUse(ctx: Ctx, orgId: string, names: string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const rows = await ctx.db.all<{ scope: string }>(
    sql`select distinct j.value as scope from ${serviceAccounts}, json_each(${serviceAccounts.allowedScopes}) as j where ${serviceAccounts.orgId} = ${orgId}`,
  );
  const used = new Set(rows.map((r) => r.scope));
  return names.filter((n) => used.has(n));
}

export interface CreateOrgInput {
  slug: string;
  name: string;
  policy?: Partial<OrgPolicy> | undefined;
}

export const createOrg = withPermission("platform.root", async (gate, input: CreateOrgInput): Promise<Org> => {
  gate.authorizePlatform();
  const { ctx, principal } = gate;
  const now = ctx.now();
  const org: Org = {
    id: newId("org"),
    slug: input.slug.toLowerCase(),
    name: input.name,
    policy: { ...DEFAULT_POLICY, ...input.policy, scopes: declaredScopes(input.policy?.scopes ?? []) },
    createdAt: now,
    createdBy: principal.accountId,
    updatedAt: now,
  };
  try {
    await ctx.db.batch([
      ctx.db.insert(orgs).values(org),
      auditInsert(ctx, { action: "org.created", orgId: org.id, targetType: "org", targetId: org.id, details: { slug: org.slug } }),
    ]);
  } catch (err) {
    if (isUniqueViolation(err, "slug")) throw new DomainError("slug_taken", `An org with slug '${org.slug}' already exists`);
    throw err;
  }
  return org;
});

/** Root sees every org; anyone else its home org and the orgs where it holds a role; an org's JWT that org only. */
export async function listOrgs(ctx: Ctx, principal: Principal, page: PageQuery) {
  const { where, orderBy } = keyset(orgs, page.cursor);
  let visible;
  if (principal.orgLimit) {
    visible = eq(orgs.id, principal.orgLimit);
  } else if (!isPlatformRoot(principal)) {
    const assigned = ctx.db.selectDistinct({ orgId: roleAssignments.orgId }).from(roleAssignments).where(eq(roleAssignments.accountId, principal.accountId));
    visible = or(inArray(orgs.id, assigned), principal.orgId ? eq(orgs.id, principal.orgId) : undefined);
  }
  const rows = await ctx.db.select().from(orgs).where(and(where, visible)).orderBy(...orderBy).limit(page.limit + 1);
  return toPage(rows, page.limit, (r) => r);
}

export interface PatchOrgInput {
  name?: string | undefined;
  policy?: Partial<OrgPolicy> | undefined;
}

/**
 * Renames the org or sets its policy. Removing a declared scope that accounts still carry is a
 * 409: the accounts' allowedScopes stay within the declared set.
 */
export const patchOrg = withPermission("orgs.admin", async (gate, ref: string, input: PatchOrgInput): Promise<Org> => {
  const org = await orgFor(gate, ref);
  const ctx = gate.ctx;
  const current = policyOf(org);
  const policy = { ...current, ...input.policy };
  if (input.policy?.scopes !== undefined) {
    policy.scopes = declaredScopes(input.policy.scopes);
    const removed = current.scopes.filter((s) => !policy.scopes.includes(s));
    const inUse = await scopesInUse(ctx, org.id, removed);
    if (inUse.length > 0) {
      throw new DomainError("conflict", `Accounts of the org still carry ${inUse.join(", ")} in their allowedScopes; remove it from them first (PATCH .../service-accounts/{sa} {"allowedScopes": [...]})`);
    }
  }
  const next: Org = { ...org, name: input.name ?? org.name, policy, updatedAt: ctx.now() };
  await ctx.db.batch([
    ctx.db.update(orgs).set({ name: next.name, policy: next.policy, updatedAt: next.updatedAt }).where(eq(orgs.id, org.id)),
    auditInsert(ctx, {
      action: "org.updated",
      orgId: org.id,
      targetType: "org",
      targetId: org.id,
      details: { name: input.name, policy: input.policy },
    }),
  ]);
  return next;
});
