import { findBuiltinRole } from "../domain/access/permissions.ts";
import type { ScopeOption } from "./scope-picker.tsx";

/** How the access pages name scopes and roles (the picker itself is scope-picker.tsx). */

/** How a scope reads on a page: its picker label when the picker has it, else its type and id. */
export function scopeText(options: ScopeOption[], type: string, id: string): string {
  if (type === "org") return options.find((o) => o.value === "org")?.label ?? "The whole organization";
  return options.find((o) => o.value === `${type}:${id}`)?.label ?? `${type} ${id}`;
}

/** A role's name from its id (built-in roles by name; custom ones from the names given). */
export function roleText(roleId: string, names: Map<string, string> = new Map()): string {
  return findBuiltinRole(roleId)?.name ?? names.get(roleId) ?? roleId;
}
