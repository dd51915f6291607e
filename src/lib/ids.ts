import { randomBase62 } from "./crypto.ts";

export const ID_PREFIXES = {
  org: "org_",
  project: "prj_",
  environment: "env_",
  account: "sa_",
  token: "tok_",
  key: "key_",
  role: "role_",
  roleAssignment: "ra_",
  invitation: "inv_",
  event: "evt_",
  federatedCredential: "fed_",
  webhook: "whk_",
  webhookDelivery: "whd_",
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

/** A random id typed by its prefix (22 base62 characters, about 131 bits). */
export function newId(kind: IdKind): string {
  return ID_PREFIXES[kind] + randomBase62(22);
}

/** Whether a string has the shape of an id of the given kind (used to 404 early on garbage). */
export function isId(kind: IdKind, value: string): boolean {
  const prefix = ID_PREFIXES[kind];
  return value.startsWith(prefix) && /^[0-9A-Za-z_-]{1,64}$/.test(value.slice(prefix.length));
}
