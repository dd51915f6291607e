import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { Change } from "../../src/domain/credentials/change.ts";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";

/** Shared helpers of the access-token tests (issue, revoke, regenerate, concurrency, the DO journal). */

export type Res = Awaited<ReturnType<typeof call>>;

export const DAY_MS = 86_400_000;

export const accountPath = (org: string, sa: string) => `/api/v1/orgs/${org}/service-accounts/${sa}`;
export const tokensPath = (org: string, sa: string) => `${accountPath(org, sa)}/tokens`;
export const tokenPath = (org: string, sa: string, tok: string) => `${tokensPath(org, sa)}/${tok}`;

/** Lowercase hex SHA-256, computed here rather than with the code under test. */
export async function sha256(input: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(input));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The KV key a secret is stored under. */
export const kvKeyOf = async (secret: string) => `tok:${await sha256(secret)}`;

/** A fresh org with its admin (org-admin, with a token). */
export async function freshOrg(rootToken: string) {
  const { org, admin, adminToken } = await orgWithAdmin(rootToken);
  return { org: org as { id: string; slug: string }, admin: admin as { id: string }, adminToken };
}

/** A fresh account holding `viewer` (so that its own token can read it), with no token yet. */
export async function viewerAccount(adminToken: string, orgId: string, extra: Record<string, unknown> = {}) {
  const res = await call("POST", `/api/v1/orgs/${orgId}/service-accounts`, {
    token: adminToken,
    body: { name: unique("sa"), roles: [{ role: "viewer" }], ...extra },
  });
  expectStatus(res, 201);
  return res.json as { id: string; orgId: string };
}

/** POST .../tokens, returning the raw response. */
export const issue = (adminToken: string, org: string, sa: string, body: Record<string, unknown> = {}) =>
  call("POST", tokensPath(org, sa), { token: adminToken, body });

/** Issues a token and asserts the 201; returns the body (with the secret in `token`). */
export async function issueOk(adminToken: string, org: string, sa: string, body: Record<string, unknown> = {}) {
  const res = await issue(adminToken, org, sa, body);
  expectStatus(res, 201);
  return res.json as IssuedToken;
}

export interface IssuedToken {
  id: string;
  accountId: string;
  name: string | null;
  hint: string;
  status: string;
  expiresAt: string | null;
  previousSecretExpiresAt: string | null;
  regeneratedAt: string | null;
  revokedAt: string | null;
  token: string;
}

export const regenerate = (adminToken: string, org: string, sa: string, tok: string, body?: Record<string, unknown>) =>
  call("POST", `${tokenPath(org, sa, tok)}/regenerate`, body === undefined ? { token: adminToken } : { token: adminToken, body });

export const revoke = (adminToken: string, org: string, sa: string, tok: string) => call("DELETE", tokenPath(org, sa, tok), { token: adminToken });

export async function setPolicy(adminToken: string, org: string, policy: Record<string, unknown>) {
  const res = await call("PATCH", `/api/v1/orgs/${org}`, { token: adminToken, body: { policy } });
  expectStatus(res, 200);
  for (const [k, v] of Object.entries(policy)) expect(res.json.policy[k], res.text).toEqual(v);
  return res.json;
}

/** Uses the secret to read its own account: the status says whether it authenticates. */
export const readSelf = (secret: string, org: string, sa: string) => call("GET", accountPath(org, sa), { token: secret });

/** Asserts that a secret authenticates (200 on reading its own account). */
export async function expectWorks(secret: string, org: string, sa: string, why = "") {
  const res = await readSelf(secret, org, sa);
  expect(res.status, `${why} secret ${secret.slice(0, 8)}… should work: ${res.status} ${res.text}`).toBe(200);
  expect(res.json.id, res.text).toBe(sa);
}

/** Asserts that a secret is refused with 401 and the Bearer challenge. */
export async function expectDead(secret: string, org: string, sa: string, why = "") {
  const res = await readSelf(secret, org, sa);
  expect(res.status, `${why} secret ${secret.slice(0, 8)}… should be dead: ${res.status} ${res.text}`).toBe(401);
  expect(res.json?.code, res.text).toBe("unauthenticated");
  expect(res.headers.get("www-authenticate") ?? "", res.text).toMatch(/^Bearer\b/);
}

export interface TokenRow {
  id: string;
  account_id: string;
  org_id: string | null;
  secret_hash: string;
  hint: string;
  status: string;
  expires_at: number | null;
  previous_secret_hash: string | null;
  previous_secret_expires_at: number | null;
  revoked_at: number | null;
  revoked_by: string | null;
}

export async function tokenRow(id: string): Promise<TokenRow | null> {
  return env.DB.prepare("select * from access_tokens where id = ?").bind(id).first<TokenRow>();
}

export async function tokenRows(accountId: string): Promise<TokenRow[]> {
  const { results } = await env.DB.prepare("select * from access_tokens where account_id = ? order by created_at, id").bind(accountId).all<TokenRow>();
  return results;
}

export interface AuditRow {
  id: string;
  org_id: string | null;
  actor_id: string;
  action: string;
  target_type: string;
  target_id: string;
  request_id: string | null;
  details: string;
  created_at: number;
}

/** Audit rows about a target, straight from D1. */
export async function auditOf(targetId: string): Promise<AuditRow[]> {
  const { results } = await env.DB.prepare("select * from audit_events where target_id = ? order by created_at, id").bind(targetId).all<AuditRow>();
  return results;
}

/** Every key of the TOKENS namespace with a prefix (following the list cursor). */
export async function kvKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page: KVNamespaceListResult<unknown, string> = await env.TOKENS.list({ prefix, ...(cursor ? { cursor } : {}) });
    keys.push(...page.keys.map((k) => k.name));
    if (page.list_complete) return keys;
    cursor = page.cursor;
  }
}

/** Within `slackMs` of an expected instant. */
export const near = (iso: string | null, expected: number, slackMs = 30_000) => iso !== null && Math.abs(Date.parse(iso) - expected) < slackMs;

/** The change a revoke journals (as if the account's object crashed mid-way): KV delete first, then D1 (status and an audit event in one batch). */
export async function journaledRevoke(tokenId: string, secret: string, orgId: string, eventId: string): Promise<Change> {
  const now = Date.now();
  return {
    kvBefore: [{ op: "delete", key: await kvKeyOf(secret) }],
    d1: [
      {
        sql: "update access_tokens set status = ?, revoked_at = ?, revoked_by = ?, previous_secret_hash = null, previous_secret_expires_at = null where id = ?",
        params: ["revoked", now, "journal-test", tokenId],
      },
      {
        sql: "insert into audit_events (id, org_id, actor_id, action, target_type, target_id, request_id, ip, user_agent, details, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
        params: [eventId, orgId, "journal-test", "access_token.revoked", "access_token", tokenId, null, null, null, "{}", now],
      },
    ],
    kvAfter: [],
  };
}

/** A viewer account in a fresh org, with one access token: the caller of the endpoint-level tests. */
export async function viewerWithToken(): Promise<{ sa: { id: string }; secret: string }> {
  const root = await platformRoot();
  const o = await freshOrg(root.token);
  const sa = await viewerAccount(o.adminToken, o.org.id);
  return { sa, secret: (await issueOk(o.adminToken, o.org.id, sa.id)).token };
}
