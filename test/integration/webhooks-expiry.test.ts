import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { runJobs } from "../../src/cron/index.ts";
import { retryDelaySeconds } from "../../src/domain/webhooks/delivery.ts";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { sas } from "./authz-helpers.ts";
import { acceptedOfType, endpointFor, receiver } from "./webhook-helpers.ts";

/** The cron's expiry notices (token.expiring / account.expiring: each threshold once) and the retry schedule. */

const DAY = 86_400_000;
const expiring = async (targetId: string, action: string) => {
  const { results } = await env.DB.prepare("select details from audit_events where target_id = ? and action = ? order by created_at").bind(targetId, action).all<{ details: string }>();
  return results.map((r) => JSON.parse(r.details).days as number);
};
const run = (now = Date.now()) => runJobs(env, { jobs: ["expiryNotices", "webhookOutbox"], now: () => now });

async function orgWith(policy: Record<string, unknown>) {
  const o = await orgWithAdmin((await platformRoot()).token);
  if (Object.keys(policy).length > 0) expectStatus(await call("PATCH", `/api/v1/orgs/${o.org.id}`, { token: o.adminToken, body: { policy } }), 200);
  return o;
}

async function accountWithToken(o: Awaited<ReturnType<typeof orgWithAdmin>>, tokenExpiresInDays: number, accountBody: Record<string, unknown> = {}) {
  const account = await call("POST", sas(o.org.id), { token: o.adminToken, body: { name: unique("x"), ...accountBody } });
  expectStatus(account, 201);
  const token = await call("POST", `${sas(o.org.id)}/${account.json.id}/tokens`, { token: o.adminToken, body: { expiresAt: new Date(Date.now() + tokenExpiresInDays * DAY).toISOString() } });
  expectStatus(token, 201);
  return { accountId: account.json.id as string, tokenId: token.json.id as string };
}

describe("expiry notices", () => {
  it("default [7, 1]: a token 3 days from expiry gets the 7-day notice once, then the 1-day one once; the webhook gets token.expiring", async () => {
    const o = await orgWith({});
    const r = receiver();
    await endpointFor(o.adminToken, o.org.id, r, { events: ["token.expiring"] });
    const { tokenId } = await accountWithToken(o, 3);
    await run();
    await run();
    expect(await expiring(tokenId, "access_token.expiring")).toEqual([7]);
    const { body } = await acceptedOfType(r, "token.expiring");
    expect(body.data).toMatchObject({ target: { type: "access_token", id: tokenId }, details: { days: 7 } });
    await run(Date.now() + 2.5 * DAY);
    await run(Date.now() + 2.6 * DAY);
    expect(await expiring(tokenId, "access_token.expiring")).toEqual([7, 1]);
  });

  it("an account expiring within the policy's days gets account.expiring; a token far from expiry gets nothing", async () => {
    const o = await orgWith({ expiryWarningDays: [10] });
    const { accountId } = await accountWithToken(o, 8, { daysValid: 9 });
    const far = await accountWithToken(o, 30);
    await run();
    expect(await expiring(accountId, "service_account.expiring")).toEqual([10]);
    expect(await expiring(far.accountId, "service_account.expiring")).toEqual([]);
    expect(await expiring(far.tokenId, "access_token.expiring")).toEqual([]);
  });

  it("expiryWarningDays [] turns the notices off; a value over 90 days is refused", async () => {
    const o = await orgWith({ expiryWarningDays: [] });
    const { tokenId } = await accountWithToken(o, 1);
    await run();
    expect(await expiring(tokenId, "access_token.expiring")).toEqual([]);
    const bad = await call("PATCH", `/api/v1/orgs/${o.org.id}`, { token: o.adminToken, body: { policy: { expiryWarningDays: [91] } } });
    expect(bad.status, bad.text).toBe(400);
  });
});

describe("the retry schedule", () => {
  const config = { WEBHOOK_RETRY_BASE_SECONDS: 5, WEBHOOK_RETRY_MAX_DELAY_SECONDS: 21_600 };
  it("grows 4x from the base, caps at the maximum, jitters by +-20 %", () => {
    const mid = (n: number) => retryDelaySeconds(config, n, null, () => 0.5);
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(mid)).toEqual([5, 20, 80, 320, 1280, 5120, 20480, 21600]);
    expect(retryDelaySeconds(config, 3, null, () => 0)).toBe(64);
    expect(retryDelaySeconds(config, 3, null, () => 0.999999)).toBe(96);
  });
  it("never shorter than Retry-After, never over the queue's 12 hours", () => {
    expect(retryDelaySeconds(config, 1, 120, () => 0.5)).toBe(120);
    expect(retryDelaySeconds(config, 1, 10 * 86_400, () => 0.5)).toBe(43_200);
  });
});
