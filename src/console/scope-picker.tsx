/** @jsxImportSource hono/jsx */
import { listEnvironments, listProjects } from "../domain/registry/projects.ts";
import type { AssignmentInput } from "../domain/access/role-assignments.ts";
import { consoleCtx, principalOf, type ConsoleContext } from "./context.ts";
import { Select, type FormErrors } from "./forms.tsx";

/**
 * A scope picker: one select of the org, its projects and their environments. Its values are
 * `org`, `project:<id>` and `environment:<id>`; `scopeInput` turns one into the API's scope.
 */
export interface ScopeOption {
  value: string;
  label: string;
}

/** The scopes of an org the principal can read (the org alone when it cannot list projects). */
export async function scopeOptions(c: ConsoleContext, orgId: string): Promise<ScopeOption[]> {
  const ctx = consoleCtx(c);
  const options: ScopeOption[] = [{ value: "org", label: "The whole organization" }];
  try {
    const projects = await listProjects(ctx, principalOf(c), orgId, { limit: 200 });
    const envs = await Promise.all(projects.items.map((p) => listEnvironments(ctx, principalOf(c), orgId, p.id, { limit: 200 })));
    projects.items.forEach((p, i) => {
      options.push({ value: `project:${p.id}`, label: `Project ${p.name}` });
      for (const e of envs[i]!.items) options.push({ value: `environment:${e.id}`, label: `Project ${p.name} / environment ${e.name}` });
    });
  } catch {
    // Without orgs.read at org level the org is the only scope offered; the service decides anyway.
  }
  return options;
}

/** The API's scope of a picker value (undefined: the org). */
export function scopeInput(value: string | undefined): AssignmentInput["scope"] {
  if (!value || value === "org") return undefined;
  const [type, id] = value.split(":", 2);
  if ((type === "project" || type === "environment") && id) return { type, id };
  return { type: "org", id: value };
}

export const ScopeSelect = (p: { name?: string; label?: string; options: ScopeOption[]; value?: string | undefined; errors?: FormErrors | undefined; hint?: string }) => (
  <Select name={p.name ?? "scope"} label={p.label ?? "Scope"} options={p.options} value={p.value ?? "org"} errors={p.errors} hint={p.hint} />
);
