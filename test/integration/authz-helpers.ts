import * as jose from "jose";
import { expect } from "vitest";
import { call, expectStatus, orgWithAdmin } from "../helpers.ts";
import { auditRows, newEnvironment, newProject, sleep, type Res } from "./registry-helpers.ts";

/** Shared helpers of the authorization-model tests (roles, inheritance, invitations, network bounds). */

export type ScopeRef = { type: "org" | "project" | "environment"; id: string };

export const sas = (org: string) => `/api/v1/orgs/${org}/service-accounts`;
export const sa = (org: string, id: string) => `/api/v1/orgs/${org}/service-accounts/${id}`;
export const rolesPath = (org: string) => `/api/v1/orgs/${org}/roles`;

/**
 * An org (with its org-admin account) holding two projects, A and B, each with two environments:
 * the three levels of the hierarchy, with siblings at each level below the org.
 */
export async function orgTree(rootToken: string) {
  const { org, admin, adminToken } = await orgWithAdmin(rootToken);
  const prjA = await newProject(adminToken, org.id);
  const prjB = await newProject(adminToken, org.id);
  const envA1 = await newEnvironment(adminToken, org.id, prjA.id);
  const envA2 = await newEnvironment(adminToken, org.id, prjA.id);
  const envB1 = await newEnvironment(adminToken, org.id, prjB.id);
  const envB2 = await newEnvironment(adminToken, org.id, prjB.id);
  return { org, admin, adminToken, prjA, prjB, envA1, envA2, envB1, envB2 };
}

/** Creates a custom role (asserting 201). */
export async function createRole(token: string, orgId: string, operations: string[], extra: Record<string, unknown> = {}) {
  const res = await call("POST", rolesPath(orgId), { token, body: { name: `r-${crypto.randomUUID().slice(0, 8)}`, operations, ...extra } });
  expectStatus(res, 201);
  return res.json as { id: string; name: string; operations: string[]; assignableToServiceAccounts: boolean; builtin: boolean; orgId: string };
}

/** POST .../role-assignments (not asserting the status). */
export function assign(token: string, orgId: string, accountId: string, role: string, scope?: ScopeRef) {
  return call("POST", `${sa(orgId, accountId)}/role-assignments`, { token, body: scope ? { role, scope } : { role } });
}

/** Assigns a role and asserts 201. */
export async function assignOk(token: string, orgId: string, accountId: string, role: string, scope?: ScopeRef) {
  const res = await assign(token, orgId, accountId, role, scope);
  expectStatus(res, 201);
  return res.json;
}

/** GET .../permissions?scope= and the sorted operations (asserting 200). */
export async function operationsAt(token: string, orgId: string, accountId: string, scope?: string): Promise<string[]> {
  const res = await call("GET", `${sa(orgId, accountId)}/permissions${scope === undefined ? "" : `?scope=${encodeURIComponent(scope)}`}`, { token });
  expectStatus(res, 200);
  expect(Array.isArray(res.json.operations), res.text).toBe(true);
  return [...res.json.operations].sort();
}

/** The operations of a built-in role, from the catalogue (GET /api/v1/permissions). */
export async function builtinOperations(token: string, name: string): Promise<string[]> {
  const res = await call("GET", "/api/v1/permissions", { token });
  expectStatus(res, 200);
  const role = res.json.builtinRoles.find((r: { name: string }) => r.name === name);
  expect(role, `built-in ${name} in ${res.text}`).toBeDefined();
  return [...role.operations].sort();
}

/** The account's role assignments (GET .../role-assignments). */
export async function assignmentsOf(token: string, orgId: string, accountId: string): Promise<any[]> {
  const res = await call("GET", `${sa(orgId, accountId)}/role-assignments`, { token });
  expectStatus(res, 200);
  return res.json.items;
}

/** POST /api/auth/access-tokens/jwt, with an optional scope and target org. */
export function exchangeFor(accessToken: string, extra: { scope?: string; org?: string; duration_seconds?: number } = {}, headers: Record<string, string> = {}) {
  return call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: accessToken, ...extra }, headers });
}

/** The claims of a JWT (not verified: the tests that need verification use the JWKS). */
export const claimsOf = (jwt: string) => jose.decodeJwt(jwt) as jose.JWTPayload & { org_id?: string; roles?: string[]; groups?: string[]; scope?: string; client_id?: string };

/** A 403 permission_denied whose `missing` is exactly `missing`. */
export function expectMissing(res: Res, missing: string[]) {
  const msg = `${res.status}: ${res.text}`;
  expect(res.status, msg).toBe(403);
  expect(res.json?.code, msg).toBe("permission_denied");
  expect([...(res.json?.missing ?? [])].sort(), msg).toEqual([...missing].sort());
}

/** A problem response with this status and code. */
export function expectCode(res: Res, status: number, code: string) {
  const msg = `${res.status}: ${res.text}`;
  expect(res.status, msg).toBe(status);
  expect(res.headers.get("content-type") ?? "", msg).toMatch(/^application\/problem\+json/);
  expect(res.json?.code, msg).toBe(code);
  return res.json;
}

/** Polls the audit log (written off the response path with waitUntil) until `action` shows up for the target. */
export async function waitForAudit(targetId: string, action: string, count = 1, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  let rows = await auditRows(targetId);
  while (rows.filter((r) => r.action === action).length < count && Date.now() < deadline) {
    await sleep(50);
    rows = await auditRows(targetId);
  }
  return rows.filter((r) => r.action === action);
}

/** POST /api/v1/orgs/{org}/invitations (not asserting the status). */
export function inviteTo(token: string, orgId: string, email: string, role = "viewer", scope?: ScopeRef) {
  return call("POST", `/api/v1/orgs/${orgId}/invitations`, { token, body: { email, role, ...(scope ? { scope } : {}) } });
}

/** PATCH .../service-accounts/{sa}/invitations/{inv} (not asserting the status). */
export function answer(token: string, homeOrgId: string, accountId: string, invitationId: string, state: "accepted" | "declined") {
  return call("PATCH", `${sa(homeOrgId, accountId)}/invitations/${invitationId}`, { token, body: { state } });
}

/** POST /api/v1/auth/authorize {org} with a credential (not asserting the status). */
export function authorizeFor(token: string, org: string) {
  return call("POST", "/api/v1/auth/authorize", { token, body: { org } });
}
