/** @jsxImportSource hono/jsx */
import { findBuiltinRole } from "../domain/access/permissions.ts";
import { scopeRef, type AssignmentInput } from "../domain/access/role-assignments.ts";
import { listEnvironments, listProjects } from "../domain/registry/projects.ts";
import { DomainError } from "../domain/shared/errors.ts";
import { consoleCtx, principalOf, type ConsoleContext } from "./context.ts";

/**
 * The scope picker of the access pages: one select whose values are what the API's `scope` query
 * takes (`org`, a project id, an environment id), read back with the domain's own `scopeRef`.
 */
export interface ScopeOption {
  value: string;
  label: string;
}

/** Most projects (and environments per project) the picker lists. */
const PICKER_LIMIT = 200;

/**
 * The org and its projects and environments, as picker options. A principal who may not list the
 * projects (no `orgs.read` at org level) gets the org alone.
 */
export async function scopeOptions(c: ConsoleContext, org: { id: string; name: string }): Promise<ScopeOption[]> {
  const ctx = consoleCtx(c);
  const principal = principalOf(c);
  const options: ScopeOption[] = [{ value: "org", label: `Organization ${org.name}` }];
  try {
    const projects = await listProjects(ctx, principal, org.id, { limit: PICKER_LIMIT });
    const envs = await Promise.all(projects.items.map((p) => listEnvironments(ctx, principal, org.id, p.id, { limit: PICKER_LIMIT })));
    projects.items.forEach((p, i) => {
      options.push({ value: p.id, label: `Project ${p.name}` });
      for (const e of envs[i]!.items) options.push({ value: e.id, label: `Environment ${p.name} / ${e.name}` });
    });
  } catch (err) {
    if (!(err instanceof DomainError && err.code === "permission_denied")) throw err;
  }
  return options;
}

/** A picker value as an assignment's scope (undefined: the org), through the domain's reading of it. */
export function scopeInput(value: string | undefined, orgId: string): AssignmentInput["scope"] {
  try {
    return scopeRef(value, orgId);
  } catch (err) {
    if (err instanceof DomainError && err.data.errors) throw new DomainError(err.code, err.detail, { errors: [{ path: "body.scope", message: "Pick the org, a project or an environment" }] });
    throw err;
  }
}

/** How a scope reads on a page: the option's label when the picker knows it, else its type and id. */
export function scopeText(options: ScopeOption[], type: string, id: string): string {
  if (type === "org") return options[0]?.label ?? "Organization";
  return options.find((o) => o.value === id)?.label ?? `${type} ${id}`;
}

/** A role's name from its id (built-in roles by name; custom ones from the names given). */
export function roleText(roleId: string, names: Map<string, string> = new Map()): string {
  return findBuiltinRole(roleId)?.name ?? names.get(roleId) ?? roleId;
}
