import { and, eq, gt, inArray, isNotNull, isNull, lte, or, sql, type SQL } from "drizzle-orm";
import { invitations, roles, serviceAccounts, type JwtQuota, type Org, type RoleAssignment, type ServiceAccount } from "../../db/schema.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { randomBase62 } from "../../lib/crypto.ts";
import { newId } from "../../lib/ids.ts";
import { keyset, toPage, type PageQuery } from "../shared/pagination.ts";
import { isUniqueViolation } from "../shared/sql-errors.ts";
import { accountObject, unwrap } from "../credentials/account-object.ts";
import { assertJwksUri } from "../credentials/client-jwks.ts";
import { auditInsert } from "../audit/audit-log.ts";
import type { Ctx } from "../shared/context.ts";
import type { AccountPatch } from "../credentials/plans.ts";
import { assertDeclaredScopes, orgFor, orgForWith, policyOf, visibleOrg } from "./orgs.ts";
import { findBuiltinRole, withPermission, type Gate } from "../access/permissions.ts";
import type { Principal } from "../shared/principal.ts";
import { assignmentInserts, guardTarget, listAssignments, planAssignments, type AssignmentInput, type GuardEffect } from "../access/role-assignments.ts";
import { exchangeCounts } from "../credentials/usage.ts";
import { checkMetadata } from "../signing/custom-claims.ts";
import { claimsOf } from "../access/claims.ts";
import type { AccountClaims } from "../credentials/kv-records.ts";

const DAY_MS = 86_400_000;
export const MAX_VALIDITY_DAYS = 730;

export type AccountView = "active" | "disabled" | "expired";

/** The status the API shows: an active account past its validity is `expired`. */
export function accountStatus(account: ServiceAccount, now: number): AccountView {
  if (account.status === "disabled") return "disabled";
  return account.expiresAt !== null && account.expiresAt <= now ? "expired" : "active";
}

export interface Validity {
  daysValid?: number | undefined;
  expiresAt?: string | null | undefined;
}

/** `daysValid` (1..730) or `expiresAt` (future, within 730 days); null for no expiry; undefined when not given. */
export function resolveValidity(input: Validity, now: number): number | null | undefined {
  if (input.daysValid !== undefined && input.expiresAt !== undefined) {
    throw new DomainError("validation_failed", "Give daysValid or expiresAt, not both", {
      errors: [{ path: "body.expiresAt", message: "Mutually exclusive with daysValid" }],
    });
  }
  if (input.daysValid !== undefined) return now + input.daysValid * DAY_MS;
  if (input.expiresAt === null || input.expiresAt === undefined) return input.expiresAt;
  const at = Date.parse(input.expiresAt);
  if (at <= now || at > now + MAX_VALIDITY_DAYS * DAY_MS) {
    throw new DomainError("validation_failed", `expiresAt must be in the future and within ${MAX_VALIDITY_DAYS} days`, {
      errors: [{ path: "body.expiresAt", message: "Out of range" }],
    });
  }
  return at;
}

/** `<name>@<org-slug>.<domain>`, the name reduced to an email local part. */
function generatedEmail(ctx: Ctx, name: string, orgSlug: string, suffix = ""): string {
  const local = name.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[-.]+|[-.]+$/g, "").slice(0, 48) || "sa";
  return `${local}${suffix}@${orgSlug}.${ctx.config.SERVICE_ACCOUNT_EMAIL_DOMAIN}`;
}

export const nameKey = (orgId: string | null, name: string) => `${orgId ?? ""}/${name.toLowerCase()}`;

export interface CreateAccountInput extends Validity {
  name: string;
  email?: string | undefined;
  displayName?: string | undefined;
  description?: string | undefined;
  groups?: string[] | undefined;
  allowedScopes?: string[] | undefined;
  allowedCidrs?: string[] | undefined;
  jwtQuota?: JwtQuota | undefined;
  /** Absent: the org policy's requireDpop. */
  requireDpop?: boolean | undefined;
  externalId?: string | undefined;
  /** A small string map the org's custom claims may draw on (signing/custom-claims.ts bounds it). */
  metadata?: Record<string, string> | undefined;
  /** A JWKS URL whose keys also authenticate the account by private_key_jwt (client-jwks.ts). */
  jwksUri?: string | undefined;
  roles?: AssignmentInput[] | undefined;
  /** "caller": copy the caller's role assignments in this org (an account that can do what its creator can, no more); otherwise none. */
  permissionsFrom?: "caller" | undefined;
}

/**
 * Pending invitations that waited for this email (sent by other orgs before the account existed)
 * are addressed to the account as it is created: its home org sees them, may answer them, and its
 * audit log records each (`invitation.addressed`).
 */
async function bindWaitingInvitations(ctx: Ctx, account: ServiceAccount) {
  if (account.orgId === null) return [];
  const waiting = await ctx.db
    .select({ id: invitations.id, orgId: invitations.orgId })
    .from(invitations)
    .where(and(eq(invitations.email, account.email), isNull(invitations.accountId), eq(invitations.state, "pending"), sql`${invitations.orgId} <> ${account.orgId}`));
  return waiting.flatMap((inv) => [
    ctx.db.update(invitations).set({ accountId: account.id, accountOrgId: account.orgId }).where(and(eq(invitations.id, inv.id), isNull(invitations.accountId))),
    auditInsert(ctx, { action: "invitation.addressed", orgId: account.orgId, targetType: "invitation", targetId: inv.id, details: { accountId: account.id, invitingOrgId: inv.orgId } }),
  ]);
}

/** The metadata keys an audit event names (not the values). */
export const metadataKeys = (metadata: Record<string, string> | null | undefined) => (metadata && Object.keys(metadata).length > 0 ? { metadataKeys: Object.keys(metadata) } : {});

/**
 * Inserts an account (with its role assignments and audit event) in one batch; maps unique
 * violations to 409s. A generated email that collides gets a random suffix; the stored account is returned.
 */
export async function insertAccount(ctx: Ctx, account: ServiceAccount, extra: ReturnType<typeof assignmentInserts> = [], emailGiven = true): Promise<ServiceAccount> {
  const audit = auditInsert(ctx, {
    action: "service_account.created",
    orgId: account.orgId,
    targetType: "service_account",
    targetId: account.id,
    details: { name: account.name, email: account.email, expiresAt: account.expiresAt, ...metadataKeys(account.metadata) },
  });
  const bind = await bindWaitingInvitations(ctx, account);
  try {
    await ctx.db.batch([ctx.db.insert(serviceAccounts).values(account), audit, ...extra, ...bind]);
    return account;
  } catch (err) {
    if (isUniqueViolation(err, "name_key")) throw new DomainError("name_taken", `A service account named '${account.name}' already exists here`);
    if (isUniqueViolation(err, "email")) {
      if (emailGiven) throw new DomainError("email_taken", `The email ${account.email} is already in use`);
      const [local, domain] = account.email.split("@");
      return insertAccount(ctx, { ...account, email: `${local}-${randomBase62(4).toLowerCase()}@${domain}` }, extra, true);
    }
    throw err;
  }
}

/**
 * An email under SERVICE_ACCOUNT_EMAIL_DOMAIN names its org (`<name>@<org-slug>.<domain>`): no
 * other org may give it to one of its accounts, so an invitation sent to such an address can only
 * ever reach an account of the org it names.
 */
function assertOwnEmail(ctx: Ctx, org: Org, email: string): void {
  const domain = ctx.config.SERVICE_ACCOUNT_EMAIL_DOMAIN.toLowerCase();
  const host = email.slice(email.lastIndexOf("@") + 1).toLowerCase();
  if ((host === domain || host.endsWith(`.${domain}`)) && host !== `${org.slug}.${domain}`) {
    const message = `Addresses under ${domain} belong to the org they name; use @${org.slug}.${domain}, or an address of your own domain`;
    throw new DomainError("validation_failed", message, { errors: [{ path: "body.email", message }] });
  }
}

/**
 * Creates an account in an org the caller was authorized for (provisionAccount is the operation).
 * `checkClaims` sees the claims the account will have (its roles' operations, its scopes and
 * networks) before anything is written, and may refuse them by throwing.
 */
export async function createAccount(
  ctx: Ctx,
  principal: Principal,
  org: Org,
  input: CreateAccountInput,
  checkClaims?: (claims: AccountClaims) => void,
): Promise<ServiceAccount> {
  const now = ctx.now();
  if (input.email !== undefined) assertOwnEmail(ctx, org, input.email);
  if (input.allowedScopes !== undefined) assertDeclaredScopes(org, input.allowedScopes);
  const metadata = checkMetadata(input.metadata ?? {});
  const jwksUri = input.jwksUri !== undefined ? assertJwksUri(ctx, input.jwksUri) : null;
  const id = newId("account");
  const asked = await planAssignments(ctx, principal, org, id, input.roles ?? []);
  const same = (a: RoleAssignment, b: RoleAssignment) => a.roleId === b.roleId && a.scopeType === b.scopeType && a.scopeId === b.scopeId;
  const inherited =
    input.permissionsFrom === "caller"
      ? (await planAssignments(ctx, principal, org, id, await callerAssignments(ctx, principal, org.id))).filter((r) => !asked.some((a) => same(a, r)))
      : [];
  const assignments = [...asked, ...inherited];
  const account: ServiceAccount = {
    id,
    orgId: org.id,
    name: input.name,
    nameKey: nameKey(org.id, input.name),
    email: (input.email ?? generatedEmail(ctx, input.name, org.slug)).toLowerCase(),
    displayName: input.displayName ?? null,
    description: input.description ?? null,
    groups: [...new Set(input.groups ?? [])],
    allowedScopes: [...new Set(input.allowedScopes ?? [])],
    allowedCidrs: [...new Set(input.allowedCidrs ?? [])],
    tokenEndpointAuthMethod: null,
    jwksUri,
    requireDpop: input.requireDpop ?? policyOf(org).requireDpop ?? false,
    externalId: input.externalId ?? null,
    metadata,
    status: "active",
    expiresAt: resolveValidity(input, now) ?? null,
    platformPermissions: null,
    jwtQuota: input.jwtQuota ?? null,
    createdAt: now,
    createdBy: principal.accountId,
    updatedAt: now,
    lastUsedAt: null,
  };
  if (checkClaims) checkClaims(claimsOf({ account, assignments, customRoles: await customRolesOf(ctx, assignments), keys: [], statusIdx: new Map(), claimMappings: new Map(), environmentProjects: new Map() }));
  return insertAccount(ctx, account, assignmentInserts(ctx, assignments), input.email !== undefined);
}

async function customRolesOf(ctx: Ctx, assignments: RoleAssignment[]) {
  const ids = [...new Set(assignments.map((a) => a.roleId))].filter((id) => !findBuiltinRole(id));
  const rows = ids.length > 0 ? await ctx.db.select({ id: roles.id, name: roles.name, operations: roles.operations }).from(roles).where(inArray(roles.id, ids)) : [];
  return new Map(rows.map((r) => [r.id, r]));
}

/** The caller's own assignments in the org, as inputs ("the same permissions as the caller"). */
async function callerAssignments(ctx: Ctx, principal: Principal, orgId: string): Promise<AssignmentInput[]> {
  const mine = await listAssignments(ctx, principal.accountId);
  return mine
    .filter((a) => a.orgId === orgId)
    .filter((a) => findBuiltinRole(a.roleId)?.assignableToServiceAccounts !== false)
    .map((a) => ({ role: a.roleId, scope: { type: a.scopeType, id: a.scopeId } }));
}

/**
 * An account of the org on which the gate's principal holds the gate's permission; 404 for other
 * orgs' accounts. `guard` runs the no-escalation guard (role-assignments.ts) for operations that
 * hand out (`grants`) or take away (`removes`) its credentials or roles.
 */
export async function accountFor(gate: Gate, orgRef: string, accountId: string, guard?: GuardEffect) {
  const org = await visibleOrg(gate.ctx, gate.principal, orgRef);
  const account = await gate.ctx.db
    .select()
    .from(serviceAccounts)
    .where(and(eq(serviceAccounts.id, accountId), eq(serviceAccounts.orgId, org.id)))
    .get();
  if (!account) throw notFound("Service account");
  await gate.authorize({ orgId: org.id });
  if (guard) await guardTarget(gate, account, guard);
  return { org, account };
}

export const readAccount = withPermission("service-accounts.read", async (gate, orgRef: string, accountId: string) => (await accountFor(gate, orgRef, accountId)).account);

/** Last use and the JWTs issued in the last 24 h and 30 days. */
export const accountUsage = withPermission("service-accounts.read", async (gate, orgRef: string, accountId: string) => {
  const { account } = await accountFor(gate, orgRef, accountId);
  return { account, ...(await exchangeCounts(gate.ctx, account.id)) };
});

export interface ListAccountsQuery extends PageQuery {
  q?: string | undefined;
  status?: AccountView | undefined;
  group?: string | undefined;
  externalId?: string | undefined;
  /** Accounts not used (or never used and created) for this many days. */
  unusedForDays?: number | undefined;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (m) => `\\${m}`);

function statusFilter(status: AccountView | undefined, now: number): SQL | undefined {
  const t = serviceAccounts;
  switch (status) {
    case "disabled":
      return eq(t.status, "disabled");
    case "expired":
      return and(eq(t.status, "active"), isNotNull(t.expiresAt), lte(t.expiresAt, now));
    case "active":
      return and(eq(t.status, "active"), or(isNull(t.expiresAt), gt(t.expiresAt, now)));
    default:
      return undefined;
  }
}

export const listAccounts = withPermission("service-accounts.read", async (gate, orgRef: string, query: ListAccountsQuery) => {
  const ctx = gate.ctx;
  const t = serviceAccounts;
  const { where, orderBy } = keyset(t, query.cursor);
  const pattern = query.q ? `%${escapeLike(query.q.toLowerCase())}%` : undefined;
  const { rows } = await orgForWith(gate, orgRef, (orgId) =>
    ctx.db
    .select()
    .from(t)
    .where(
      and(
        eq(t.orgId, orgId),
        where,
        pattern
          ? or(sql`lower(${t.name}) like ${pattern} escape '\\'`, sql`${t.email} like ${pattern} escape '\\'`, sql`lower(${t.displayName}) like ${pattern} escape '\\'`)
          : undefined,
        statusFilter(query.status, ctx.now()),
        query.group ? sql`exists (select 1 from json_each(${t.groups}) where value = ${query.group})` : undefined,
        query.externalId ? eq(t.externalId, query.externalId) : undefined,
        query.unusedForDays !== undefined ? lte(sql`coalesce(${t.lastUsedAt}, ${t.createdAt})`, ctx.now() - query.unusedForDays * DAY_MS) : undefined,
      ),
    )
    .orderBy(...orderBy)
    .limit(query.limit + 1),
  );
  return toPage(rows, query.limit, (r) => r);
});

export interface PatchAccountInput extends Validity {
  name?: string | undefined;
  displayName?: string | null | undefined;
  description?: string | null | undefined;
  groups?: string[] | undefined;
  externalId?: string | null | undefined;
  /** Replaces the whole map; null clears it. */
  metadata?: Record<string, string> | null | undefined;
  status?: "active" | "disabled" | undefined;
  allowedScopes?: string[] | undefined;
  allowedCidrs?: string[] | undefined;
  jwtQuota?: JwtQuota | null | undefined;
  requireDpop?: boolean | undefined;
}

/** Only disabling takes access away; every other edit may hand some out (claims, validity, networks). */
const onlyDisables = (input: PatchAccountInput) =>
  (input.status === "disabled" || input.requireDpop === true) &&
  Object.entries(input).every(([k, v]) => v === undefined || (k === "status" && v === "disabled") || (k === "requireDpop" && v === true));

/**
 * Every edit goes through the account's Durable Object: status, validity and groups are in its KV
 * records. The escalation guard applies; a patch that only disables the account takes access away.
 */
async function editAccount(gate: Gate, orgRef: string, accountId: string, input: PatchAccountInput): Promise<ServiceAccount> {
  const { org, account } = await accountFor(gate, orgRef, accountId, onlyDisables(input) ? "removes" : "grants");
  const ctx = gate.ctx;
  if (input.allowedScopes !== undefined) assertDeclaredScopes(org, input.allowedScopes);
  const expiresAt = resolveValidity(input, ctx.now());
  const patch: AccountPatch = {};
  if (input.name !== undefined) Object.assign(patch, { name: input.name, nameKey: nameKey(account.orgId, input.name) });
  if (input.displayName !== undefined) patch.displayName = input.displayName;
  if (input.description !== undefined) patch.description = input.description;
  if (input.groups !== undefined) patch.groups = [...new Set(input.groups)];
  if (input.allowedScopes !== undefined) patch.allowedScopes = [...new Set(input.allowedScopes)];
  if (input.allowedCidrs !== undefined) patch.allowedCidrs = [...new Set(input.allowedCidrs)];
  if (input.requireDpop !== undefined) patch.requireDpop = input.requireDpop;
  if (input.externalId !== undefined) patch.externalId = input.externalId;
  if (input.jwtQuota !== undefined) patch.jwtQuota = input.jwtQuota;
  if (input.metadata !== undefined) patch.metadata = checkMetadata(input.metadata ?? {});
  if (input.status !== undefined) patch.status = input.status;
  if (expiresAt !== undefined) patch.expiresAt = expiresAt;
  if (Object.keys(patch).length === 0) return account;
  return unwrap(await accountObject(ctx, account.id).updateAccount(account.id, patch, ctx.meta)).account;
}

export const patchAccount = withPermission("service-accounts.edit", editAccount, { guard: "covers" });

/** Deleting an account revokes every credential it has in the same request (through its Durable Object). */
export const deleteAccount = withPermission(
  "service-accounts.edit",
  async (gate, orgRef: string, accountId: string): Promise<void> => {
    const { account } = await accountFor(gate, orgRef, accountId, "removes");
    if (account.id === gate.principal.accountId) {
      throw new DomainError("bad_request", "A service account cannot delete itself");
    }
    unwrap(await accountObject(gate.ctx, account.id).deleteAccount(account.id, gate.ctx.meta));
  },
  { guard: "covers" },
);
