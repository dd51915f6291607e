import { and, eq, inArray, or, sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { orgs, roleAssignments, roles, serviceAccounts, type Org, type OrgPolicy } from "../../db/schema.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { newId } from "../../lib/ids.ts";
import { keyset, toPage, type PageQuery } from "../shared/pagination.ts";
import { isUniqueViolation } from "../shared/sql-errors.ts";
import { auditInsert } from "../audit/audit-log.ts";
import type { Ctx } from "../shared/context.ts";
import { effectiveOperations, GRANT_COLUMNS, isPlatformRoot, OPERATIONS, primeGrants, withPermission, type Gate, type MaybeGrant } from "../access/permissions.ts";
import type { Principal } from "../shared/principal.ts";
import { checkClaimMapping } from "../signing/custom-claims.ts";
import { syncAccounts } from "../credentials/account-object.ts";
import { chunks } from "../../lib/chunks.ts";

export const DEFAULT_POLICY: OrgPolicy = {
  maxActiveTokensPerAccount: 1,
  maxTokenLifetimeDays: null,
  maxKeyLifetimeDays: null,
  unusedTokenRevokeAfterDays: null,
  scopes: [],
  jwtQuota: null,
};

/** An org's policy with the defaults of fields it was stored without. */
export const policyOf = (org: Pick<Org, "policy"> | null): OrgPolicy => ({ ...DEFAULT_POLICY, ...org?.policy });

/** Finds an org by id or slug, without revealing anything: callers authorize before using it. */
export async function findOrg(ctx: Ctx, ref: string): Promise<Org | undefined> {
  return ctx.db.select().from(orgs).where(or(eq(orgs.id, ref), eq(orgs.slug, ref.toLowerCase()))).get();
}

/** An id match wins over a slug match (a slug may spell another org's id). */
const refMatch = (ref: string) => ({ where: or(eq(orgs.id, ref), eq(orgs.slug, ref.toLowerCase())), first: sql`${orgs.id} = ${ref} desc` });

/** The org named by `ref` with the principal's role assignments in it, as one statement. */
function orgWithGrants(ctx: Ctx, principal: Principal, ref: string) {
  const { where, first } = refMatch(ref);
  return ctx.db
    .select({ org: orgs, grant: GRANT_COLUMNS })
    .from(orgs)
    .leftJoin(roleAssignments, and(eq(roleAssignments.orgId, orgs.id), eq(roleAssignments.accountId, principal.accountId)))
    .leftJoin(roles, eq(roles.id, roleAssignments.roleId))
    .where(where)
    .orderBy(first);
}

/** The org's id as a subquery, for a statement batched with the org's own lookup. */
const orgIdOf = (ref: string): SQL => {
  const { where, first } = refMatch(ref);
  return sql`(select ${orgs.id} from ${orgs} where ${where} order by ${first} limit 1)`;
};

/** The first org of the rows, its grants primed for the permission check; 404 when the principal holds nothing in it. */
async function visibleOf(ctx: Ctx, principal: Principal, rows: { org: Org; grant: MaybeGrant }[]): Promise<Org> {
  const org = rows[0]?.org;
  if (!org) throw notFound("Organization");
  primeGrants(principal, org.id, rows.filter((r) => r.org.id === org.id).map((r) => r.grant));
  if ((await effectiveOperations(ctx, principal, { orgId: org.id })) === null) throw notFound("Organization");
  return org;
}

/** An org the principal holds anything in, at any level (404 if it does not exist or is invisible). */
export async function visibleOrg(ctx: Ctx, principal: Principal, ref: string): Promise<Org> {
  return visibleOf(ctx, principal, await orgWithGrants(ctx, principal, ref));
}

/** An org where the gate's principal holds the gate's permission at org level. */
export async function orgFor(gate: Gate, ref: string): Promise<Org> {
  const org = await visibleOrg(gate.ctx, gate.principal, ref);
  await gate.authorize({ orgId: org.id });
  return org;
}

/**
 * orgFor, with a read of the org's data in the same D1 round trip: `read` gets the org's id as a
 * subquery. Its rows are handed out only once the gate has authorized the org.
 */
export async function orgForWith<T extends BatchItem<"sqlite">>(gate: Gate, ref: string, read: (orgId: SQL) => T): Promise<{ org: Org; rows: Awaited<T> }> {
  const [found, rows] = await gate.ctx.db.batch([orgWithGrants(gate.ctx, gate.principal, ref), read(orgIdOf(ref))]);
  const org = await visibleOf(gate.ctx, gate.principal, found);
  await gate.authorize({ orgId: org.id });
  return { org, rows: rows as Awaited<T> };
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
    policy: {
      ...DEFAULT_POLICY,
      ...input.policy,
      scopes: declaredScopes(input.policy?.scopes ?? []),
      ...(input.policy?.jwtClaims !== undefined ? { jwtClaims: checkClaimMapping(input.policy.jwtClaims) } : {}),
    },
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
  if (input.policy?.jwtClaims !== undefined) policy.jwtClaims = checkClaimMapping(input.policy.jwtClaims);
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
  // Also when unchanged: setting the mapping again is how an operator repairs records a failed resync left behind.
  if (input.policy?.jwtClaims !== undefined) await resyncOrgAccounts(ctx, org.id);
  return next;
});

/** How many accounts' Durable Objects a claim-mapping change rewrites at a time. */
const RESYNC_CONCURRENCY = 25;

/**
 * After the org's custom claim mapping is set, every account of the org gets its KV records (and
 * so its custom claims) rewritten before the PATCH answers: the next JWT minted where the change
 * was made carries the new claims; elsewhere within KV's propagation plus the 10 s record cache.
 * One account's failure does not stop the others; the first is thrown once all were tried.
 * Accounts of other orgs need nothing: their JWTs for this org read their claims from D1.
 */
async function resyncOrgAccounts(ctx: Ctx, orgId: string): Promise<void> {
  const ids = (await ctx.db.select({ id: serviceAccounts.id }).from(serviceAccounts).where(eq(serviceAccounts.orgId, orgId))).map((r) => r.id);
  let failure: unknown;
  for (const batch of chunks(ids, RESYNC_CONCURRENCY)) {
    const results = await Promise.allSettled(batch.map((id) => syncAccounts(ctx, [id])));
    for (const r of results) if (r.status === "rejected") failure ??= r.reason;
  }
  if (failure !== undefined) throw failure;
}
