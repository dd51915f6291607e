import { and, eq, inArray, or } from "drizzle-orm";
import { environments, projects, roleAssignments, type Environment, type Project } from "../../db/schema.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { newId } from "../../lib/ids.ts";
import { chunks } from "../../lib/chunks.ts";
import { keyset, toPage, type PageQuery } from "../shared/pagination.ts";
import { isUniqueViolation } from "../shared/sql-errors.ts";
import { syncAccounts } from "../credentials/account-object.ts";
import { auditInsert } from "../audit/audit-log.ts";
import { withdrawPending } from "./invitation-cascade.ts";
import type { Ctx } from "../shared/context.ts";
import { orgFor, visibleOrg } from "./orgs.ts";
import { withPermission, type Gate } from "../access/permissions.ts";
import type { Principal } from "../shared/principal.ts";

/** The org > project > environment hierarchy, used as scopes of role assignments. */

export interface NodeInput {
  slug: string;
  name: string;
}

const slugTaken = (err: unknown, what: string, slug: string) =>
  isUniqueViolation(err, "slug") ? new DomainError("slug_taken", `A ${what} with slug '${slug}' already exists here`) : err;

async function findProject(ctx: Ctx, principal: Principal, orgRef: string, projectRef: string): Promise<Project> {
  const org = await visibleOrg(ctx, principal, orgRef);
  const project = await ctx.db
    .select()
    .from(projects)
    .where(and(eq(projects.orgId, org.id), or(eq(projects.id, projectRef), eq(projects.slug, projectRef.toLowerCase()))))
    .get();
  if (!project) throw notFound("Project");
  return project;
}

/** A project where the gate's principal holds the gate's permission; roles granted on the project itself count. */
async function projectFor(gate: Gate, orgRef: string, projectRef: string) {
  const project = await findProject(gate.ctx, gate.principal, orgRef, projectRef);
  await gate.authorize({ orgId: project.orgId, projectId: project.id });
  return project;
}

export const readProject = withPermission("orgs.read", (gate, orgRef: string, projectRef: string) => projectFor(gate, orgRef, projectRef));

export const createProject = withPermission("orgs.admin", async (gate, orgRef: string, input: NodeInput): Promise<Project> => {
  const { ctx, principal } = gate;
  const org = await orgFor(gate, orgRef);
  const project: Project = { id: newId("project"), orgId: org.id, slug: input.slug.toLowerCase(), name: input.name, createdAt: ctx.now(), createdBy: principal.accountId };
  try {
    await ctx.db.batch([
      ctx.db.insert(projects).values(project),
      auditInsert(ctx, { action: "project.created", orgId: org.id, targetType: "project", targetId: project.id, details: { slug: project.slug } }),
    ]);
  } catch (err) {
    throw slugTaken(err, "project", project.slug);
  }
  return project;
});

export const listProjects = withPermission("orgs.read", async (gate, orgRef: string, page: PageQuery) => {
  const org = await orgFor(gate, orgRef);
  const { where, orderBy } = keyset(projects, page.cursor);
  const rows = await gate.ctx.db.select().from(projects).where(and(eq(projects.orgId, org.id), where)).orderBy(...orderBy).limit(page.limit + 1);
  return toPage(rows, page.limit, (r) => r);
});

/** Accounts holding a role at any of these scopes (their KV claims change when the scopes go). */
async function holdersAt(ctx: Ctx, scopeIds: string[]): Promise<string[]> {
  if (scopeIds.length === 0) return [];
  const parts = await Promise.all(chunks(scopeIds).map((part) => ctx.db.selectDistinct({ id: roleAssignments.accountId }).from(roleAssignments).where(inArray(roleAssignments.scopeId, part))));
  return [...new Set(parts.flat().map((r) => r.id))];
}

/** Deleting a project removes its environments and every role assignment scoped to either. */
export const deleteProject = withPermission("orgs.admin", async (gate, orgRef: string, projectRef: string): Promise<void> => {
  const { ctx, principal } = gate;
  const project = await projectFor(gate, orgRef, projectRef);
  const envs = await ctx.db.select({ id: environments.id }).from(environments).where(eq(environments.projectId, project.id));
  const holders = await holdersAt(ctx, [project.id, ...envs.map((e) => e.id)]);
  await ctx.db.batch([
    ctx.db.delete(roleAssignments).where(and(eq(roleAssignments.scopeType, "project"), eq(roleAssignments.scopeId, project.id))),
    ...envs.map((e) => ctx.db.delete(roleAssignments).where(and(eq(roleAssignments.scopeType, "environment"), eq(roleAssignments.scopeId, e.id)))),
    ...chunks([project.id, ...envs.map((e) => e.id)]).map((scopeIds) => withdrawPending(ctx, principal, { scopeIds })),
    ctx.db.delete(environments).where(eq(environments.projectId, project.id)),
    ctx.db.delete(projects).where(eq(projects.id, project.id)),
    auditInsert(ctx, { action: "project.deleted", orgId: project.orgId, targetType: "project", targetId: project.id, details: { slug: project.slug } }),
  ]);
  await syncAccounts(ctx, holders);
});

async function environmentFor(gate: Gate, orgRef: string, projectRef: string, envRef: string) {
  const project = await findProject(gate.ctx, gate.principal, orgRef, projectRef);
  const env = await gate.ctx.db
    .select()
    .from(environments)
    .where(and(eq(environments.projectId, project.id), or(eq(environments.id, envRef), eq(environments.slug, envRef.toLowerCase()))))
    .get();
  if (!env) throw notFound("Environment");
  await gate.authorize({ orgId: env.orgId, projectId: env.projectId, environmentId: env.id });
  return env;
}

export const readEnvironment = withPermission("orgs.read", (gate, orgRef: string, projectRef: string, envRef: string) => environmentFor(gate, orgRef, projectRef, envRef));

export const createEnvironment = withPermission("orgs.admin", async (gate, orgRef: string, projectRef: string, input: NodeInput): Promise<Environment> => {
  const { ctx, principal } = gate;
  const project = await projectFor(gate, orgRef, projectRef);
  const env: Environment = {
    id: newId("environment"),
    orgId: project.orgId,
    projectId: project.id,
    slug: input.slug.toLowerCase(),
    name: input.name,
    createdAt: ctx.now(),
    createdBy: principal.accountId,
  };
  try {
    await ctx.db.batch([
      ctx.db.insert(environments).values(env),
      auditInsert(ctx, { action: "environment.created", orgId: env.orgId, targetType: "environment", targetId: env.id, details: { slug: env.slug, projectId: project.id } }),
    ]);
  } catch (err) {
    throw slugTaken(err, "environment", env.slug);
  }
  return env;
});

export const listEnvironments = withPermission("orgs.read", async (gate, orgRef: string, projectRef: string, page: PageQuery) => {
  const project = await projectFor(gate, orgRef, projectRef);
  const { where, orderBy } = keyset(environments, page.cursor);
  const rows = await gate.ctx.db.select().from(environments).where(and(eq(environments.projectId, project.id), where)).orderBy(...orderBy).limit(page.limit + 1);
  return toPage(rows, page.limit, (r) => r);
});

export const deleteEnvironment = withPermission("orgs.admin", async (gate, orgRef: string, projectRef: string, envRef: string): Promise<void> => {
  const { ctx, principal } = gate;
  const env = await environmentFor(gate, orgRef, projectRef, envRef);
  const holders = await holdersAt(ctx, [env.id]);
  await ctx.db.batch([
    ctx.db.delete(roleAssignments).where(and(eq(roleAssignments.scopeType, "environment"), eq(roleAssignments.scopeId, env.id))),
    withdrawPending(ctx, principal, { scopeIds: [env.id] }),
    ctx.db.delete(environments).where(eq(environments.id, env.id)),
    auditInsert(ctx, { action: "environment.deleted", orgId: env.orgId, targetType: "environment", targetId: env.id, details: { slug: env.slug } }),
  ]);
  await syncAccounts(ctx, holders);
});
