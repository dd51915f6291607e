import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { createCtx } from "../../src/domain/shared/context.ts";
import type { ReceivedRequest, ReceiverMode } from "../webhooks/receiver-server.ts";
import { call, expectStatus, unique } from "../helpers.ts";

/** Helpers of the webhook tests: endpoints through the API, the loopback receiver (test/webhooks/receiver-server.ts). */

export const hooks = (orgId: string) => `/api/v1/orgs/${orgId}/webhooks`;

export interface ReceiverView {
  secrets: string[];
  mode: ReceiverMode;
  requests: ReceivedRequest[];
  accepted: Record<string, number>;
  bodies: Record<string, any>;
}

/** A fresh receiver: its URL and its controls. */
export function receiver(name = unique("r")) {
  const base = env.TEST_WEBHOOK_RECEIVER;
  const control = async (patch?: Record<string, unknown>): Promise<ReceiverView> => {
    const res = await fetch(`${base}/__control/${name}`, patch ? { method: "POST", body: JSON.stringify(patch) } : {});
    return (await res.json()) as ReceiverView;
  };
  return { name, url: `${base}/hook/${name}`, control, state: () => control() };
}

export type Receiver = ReturnType<typeof receiver>;

/** Creates an endpoint pointing at `r` and tells `r` its secret. */
export async function endpointFor(token: string, orgId: string, r: Receiver, body: Record<string, unknown> = {}, mode: ReceiverMode = "ok") {
  const res = await call("POST", hooks(orgId), { token, body: { url: r.url, ...body } });
  expectStatus(res, 201);
  await r.control({ reset: true, secrets: [res.json.secret], mode });
  return res.json as { id: string; secret: string; [k: string]: unknown };
}

/** Polls until `check` passes (or fails with its last error after `timeoutMs`). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 20_000, everyMs = 200): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

/** Waits for `r` to have accepted a request of `type`, and returns it with its payload. */
export async function acceptedOfType(r: Receiver, type: string, timeoutMs = 20_000) {
  return eventually(async () => {
    const s = await r.state();
    const req = s.requests.find((q) => q.type === type && q.status < 300);
    expect(req, `no accepted ${type} yet: ${JSON.stringify(s.requests.map((q) => [q.type, q.status]))}`).toBeDefined();
    return { request: req!, body: s.bodies[req!.id], state: s };
  }, timeoutMs);
}

export const systemCtx = () => createCtx(env, { actorId: "test", requestId: null, ip: null, userAgent: null });

/** Delivery rows of an endpoint, straight from D1. */
export async function deliveryRows(endpointId: string) {
  const { results } = await env.DB.prepare("select * from webhook_deliveries where endpoint_id = ? order by created_at, id").bind(endpointId).all<Record<string, any>>();
  return results;
}

/** An endpoint of the org with one delivery (a test event): the `{whk}` and `{dlv}` of the route-walking tests. */
export async function webhookWithDelivery(token: string, orgId: string): Promise<{ whk: string; dlv: string }> {
  const created = await call("POST", hooks(orgId), { token, body: { url: receiver().url } });
  expectStatus(created, 201);
  const sent = await call("POST", `${hooks(orgId)}/${created.json.id}/test`, { token });
  expectStatus(sent, 202);
  return { whk: created.json.id, dlv: sent.json.id };
}
