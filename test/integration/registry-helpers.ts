import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { call, expectStatus, unique } from "../helpers.ts";

/** Shared helpers of the registry integration tests (orgs, accounts, roles, errors, bootstrap). */

export type Res = Awaited<ReturnType<typeof call>>;

const PROBLEM_KEYS = ["type", "title", "status", "detail", "code", "requestId", "errors", "missing"];

/**
 * Asserts an RFC 9457 problem response: status, media type, the six required members with the
 * right types, nothing unexpected, and a requestId equal to the x-request-id header.
 */
export function expectProblem(res: Res, status: number, code?: string) {
  const msg = `${res.status}: ${res.text}`;
  expect(res.status, msg).toBe(status);
  expect(res.headers.get("content-type") ?? "", msg).toMatch(/^application\/problem\+json/);
  const body = res.json;
  expect(body, msg).toBeTypeOf("object");
  expect(body, msg).not.toBeNull();
  expect(body.type, msg).toBeTypeOf("string");
  expect(body.type.length, msg).toBeGreaterThan(0);
  expect(body.title, msg).toBeTypeOf("string");
  expect(body.status, msg).toBe(status);
  expect(body.detail, msg).toBeTypeOf("string");
  expect(body.code, msg).toBeTypeOf("string");
  expect(body.requestId, msg).toBeTypeOf("string");
  expect(body.requestId.length, msg).toBeGreaterThan(0);
  expect(res.headers.get("x-request-id"), msg).toBe(body.requestId);
  expect(Object.keys(body).filter((k) => !PROBLEM_KEYS.includes(k)), msg).toEqual([]);
  if (body.errors !== undefined) {
    expect(Array.isArray(body.errors), msg).toBe(true);
    for (const e of body.errors) {
      expect(e.path, msg).toBeTypeOf("string");
      expect(e.message, msg).toBeTypeOf("string");
    }
  }
  if (code !== undefined) expect(body.code, msg).toBe(code);
  return body;
}

/** A 400 validation problem whose `errors` name `field` (a path such as `json.daysValid` or `body.expiresAt`). */
export function expectFieldError(res: Res, field: string) {
  const body = expectProblem(res, 400, "validation_failed");
  const paths: string[] = (body.errors ?? []).map((e: { path: string }) => e.path);
  expect(
    paths.some((p) => p === field || p.endsWith(`.${field}`)),
    `errors should name ${field}; got ${JSON.stringify(paths)} in ${res.text}`,
  ).toBe(true);
  return body;
}

/** A 403 naming exactly the missing operations. */
export function expectDenied(res: Res, missing: string[]) {
  const body = expectProblem(res, 403, "permission_denied");
  expect([...(body.missing ?? [])].sort(), res.text).toEqual([...missing].sort());
  return body;
}

/** A 401 with the Bearer challenge the contract requires. */
export function expectUnauthenticated(res: Res) {
  const body = expectProblem(res, 401, "unauthenticated");
  expect(res.headers.get("www-authenticate") ?? "", res.text).toMatch(/^Bearer\b/);
  return body;
}

/** Creates an org with the given (root) token. */
export async function newOrg(rootToken: string, extra: Record<string, unknown> = {}) {
  const slug = unique("org");
  const res = await call("POST", "/api/v1/orgs", { token: rootToken, body: { slug, name: `Org ${slug}`, ...extra } });
  expectStatus(res, 201);
  return res.json as { id: string; slug: string; name: string; policy: Record<string, unknown> };
}

/** Creates a service account (optionally with roles) and, by default, its first token. */
export async function newAccount(
  token: string,
  orgRef: string,
  body: Record<string, unknown> = {},
): Promise<{ account: any; token: string }> {
  const res = await call("POST", `/api/v1/orgs/${orgRef}/service-accounts`, {
    token,
    body: { name: unique("sa"), issueToken: true, ...body },
  });
  expectStatus(res, 201);
  return { account: res.json, token: res.json.token?.token };
}

/** An account holding `role` at `scope` (org by default), with a token. */
export async function accountWithRole(
  grantorToken: string,
  orgRef: string,
  role: string,
  scope?: { type: "org" | "project" | "environment"; id: string },
) {
  return newAccount(grantorToken, orgRef, { roles: [scope ? { role, scope } : { role }] });
}

export async function newProject(token: string, orgRef: string) {
  const slug = unique("prj");
  const res = await call("POST", `/api/v1/orgs/${orgRef}/projects`, { token, body: { slug, name: `Project ${slug}` } });
  expectStatus(res, 201);
  return res.json as { id: string; orgId: string; slug: string; name: string };
}

export async function newEnvironment(token: string, orgRef: string, projectRef: string) {
  const slug = unique("env");
  const res = await call("POST", `/api/v1/orgs/${orgRef}/projects/${projectRef}/environments`, { token, body: { slug, name: `Env ${slug}` } });
  expectStatus(res, 201);
  return res.json as { id: string; orgId: string; projectId: string; slug: string; name: string };
}

/** Audit rows about a target, read straight from D1. */
export async function auditRows(targetId: string) {
  const { results } = await env.DB.prepare("select * from audit_events where target_id = ? order by created_at, id").bind(targetId).all<{
    id: string;
    org_id: string | null;
    actor_id: string;
    action: string;
    target_type: string;
    request_id: string | null;
    details: string;
  }>();
  return results;
}

/** Every item of a paginated list, following nextCursor (fails on a repeated cursor). */
export async function listAll(path: string, token: string, limit = 200) {
  const items: any[] = [];
  const seen = new Set<string>();
  let cursor: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const res: Res = await call("GET", `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { token });
    expectStatus(res, 200);
    items.push(...res.json.items);
    cursor = res.json.nextCursor;
    if (cursor) {
      expect(seen.has(cursor), `cursor repeated: ${cursor}`).toBe(false);
      seen.add(cursor);
    }
  } while (cursor);
  return items;
}

/** Whether a token authenticates at all (GET /api/v1/orgs needs only a valid credential). */
export async function authStatus(token: string) {
  return call("GET", "/api/v1/orgs", { token });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const DAY_MS = 86_400_000;
