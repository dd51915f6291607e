import { z } from "@hono/zod-openapi";
import type { AccessToken, Environment, Org, Project, RoleAssignment, ServiceAccount } from "../../db/schema.ts";
import { accountStatus } from "../../domain/registry/accounts.ts";
import { policyOf } from "../../domain/registry/orgs.ts";
import { tokenStatus } from "../../domain/credentials/tokens.ts";
import { refilled } from "../../domain/credentials/token-limits.ts";
import { findBuiltinRole } from "../../domain/access/permissions.ts";
import { iso, matching } from "./common.ts";

/** Response shapes (exported for the tests) and the one mapping from rows to each. */

const timestamp = z.string().openapi({ format: "date-time", example: "2026-11-23T12:00:00.000Z" });

/** An RFC 6749 scope-token (NQCHAR, no spaces or quotes), 1-128 characters. */
export const scopeName = matching(z.string().min(1).max(128), /^[\x21\x23-\x5b\x5d-\x7e]+$/, "must be 1-128 printable ASCII characters, without spaces, quotes or backslashes").openapi({ example: "billing:read" });

export const jwtQuotaSchema = z
  .object({
    perMinute: z.number().int().min(1).max(1_000_000).optional(),
    perDay: z.number().int().min(1).max(100_000_000).optional(),
  })
  .strict()
  .refine((q) => q.perMinute !== undefined || q.perDay !== undefined, "Give perMinute, perDay or both")
  .openapi("JwtQuota", { description: "At most this many JWTs per minute and per day; over it 429 with Retry-After and RateLimit headers (bounds: docs/quotas.md)", example: { perMinute: 60, perDay: 10_000 } });

export const orgPolicySchema = z.object({
  maxActiveTokensPerAccount: z.number().int().min(1).max(10).openapi({ description: "Active access tokens one account may hold (the one-active-token rule is 1)" }),
  maxTokenLifetimeDays: z.number().int().min(1).max(3650).nullable().openapi({ description: "Cap on an access token's lifetime" }),
  maxKeyLifetimeDays: z.number().int().min(1).max(3650).nullable().openapi({ description: "Cap on a public key's lifetime: keys without expiresAt get it, longer ones are refused (422); null for none" }),
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
  jwtQuota: jwtQuotaSchema.nullable().optional().openapi({ description: "The JWT quota of accounts without their own (null: none)" }),
  jwtClaims: z
    .array(
      z
        .object({
          claim: z.string().min(1).max(64).openapi({ description: "The claim's name in the JWT: `^[a-z][a-z0-9_]{0,31}$`, never a registered claim or one Keyward writes (422 claim_name_reserved)", example: "team" }),
          from: z.string().min(1).max(80).openapi({ description: "`externalId`, `projectId`, `environmentId` or `metadata.<key>`", example: "metadata.team" }),
        })
        .strict()
        .openapi("ClaimMapping"),
    )
    .max(50)
    .optional()
    .openapi({
      description: "Custom claims: which account attributes go into the org's JWTs, at most 10 (422 invalid_claim_mapping). A source without a value leaves its claim out. See docs/claims.md",
      example: [{ claim: "team", from: "metadata.team" }],
    }),
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
    jwtQuota: jwtQuotaSchema.nullable().openapi({ description: "The account's own JWT quota (null: its org policy's jwtQuota)" }),
    requireDpop: z.boolean().openapi({ description: "Every JWT of the account is DPoP-bound (RFC 9449): /oauth/token refuses it one without a proof" }),
    externalId: z.string().nullable(),
    metadata: z.record(z.string(), z.string()).openapi({ description: "The account's metadata (custom claims' source)" }),
    jwksUri: z.string().nullable().openapi({ description: "A JWKS URL whose keys also authenticate the account by private_key_jwt (docs/keys.md)" }),
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
  jwtQuota: a.jwtQuota ?? null,
  requireDpop: a.requireDpop ?? false,
  externalId: a.externalId,
  metadata: a.metadata ?? {},
  jwksUri: a.jwksUri,
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
    scopes: z.array(z.string()).nullable().openapi({ description: "The token's own scopes (null: its account's); at use it may do what both allow" }),
    allowedCidrs: z.array(z.string()).nullable().openapi({ description: "The token's own networks (null: its account's); at use both apply" }),
    remainingUses: z.number().int().nullable().openapi({ description: "Uses left (null: unlimited); may trail the live count by a moment" }),
    refill: z
      .object({ amount: z.number().int(), intervalSeconds: z.number().int(), nextRefillAt: timestamp })
      .nullable()
      .openapi({ description: "Every intervalSeconds the remaining uses are set back to amount" }),
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
  ...usesView(t, now),
});

function usesView(t: AccessToken, now: number): Pick<TokenDto, "scopes" | "allowedCidrs" | "remainingUses" | "refill"> {
  const limited = t.remainingUses !== null && t.remainingUses !== undefined;
  const counter = limited ? refilled({ remaining: t.remainingUses!, refillAmount: t.refillAmount, refillIntervalMs: t.refillIntervalMs, lastRefillAt: t.lastRefillAt }, now) : null;
  return {
    scopes: t.scopes ?? null,
    allowedCidrs: t.allowedCidrs ?? null,
    remainingUses: counter?.remaining ?? null,
    refill:
      counter && counter.refillAmount !== null && counter.refillIntervalMs && counter.lastRefillAt !== null
        ? { amount: counter.refillAmount, intervalSeconds: counter.refillIntervalMs / 1000, nextRefillAt: iso(counter.lastRefillAt + counter.refillIntervalMs)! }
        : null,
  };
}

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
