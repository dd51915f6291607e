import type { Child } from "hono/jsx";
import type { ServiceAccount } from "../db/schema.ts";
import type { Can, ConsoleContext } from "./context.ts";

/**
 * The slot of the service-account page for sections other page groups own ("Access" from
 * access.tsx, "Federated credentials" later): a group adds its section once, at import
 * (`addAccountSection`), and routes its own forms; the account page renders every section in
 * `order` after its own (details, tokens, keys).
 */
export interface AccountSectionInput {
  c: ConsoleContext;
  org: { id: string; slug: string; name: string };
  account: ServiceAccount;
  /** What the signed-in principal may do at the org level. */
  can: Can;
}

export interface AccountSection {
  /** Unique; also the section's HTML id. */
  id: string;
  /** Lower comes first (Access: 10, Federated credentials: 20). */
  order: number;
  render: (input: AccountSectionInput) => Child | Promise<Child>;
}

const sections: AccountSection[] = [];

/** Adds a section to the account page (a second add with the same id replaces the first). */
export function addAccountSection(section: AccountSection): void {
  const at = sections.findIndex((s) => s.id === section.id);
  if (at >= 0) sections.splice(at, 1);
  sections.push(section);
  sections.sort((a, b) => a.order - b.order);
}

/** The sections, in order. */
export const accountSections = (): readonly AccountSection[] => sections;
