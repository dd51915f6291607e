import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { sql } from "drizzle-orm";

/** Timestamps are milliseconds since the epoch; the API renders them as ISO-8601 UTC. */
const ms = (name: string) => integer(name, { mode: "number" });

export interface OrgPolicy {
  /** The one-active-token rule: how many active access tokens one account may hold (default 1). */
  maxActiveTokensPerAccount: number;
  /** Upper bound on an access token's lifetime, in days; null for none. */
  maxTokenLifetimeDays: number | null;
  /** Upper bound on a public key's lifetime, in days: keys default to it and may not ask for longer; null for none. */
  maxKeyLifetimeDays: number | null;
  /** Revoke tokens unused for this many days (cron, later); null for off. */
  unusedTokenRevokeAfterDays: number | null;
  /**
   * The scopes of the org's downstream APIs that its accounts' allowedScopes may name (never a
   * Keyward operation: those come from roles). Stored policies from before it read as [].
   */
  scopes: string[];
  /**
   * Days before a token's or an account's expiry at which the cron writes `access_token.expiring` /
   * `service_account.expiring` (webhook events), each threshold once; absent: [7, 1].
   */
  expiryWarningDays?: number[];
  /** The `requireDpop` of an account created without one (docs/dpop.md); absent: false. */
  requireDpop?: boolean;
  /** The JWT quota of the org's accounts that have none of their own (docs/quotas.md); absent or null: none. */
  jwtQuota?: JwtQuota | null;
  /**
   * Custom claims: which account attributes go into the org's JWTs, under which names (checked by
   * src/domain/signing/custom-claims.ts; never a registered claim or one of Keyward's own). Absent: none.
   */
  jwtClaims?: ClaimMapping[];
}

/** One custom claim: its name in the JWT and where its value comes from. */
export interface ClaimMapping {
  claim: string;
  /** `externalId`, `projectId`, `environmentId` or `metadata.<key>`. */
  from: string;
}

export const orgs = sqliteTable("orgs", {
  id: text("id").primaryKey(),
  slug: text("slug").notNull().unique(),
  name: text("name").notNull(),
  policy: text("policy", { mode: "json" }).$type<OrgPolicy>().notNull(),
  createdAt: ms("created_at").notNull(),
  createdBy: text("created_by").notNull(),
  updatedAt: ms("updated_at").notNull(),
});

export const projects = sqliteTable(
  "projects",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    createdAt: ms("created_at").notNull(),
    createdBy: text("created_by").notNull(),
  },
  (t) => [uniqueIndex("projects_org_slug").on(t.orgId, t.slug)],
);

export const environments = sqliteTable(
  "environments",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    projectId: text("project_id").notNull(),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    createdAt: ms("created_at").notNull(),
    createdBy: text("created_by").notNull(),
  },
  (t) => [uniqueIndex("environments_project_slug").on(t.projectId, t.slug), index("environments_org").on(t.orgId)],
);

/** At most this many JWTs per minute and per day (docs/quotas.md); an absent bound is no bound. */
export interface JwtQuota {
  perMinute?: number | undefined;
  perDay?: number | undefined;
}

export type AccountStatus = "active" | "disabled";
export type TokenEndpointAuthMethod = "client_secret_basic" | "client_secret_post" | "private_key_jwt";

export const serviceAccounts = sqliteTable(
  "service_accounts",
  {
    id: text("id").primaryKey(),
    /** Null for platform-level accounts (the bootstrap root and `/api/service-accounts`). */
    orgId: text("org_id"),
    name: text("name").notNull(),
    /** `<org id or empty>/<lowercased name>`: names are unique per org, case-insensitively. */
    nameKey: text("name_key").notNull().unique(),
    email: text("email").notNull().unique(),
    displayName: text("display_name"),
    description: text("description"),
    groups: text("groups", { mode: "json" }).$type<string[]>().notNull(),
    externalId: text("external_id"),
    /** A small string map (custom claims' source): at most 20 keys, values up to 256 characters, 2 KiB in all. */
    metadata: text("metadata", { mode: "json" }).$type<Record<string, string>>().notNull().default({}),
    status: text("status").$type<AccountStatus>().notNull(),
    expiresAt: ms("expires_at"),
    /** Networks the account's credentials may be used from (CIDRs); empty for anywhere. */
    allowedCidrs: text("allowed_cidrs", { mode: "json" }).$type<string[]>().notNull().default([]),
    /** Extra scopes the account may put in its JWTs (e.g. `service:computational-governance`). */
    allowedScopes: text("allowed_scopes", { mode: "json" }).$type<string[]>().notNull().default([]),
    /** OAuth client authentication the account is registered for (platform accounts); null allows any. */
    tokenEndpointAuthMethod: text("token_endpoint_auth_method").$type<TokenEndpointAuthMethod>(),
    /** Every JWT of the account must be DPoP-bound (RFC 9449; docs/dpop.md). */
    requireDpop: integer("require_dpop", { mode: "boolean" }).notNull().default(false),
    /** Operations held platform-wide (platform accounts only), e.g. `platform.root`. */
    platformPermissions: text("platform_permissions", { mode: "json" }).$type<string[]>(),
    /** JWTs the account may be issued per minute and per day; null: the org policy's default. */
    jwtQuota: text("jwt_quota", { mode: "json" }).$type<JwtQuota>(),
    /** A JWKS URL (https) the account's private_key_jwt keys are also fetched from; null for none. */
    jwksUri: text("jwks_uri"),
    createdAt: ms("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    updatedAt: ms("updated_at").notNull(),
    lastUsedAt: ms("last_used_at"),
  },
  (t) => [
    index("service_accounts_org_created").on(t.orgId, t.createdAt, t.id),
    // migrations/0013_cron_indexes.sql: the expireAccounts job's candidates.
    index("service_accounts_expires").on(t.expiresAt).where(sql`${t.expiresAt} IS NOT NULL`),
  ],
);

export type TokenStatus = "active" | "revoked" | "expired";

export const accessTokens = sqliteTable(
  "access_tokens",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id").notNull(),
    orgId: text("org_id"),
    name: text("name"),
    /** SHA-256 (hex) of the current secret; the secret itself is never stored. */
    secretHash: text("secret_hash").notNull().unique(),
    hint: text("hint").notNull(),
    status: text("status").$type<TokenStatus>().notNull(),
    expiresAt: ms("expires_at"),
    /** The previous secret during a regenerate grace period. */
    previousSecretHash: text("previous_secret_hash"),
    previousSecretExpiresAt: ms("previous_secret_expires_at"),
    createdAt: ms("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    regeneratedAt: ms("regenerated_at"),
    revokedAt: ms("revoked_at"),
    revokedBy: text("revoked_by"),
    lastUsedAt: ms("last_used_at"),
    /** The token's own scopes (a subset of its account's at creation); null for the account's. */
    scopes: text("scopes", { mode: "json" }).$type<string[]>(),
    /** The token's own networks (within its account's); null for the account's. */
    allowedCidrs: text("allowed_cidrs", { mode: "json" }).$type<string[]>(),
    /**
     * Uses left; null for unlimited. The account's Durable Object counts them (its storage is the
     * live count) and writes the count here after each use, for display and review.
     */
    remainingUses: integer("remaining_uses"),
    /** The uses given at creation (or the refill amount): "near exhaustion" is measured against it. */
    maxUses: integer("max_uses"),
    /** Refill: every refillIntervalMs the remaining uses are set back to refillAmount. */
    refillAmount: integer("refill_amount"),
    refillIntervalMs: integer("refill_interval_ms"),
    lastRefillAt: ms("last_refill_at"),
  },
  (t) => [
    index("access_tokens_account").on(t.accountId, t.status),
    index("access_tokens_status_expiry").on(t.status, t.expiresAt),
    // migrations/0008_leaks.sql: leaked-token reports look up previous secrets too.
    index("access_tokens_previous_secret_hash").on(t.previousSecretHash).where(sql`${t.previousSecretHash} IS NOT NULL`),
    // migrations/0013_cron_indexes.sql: the revokeUnused job's candidates per org.
    index("access_tokens_org_unused").on(t.orgId, t.status, sql`coalesce(${t.lastUsedAt}, ${t.createdAt})`),
  ],
);

export type PublicKeyAlg = "ES256" | "RS256" | "EdDSA";
export type PublicKeyStatus = "active" | "disabled" | "expired";

/** Public keys registered on an account, for `private_key_jwt` client authentication. */
export const publicKeys = sqliteTable(
  "public_keys",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id").notNull(),
    orgId: text("org_id"),
    /** The JWT `kid` clients put in their assertions (given, or the RFC 7638 thumbprint). */
    kid: text("kid").notNull(),
    alg: text("alg").$type<PublicKeyAlg>().notNull(),
    jwk: text("jwk", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    /** SHA-256 JWK thumbprint (RFC 7638), base64url. */
    fingerprint: text("fingerprint").notNull(),
    name: text("name"),
    /** After this instant (epoch ms) the key no longer authenticates; null for never. */
    expiresAt: ms("expires_at"),
    /** `disabled` is reversible; `expired` (set by the cron past expiresAt) is final. */
    status: text("status").$type<PublicKeyStatus>().notNull().default("active"),
    updatedAt: ms("updated_at"),
    createdAt: ms("created_at").notNull(),
    createdBy: text("created_by").notNull(),
  },
  (t) => [
    uniqueIndex("public_keys_account_kid").on(t.accountId, t.kid),
    index("public_keys_account").on(t.accountId),
    index("public_keys_expiry").on(t.expiresAt).where(sql`${t.status} = 'active' AND ${t.expiresAt} IS NOT NULL`),
    index("public_keys_org").on(t.orgId, t.createdAt, t.id),
  ],
);

/**
 * Trust policies (federated credentials): which external OIDC tokens (a CI job's, a Kubernetes
 * workload's) may act as the account. No secret is stored; deleting the account deletes them.
 */
export const federatedCredentials = sqliteTable(
  "federated_credentials",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    serviceAccountId: text("service_account_id").notNull(),
    name: text("name").notNull(),
    description: text("description"),
    /** The external issuer, exactly as its tokens' `iss` says (one of FEDERATION_ALLOWED_ISSUERS). */
    issuer: text("issuer").notNull(),
    /** The `aud` values accepted (any one of them). */
    audiences: text("audiences", { mode: "json" }).$type<string[]>().notNull(),
    /** The exact `sub`, or null when only `claims` constrain the token. */
    subject: text("subject"),
    /** Claim name -> pattern (exact, or a glob: claim-conditions.ts); every one must hold. */
    claims: text("claims", { mode: "json" }).$type<Record<string, string>>().notNull().default({}),
    /** Tokens issued (`iat`) longer ago than this are refused; null for no bound beyond `exp`. */
    maxTokenAgeSeconds: integer("max_token_age_seconds"),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    /** True: a token's `jti` is spent by its first accepted presentation. False: a token may be exchanged again while it lives (Kubernetes projected tokens, re-read from a file). */
    singleUse: integer("single_use", { mode: "boolean" }).notNull().default(true),
    createdAt: ms("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [uniqueIndex("federated_credentials_account_name").on(t.serviceAccountId, t.name), index("federated_credentials_issuer").on(t.issuer)],
);

export type ScopeType = "org" | "project" | "environment";

/** Custom roles of an org (the built-in ones live in code). */
export const roles = sqliteTable(
  "roles",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    name: text("name").notNull(),
    description: text("description"),
    operations: text("operations", { mode: "json" }).$type<string[]>().notNull(),
    assignableToServiceAccounts: integer("assignable_to_service_accounts", { mode: "boolean" }).notNull(),
    createdAt: ms("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [uniqueIndex("roles_org_name").on(t.orgId, t.name)],
);

export type InvitationState = "pending" | "accepted" | "declined" | "cancelled";

/**
 * An org inviting a service account of another org, by email, to a role. The invitation is
 * addressed to the email; it is bound to the account with that email when one exists (at
 * invitation time, or when an account of another org is created with it later).
 */
export const invitations = sqliteTable(
  "invitations",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    /** The invitee's email, lowercased, as the inviting org gave it. */
    email: text("email").notNull(),
    /** The invited account, once an account of another org has the email; null while none does. */
    accountId: text("account_id"),
    accountOrgId: text("account_org_id"),
    roleId: text("role_id").notNull(),
    scopeType: text("scope_type").$type<ScopeType>().notNull(),
    scopeId: text("scope_id").notNull(),
    state: text("state").$type<InvitationState>().notNull(),
    /** The role assignment an accepted invitation created. */
    assignmentId: text("assignment_id"),
    createdAt: ms("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    respondedAt: ms("responded_at"),
    respondedBy: text("responded_by"),
  },
  (t) => [index("invitations_org").on(t.orgId, t.createdAt), index("invitations_account").on(t.accountId, t.state), index("invitations_email").on(t.email, t.state)],
);

export const roleAssignments = sqliteTable(
  "role_assignments",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id").notNull(),
    orgId: text("org_id").notNull(),
    roleId: text("role_id").notNull(),
    scopeType: text("scope_type").$type<ScopeType>().notNull(),
    scopeId: text("scope_id").notNull(),
    createdAt: ms("created_at").notNull(),
    createdBy: text("created_by").notNull(),
  },
  (t) => [
    uniqueIndex("role_assignments_unique").on(t.accountId, t.roleId, t.scopeType, t.scopeId),
    index("role_assignments_org").on(t.orgId, t.roleId),
  ],
);

export const auditEvents = sqliteTable(
  "audit_events",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id"),
    actorId: text("actor_id").notNull(),
    action: text("action").notNull(),
    targetType: text("target_type").notNull(),
    targetId: text("target_id").notNull(),
    requestId: text("request_id"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    details: text("details", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    createdAt: ms("created_at").notNull(),
  },
  (t) => [
    index("audit_events_org_time").on(t.orgId, t.createdAt, t.id),
    index("audit_events_target").on(t.targetId),
    index("audit_events_time").on(t.createdAt),
  ],
);

/** Exchanges (JWTs issued) per account per hour, for review; flushed from isolates at most once a minute. */
export const usageCounters = sqliteTable(
  "usage_counters",
  {
    accountId: text("account_id").notNull(),
    /** Hours since the epoch. */
    hour: integer("hour").notNull(),
    exchanges: integer("exchanges").notNull(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.hour] }), index("usage_counters_hour").on(t.hour)],
);

/** Platform-wide one-time facts, e.g. `bootstrap` (the primary key makes bootstrap race-safe). */
export const systemState = sqliteTable("system_state", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  createdAt: ms("created_at").notNull(),
});

/** A webhook signing secret, wrapped (AES-256-GCM under SIGNING_KEY_ENCRYPTION_KEY, the endpoint id as additional data). */
export interface WrappedWebhookSecret {
  iv: string;
  data: string;
  createdAt: number;
  /** Null for the current secret; a rotated-out secret still signs until then (the grace period). */
  expiresAt: number | null;
}

/** Webhook endpoints of an org (docs/webhooks.md). */
export const webhookEndpoints = sqliteTable(
  "webhook_endpoints",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    url: text("url").notNull(),
    description: text("description"),
    /** Event types of the catalogue, or ["*"] for all. */
    events: text("events", { mode: "json" }).$type<string[]>().notNull(),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    /** The current secret first, then a rotated-out one during its grace period. */
    secrets: text("secrets", { mode: "json" }).$type<WrappedWebhookSecret[]>().notNull(),
    /** When the current run of failed attempts began (null after a success). */
    failingSince: ms("failing_since"),
    disabledReason: text("disabled_reason"),
    createdAt: ms("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [index("webhook_endpoints_org").on(t.orgId, t.createdAt, t.id)],
);

export type WebhookDeliveryState = "pending" | "delivered" | "failed";

/**
 * The outbox: one row per (endpoint, event), inserted by the `webhook_outbox` trigger on
 * audit_events (migrations/0006_webhooks.sql) in the transaction of the change itself.
 */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    endpointId: text("endpoint_id").notNull(),
    orgId: text("org_id").notNull(),
    /** The audit event (`evt_...`): the `webhook-id` of every attempt. */
    eventId: text("event_id").notNull(),
    eventType: text("event_type").notNull(),
    state: text("state").$type<WebhookDeliveryState>().notNull().default("pending"),
    /** Attempts since the retry window began (a manual retry starts a new window). */
    attempts: integer("attempts").notNull().default(0),
    windowStartedAt: ms("window_started_at").notNull(),
    nextAttemptAt: ms("next_attempt_at"),
    /** When the row was last sent to the queue; null: it never reached the queue (the cron sends it). */
    enqueuedAt: ms("enqueued_at"),
    /** A consumer is sending it until then; no other one may. */
    leaseUntil: ms("lease_until"),
    lastStatus: integer("last_status"),
    lastError: text("last_error"),
    createdAt: ms("created_at").notNull(),
    deliveredAt: ms("delivered_at"),
  },
  (t) => [
    uniqueIndex("webhook_deliveries_endpoint_event").on(t.endpointId, t.eventId),
    index("webhook_deliveries_endpoint_time").on(t.endpointId, t.createdAt, t.id),
  ],
);

/** Every delivery attempt: when, how long, the status or the reason it got none. */
export const webhookAttempts = sqliteTable(
  "webhook_attempts",
  {
    deliveryId: text("delivery_id").notNull(),
    attempt: integer("attempt").notNull(),
    startedAt: ms("started_at").notNull(),
    durationMs: integer("duration_ms").notNull(),
    status: integer("status"),
    error: text("error"),
  },
  (t) => [primaryKey({ columns: [t.deliveryId, t.startedAt, t.attempt] })],
);

/** Which audit actions are webhook events (a copy of EVENT_CATALOGUE, read by the outbox trigger). */
export const webhookEventTypes = sqliteTable("webhook_event_types", {
  action: text("action").primaryKey(),
  eventType: text("event_type").notNull(),
});

export type CredentialType = "access_token" | "public_key" | "federated_credential";

/**
 * The status list index of every credential (migrations/0007_status_list.sql; docs/status-list.md).
 * `revoked` is bit `idx` of the lists: set by the triggers of that migration (token revoked,
 * expired or deleted; account disabled or deleted), cleared when the account is enabled again.
 * Rows are never deleted.
 */
export const credentialStatus = sqliteTable(
  "credential_status",
  {
    idx: integer("idx").primaryKey(),
    credentialType: text("credential_type").$type<CredentialType>().notNull(),
    credentialId: text("credential_id").notNull(),
    accountId: text("account_id").notNull(),
    revoked: integer("revoked", { mode: "boolean" }).notNull().default(false),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [uniqueIndex("credential_status_credential").on(t.credentialId), index("credential_status_account").on(t.accountId)],
);

/** The next status list index to hand out (one row, id 0). */
export const credentialStatusSeq = sqliteTable("credential_status_seq", {
  id: integer("id").primaryKey(),
  nextIdx: integer("next_idx").notNull(),
});

export type Org = typeof orgs.$inferSelect;
export type Project = typeof projects.$inferSelect;
export type Environment = typeof environments.$inferSelect;
export type ServiceAccount = typeof serviceAccounts.$inferSelect;
export type AccessToken = typeof accessTokens.$inferSelect;
export type RoleAssignment = typeof roleAssignments.$inferSelect;
export type AuditEvent = typeof auditEvents.$inferSelect;
export type PublicKey = typeof publicKeys.$inferSelect;
export type Role = typeof roles.$inferSelect;
export type Invitation = typeof invitations.$inferSelect;
export type FederatedCredential = typeof federatedCredentials.$inferSelect;
export type WebhookEndpoint = typeof webhookEndpoints.$inferSelect;
export type WebhookDelivery = typeof webhookDeliveries.$inferSelect;
export type WebhookAttempt = typeof webhookAttempts.$inferSelect;
export type CredentialStatus = typeof credentialStatus.$inferSelect;
