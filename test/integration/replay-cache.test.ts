import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { rememberOnce, replaySlot } from "../../src/domain/credentials/replay.ts";
import { sha256Hex } from "../../src/lib/sha256.ts";
import { REPLAY_FLUSH_MS, REPLAY_MEMORY_CAP, type AccountCredentials } from "../../src/durable-objects/account-credentials.ts";
import { platformRoot } from "../helpers.ts";
import { assertionGrant, clientAssertion, expectOAuthError, expectTokenResponse, newKeyClient, nowS, sleep } from "./oauth-helpers.ts";

/** The one replay check of single-use JWTs (src/domain/credentials/replay.ts) and its shards' memory and storage. */

let rootToken: string;
beforeAll(async () => {
  rootToken = (await platformRoot()).token;
});

const keyClient = () => newKeyClient(rootToken, "ES256", "pem");
const shardStub = (name: string) => env.ACCOUNT_DO.get(env.ACCOUNT_DO.idFromName(name));
const storedUnder = (name: string, prefix: string) =>
  runInDurableObject<AccountCredentials, [string, number][]>(shardStub(name), (_i, state) => [...state.storage.kv.list<number>({ prefix })]);
const bindings = { env: env as never };

describe("private_key_jwt assertions", () => {
  it("the same assertion twice: the second is refused", async () => {
    const c = await keyClient();
    const assertion = await clientAssertion(c.privateKey, c.clientId, { kid: c.kid });
    await expectTokenResponse(await assertionGrant(assertion), c.clientId);
    const body = expectOAuthError(await assertionGrant(assertion), 401, "invalid_client");
    expect(body.error_description).toContain("already used");
  });

  it("20 parallel requests with one assertion: exactly one 200", async () => {
    const c = await keyClient();
    const assertion = await clientAssertion(c.privateKey, c.clientId, { kid: c.kid });
    const statuses = (await Promise.all(Array.from({ length: 20 }, () => assertionGrant(assertion)))).map((r) => r.status);
    expect(statuses.filter((s) => s === 200), JSON.stringify(statuses)).toHaveLength(1);
  });

  it("an equal jti from two different clients: both accepted, each refused on its own replay", async () => {
    const [a, b] = await Promise.all([keyClient(), keyClient()]);
    const jti = `shared-${crypto.randomUUID()}`;
    const fromA = await clientAssertion(a.privateKey, a.clientId, { kid: a.kid, jti });
    const fromB = await clientAssertion(b.privateKey, b.clientId, { kid: b.kid, jti });
    await expectTokenResponse(await assertionGrant(fromA), a.clientId);
    await expectTokenResponse(await assertionGrant(fromB), b.clientId);
    expectOAuthError(await assertionGrant(fromA), 401, "invalid_client");
    expectOAuthError(await assertionGrant(fromB), 401, "invalid_client");
  });

  it("one client's assertions spread over several client-jwt shards, each stored under its scoped key until exp plus the skew", async () => {
    const c = await keyClient();
    const exp = nowS() + 120;
    const jtis = Array.from({ length: 12 }, () => crypto.randomUUID());
    for (const jti of jtis) await expectTokenResponse(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, jti, exp })), c.clientId);
    await sleep(REPLAY_FLUSH_MS * 3);
    const slots = jtis.map((jti) => replaySlot("client-jwt", c.clientId, jti));
    expect(new Set(slots.map((s) => s.object)).size, "more than one shard").toBeGreaterThan(1);
    for (const slot of slots) {
      expect(slot.object).toMatch(/^client-jwt:[0-7]$/);
      const stored = await storedUnder(slot.object, slot.key);
      expect(stored.length, `${slot.object} ${slot.key}`).toBe(1);
      expect(stored[0]![1]).toBeGreaterThanOrEqual(exp * 1000);
    }
  });
});

describe("the DPoP and federation namespaces keep their objects and keys", () => {
  it("a DPoP proof's jti: dpop:<n>, key jti:dpop:<sha256(jkt jti)>; the replay is refused", async () => {
    const jkt = `jkt-${crypto.randomUUID()}`;
    const jti = crypto.randomUUID();
    const exp = Date.now() + 60_000;
    expect(await rememberOnce(bindings, "dpop", jkt, jti, exp)).toBe(true);
    expect(await rememberOnce(bindings, "dpop", jkt, jti, exp)).toBe(false);
    expect(await rememberOnce(bindings, "dpop", `${jkt}-other`, jti, exp), "another key's equal jti").toBe(true);
    const hash = sha256Hex(`${jkt} ${jti}`);
    const slot = replaySlot("dpop", jkt, jti);
    expect(slot).toEqual({ object: `dpop:${parseInt(hash.slice(0, 4), 16) % 32}`, key: `jti:dpop:${hash}` });
    await sleep(REPLAY_FLUSH_MS * 3);
    expect((await storedUnder(slot.object, slot.key)).map(([, at]) => at)).toEqual([exp]);
  });

  it("a federated token's jti: federation:<issuer hash>:<n>, key jti:fed:<sha256(iss jti)>; the replay is refused", async () => {
    const issuer = `https://issuer-${crypto.randomUUID()}.test`;
    const jti = crypto.randomUUID();
    const exp = Date.now() + 60_000;
    expect(await rememberOnce(bindings, "federation", issuer, jti, exp)).toBe(true);
    expect(await rememberOnce(bindings, "federation", issuer, jti, exp)).toBe(false);
    const hash = sha256Hex(`${issuer} ${jti}`);
    expect(replaySlot("federation", issuer, jti)).toEqual({ object: `federation:${sha256Hex(issuer).slice(0, 16)}:${parseInt(hash.slice(0, 4), 16) % 16}`, key: `jti:fed:${hash}` });
  });
});

describe("a shard's memory and storage", () => {
  it("a key evicted from memory (beyond REPLAY_MEMORY_CAP) is still refused: before its batch is written and after", async () => {
    const stub = shardStub(`client-jwt:test-${crypto.randomUUID()}`);
    const exp = Date.now() + 600_000;
    const first = await runInDurableObject<AccountCredentials, { accepted: boolean; inMemory: boolean; replay: boolean }>(stub, (instance) => {
      const accepted = instance.rememberOnce("jti:first", exp);
      for (let i = 0; i <= REPLAY_MEMORY_CAP; i++) instance.rememberOnce(`jti:fill-${i}`, exp);
      return { accepted, inMemory: instance["recent"].live("jti:first", Date.now()) !== undefined, replay: instance.rememberOnce("jti:first", exp) };
    });
    expect(first).toEqual({ accepted: true, inMemory: false, replay: false });
    await sleep(REPLAY_FLUSH_MS * 4);
    const later = await runInDurableObject<AccountCredentials, { inMemory: boolean; unflushed: number; replay: boolean; stored: number }>(stub, (instance, state) => {
      // The replay above put jti:first back in memory: push it out again, so storage alone answers.
      for (let i = 0; i <= REPLAY_MEMORY_CAP; i++) instance.rememberOnce(`jti:more-${i}`, exp);
      return {
        inMemory: instance["recent"].live("jti:first", Date.now()) !== undefined,
        unflushed: instance["unflushed"].has("jti:first") ? 1 : 0,
        replay: instance.rememberOnce("jti:first", exp),
        stored: [...state.storage.kv.list({ prefix: "jti:fill-" })].length,
      };
    });
    expect(later).toEqual({ inMemory: false, unflushed: 0, replay: false, stored: REPLAY_MEMORY_CAP + 1 });
    expect(await runInDurableObject<AccountCredentials, number>(stub, (instance) => instance["recent"].size)).toBeLessThanOrEqual(REPLAY_MEMORY_CAP);
  });

  it.each([
    ["without a horizon (written before it existed)", false],
    ["under the horizon an earlier instance wrote", true],
  ])("a fresh instance refuses a live key an earlier instance stored, %s", async (_label, withHorizon) => {
    const stub = shardStub(`client-jwt:test-${crypto.randomUUID()}`);
    const live = Date.now() + 600_000;
    const answers = await runInDurableObject<AccountCredentials, boolean[]>(stub, (instance, state) => {
      state.storage.kv.put("jti:earlier", live);
      state.storage.kv.put("jti:expired", Date.now() - 1);
      if (withHorizon) state.storage.kv.put("jti-horizon", live);
      return [instance.rememberOnce("jti:earlier", live), instance.rememberOnce("jti:expired", live), instance.rememberOnce("jti:new", live)];
    });
    expect(answers).toEqual([false, true, true]);
  });

  it("each flush writes the horizon (the latest expiry stored) with the keys", async () => {
    const stub = shardStub(`client-jwt:test-${crypto.randomUUID()}`);
    const now = Date.now();
    await runInDurableObject<AccountCredentials, boolean[]>(stub, (instance) => [instance.rememberOnce("jti:a", now + 90_000), instance.rememberOnce("jti:b", now + 60_000)]);
    await sleep(REPLAY_FLUSH_MS * 3);
    await runInDurableObject<AccountCredentials, boolean>(stub, (instance) => instance.rememberOnce("jti:c", now + 30_000));
    await sleep(REPLAY_FLUSH_MS * 3);
    const stored = await runInDurableObject<AccountCredentials, Record<string, number>>(stub, (_i, state) => Object.fromEntries(state.storage.kv.list<number>()));
    expect(stored).toEqual({ "jti-horizon": now + 90_000, "jti:a": now + 90_000, "jti:b": now + 60_000, "jti:c": now + 30_000 });
  });

  it("expired keys are purged from storage by the alarm; live ones stay and stay refused", async () => {
    const stub = shardStub(`client-jwt:test-${crypto.randomUUID()}`);
    const soon = Date.now() + 100;
    const live = Date.now() + 600_000;
    await runInDurableObject<AccountCredentials, boolean[]>(stub, (instance) => [instance.rememberOnce("jti:soon", soon), instance.rememberOnce("jti:live", live)]);
    await sleep(250);
    const armed = await runInDurableObject<AccountCredentials, number | null>(stub, (_i, state) => state.storage.getAlarm());
    expect(armed, "the flush arms the purge").not.toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const keys = await runInDurableObject<AccountCredentials, string[]>(stub, (_i, state) => [...state.storage.kv.list({ prefix: "jti:" })].map(([k]) => k));
    expect(keys).toEqual(["jti:live"]);
    expect(await runInDurableObject<AccountCredentials, boolean>(stub, (instance) => instance.rememberOnce("jti:live", live))).toBe(false);
  });
});
