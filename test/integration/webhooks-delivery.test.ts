import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { expectCode, sas } from "./authz-helpers.ts";
import { acceptedOfType, deliveryRows, endpointFor, eventually, hooks, receiver, type Receiver } from "./webhook-helpers.ts";

/**
 * Delivery through the real queue to the loopback receiver, which verifies every request with the
 * `standardwebhooks` package: signatures, filters, the test event, rotation's grace, Retry-After,
 * timeouts, redirects, manual retry, giving up, auto-disable, and URLs refused at send.
 */

type Org = Awaited<ReturnType<typeof orgWithAdmin>>;
let O: Org;

beforeAll(async () => {
  const root = await platformRoot();
  O = await orgWithAdmin(root.token);
});

/** A fresh org with its admin, so that each test's events reach only its own endpoints. */
const freshOrg = async () => orgWithAdmin((await platformRoot()).token);
const newAccount = async (o: Org) => {
  const res = await call("POST", sas(o.org.id), { token: o.adminToken, body: { name: unique("a") } });
  expectStatus(res, 201);
  return res.json as { id: string };
};
const readDelivery = (o: Org, whk: string, dlv: string) => call("GET", `${hooks(o.org.id)}/${whk}/deliveries/${dlv}`, { token: o.adminToken });
async function onlyDelivery(o: Org, whk: string, state?: string) {
  return eventually(async () => {
    const res = await call("GET", `${hooks(o.org.id)}/${whk}/deliveries`, { token: o.adminToken });
    expectStatus(res, 200);
    expect(res.json.items.length, res.text).toBeGreaterThan(0);
    if (state) expect(res.json.items[0].state, res.text).toBe(state);
    return res.json.items[0];
  });
}

describe("happy path", () => {
  it("creating an account sends account.created through the real queue; standardwebhooks verifies it", async () => {
    const r = receiver();
    await endpointFor(O.adminToken, O.org.id, r);
    const created = await call("POST", sas(O.org.id), { token: O.adminToken, body: { name: "hooked" } });
    expectStatus(created, 201);
    const { request, body } = await acceptedOfType(r, "account.created");
    expect(request.verifiedWith).toEqual([true]);
    expect(request.id).toMatch(/^evt_/);
    expect(body).toMatchObject({ id: request.id, type: "account.created", version: 1, orgId: O.org.id, data: { target: { type: "service_account", id: created.json.id } } });
    // The webhook-id is the audit event's id.
    const audit = await env.DB.prepare("select action from audit_events where id = ?").bind(request.id).first<{ action: string }>();
    expect(audit?.action).toBe("service_account.created");
  });

  it("the filter decides: an endpoint for key.added gets no account.created; * gets it", async () => {
    const o = await freshOrg();
    const keysOnly = receiver();
    const all = receiver();
    const k = await endpointFor(o.adminToken, o.org.id, keysOnly, { events: ["key.added"] });
    await endpointFor(o.adminToken, o.org.id, all);
    await newAccount(o);
    await acceptedOfType(all, "account.created");
    expect(await deliveryRows(k.id)).toEqual([]);
    expect((await keysOnly.state()).requests).toEqual([]);
  });

  it("a disabled endpoint gets no delivery rows at all", async () => {
    const o = await freshOrg();
    const r = receiver();
    const e = await endpointFor(o.adminToken, o.org.id, r, { enabled: false });
    const live = receiver();
    await endpointFor(o.adminToken, o.org.id, live);
    await newAccount(o);
    await acceptedOfType(live, "account.created");
    expect(await deliveryRows(e.id)).toEqual([]);
  });

  it("POST .../test sends webhook.test to that endpoint (202); the log shows it delivered with its attempt", async () => {
    const r = receiver();
    const e = await endpointFor(O.adminToken, O.org.id, r, { events: ["key.removed"] });
    const sent = await call("POST", `${hooks(O.org.id)}/${e.id}/test`, { token: O.adminToken });
    expectStatus(sent, 202);
    expect(sent.json).toMatchObject({ webhookId: e.id, eventType: "webhook.test", state: "pending" });
    const { request, body } = await acceptedOfType(r, "webhook.test");
    expect(request.id).toBe(sent.json.eventId);
    expect(request.verifiedWith).toEqual([true]);
    expect(body.data.target).toEqual({ type: "webhook_endpoint", id: e.id });
    await onlyDelivery(O, e.id, "delivered");
    const one = await readDelivery(O, e.id, sent.json.id);
    expectStatus(one, 200);
    expect(one.json).toMatchObject({ state: "delivered", attempts: 1, lastStatus: 204, lastError: null });
    expect(one.json.attemptLog).toMatchObject([{ attempt: 1, status: 204, error: null }]);
  });

  it("rotation: during the grace both secrets sign (two signatures, each verifies); with grace 0 only the new one", async () => {
    const r = receiver();
    const e = await endpointFor(O.adminToken, O.org.id, r);
    const rotated = await call("POST", `${hooks(O.org.id)}/${e.id}/rotate-secret`, { token: O.adminToken, body: { graceSeconds: 3600 } });
    expectStatus(rotated, 200);
    expect(rotated.json.secret).not.toBe(e.secret);
    expect(Date.parse(rotated.json.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(3500_000);
    await r.control({ secrets: [e.secret, rotated.json.secret] });
    await call("POST", `${hooks(O.org.id)}/${e.id}/test`, { token: O.adminToken });
    const during = await acceptedOfType(r, "webhook.test");
    expect(during.request.signatures).toBe(2);
    expect(during.request.verifiedWith).toEqual([true, true]);
    // Only the new secret alone also verifies (a receiver that switched already).
    const again = await call("POST", `${hooks(O.org.id)}/${e.id}/rotate-secret`, { token: O.adminToken, body: { graceSeconds: 0 } });
    expect(again.json.previousSecretExpiresAt).toBeNull();
    await r.control({ reset: true, secrets: [rotated.json.secret, again.json.secret] });
    await call("POST", `${hooks(O.org.id)}/${e.id}/test`, { token: O.adminToken });
    const after = await acceptedOfType(r, "webhook.test");
    expect(after.request.signatures).toBe(1);
    expect(after.request.verifiedWith).toEqual([false, true]);
  });
});

describe("errors and retries", () => {
  it("honours Retry-After: the second attempt waits at least what the receiver asked (base delay here is 1 s)", async () => {
    const r = receiver();
    const e = await endpointFor(O.adminToken, O.org.id, r, {}, "retry-after");
    await r.control({ retryAfter: 3 });
    const sent = await call("POST", `${hooks(O.org.id)}/${e.id}/test`, { token: O.adminToken });
    await acceptedOfType(r, "webhook.test", 30_000);
    const one = await eventually(async () => {
      const res = await readDelivery(O, e.id, sent.json.id);
      expect(res.json.state, res.text).toBe("delivered");
      return res.json;
    });
    expect(one.attemptLog.map((a: { status: number }) => a.status)).toEqual([429, 204]);
    expect(Date.parse(one.attemptLog[1].startedAt) - Date.parse(one.attemptLog[0].startedAt)).toBeGreaterThanOrEqual(2900);
  });

  it("a receiver that does not answer in time is an attempt with a reason, retried until it answers", async () => {
    const r = receiver();
    const e = await endpointFor(O.adminToken, O.org.id, r, {}, "slow");
    const sent = await call("POST", `${hooks(O.org.id)}/${e.id}/test`, { token: O.adminToken });
    await eventually(async () => {
      const res = await readDelivery(O, e.id, sent.json.id);
      expect(res.json.attemptLog.length, res.text).toBeGreaterThan(0);
      expect(res.json.attemptLog[0].error).toBe("no answer within 1000 ms");
    });
    await r.control({ mode: "ok" });
    await eventually(async () => {
      const res = await readDelivery(O, e.id, sent.json.id);
      expect(res.json.state, res.text).toBe("delivered");
    }, 30_000);
  });

  it("a redirect is never followed: the 302 is a failed attempt and the other receiver gets nothing", async () => {
    const r = receiver();
    const elsewhere = receiver("elsewhere");
    await elsewhere.control({ reset: true });
    const e = await endpointFor(O.adminToken, O.org.id, r, {}, "redirect");
    const sent = await call("POST", `${hooks(O.org.id)}/${e.id}/test`, { token: O.adminToken });
    await eventually(async () => {
      const res = await readDelivery(O, e.id, sent.json.id);
      expect(res.json.attemptLog[0]?.status, res.text).toBe(302);
      expect(res.json.lastError).toBe("status 302");
    });
    expect((await elsewhere.state()).requests).toEqual([]);
    await r.control({ mode: "ok" });
  });

  it("after the retry window the delivery is failed and stays in the log; a manual retry sends it again with the same webhook-id", async () => {
    const r = receiver();
    const e = await endpointFor(O.adminToken, O.org.id, r, {}, "fail");
    const sent = await call("POST", `${hooks(O.org.id)}/${e.id}/test`, { token: O.adminToken });
    await eventually(async () => expect((await readDelivery(O, e.id, sent.json.id)).json.attempts).toBeGreaterThan(0));
    // As if the event were almost 24 hours old: the next failure ends its window.
    await env.DB.prepare("update webhook_deliveries set window_started_at = ? where id = ?").bind(Date.now() - 86_400_000 + 200, sent.json.id).run();
    const failed = await eventually(async () => {
      const res = await readDelivery(O, e.id, sent.json.id);
      expect(res.json.state, res.text).toBe("failed");
      return res.json;
    }, 30_000);
    expect(failed).toMatchObject({ lastStatus: 500, lastError: "status 500", nextAttemptAt: null });
    const listed = await call("GET", `${hooks(O.org.id)}/${e.id}/deliveries?state=failed`, { token: O.adminToken });
    expect(listed.json.items.map((d: { id: string }) => d.id)).toEqual([sent.json.id]);
    await r.control({ mode: "ok" });
    const retried = await call("POST", `${hooks(O.org.id)}/${e.id}/deliveries/${sent.json.id}/retry`, { token: O.adminToken });
    expectStatus(retried, 202);
    expect(retried.json).toMatchObject({ state: "pending", attempts: 0 });
    expectCode(await call("POST", `${hooks(O.org.id)}/${e.id}/deliveries/${sent.json.id}/retry`, { token: O.adminToken }), 409, "conflict");
    const { request } = await acceptedOfType(r, "webhook.test");
    expect(request.id).toBe(sent.json.eventId);
    await eventually(async () => expect((await readDelivery(O, e.id, sent.json.id)).json.state).toBe("delivered"));
  });

  it("an endpoint failing for WEBHOOK_DISABLE_AFTER_DAYS is disabled, and webhook.disabled goes to the org's other endpoints (once)", async () => {
    const o = await freshOrg();
    const failing = receiver();
    const watcher = receiver();
    const f = await endpointFor(o.adminToken, o.org.id, failing, {}, "fail");
    const w = await endpointFor(o.adminToken, o.org.id, watcher, { events: ["webhook.disabled"] });
    await env.DB.prepare("update webhook_endpoints set failing_since = ? where id = ?").bind(Date.now() - 6 * 86_400_000, f.id).run();
    await newAccount(o);
    const { body } = await acceptedOfType(watcher, "webhook.disabled");
    expect(body.data.target).toEqual({ type: "webhook_endpoint", id: f.id });
    expect(body.data.details.reason).toBe("failing");
    const read = await call("GET", `${hooks(o.org.id)}/${f.id}`, { token: o.adminToken });
    expect(read.json).toMatchObject({ enabled: false });
    expect(read.json.disabledReason).toMatch(/^every delivery failed since /);
    const { results } = await env.DB.prepare("select id from audit_events where target_id = ? and action = 'webhook_endpoint.disabled'").bind(f.id).all();
    expect(results).toHaveLength(1);
    // The disabled endpoint is not sent its own disable event.
    const own = await deliveryRows(f.id);
    expect(own.map((d) => d.event_type)).toEqual(["account.created"]);
    expect(w.id).toBeDefined();
  });

  it("a success clears the failure record", async () => {
    const r = receiver();
    const e = await endpointFor(O.adminToken, O.org.id, r, {}, "flaky");
    await env.DB.prepare("update webhook_endpoints set failing_since = ? where id = ?").bind(Date.now() - 86_400_000, e.id).run();
    await call("POST", `${hooks(O.org.id)}/${e.id}/test`, { token: O.adminToken });
    await acceptedOfType(r, "webhook.test");
    await eventually(async () => expect((await call("GET", `${hooks(O.org.id)}/${e.id}`, { token: O.adminToken })).json.failingSince).toBeNull());
  });
});

describe("security: SSRF", () => {
  const refused = [
    "http://hooks.example.com/x",
    "https://10.0.0.1/x",
    "https://167772161/x",
    "https://169.254.169.254/latest/meta-data/",
    "https://0xa9.0xfe.0xa9.0xfe/",
    "https://[fd12:3456::1]/x",
    "https://[::ffff:10.0.0.1]/x",
    "https://[fe80::1]/x",
    "https://192.168.0.10/x",
    "https://user:secret@hooks.example.com/x",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://intranet/x",
  ];
  it("refused at create and at PATCH with 422 webhook_url_not_allowed", async () => {
    const ok = await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url: receiver().url } });
    for (const url of refused) {
      const created = expectCode(await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url } }), 422, "webhook_url_not_allowed");
      expect(created.errors[0].path, url).toBe("body.url");
      expectCode(await call("PATCH", `${hooks(O.org.id)}/${ok.json.id}`, { token: O.adminToken, body: { url } }), 422, "webhook_url_not_allowed");
    }
    expect((await call("GET", `${hooks(O.org.id)}/${ok.json.id}`, { token: O.adminToken })).json.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
  });

  it("refused again at send: a stored URL that is not public fails its delivery without a request", async () => {
    const r: Receiver = receiver();
    const e = await endpointFor(O.adminToken, O.org.id, r);
    await env.DB.prepare("update webhook_endpoints set url = ? where id = ?").bind("https://10.1.2.3/hook", e.id).run();
    const sent = await call("POST", `${hooks(O.org.id)}/${e.id}/test`, { token: O.adminToken });
    const one = await eventually(async () => {
      const res = await readDelivery(O, e.id, sent.json.id);
      expect(res.json.state, res.text).toBe("failed");
      return res.json;
    });
    expect(one.lastError).toMatch(/^refused: the address 10\.1\.2\.3 is not public/);
    expect(one.attemptLog).toHaveLength(1);
    expect(one.attemptLog[0].status).toBeNull();
  });
});
