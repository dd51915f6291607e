import { and, eq, inArray, or } from "drizzle-orm";
import { orgs, roleAssignments, type Org, type OrgPolicy } from "../db/schema.ts";
import { ApiError, notFound } from "../errors.ts";
import { newId } from "../lib/ids.ts";
import { keyset, toPage, type PageQuery } from "../lib/pagination.ts";
import { isUniqueViolation } from "../lib/sql-errors.ts";
import { auditInsert } from "./audit.ts";
import type { Ctx } from "./context.ts";
import { authorize, authorizePlatform, effectiveOperations, isPlatformRoot, type Operation } from "./permissions.ts";
import type { Principal } from "./principal.ts";

export const DEFAULT_POLICY: OrgPolicy = {
  maxActiveTokensPerAccount: 1,
  maxTokenLifetimeDays: null,
  unusedTokenRevokeAfterDays: null,
};

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

/** An org the principal may perform `operation` in at org level. */
export async function orgFor(ctx: Ctx, principal: Principal, ref: string, operation: Operation): Promise<Org> {
  const org = await visibleOrg(ctx, principal, ref);
  await authorize(ctx, principal, operation, { orgId: org.id });
  return org;
}

export interface CreateOrgInput {
  slug: string;
  name: string;
  policy?: Partial<OrgPolicy> | undefined;
}

export async function createOrg(ctx: Ctx, principal: Principal, input: CreateOrgInput): Promise<Org> {
  authorizePlatform(principal, "platform.root");
  const now = ctx.now();
  const org: Org = {
    id: newId("org"),
    slug: input.slug.toLowerCase(),
    name: input.name,
    policy: { ...DEFAULT_POLICY, ...input.policy },
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
    if (isUniqueViolation(err, "slug")) throw new ApiError("slug_taken", `An org with slug '${org.slug}' already exists`);
    throw err;
  }
  return org;
}

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

export async function patchOrg(ctx: Ctx, principal: Principal, ref: string, input: PatchOrgInput): Promise<Org> {
  const org = await orgFor(ctx, principal, ref, "orgs.admin");
  const next: Org = {
    ...org,
    name: input.name ?? org.name,
    policy: { ...org.policy, ...input.policy },
    updatedAt: ctx.now(),
  };
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
}
