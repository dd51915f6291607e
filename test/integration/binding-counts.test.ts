import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import type { Bindings } from "../../src/env.ts";
import { countedEnv, resetCounts, type BindingCounts } from "../../src/lib/binding-counts.ts";
import { BASE, expectStatus, platformRoot } from "../helpers.ts";
import { assertionGrant, basic, clientAssertion, formBody, newClient, newKeyClient } from "./oauth-helpers.ts";

/**
 * BINDING_COUNTS=on (src/lib/binding-counts.ts): the Worker's own default export driven over HTTP
 * with counting bindings, and the per-request targets. Setup goes through the uncounted env.
 */

const countingEnv = { ...env, BINDING_COUNTS: "on" } as unknown as Bindings;

interface Counted {
  status: number;
  text: string;
  json: any;
  counts: BindingCounts;
}

/** One request through the counting env; the counts include its waitUntil work. */
async function counted(method: string, path: string, init: { headers?: Record<string, string>; body?: string; environment?: Bindings } = {}): Promise<Counted> {
  const ctx = createExecutionContext();
  resetCounts();
  const res = await worker.fetch(new Request(BASE + path, { method, headers: init.headers, body: init.body }), init.environment ?? countingEnv, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  const counts = resetCounts();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, counts };
}

const describeCounts = (c: BindingCounts) => JSON.stringify(c);

let root: { id: string; token: string };
/** The org of the warm-up: its default quota is read once per org and isolate a minute, not per token. */
let warmOrg: string;
beforeAll(async () => {
  root = await platformRoot();
  // The isolate warmed through the counting env (keyset, config, the org's defaults): the targets are about a token never seen.
  const warm = await newClient(root.token, { roles: [{ role: "viewer" }] });
  warmOrg = warm.org.id;
  await counted("POST", "/api/auth/access-tokens/jwt", { headers: { "content-type": "application/json" }, body: JSON.stringify({ access_token: warm.token }) });
});

describe("GET /__binding-counts", () => {
  it("is 404 when BINDING_COUNTS is off", async () => {
    const res = await counted("GET", "/__binding-counts", { environment: env as unknown as Bindings });
    expect(res.status).toBe(404);
  });

  it("serves the totals, and ?reset=1 zeroes them", async () => {
    const ctx = createExecutionContext();
    await worker.fetch(new Request(`${BASE}/__binding-counts?reset=1`), countingEnv, ctx);
    await countedEnv(countingEnv).TOKENS.get("binding-counts:probe");
    const res = await worker.fetch(new Request(`${BASE}/__binding-counts?reset=1`), countingEnv, ctx);
    expect(res.status).toBe(200);
    const body = (await res.json()) as BindingCounts;
    expect(body.kvRead).toBe(1);
    const after = (await (await worker.fetch(new Request(`${BASE}/__binding-counts`), countingEnv, ctx)).json()) as BindingCounts;
    expect(after.kvRead).toBe(0);
  });
});

describe("each counter counts", () => {
  const e = () => countedEnv(countingEnv);
  const measure = async (fn: () => Promise<unknown>) => {
    resetCounts();
    await fn();
    return resetCounts();
  };

  it("KV reads and writes", async () => {
    const c = await measure(async () => {
      await e().TOKENS.put("binding-counts:k", "v");
      await e().TOKENS.get("binding-counts:k");
      await e().TOKENS.getWithMetadata("binding-counts:k");
      await e().TOKENS.list({ prefix: "binding-counts:" });
      await e().TOKENS.delete("binding-counts:k");
    });
    expect(c.kvWrite).toBe(2);
    expect(c.kvRead).toBe(3);
  });

  it("D1 statements, batches and sessions", async () => {
    const c = await measure(async () => {
      const db = e().DB;
      await db.prepare("SELECT 1").first();
      await db.prepare("SELECT ?").bind(1).all();
      await db.batch([db.prepare("SELECT 1"), db.prepare("SELECT 2").bind()]);
      await db.withSession("first-unconstrained").prepare("SELECT 1").raw();
    });
    expect(c.d1).toBe(5);
    expect(c.d1Batch).toBe(1);
  });

  it("Durable Object calls", async () => {
    const ns = e().SIGNING_KEYS as unknown as { get(id: unknown): { fetch(url: string): Promise<Response> }; idFromName(name: string): unknown };
    const stub = ns.get(ns.idFromName("binding-counts-probe"));
    const c = await measure(async () => {
      await stub.fetch("http://do/").catch(() => undefined);
    });
    expect(c.doCall).toBe(1);
  });

  it("outbound fetch", async () => {
    e();
    const c = await measure(async () => {
      await fetch(`${env.TEST_ISSUER_BASE}/nothing-here`).then((r) => r.body?.cancel()).catch(() => undefined);
    });
    expect(c.fetch).toBe(1);
  });

  it("queue sends", async () => {
    const queue = e().WEBHOOKS;
    if (!queue) return;
    const c = await measure(async () => {
      await queue.send({ kind: "binding-counts-probe" }).catch(() => undefined);
    });
    expect(c.queue).toBe(1);
  });
});

describe("per-request targets (issue 22)", () => {
  it("exchange on a cache miss: at most 1 KV read, no D1, no Durable Object", async () => {
    const { token } = await newClient(root.token, { roles: [{ role: "viewer" }] }, warmOrg);
    const res = await counted("POST", "/api/auth/access-tokens/jwt", { headers: { "content-type": "application/json" }, body: JSON.stringify({ access_token: token }) });
    expectStatus(res, 200);
    const c = res.counts;
    expect(c.kvRead, describeCounts(c)).toBeLessThanOrEqual(1);
    expect(c.d1, describeCounts(c)).toBe(0);
    expect(c.doCall, describeCounts(c)).toBe(0);
  });

  it("exchange on a cache hit: no KV read", async () => {
    const { token } = await newClient(root.token, { roles: [{ role: "viewer" }] }, warmOrg);
    const body = JSON.stringify({ access_token: token });
    const headers = { "content-type": "application/json" };
    expectStatus(await counted("POST", "/api/auth/access-tokens/jwt", { headers, body }), 200);
    const res = await counted("POST", "/api/auth/access-tokens/jwt", { headers, body });
    expectStatus(res, 200);
    expect(res.counts.kvRead, describeCounts(res.counts)).toBe(0);
    expect(res.counts.d1, describeCounts(res.counts)).toBe(0);
    expect(res.counts.doCall, describeCounts(res.counts)).toBe(0);
  });

  it("client_secret_basic on a cache miss: at most 1 KV read, no D1, no Durable Object", async () => {
    const viewer = await newClient(root.token, { roles: [{ role: "viewer" }] }, warmOrg);
    const res = await counted("POST", "/oauth/token", {
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(viewer.account.id, viewer.token) },
      body: formBody({ grant_type: "client_credentials" }),
    });
    expectStatus(res, 200);
    const c = res.counts;
    expect(c.kvRead, describeCounts(c)).toBeLessThanOrEqual(1);
    expect(c.d1, describeCounts(c)).toBe(0);
    expect(c.doCall, describeCounts(c)).toBe(0);
  });

  it("private_key_jwt: at most 1 Durable Object call", async () => {
    const client = await newKeyClient(root.token, "ES256", "pem");
    const assertion = await clientAssertion(client.privateKey, client.clientId, { kid: client.kid });
    void assertionGrant;
    const res = await counted("POST", "/oauth/token", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: formBody({ grant_type: "client_credentials", client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: assertion }),
    });
    expectStatus(res, 200);
    expect(res.counts.doCall, describeCounts(res.counts)).toBeLessThanOrEqual(1);
  });

  it("GET /api/v1/orgs/{org}/service-accounts?limit=20: at most 3 D1 queries", async () => {
    const client = await newClient(root.token, { roles: [{ role: "viewer" }] }, warmOrg);
    const res = await counted("GET", `/api/v1/orgs/${client.org.id}/service-accounts?limit=20`, { headers: { authorization: `Bearer ${root.token}` } });
    expectStatus(res, 200);
    expect(res.counts.d1, describeCounts(res.counts)).toBeLessThanOrEqual(3);
  });
});
