import { z } from "@hono/zod-openapi";
import type { AccessToken, Environment, Org, Project, RoleAssignment, ServiceAccount } from "../../db/schema.ts";
import { accountStatus } from "../../domain/registry/accounts.ts";
import { policyOf } from "../../domain/registry/orgs.ts";
import { tokenStatus } from "../../domain/credentials/tokens.ts";
import { findBuiltinRole } from "../../domain/access/permissions.ts";
import { iso, matching } from "./common.ts";

/** Response shapes (exported for the tests) and the one mapping from rows to each. */

const timestamp = z.string().openapi({ format: "date-time", example: "2026-11-23T12:00:00.000Z" });

/** An RFC 6749 scope-token (NQCHAR, no spaces or quotes), 1-128 characters. */
export const scopeName = matching(z.string().min(1).max(128), /^[\x21\x23-\x5b\x5d-\x7e]+$/, "must be 1-128 printable ASCII characters, without spaces, quotes or backslashes").openapi({ example: "billing:read" });

export const orgPolicySchema = z.object({
  maxActiveTokensPerAccount: z.number().int().min(1).max(10).openapi({ description: "Active access tokens one account may hold (the one-active-token rule is 1)" }),
  maxTokenLifetimeDays: z.number().int().min(1).max(3650).nullable().openapi({ description: "Cap on an access token's lifetime" }),
  unusedTokenRevokeAfterDays: z.number().int().min(1).max(3650).nullable(),
  scopes: z
    .array(scopeName)
    .max(100)
    .openapi({ description: "Scopes of the org's downstream APIs that its accounts' allowedScopes may name; never a Keyward operation (those come from roles)" }),
  expiryWarningDays: z
    .array(z.number().int().min(1).max(90))
    .max(5)
    .optional()
    .openapi({ description: "Days before a token's or an account's expiry at which `token.expiring` / `account.expiring` webhook events are sent, each once (default [7, 1]; [] for none)" }),
  requireDpop: z.boolean().optional().openapi({ description: "The requireDpop of an account created without one (default false): its JWTs must be DPoP-bound" }),
});

export const orgSchema = z
  .object({ id: z.string(), slug: z.string(), name: z.string(), policy: orgPolicySchema, createdAt: timestamp, updatedAt: timestamp })
  .openapi("Org");
export type OrgDto = z.infer<typeof orgSchema>;
export const toOrgDto = (o: Org): OrgDto => ({
  id: o.id,
  slug: o.slug,
  name: o.name,
  policy: policyOf(o),
  createdAt: iso(o.createdAt)!,
  updatedAt: iso(o.updatedAt)!,
});

export const projectSchema = z.object({ id: z.string(), orgId: z.string(), slug: z.string(), name: z.string(), createdAt: timestamp }).openapi("Project");
export const toProjectDto = (p: Project) => ({ id: p.id, orgId: p.orgId, slug: p.slug, name: p.name, createdAt: iso(p.createdAt)! });

export const environmentSchema = z
  .object({ id: z.string(), orgId: z.string(), projectId: z.string(), slug: z.string(), name: z.string(), createdAt: timestamp })
  .openapi("Environment");
export const toEnvironmentDto = (e: Environment) => ({ ...toProjectDto({ ...e }), projectId: e.projectId });

export const accountSchema = z
  .object({
    id: z.string().openapi({ example: "sa_3kTx0bq8Rkz2YH1v9dW4cN" }),
    orgId: z.string().nullable(),
    name: z.string(),
    email: z.string(),
    displayName: z.string().nullable(),
    description: z.string().nullable(),
    groups: z.array(z.string()),
    allowedScopes: z.array(z.string()),
    allowedCidrs: z.array(z.string()),
    requireDpop: z.boolean().openapi({ description: "Every JWT of the account is DPoP-bound (RFC 9449): /oauth/token refuses it one without a proof" }),
    externalId: z.string().nullable(),
    status: z.enum(["active", "disabled", "expired"]),
    expiresAt: timestamp.nullable(),
    createdAt: timestamp,
    createdBy: z.string(),
    updatedAt: timestamp,
    lastUsedAt: timestamp.nullable(),
  })
  .openapi("ServiceAccount");
export type AccountDto = z.infer<typeof accountSchema>;
export const toAccountDto = (a: ServiceAccount, now = Date.now()): AccountDto => ({
  id: a.id,
  orgId: a.orgId,
  name: a.name,
  email: a.email,
  displayName: a.displayName,
  description: a.description,
  groups: a.groups,
  allowedScopes: a.allowedScopes,
  allowedCidrs: a.allowedCidrs,
  requireDpop: a.requireDpop ?? false,
  externalId: a.externalId,
  status: accountStatus(a, now),
  expiresAt: iso(a.expiresAt),
  createdAt: iso(a.createdAt)!,
  createdBy: a.createdBy,
  updatedAt: iso(a.updatedAt)!,
  lastUsedAt: iso(a.lastUsedAt),
});

export const tokenSchema = z
  .object({
    id: z.string().openapi({ example: "tok_5Hq2ZxV0aa1PqR7sLm3nB8" }),
    accountId: z.string(),
    name: z.string().nullable(),
    hint: z.string().openapi({ example: "sat_AbC1…wxYz" }),
    status: z.enum(["active", "revoked", "expired"]),
    expiresAt: timestamp.nullable(),
    createdAt: timestamp,
    createdBy: z.string(),
    regeneratedAt: timestamp.nullable(),
    previousSecretExpiresAt: timestamp.nullable().openapi({ description: "End of the grace period of the previous secret after a regenerate" }),
    revokedAt: timestamp.nullable(),
    lastUsedAt: timestamp.nullable(),
  })
  .openapi("AccessToken");
export type TokenDto = z.infer<typeof tokenSchema>;
export const toTokenDto = (t: AccessToken, now = Date.now()): TokenDto => ({
  id: t.id,
  accountId: t.accountId,
  name: t.name,
  hint: t.hint,
  status: tokenStatus(t, now),
  expiresAt: iso(t.expiresAt),
  createdAt: iso(t.createdAt)!,
  createdBy: t.createdBy,
  regeneratedAt: iso(t.regeneratedAt),
  previousSecretExpiresAt: t.previousSecretExpiresAt && t.previousSecretExpiresAt > now ? iso(t.previousSecretExpiresAt) : null,
  revokedAt: iso(t.revokedAt),
  lastUsedAt: iso(t.lastUsedAt),
});

export const issuedTokenSchema = tokenSchema
  .extend({
    token: z.string().openapi({
      description: "The secret. Shown once, here; only its SHA-256 is stored.",
      example: "sat_<secret shown once>",
    }),
  })
  .openapi("IssuedAccessToken");
export type IssuedTokenDto = z.infer<typeof issuedTokenSchema>;
export const toIssuedTokenDto = (t: AccessToken, secret: string): IssuedTokenDto => ({ ...toTokenDto(t), token: secret });

export const assignmentSchema = z
  .object({
    id: z.string(),
    accountId: z.string(),
    roleId: z.string(),
    role: z.string(),
    scope: z.object({ type: z.enum(["org", "project", "environment"]), id: z.string() }),
    createdAt: timestamp,
    createdBy: z.string(),
  })
  .openapi("RoleAssignment");
export const toAssignmentDto = (r: RoleAssignment & { roleName?: string | null }) => ({
  id: r.id,
  accountId: r.accountId,
  roleId: r.roleId,
  role: findBuiltinRole(r.roleId)?.name ?? r.roleName ?? r.roleId,
  scope: { type: r.scopeType, id: r.scopeId },
  createdAt: iso(r.createdAt)!,
  createdBy: r.createdBy,
});
