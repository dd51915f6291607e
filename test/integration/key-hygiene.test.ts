import { env } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { runJobs } from "../../src/cron/index.ts";
import { syncAccounts } from "../../src/domain/credentials/account-object.ts";
import { accountKey, type AccountRecord } from "../../src/domain/credentials/kv-records.ts";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { jobResult } from "./lifecycle-helpers.ts";
import { addPublicKey, assertionGrant, clientAssertion, expectOAuthError, expectProblemCode, keyPair, newClient, type Res } from "./oauth-helpers.ts";
import { auditOf, freshOrg, setPolicy, viewerAccount } from "./token-helpers.ts";
import { acceptedOfType, deliveryRows, endpointFor, receiver } from "./webhook-helpers.ts";

/**
 * Key hygiene: a public key's expiresAt (defaulted and capped by the org policy's
 * maxKeyLifetimeDays), disable / enable, private_key_jwt refusing disabled and expired keys, the
 * cron marking expired keys (audit, webhook), and the org's key review list.
 */

const DAY = 86_400_000;
let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const keysPath = (org: string, sa: string) => `/api/v1/orgs/${org}/service-accounts/${sa}/keys`;
const keyPath = (org: string, sa: string, key: string) => `${keysPath(org, sa)}/${key}`;
const reviewPath = (org: string) => `/api/v1/orgs/${org}/keys`;

/** An account of a fresh org (policy given) holding `viewer`, with one key; the admin's token, the private key. */
async function keyedAccount(policy: Record<string, unknown> = {}, keyBody: Record<string, unknown> = {}) {
  const o = await freshOrg(root.token);
  if (Object.keys(policy).length > 0) await setPolicy(o.adminToken, o.org.id, policy);
  const sa = await viewerAccount(o.adminToken, o.org.id);
  const { publicKey, privateKey } = await keyPair("ES256");
  const res = await addPublicKey(o.adminToken, o.org.id, sa.id, { publicKey: await jose.exportSPKI(publicKey), ...keyBody });
  return { ...o, sa, privateKey, res, key: res.json as Record<string, any> };
}

const grant = async (privateKey: CryptoKey, clientId: string, kid?: string) => assertionGrant(await clientAssertion(privateKey, clientId, { kid }));

async function actions(targetId: string): Promise<string[]> {
  return (await auditOf(targetId)).map((e) => e.action);
}

const patchKey = (token: string, org: string, sa: string, key: string, body: unknown) => call("PATCH", keyPath(org, sa, key), { token, body });

/** Sets a key's expiry in D1 and republishes the account's KV record (a key whose time has passed, before the cron ran). */
async function backdate(accountId: string, keyId: string, expiresAt: number) {
  await env.DB.prepare("update public_keys set expires_at = ? where id = ?").bind(expiresAt, keyId).run();
  await syncAccounts({ env }, [accountId]);
}

const kvRecord = (accountId: string) => env.TOKENS.get<AccountRecord>(accountKey(accountId), "json");

describe("expiresAt and the org policy's maxKeyLifetimeDays", () => {
  it("without a policy maximum a key never expires unless asked; an asked expiry is kept and published to KV", async () => {
    const none = await keyedAccount();
    expectStatus(none.res, 201);
    expect(none.key.expiresAt).toBeNull();
    expect(none.key.status).toBe("active");
    const at = new Date(Date.now() + 30 * DAY).toISOString().replace(/\.\d+Z$/, ".000Z");
    const asked = await keyedAccount({}, { expiresAt: at });
    expectStatus(asked.res, 201);
    expect(asked.key.expiresAt).toBe(at);
    expect((await kvRecord(asked.sa.id))?.keys[0]?.expiresAt).toBe(Date.parse(at));
    const created = (await auditOf(asked.key.id)).find((e) => e.action === "public_key.created");
    expect(JSON.parse(created!.details).expiresAt).toBe(Date.parse(at));
  });

  it("with maxKeyLifetimeDays: a key without expiresAt gets the maximum; a shorter one is kept; a longer one is 422 key_lifetime_exceeded and nothing is stored", async () => {
    const o = await keyedAccount({ maxKeyLifetimeDays: 30 });
    expectStatus(o.res, 201);
    expect(Math.abs(Date.parse(o.key.expiresAt) - (Date.now() + 30 * DAY))).toBeLessThan(60_000);
    const { publicKey } = await keyPair("ES256");
    const shorter = new Date(Date.now() + 10 * DAY).toISOString();
    const ok = await addPublicKey(o.adminToken, o.org.id, o.sa.id, { publicKey: await jose.exportJWK(publicKey), kid: "short", expiresAt: shorter });
    expectStatus(ok, 201);
    expect(Date.parse(ok.json.expiresAt)).toBe(Date.parse(shorter));
    const { publicKey: other } = await keyPair("ES256");
    const longer = await addPublicKey(o.adminToken, o.org.id, o.sa.id, { publicKey: await jose.exportJWK(other), kid: "long", expiresAt: new Date(Date.now() + 31 * DAY).toISOString() });
    expectProblemCode(longer, 422, "key_lifetime_exceeded");
    const list = await call("GET", keysPath(o.org.id, o.sa.id), { token: o.adminToken });
    expect(list.json.items.map((k: { kid: string }) => k.kid).sort()).toEqual([o.key.kid, "short"].sort());
  });

  it("an account created with publicKey under the policy gets a key with the policy's expiry", async () => {
    const o = await freshOrg(root.token);
    await setPolicy(o.adminToken, o.org.id, { maxKeyLifetimeDays: 7 });
    const { publicKey } = await keyPair("ES256");
    const res = await call("POST", `/api/v1/orgs/${o.org.id}/service-accounts`, { token: o.adminToken, body: { name: "with-key", publicKey: await jose.exportSPKI(publicKey) } });
    expectStatus(res, 201);
    const keys = await call("GET", keysPath(o.org.id, res.json.id), { token: o.adminToken });
    expect(Math.abs(Date.parse(keys.json.items[0].expiresAt) - (Date.now() + 7 * DAY))).toBeLessThan(60_000);
  });

  it("an expiresAt in the past, or not a date, is 400 validation_failed; the policy field is bounded", async () => {
    const o = await keyedAccount();
    const { publicKey } = await keyPair("ES256");
    const jwk = await jose.exportJWK(publicKey);
    expectProblemCode(await addPublicKey(o.adminToken, o.org.id, o.sa.id, { publicKey: jwk, expiresAt: new Date(Date.now() - 1000).toISOString() }), 400, "validation_failed");
    expectProblemCode(await addPublicKey(o.adminToken, o.org.id, o.sa.id, { publicKey: jwk, expiresAt: "tomorrow" }), 400, "validation_failed");
    for (const bad of [0, 3651, "30", 1.5]) {
      const res = await call("PATCH", `/api/v1/orgs/${o.org.id}`, { token: o.adminToken, body: { policy: { maxKeyLifetimeDays: bad } } });
      expectProblemCode(res, 400, "validation_failed");
    }
    const org = await call("GET", `/api/v1/orgs/${o.org.id}`, { token: o.adminToken });
    expect(org.json.policy.maxKeyLifetimeDays).toBeNull();
  });
});

describe("private_key_jwt refuses expired and disabled keys", () => {
  it("a key past its expiresAt (before the cron) fails with invalid_client; the account's other key still works", async () => {
    const o = await keyedAccount();
    expectStatus(await grant(o.privateKey, o.sa.id, o.key.kid), 200);
    const other = await keyPair("ES256");
    const second = await addPublicKey(o.adminToken, o.org.id, o.sa.id, { publicKey: await jose.exportJWK(other.publicKey), kid: "second" });
    expectStatus(second, 201);
    await backdate(o.sa.id, o.key.id, Date.now() - 1000);
    expectOAuthError(await grant(o.privateKey, o.sa.id, o.key.kid), 401, "invalid_client");
    // Without a kid every key of the alg is tried: the expired one still does not verify.
    expectOAuthError(await grant(o.privateKey, o.sa.id), 401, "invalid_client");
    expectStatus(await grant(other.privateKey, o.sa.id, "second"), 200);
    const list = await call("GET", keysPath(o.org.id, o.sa.id), { token: o.adminToken });
    expect(list.json.items.find((k: { id: string }) => k.id === o.key.id).status).toBe("expired");
  });

  it("disable: 200 status disabled, refused at once, one audit event; enable: works again, one audit event; both idempotent", async () => {
    const o = await keyedAccount();
    expectStatus(await grant(o.privateKey, o.sa.id, o.key.kid), 200);
    const disabled = await patchKey(o.adminToken, o.org.id, o.sa.id, o.key.id, { status: "disabled" });
    expectStatus(disabled, 200);
    expect(disabled.json).toMatchObject({ id: o.key.id, status: "disabled" });
    expectOAuthError(await grant(o.privateKey, o.sa.id, o.key.kid), 401, "invalid_client");
    expect((await kvRecord(o.sa.id))?.keys).toEqual([]);
    expectStatus(await patchKey(o.adminToken, o.org.id, o.sa.id, o.key.id, { status: "disabled" }), 200);
    expect((await actions(o.key.id)).filter((a) => a === "public_key.disabled")).toHaveLength(1);

    const enabled = await patchKey(o.adminToken, o.org.id, o.sa.id, o.key.id, { status: "active" });
    expectStatus(enabled, 200);
    expect(enabled.json.status).toBe("active");
    expectStatus(await grant(o.privateKey, o.sa.id, o.key.kid), 200);
    expectStatus(await patchKey(o.adminToken, o.org.id, o.sa.id, o.key.id, { status: "active" }), 200);
    expect(await actions(o.key.id)).toEqual(["public_key.created", "public_key.disabled", "public_key.enabled"]);
    const ev = (await auditOf(o.key.id)).find((e) => e.action === "public_key.disabled")!;
    expect(JSON.parse(ev.details)).toMatchObject({ accountId: o.sa.id, kid: o.key.kid });
  });

  it("an expired key cannot be enabled (409 key_expired); disabling it changes nothing", async () => {
    const o = await keyedAccount();
    await backdate(o.sa.id, o.key.id, Date.now() - 1000);
    expectProblemCode(await patchKey(o.adminToken, o.org.id, o.sa.id, o.key.id, { status: "active" }), 409, "key_expired");
    const res = await patchKey(o.adminToken, o.org.id, o.sa.id, o.key.id, { status: "disabled" });
    expectStatus(res, 200);
    expect(res.json.status).toBe("disabled");
    // Disabled then expired: still no way back.
    expectProblemCode(await patchKey(o.adminToken, o.org.id, o.sa.id, o.key.id, { status: "active" }), 409, "key_expired");
  });

  it("bad input and foreign keys: 400 for a bad status or extra field, 404 for a key of another account, a viewer is 403", async () => {
    const o = await keyedAccount();
    for (const body of [{ status: "expired" }, { status: "active", name: "x" }, {}, { disabled: true }]) {
      expectProblemCode(await patchKey(o.adminToken, o.org.id, o.sa.id, o.key.id, body), 400, "validation_failed");
    }
    const other = await viewerAccount(o.adminToken, o.org.id);
    expectProblemCode(await patchKey(o.adminToken, o.org.id, other.id, o.key.id, { status: "disabled" }), 404, "not_found");
    expectProblemCode(await patchKey(o.adminToken, o.org.id, o.sa.id, "key_nope", { status: "disabled" }), 404, "not_found");
    // Another org's admin cannot touch it.
    const stranger = await freshOrg(root.token);
    const res = await patchKey(stranger.adminToken, o.org.id, o.sa.id, o.key.id, { status: "disabled" });
    expect([403, 404]).toContain(res.status);
    expectStatus(await grant(o.privateKey, o.sa.id, o.key.kid), 200);
  });

  it("a viewer's token cannot disable or enable a key (403), and the key is untouched", async () => {
    const o = await keyedAccount();
    const viewer = await newClient(root.token, { roles: [{ role: "viewer" }] }, o.org.id);
    const res = await patchKey(viewer.token, o.org.id, o.sa.id, o.key.id, { status: "disabled" });
    expectProblemCode(res, 403, "permission_denied");
    expectStatus(await grant(o.privateKey, o.sa.id, o.key.kid), 200);
  });
});

describe("the cron's expireKeys", () => {
  it("marks keys past expiresAt expired (audit public_key.expired, key.expired webhook delivery), rewrites KV; idempotent; live keys untouched", async () => {
    const o = await keyedAccount({}, { expiresAt: new Date(Date.now() + 2 * DAY).toISOString() });
    const r = receiver();
    const endpoint = await endpointFor(o.adminToken, o.org.id, r, { events: ["key.expired"] });
    const keeper = await keyPair("ES256");
    const kept = await addPublicKey(o.adminToken, o.org.id, o.sa.id, { publicKey: await jose.exportJWK(keeper.publicKey), kid: "keeper", expiresAt: new Date(Date.now() + 10 * DAY).toISOString() });
    expectStatus(kept, 201);

    await runJobs(env, { jobs: ["expireKeys"] });
    expect(await actions(o.key.id)).not.toContain("public_key.expired");

    const later = Date.now() + 3 * DAY;
    const first = await runJobs(env, { jobs: ["expireKeys"], now: () => later });
    expect(jobResult(first, "expireKeys").expired).toBeGreaterThanOrEqual(1);
    const row = await env.DB.prepare("select status from public_keys where id = ?").bind(o.key.id).first<{ status: string }>();
    expect(row?.status).toBe("expired");
    expect((await kvRecord(o.sa.id))?.keys.map((k) => k.kid)).toEqual(["keeper"]);
    const expiredEvents = (await auditOf(o.key.id)).filter((e) => e.action === "public_key.expired");
    expect(expiredEvents).toHaveLength(1);
    expect(JSON.parse(expiredEvents[0]!.details)).toMatchObject({ accountId: o.sa.id, kid: o.key.kid });
    expect((await deliveryRows(endpoint.id)).map((d) => d.event_type)).toEqual(["key.expired"]);

    await runJobs(env, { jobs: ["expireKeys"], now: () => later + 1000 });
    expect((await auditOf(o.key.id)).filter((e) => e.action === "public_key.expired")).toHaveLength(1);
    expect(await actions(kept.json.id)).toEqual(["public_key.created"]);
    expectOAuthError(await grant(o.privateKey, o.sa.id, o.key.kid), 401, "invalid_client");
    expectStatus(await grant(keeper.privateKey, o.sa.id, "keeper"), 200);

    await runJobs(env, { jobs: ["webhookOutbox"] });
    const { body } = await acceptedOfType(r, "key.expired");
    expect(body.data).toMatchObject({ target: { type: "public_key", id: o.key.id } });
  });

  it("a disabled key past its expiry is left disabled (not re-marked)", async () => {
    const o = await keyedAccount({}, { expiresAt: new Date(Date.now() + DAY).toISOString() });
    expectStatus(await patchKey(o.adminToken, o.org.id, o.sa.id, o.key.id, { status: "disabled" }), 200);
    await runJobs(env, { jobs: ["expireKeys"], now: () => Date.now() + 2 * DAY });
    const row = await env.DB.prepare("select status from public_keys where id = ?").bind(o.key.id).first<{ status: string }>();
    expect(row?.status).toBe("disabled");
    expect(await actions(o.key.id)).toEqual(["public_key.created", "public_key.disabled"]);
  });
});

describe("reconcile", () => {
  /** Runs the reconcile job through one whole cycle; the accounts it resynced. */
  async function reconcileCycle() {
    let resynced = 0;
    for (let i = 0; i < 20; i++) {
      const r = jobResult(await runJobs(env, { jobs: ["reconcile"] }), "reconcile");
      resynced += r.accountsResynced as number;
      if (!r.more) break;
    }
    return resynced;
  }

  it("a lost disable (KV still listing the key) is repaired; a disabled key in agreement is not resynced again", async () => {
    const o = await keyedAccount();
    expectStatus(await call("POST", `/api/v1/orgs/${o.org.id}/service-accounts/${o.sa.id}/tokens`, { token: o.adminToken, body: {} }), 201);
    expectStatus(await patchKey(o.adminToken, o.org.id, o.sa.id, o.key.id, { status: "disabled" }), 200);
    await reconcileCycle();
    const record = (await kvRecord(o.sa.id))!;
    expect(record.keys).toEqual([]);
    // The KV write of the disable lost: the record still lists the key.
    await env.TOKENS.put(accountKey(o.sa.id), JSON.stringify({ ...record, keys: [{ kid: o.key.kid, alg: "ES256", jwk: o.key.jwk, expiresAt: null }] }));
    expect(await reconcileCycle()).toBeGreaterThanOrEqual(1);
    expect((await kvRecord(o.sa.id))?.keys).toEqual([]);
    expect(await reconcileCycle(), "nothing left to repair").toBe(0);
  });
});

describe("key review: GET /orgs/{org}/keys", () => {
  it("lists the org's keys with status and expiringWithinDays filters; other orgs' keys never appear", async () => {
    const o = await keyedAccount({}, { expiresAt: new Date(Date.now() + 5 * DAY).toISOString(), name: "soon" });
    const add = async (kid: string, expiresInDays: number | null) => {
      const { publicKey } = await keyPair("ES256");
      const body: Record<string, unknown> = { publicKey: await jose.exportJWK(publicKey), kid };
      if (expiresInDays !== null) body.expiresAt = new Date(Date.now() + expiresInDays * DAY).toISOString();
      const res = await addPublicKey(o.adminToken, o.org.id, o.sa.id, body);
      expectStatus(res, 201);
      return res.json as { id: string };
    };
    const far = await add("far", 60);
    const forever = await add("forever", null);
    const gone = await add("gone", 1);
    await backdate(o.sa.id, gone.id, Date.now() - 1000);
    const off = await add("off", 30);
    expectStatus(await patchKey(o.adminToken, o.org.id, o.sa.id, off.id, { status: "disabled" }), 200);
    const elsewhere = await keyedAccount({}, { expiresAt: new Date(Date.now() + 2 * DAY).toISOString() });

    const ids = async (query: string) => {
      const res: Res = await call("GET", `${reviewPath(o.org.id)}${query}`, { token: o.adminToken });
      expectStatus(res, 200);
      return (res.json.items as { id: string }[]).map((k) => k.id).sort();
    };
    expect(await ids("")).toEqual([o.key.id, far.id, forever.id, gone.id, off.id].sort());
    expect(await ids("?expiringWithinDays=14")).toEqual([o.key.id]);
    expect(await ids("?status=expired")).toEqual([gone.id]);
    expect(await ids("?status=disabled")).toEqual([off.id]);
    expect(await ids("?status=active")).toEqual([o.key.id, far.id, forever.id].sort());
    expect(await ids("")).not.toContain(elsewhere.key.id);
    const page = await call("GET", `${reviewPath(o.org.id)}?limit=2`, { token: o.adminToken });
    expect(page.json.items).toHaveLength(2);
    expect(page.json.nextCursor).toBeTypeOf("string");
    expectProblemCode(await call("GET", `${reviewPath(o.org.id)}?status=bogus`, { token: o.adminToken }), 400, "validation_failed");
    const stranger = await freshOrg(root.token);
    expect([403, 404]).toContain((await call("GET", reviewPath(o.org.id), { token: stranger.adminToken })).status);
  });
});
