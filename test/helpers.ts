import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { insertAccount } from "../src/domain/registry/accounts.ts";
import { platformAccount } from "../src/domain/registry/platform-accounts.ts";
import { createCtx } from "../src/domain/shared/context.ts";
import { issueFor } from "../src/domain/credentials/tokens.ts";
import { randomBase62 } from "../src/lib/crypto.ts";

export const BASE = "http://keyward.test";

export interface CallOptions {
  token?: string | undefined;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Drives the Worker over HTTP, through its real default export. */
export async function call(method: string, path: string, options: CallOptions = {}) {
  const headers = new Headers(options.headers);
  if (options.token) headers.set("authorization", `Bearer ${options.token}`);
  let body: BodyInit | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  const res = await exports.default.fetch(new Request(BASE + path, { method, headers, body }));
  const text = await res.text();
  let json: any = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** Asserts a status, with the body in the message so a failure explains itself. */
export function expectStatus(res: { status: number; text: string }, status: number) {
  expect(res.status, `${res.status}: ${res.text}`).toBe(status);
}

export const unique = (prefix: string) => `${prefix}-${randomBase62(8).toLowerCase()}`;

/**
 * A fresh platform-root account and token, made through the services (bootstrap itself runs once
 * per database and has its own test).
 */
export async function platformRoot(): Promise<{ id: string; token: string }> {
  const ctx = createCtx(env, { actorId: "test", requestId: null, ip: null, userAgent: null });
  const name = unique("root");
  const account = await insertAccount(ctx, platformAccount(ctx, { name, email: `${name}@platform.test`, permissions: ["platform.root"], createdBy: "test" }));
  const id = account.id;
  const { secret } = await issueFor(ctx, null, id, {});
  return { id, token: secret };
}

/** An org with an org-admin service account and its token. */
export async function orgWithAdmin(rootToken: string) {
  const slug = unique("org");
  const org = await call("POST", "/api/v1/orgs", { token: rootToken, body: { slug, name: `Org ${slug}` } });
  expectStatus(org, 201);
  const admin = await call("POST", `/api/v1/orgs/${org.json.id}/service-accounts`, {
    token: rootToken,
    body: { name: "admin-bot", roles: [{ role: "org-admin" }], issueToken: true },
  });
  expectStatus(admin, 201);
  return { org: org.json, admin: admin.json, adminToken: admin.json.token.token as string };
}

/** A POST as over HTTP: a string body declares its Content-Length (the hot path takes only those), a stream is chunked. */
export const rawPost = (path: string, body: string | ReadableStream, headers: Record<string, string>, requestId: string) =>
  new Request(BASE + path, {
    method: "POST",
    body,
    headers: { "x-request-id": requestId, ...(typeof body === "string" ? { "content-length": String(new TextEncoder().encode(body).byteLength) } : {}), ...headers },
    ...(typeof body === "string" ? {} : { duplex: "half" }),
  } as RequestInit);

/** A response's status, headers, text and JSON (undefined when the text is not JSON). */
export async function readResponse(res: Response) {
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
