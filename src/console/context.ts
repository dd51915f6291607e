import { Hono, type Context } from "hono";
import { effectiveOperations, type Operation, type Scope } from "../domain/access/permissions.ts";
import type { Ctx } from "../domain/shared/context.ts";
import type { Principal } from "../domain/shared/principal.ts";
import { visibleOrg } from "../domain/registry/orgs.ts";
import type { AppEnv, Variables } from "../http/app-env.ts";
import { ctxOf } from "../http/routes/common.ts";
import type { Bindings } from "../env.ts";

/** The signed-in session of a console request (set by the session middleware). */
export interface ConsoleSessionInfo {
  name: string;
  jti: string;
  /** Epoch seconds. */
  exp: number;
}

export type ConsoleEnv = { Bindings: Bindings; Variables: Variables & { session: ConsoleSessionInfo } };
export type ConsoleContext = Context<ConsoleEnv>;

/** A router of console pages. */
export const consoleRouter = () => new Hono<ConsoleEnv>();

/** The signed-in principal (the session middleware guarantees one on every page but the sign-in page). */
export const principalOf = (c: ConsoleContext): Principal => c.get("principal");

/** The domain context of a console request: the principal is the audit actor. */
export const consoleCtx = (c: ConsoleContext): Ctx => ctxOf(c as unknown as Context<AppEnv>);

/** Tells whether an operation is allowed; built from the principal's effective operations at one scope. */
export type Can = (op: Operation) => boolean;

/**
 * What the principal may do at a scope, from the same function the domain's permission check uses
 * (so a page offers exactly what the service would allow; the service checks again regardless).
 */
export async function operationsAt(c: ConsoleContext, orgId: string, scope: Omit<Scope, "orgId"> = {}): Promise<Can> {
  const ops = await effectiveOperations(consoleCtx(c), principalOf(c), { orgId, ...scope });
  return (op) => ops !== null && (ops.has(op) || ops.has("platform.root"));
}

/** Whether the principal may do `op` at a scope. */
export async function allows(c: ConsoleContext, op: Operation, scope: Scope): Promise<boolean> {
  const { orgId, ...rest } = scope;
  return (await operationsAt(c, orgId, rest))(op);
}

/** Console paths, in one place (pages link with these). */
export const paths = {
  home: "/console",
  login: "/console/login",
  logout: "/console/logout",
  org: (org: string) => `/console/orgs/${encodeURIComponent(org)}`,
  projects: (org: string) => `/console/orgs/${encodeURIComponent(org)}/projects`,
  project: (org: string, prj: string) => `/console/orgs/${encodeURIComponent(org)}/projects/${encodeURIComponent(prj)}`,
  accounts: (org: string) => `/console/orgs/${encodeURIComponent(org)}/service-accounts`,
  account: (org: string, sa: string) => `/console/orgs/${encodeURIComponent(org)}/service-accounts/${encodeURIComponent(sa)}`,
  roles: (org: string) => `/console/orgs/${encodeURIComponent(org)}/roles`,
  invitations: (org: string) => `/console/orgs/${encodeURIComponent(org)}/invitations`,
  review: (org: string) => `/console/orgs/${encodeURIComponent(org)}/review`,
  audit: (org: string) => `/console/orgs/${encodeURIComponent(org)}/audit`,
  platformAudit: "/console/audit",
};

/** The org a page is about, for its header and links: 404 unless the principal holds anything in it. */
export async function pageOrg(c: ConsoleContext, ref: string): Promise<{ id: string; slug: string; name: string }> {
  const org = await visibleOrg(consoleCtx(c), principalOf(c), ref);
  return { id: org.id, slug: org.slug, name: org.name };
}

/** The page size of console lists, and the cursor of the page asked for. */
export const pageOf = (c: ConsoleContext, limit = 25) => ({ limit, cursor: c.req.query("cursor") || undefined });
