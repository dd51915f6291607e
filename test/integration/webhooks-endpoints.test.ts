import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { EVENT_CATALOGUE } from "../../src/domain/webhooks/catalogue.ts";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { createRole, expectCode, expectMissing, sas } from "./authz-helpers.ts";
import { hooks, receiver } from "./webhook-helpers.ts";

/** Webhook endpoints: CRUD, validation, the secret shown once and stored wrapped, permissions. */

type Org = Awaited<ReturnType<typeof orgWithAdmin>>;
let O: Org;
let C: Org;

async function tokenHolding(o: Org, operations: string[]) {
  const role = await createRole(o.adminToken, o.org.id, operations);
  const res = await call("POST", sas(o.org.id), { token: o.adminToken, body: { name: unique("p"), roles: [{ role: role.id }], issueToken: true } });
  expectStatus(res, 201);
  return res.json.token.token as string;
}

beforeAll(async () => {
  const root = await platformRoot();
  [O, C] = [await orgWithAdmin(root.token), await orgWithAdmin(root.token)];
});

describe("happy path", () => {
  it("create returns the endpoint and a whsec_ secret once; read and list never show it", async () => {
    const r = receiver();
    const res = await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url: r.url, events: ["token.revoked", "account.disabled"], description: "pager" } });
    expectStatus(res, 201);
    expect(res.json).toMatchObject({ url: r.url, events: ["token.revoked", "account.disabled"], enabled: true, description: "pager", orgId: O.org.id, previousSecretExpiresAt: null });
    expect(res.json.id).toMatch(/^whk_/);
    expect(res.json.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const read = await call("GET", `${hooks(O.org.id)}/${res.json.id}`, { token: O.adminToken });
    expectStatus(read, 200);
    expect(read.text).not.toContain(res.json.secret.slice(6));
    expect(read.json.secret).toBeUndefined();
    const list = await call("GET", hooks(O.org.id), { token: O.adminToken });
    expectStatus(list, 200);
    expect(list.json.items.map((e: { id: string }) => e.id)).toContain(res.json.id);
    expect(list.text).not.toContain(res.json.secret.slice(6));
  });

  it("the secret is stored wrapped: the D1 row holds neither it nor its bytes", async () => {
    const res = await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url: receiver().url } });
    expectStatus(res, 201);
    const row = await env.DB.prepare("select secrets from webhook_endpoints where id = ?").bind(res.json.id).first<{ secrets: string }>();
    const raw = res.json.secret.slice("whsec_".length);
    expect(row!.secrets).not.toContain(raw);
    expect(row!.secrets).not.toContain(raw.slice(0, 16));
    expect(JSON.parse(row!.secrets)).toHaveLength(1);
  });

  it("events default to *; PATCH edits url, events, description and enabled; DELETE removes it (404 after)", async () => {
    const res = await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url: receiver().url } });
    expectStatus(res, 201);
    expect(res.json.events).toEqual(["*"]);
    const url = receiver().url;
    const patched = await call("PATCH", `${hooks(O.org.id)}/${res.json.id}`, { token: O.adminToken, body: { url, events: ["key.added"], description: null, enabled: false } });
    expectStatus(patched, 200);
    expect(patched.json).toMatchObject({ url, events: ["key.added"], description: null, enabled: false, disabledReason: "disabled by a caller" });
    const enabled = await call("PATCH", `${hooks(O.org.id)}/${res.json.id}`, { token: O.adminToken, body: { enabled: true } });
    expect(enabled.json).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
    expectStatus(await call("DELETE", `${hooks(O.org.id)}/${res.json.id}`, { token: O.adminToken }), 204);
    expectCode(await call("GET", `${hooks(O.org.id)}/${res.json.id}`, { token: O.adminToken }), 404, "not_found");
  });

  it("every change writes an audit event, with no secret in it", async () => {
    const res = await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url: receiver().url } });
    const id = res.json.id;
    await call("PATCH", `${hooks(O.org.id)}/${id}`, { token: O.adminToken, body: { events: ["token.created"] } });
    const rotated = await call("POST", `${hooks(O.org.id)}/${id}/rotate-secret`, { token: O.adminToken, body: {} });
    expectStatus(rotated, 200);
    await call("DELETE", `${hooks(O.org.id)}/${id}`, { token: O.adminToken });
    const { results } = await env.DB.prepare("select action, details from audit_events where target_id = ? order by created_at, rowid").bind(id).all<{ action: string; details: string }>();
    expect(results.map((r) => r.action)).toEqual(["webhook_endpoint.created", "webhook_endpoint.updated", "webhook_endpoint.secret_rotated", "webhook_endpoint.deleted"]);
    for (const r of results) {
      expect(r.details).not.toContain(res.json.secret.slice(6, 20));
      expect(r.details).not.toContain(rotated.json.secret.slice(6, 20));
    }
  });

  it("the event catalogue in D1 (the trigger's) is EVENT_CATALOGUE exactly", async () => {
    const { results } = await env.DB.prepare("select action, event_type from webhook_event_types order by action").all<{ action: string; event_type: string }>();
    const expected = Object.entries(EVENT_CATALOGUE)
      .map(([action, e]) => ({ action, event_type: e.type }))
      .sort((a, b) => (a.action < b.action ? -1 : 1));
    expect(results).toEqual(expected);
  });
});

describe("errors", () => {
  it("unknown event names are refused, never ignored; * goes alone; an empty list is refused", async () => {
    const url = receiver().url;
    const unknown = expectCode(await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url, events: ["token.revoked", "token.stolen"] } }), 400, "validation_failed");
    expect(unknown.errors[0].path).toBe("body.events");
    expect(unknown.detail).toContain("token.stolen");
    expectCode(await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url, events: ["*", "token.revoked"] } }), 400, "validation_failed");
    expectCode(await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url, events: [] } }), 400, "validation_failed");
    const ok = await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url } });
    expectCode(await call("PATCH", `${hooks(O.org.id)}/${ok.json.id}`, { token: O.adminToken, body: { events: ["nope"] } }), 400, "validation_failed");
  });

  it("missing url, unknown fields, a grace over 7 days: 400", async () => {
    expectCode(await call("POST", hooks(O.org.id), { token: O.adminToken, body: {} }), 400, "validation_failed");
    expectCode(await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url: receiver().url, secret: "whsec_mine" } }), 400, "validation_failed");
    const ok = await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url: receiver().url } });
    expectCode(await call("POST", `${hooks(O.org.id)}/${ok.json.id}/rotate-secret`, { token: O.adminToken, body: { graceSeconds: 8 * 86_400 } }), 400, "validation_failed");
  });

  it("an org holds at most 20 endpoints (409 webhook_limit_reached)", async () => {
    const o = await orgWithAdmin((await platformRoot()).token);
    for (let i = 0; i < 20; i++) expectStatus(await call("POST", hooks(o.org.id), { token: o.adminToken, body: { url: receiver().url } }), 201);
    expectCode(await call("POST", hooks(o.org.id), { token: o.adminToken, body: { url: receiver().url } }), 409, "webhook_limit_reached");
  });
});

describe("security", () => {
  it("reading needs webhooks.read, changing needs webhooks.edit (403 naming it)", async () => {
    const ok = await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url: receiver().url } });
    const reader = await tokenHolding(O, ["webhooks.read"]);
    const nobody = await tokenHolding(O, ["orgs.read"]);
    expectMissing(await call("GET", hooks(O.org.id), { token: nobody }), ["webhooks.read"]);
    expectMissing(await call("GET", `${hooks(O.org.id)}/${ok.json.id}/deliveries`, { token: nobody }), ["webhooks.read"]);
    expectStatus(await call("GET", `${hooks(O.org.id)}/${ok.json.id}`, { token: reader }), 200);
    expectMissing(await call("POST", hooks(O.org.id), { token: reader, body: { url: receiver().url } }), ["webhooks.edit"]);
    expectMissing(await call("PATCH", `${hooks(O.org.id)}/${ok.json.id}`, { token: reader, body: { enabled: false } }), ["webhooks.edit"]);
    expectMissing(await call("POST", `${hooks(O.org.id)}/${ok.json.id}/rotate-secret`, { token: reader }), ["webhooks.edit"]);
    expectMissing(await call("POST", `${hooks(O.org.id)}/${ok.json.id}/test`, { token: reader }), ["webhooks.edit"]);
    expectMissing(await call("DELETE", `${hooks(O.org.id)}/${ok.json.id}`, { token: reader }), ["webhooks.edit"]);
  });

  it("another org's endpoint is 404 through every route, even with the id", async () => {
    const theirs = await call("POST", hooks(C.org.id), { token: C.adminToken, body: { url: receiver().url } });
    expectStatus(theirs, 201);
    // O's admin, on O's path with C's endpoint id
    for (const [method, suffix] of [["GET", ""], ["PATCH", ""], ["DELETE", ""], ["POST", "/rotate-secret"], ["POST", "/test"], ["GET", "/deliveries"]] as const) {
      const res = await call(method, `${hooks(O.org.id)}/${theirs.json.id}${suffix}`, { token: O.adminToken, ...(method === "PATCH" ? { body: { enabled: false } } : {}) });
      expectCode(res, 404, "not_found");
    }
    // and on C's path: C is invisible to O's admin
    expectCode(await call("GET", hooks(C.org.id), { token: O.adminToken }), 404, "not_found");
    const still = await call("GET", `${hooks(C.org.id)}/${theirs.json.id}`, { token: C.adminToken });
    expect(still.json.enabled).toBe(true);
  });

  it("no credential: 401", async () => {
    expectCode(await call("GET", hooks(O.org.id)), 401, "unauthenticated");
  });
});
