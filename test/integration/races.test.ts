import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { forgetCredentials, liveAccountRecord, TOKEN_CACHE_TTL_MS, verifyAccessToken } from "../../src/domain/credentials/record-cache.ts";
import type { TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import worker from "../../src/index.ts";
import { BASE, call, expectStatus, platformRoot, unique } from "../helpers.ts";
import { runJobs } from "../../src/cron/index.ts";
import { runJob } from "./lifecycle-helpers.ts";
import { addPublicKey, assertionGrant, clientAssertion, keyPair, postForm } from "./oauth-helpers.ts";
import { expectProblem } from "./registry-helpers.ts";
import { accountPath, freshOrg, issue, issueOk, regenerate, revoke, setPolicy, sha256, tokenRows, viewerAccount, type Res } from "./token-helpers.ts";

/**
 * Races over HTTP (through the Worker's default export): many requests in flight at once on the
 * same account or the same names, and what must hold once they have settled. Complements
 * token-concurrency.test.ts (fixed mixes of creates, regenerates and revokes).
 */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

afterEach(() => {
  vi.useRealTimers();
});

/** A deterministic PRNG (mulberry32), so that a failing interleaving names its seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The exchange endpoint (60 s: a secret in a short grace has less than the default 300 s left). */
const exchange = (secret: string) => call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: secret, duration_seconds: 60 } });
const oauthBasic = (accountId: string, secret: string) => postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [accountId, secret] });
const bearer = (credential: string, org: string) => call("GET", `/api/v1/orgs/${org}`, { token: credential });

const summary = (responses: Res[]) => {
  const counts = new Map<string, number>();
  for (const r of responses) {
    const k = `${r.status}${r.json?.code ? ` ${r.json.code}` : r.json?.error ? ` ${r.json.error}` : ""}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return JSON.stringify([...counts]);
};

// ---------------------------------------------------------------------------------------------

/**
 * The reconcile job (called with the real bindings behind a proxy that holds one KV read) decides
 * from a D1 row read before a change and a KV read after it. First in this file: it needs fewer than
 * 50 `tok:` keys in KV to sweep everything in one run (see faults-reconcile.test.ts).
 */
describe("the reconcile job racing a change", () => {
  it("a token whose KV write was lost, revoked while reconcile is deciding to rewrite it, is not resurrected", async () => {
    const o = await freshOrg(root.token);
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const t = await issueOk(o.adminToken, o.org.id, sa.id);
    const key = `tok:${await sha256(t.token)}`;
    await env.TOKENS.delete(key); // the lost write: D1 active, no record (fail closed)
    forgetCredentials({ accountId: sa.id });
    await env.TOKENS.delete("cron:reconcile");
    const held = heldReads(key);
    // The job has read the row (active) and is reading its record when the revoke goes through.
    const job = runJobs(held.env, { jobs: ["reconcile"] });
    await held.waitRead();
    expectStatus(await revoke(o.adminToken, o.org.id, sa.id, t.id), 204);
    held.release();
    const summary = await job;
    expect(summary.jobs.reconcile, JSON.stringify(summary)).toMatchObject({ accountsResynced: 1 });
    expect((await tokenRows(sa.id))[0]?.status).toBe("revoked");
    expect(await env.TOKENS.get(key), "record rewritten for a revoked token").toBeNull();
    expect((await exchange(t.token)).status).toBe(401);
  });

  it("a secret regenerated with a grace after the job listed the tok: keys and before it checks them against D1 keeps its record (old secret in grace, new one live)", async () => {
    const o = await freshOrg(root.token);
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const t = await issueOk(o.adminToken, o.org.id, sa.id);
    const oldKey = `tok:${await sha256(t.token)}`;
    await env.TOKENS.delete("cron:reconcile");
    const held = heldReads(oldKey, "list");
    const job = runJobs(held.env, { jobs: ["reconcile"] });
    await held.waitRead();
    const r = await regenerate(o.adminToken, o.org.id, sa.id, t.id, { graceSeconds: 600 });
    expectStatus(r, 200);
    held.release();
    const summary = await job;
    expect((summary.jobs.reconcile as { orphansDeleted?: number }).orphansDeleted, JSON.stringify(summary)).toBe(0);
    expect(await env.TOKENS.get(oldKey), "the old secret's record (in its grace)").not.toBeNull();
    expect(await env.TOKENS.get(`tok:${await sha256(r.json.token)}`), "the new secret's record").not.toBeNull();
    expect((await exchange(t.token)).status).toBe(200);
    expect((await exchange(r.json.token)).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------

describe("a random interleaving of create / regenerate / revoke / exchange on one account", () => {
  type Op = "create" | "regenerate" | "regenerate-grace" | "revoke" | "exchange";
  const WEIGHTS: [Op, number][] = [
    ["create", 5],
    ["regenerate", 3],
    ["regenerate-grace", 3],
    ["revoke", 2],
    ["exchange", 6],
  ];
  /** Outcomes over all the mixes of this describe ("op status" -> count). */
  const seen = new Map<string, number>();
  const pick = (rnd: () => number): Op => {
    let x = rnd() * WEIGHTS.reduce((n, [, w]) => n + w, 0);
    for (const [op, w] of WEIGHTS) if ((x -= w) < 0) return op;
    return "exchange";
  };

  /**
   * What D1 says authenticates right now (hash -> token id): the current secret of every live
   * token, and a previous secret still in its grace.
   */
  async function d1Live(accountId: string) {
    const now = Date.now();
    const live = new Map<string, string>();
    for (const r of await tokenRows(accountId)) {
      if (r.status !== "active" || (r.expires_at !== null && r.expires_at <= now)) continue;
      live.set(r.secret_hash, r.id);
      if (r.previous_secret_hash && r.previous_secret_expires_at !== null && r.previous_secret_expires_at > now) live.set(r.previous_secret_hash, r.id);
    }
    return live;
  }

  it.each([
    { limit: 1, seed: 11 },
    { limit: 2, seed: 23 },
    { limit: 3, seed: 42 },
    { limit: 3, seed: 1337 },
  ])("limit $limit, seed $seed: 3 rounds of 40 parallel requests (and a reconcile run) never exceed the limit, never revive a dead secret", async ({ limit, seed }) => {
    const o = await freshOrg(root.token);
    await setPolicy(o.adminToken, o.org.id, { maxActiveTokensPerAccount: limit });
    const sa = await viewerAccount(o.adminToken, o.org.id);
    /** Every secret ever returned, with its token. */
    const secrets = new Map<string, string>();
    /** Secrets seen dead once everything had settled: none of them may ever work again. */
    const dead = new Set<string>();
    const tokenIds = () => [...new Set(secrets.values())];
    for (let i = 0; i < limit; i++) {
      const t = await issueOk(o.adminToken, o.org.id, sa.id);
      secrets.set(t.token, t.id);
    }
    const rnd = prng(seed);

    for (let round = 0; round < 3; round++) {
      const ids = tokenIds();
      const activeIds = (await tokenRows(sa.id)).filter((r) => r.status === "active").map((r) => r.id);
      const known = [...secrets.keys()];
      const ops: { op: Op; secret?: string; wasDead?: boolean; p: Promise<Res> }[] = [];
      for (let i = 0; i < 40; i++) {
        const op = pick(rnd);
        // Mostly a live token (else regenerates would mostly hit revoked ones), sometimes any.
        const from = activeIds.length > 0 && rnd() < 0.8 ? activeIds : ids;
        const id = from[Math.floor(rnd() * from.length)]!;
        if (op === "create") ops.push({ op, p: issue(o.adminToken, o.org.id, sa.id) });
        else if (op === "regenerate") ops.push({ op, p: regenerate(o.adminToken, o.org.id, sa.id, id, { graceSeconds: 0 }) });
        else if (op === "regenerate-grace") ops.push({ op, p: regenerate(o.adminToken, o.org.id, sa.id, id, { graceSeconds: 120 }) });
        else if (op === "revoke") ops.push({ op, p: revoke(o.adminToken, o.org.id, sa.id, id) });
        else {
          const secret = known[Math.floor(rnd() * known.length)]!;
          ops.push({ op, secret, wasDead: dead.has(secret), p: exchange(secret) });
        }
      }
      // A reconcile run in the middle of the storm must not revive or delete anything it should not.
      const reconciling = runJob("reconcile", { batchSize: 40 });
      const responses = await Promise.all(ops.map((x) => x.p));
      await reconciling;
      const label = `seed ${seed} round ${round}: ${summary(responses)}`;

      responses.forEach((res, i) => {
        const { op, secret, wasDead } = ops[i]!;
        seen.set(`${op} ${res.status}`, (seen.get(`${op} ${res.status}`) ?? 0) + 1);
        if (op === "exchange") {
          expect([200, 401], `${label}: exchange ${res.text}`).toContain(res.status);
          // A secret that was dead before the round started stays dead, whatever races it.
          if (wasDead) expect(res.status, `${label}: a dead secret ${secret!.slice(0, 8)}… was exchanged`).toBe(401);
          return;
        }
        const allowed: Record<string, number[]> = { create: [201, 409], regenerate: [200, 409], "regenerate-grace": [200, 409], revoke: [204] };
        expect(allowed[op], `${label}: ${op} ${res.status} ${res.text}`).toContain(res.status);
        if (res.status === 409) expect(op === "create" ? ["token_limit_reached"] : ["token_not_active"], res.text).toContain(res.json?.code);
        if (res.json?.token) secrets.set(res.json.token, res.json.id);
      });

      // Settled: D1, KV and the exchange endpoint agree, within the limit.
      const live = await d1Live(sa.id);
      const rows = await tokenRows(sa.id);
      const active = rows.filter((r) => r.status === "active");
      expect(active.length, `${label}: active rows in D1`).toBeLessThanOrEqual(limit);
      expect(rows.map((r) => r.id).sort(), `${label}: D1 holds exactly the tokens that were returned`).toEqual(tokenIds().sort());
      const kvTokens = new Set<string>();
      const working = new Set<string>();
      for (const [secret, tokenId] of secrets) {
        const hash = await sha256(secret);
        const record = await env.TOKENS.get<TokenRecord>(`tok:${hash}`, "json");
        if (record) {
          kvTokens.add(record.tokenId);
          expect(live.get(hash), `${label}: KV holds ${secret.slice(0, 8)}… that D1 does not back`).toBe(record.tokenId);
        } else expect(live.has(hash), `${label}: D1 says ${secret.slice(0, 8)}… is live, KV has no record`).toBe(false);
        const works = (await exchange(secret)).status === 200;
        expect(works, `${label}: ${secret.slice(0, 8)}… of ${tokenId} works=${works}, D1 live=${live.has(hash)}`).toBe(live.has(hash));
        if (works) working.add(tokenId);
        else dead.add(secret);
      }
      expect(kvTokens.size, `${label}: tokens with a KV record`).toBeLessThanOrEqual(limit);
      expect(working.size, `${label}: tokens with a working secret`).toBeLessThanOrEqual(limit);
      for (const secret of dead) expect(live.has(await sha256(secret)), `${label}: a dead secret is live again in D1`).toBe(false);
    }
  });

  it("the mixes above exercised every path (otherwise their invariants prove little)", () => {
    const paths = JSON.stringify([...seen]);
    for (const k of ["create 201", "create 409", "regenerate 200", "regenerate 409", "regenerate-grace 200", "revoke 204", "exchange 200", "exchange 401"]) {
      expect(seen.get(k) ?? 0, `${k} never happened: ${paths}`).toBeGreaterThan(0);
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** An account with two tokens (one regenerated with a grace: three live secrets), a public key and a JWT. */
async function armedAccount() {
  const o = await freshOrg(root.token);
  await setPolicy(o.adminToken, o.org.id, { maxActiveTokensPerAccount: 3 });
  const sa = await viewerAccount(o.adminToken, o.org.id);
  const t1 = await issueOk(o.adminToken, o.org.id, sa.id);
  const t2 = await issueOk(o.adminToken, o.org.id, sa.id);
  const r = await regenerate(o.adminToken, o.org.id, sa.id, t2.id, { graceSeconds: 600 });
  expectStatus(r, 200);
  const keys = await keyPair("ES256");
  const { exportJWK } = await import("jose");
  expectStatus(await addPublicKey(o.adminToken, o.org.id, sa.id, { publicKey: { ...(await exportJWK(keys.publicKey)), kid: "race" }, alg: "ES256" }), 201);
  const jwtRes = await exchange(t1.token);
  expectStatus(jwtRes, 200);
  return { ...o, sa, t1: t1.id, t2: t2.id, secrets: [t1.token, t2.token, r.json.token as string], jwt: jwtRes.json.jwt as string, privateKey: keys.privateKey };
}

type Armed = Awaited<ReturnType<typeof armedAccount>>;

/** Every way in with every credential of the account (not yet sent). */
function waysIn(a: Armed) {
  const ways: { what: string; send: () => Promise<Res> }[] = [];
  for (const s of a.secrets) {
    ways.push({ what: `exchange ${s.slice(0, 8)}`, send: () => exchange(s) });
    ways.push({ what: `oauth basic ${s.slice(0, 8)}`, send: () => oauthBasic(a.sa.id, s) });
    ways.push({ what: `bearer ${s.slice(0, 8)}`, send: () => bearer(s, a.org.id) });
  }
  ways.push({ what: "bearer jwt", send: () => bearer(a.jwt, a.org.id) });
  ways.push({ what: "private_key_jwt", send: async () => assertionGrant(await clientAssertion(a.privateKey, a.sa.id, { kid: "race" })) });
  return ways;
}

async function expectEveryWay(a: Armed, status: 200 | 401, label: string) {
  const ways = waysIn(a);
  const responses = await Promise.all(ways.map((w) => w.send()));
  responses.forEach((res, i) => expect(res.status, `${label}: ${ways[i]!.what} ${res.status} ${res.text}`).toBe(status));
}

const expectAllRefused = (a: Armed, label: string) => expectEveryWay(a, 401, label);
const expectAllAccepted = (a: Armed, label: string) => expectEveryWay(a, 200, label);

/** Moves this isolate's clock past the token cache's bound (the README's "plus the 10 s per-isolate token cache"). */
function pastTheCacheBound() {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(Date.now() + TOKEN_CACHE_TTL_MS + 1_000);
}

/**
 * The real KV, handing back the first `get` of `key` (or, with "list", the first `tok:` listing)
 * only when released: a read that started before a change and finishes after it. Only that reply
 * is delayed; everything else goes straight to the real binding.
 */
function heldReads(key: string, method: "get" | "list" = "get") {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const state = { read: false };
  const kv = new Proxy(env.TOKENS, {
    get(target, prop) {
      if (prop === method) {
        return async (k: unknown, ...rest: unknown[]) => {
          const value = await (target[method] as (...a: unknown[]) => Promise<unknown>).call(target, k, ...rest);
          const hit = method === "get" ? k === key : (k as { prefix?: string } | undefined)?.prefix === "tok:";
          if (hit && !state.read) {
            state.read = true;
            await gate;
          }
          return value;
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const waitRead = async () => {
    for (let i = 0; i < 400 && !state.read; i++) await new Promise((r) => setTimeout(r, 5));
    expect(state.read, "the held read started").toBe(true);
  };
  return { env: { ...env, TOKENS: kv }, release, waitRead };
}

/** A request through the Worker (its real default export) whose KV read of `key` is held (heldReads). */
function requestWithHeldRead(request: Request, key: string) {
  const held = heldReads(key);
  const response = worker.fetch(request, held.env, createExecutionContext());
  return { response: Promise.resolve(response), release: held.release, read: held.waitRead };
}

const exchangeRequest = (secret: string) =>
  new Request(`${BASE}/api/auth/access-tokens/jwt`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ access_token: secret, duration_seconds: 60 }) });

describe("deleting an account while its credentials are in use", () => {
  it("45 requests in flight (exchange, /oauth/token client_secret_basic, Bearer token, Bearer JWT, private_key_jwt) around a DELETE: afterwards nothing of it works, now and past the cache bound, and KV holds nothing of it", async () => {
    const a = await armedAccount();
    await expectAllAccepted(a, "before"); // every record is now in this isolate's cache too
    const rnd = prng(7);
    const ways = waysIn(a);
    const inFlight: { what: string; p: Promise<Res> }[] = [];
    for (let i = 0; i < 44; i++) {
      const way = ways[Math.floor(rnd() * ways.length)]!;
      inFlight.push({ what: way.what, p: way.send() });
      if (i === 20) inFlight.push({ what: "DELETE", p: call("DELETE", accountPath(a.org.id, a.sa.id), { token: a.adminToken }) });
    }
    const responses = await Promise.all(inFlight.map((r) => r.p));
    const del = responses[inFlight.findIndex((r) => r.what === "DELETE")]!;
    expectStatus(del, 204);
    responses.forEach((res, i) => expect([200, 204, 401], `${inFlight[i]!.what}: ${res.text}`).toContain(res.status));

    // Nothing of it is left in KV or D1.
    for (const s of a.secrets) expect(await env.TOKENS.get(`tok:${await sha256(s)}`), `KV record of ${s.slice(0, 8)}…`).toBeNull();
    expect(await env.TOKENS.get(`sa:${a.sa.id}`), "account record").toBeNull();
    expect(await tokenRows(a.sa.id)).toEqual([]);

    // Right away, in the isolate that deleted it.
    await expectAllRefused(a, "after the delete");
    // Past the cache bound (what every other isolate sees by then, KV having propagated).
    const later = Date.now() + TOKEN_CACHE_TTL_MS;
    for (const s of a.secrets) expect(await verifyAccessToken(env, s, later), `${s.slice(0, 8)}… verifies past the bound`).toBeNull();
    expect(await liveAccountRecord(env, a.sa.id, later), "account record past the bound").toBeNull();
    pastTheCacheBound();
    await expectAllRefused(a, "past the cache bound");
  });
});

// ---------------------------------------------------------------------------------------------

/** Changes that kill some of the account's secrets (`killed`: indexes into `secrets`: t1, t2's old, t2's new). */
const KILLERS: { name: string; run: (a: Armed) => Promise<Res>; ok: number; killed: number[] }[] = [
  { name: "disable", run: (a) => call("PATCH", accountPath(a.org.id, a.sa.id), { token: a.adminToken, body: { status: "disabled" } }), ok: 200, killed: [0, 1, 2] },
  { name: "delete", run: (a) => call("DELETE", accountPath(a.org.id, a.sa.id), { token: a.adminToken }), ok: 204, killed: [0, 1, 2] },
  { name: "revoke (a token in a regenerate grace)", run: (a) => revoke(a.adminToken, a.org.id, a.sa.id, a.t2), ok: 204, killed: [1, 2] },
  { name: "regenerate without grace", run: (a) => regenerate(a.adminToken, a.org.id, a.sa.id, a.t1, { graceSeconds: 0 }), ok: 200, killed: [0] },
];

describe("a change racing exchanges of the secrets it kills", () => {
  it.each(KILLERS)("$name: of 40 exchanges and client_secret_basic requests spread over it, every one started after it returned with a killed secret fails; the others work", async (k) => {
    const a = await armedAccount();
    await expectAllAccepted(a, "before"); // cached in this isolate too
    const state = { done: false };
    const results: { after: boolean; killed: boolean; what: string; res: Res }[] = [];
    const rnd = prng(99);
    const load = Array.from({ length: 40 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, Math.floor(rnd() * 50)));
      const after = state.done;
      const idx = i % a.secrets.length;
      const basic = i % 4 === 3;
      const res = await (basic ? oauthBasic(a.sa.id, a.secrets[idx]!) : exchange(a.secrets[idx]!));
      results.push({ after, killed: k.killed.includes(idx), what: `${basic ? "basic" : "exchange"} secret #${idx}`, res });
    });
    const change = (async () => {
      await new Promise((r) => setTimeout(r, 15));
      const res = await k.run(a);
      state.done = true;
      return res;
    })();
    expectStatus(await change, k.ok);
    await Promise.all(load);
    const label = `${results.filter((r) => r.after).length} of 40 started after the ${k.name} returned`;
    for (const r of results) {
      expect([200, 401], `${label}: ${r.what} ${r.res.text}`).toContain(r.res.status);
      if (r.after && r.killed) expect(r.res.status, `${label}: ${r.what} started after it returned: ${r.res.text}`).toBe(401);
      if (!r.killed) expect(r.res.status, `${label}: ${r.what} (not killed): ${r.res.text}`).toBe(200);
    }
    // Settled: exactly the survivors work, every way in.
    for (const [i, s] of a.secrets.entries()) {
      expect((await exchange(s)).status, `secret #${i}`).toBe(k.killed.includes(i) ? 401 : 200);
      expect((await oauthBasic(a.sa.id, s)).status, `basic, secret #${i}`).toBe(k.killed.includes(i) ? 401 : 200);
    }
  });

  /**
   * Regression (found by this suite), for every change that kills a secret: a read of the secret's
   * record that started before the change and returns after its eviction must not put the live
   * record back in this isolate's cache (authn.ts caches a read only if no eviction happened while
   * it was in flight), so the change is honoured at once in the isolate that made it.
   */
  it.each(KILLERS)("$name: a read that started before it and returns after it does not leave a killed secret usable in this isolate", async (k) => {
    const a = await armedAccount();
    const secret = a.secrets[k.killed[0]!]!;
    forgetCredentials({ accountId: a.sa.id }); // the setup's own uses cached the record: start from KV
    const held = requestWithHeldRead(exchangeRequest(secret), `tok:${await sha256(secret)}`);
    await held.read();
    expectStatus(await k.run(a), k.ok);
    held.release();
    // The held request read before the change: its success is linearizable.
    expect((await held.response).status).toBe(200);
    // A request started after the change returned must be refused.
    const after = await exchange(secret);
    expect(after.status, `exchange after the ${k.name} returned: ${after.text}`).toBe(401);
  });

  it.each(KILLERS)("$name: control: past the cache bound that stale entry is gone, every way in", async (k) => {
    const a = await armedAccount();
    const secret = a.secrets[k.killed[0]!]!;
    forgetCredentials({ accountId: a.sa.id });
    const held = requestWithHeldRead(exchangeRequest(secret), `tok:${await sha256(secret)}`);
    await held.read();
    expectStatus(await k.run(a), k.ok);
    held.release();
    await held.response;
    const later = Date.now() + TOKEN_CACHE_TTL_MS;
    for (const i of k.killed) expect(await verifyAccessToken(env, a.secrets[i]!, later), `secret #${i} verifies past the bound`).toBeNull();
    pastTheCacheBound();
    for (const i of k.killed) {
      expect((await exchange(a.secrets[i]!)).status, `secret #${i}`).toBe(401);
      expect((await oauthBasic(a.sa.id, a.secrets[i]!)).status, `basic, secret #${i}`).toBe(401);
      expect((await bearer(a.secrets[i]!, a.org.id)).status, `bearer, secret #${i}`).toBe(401);
    }
    if (k.name === "disable" || k.name === "delete") {
      expect(await liveAccountRecord(env, a.sa.id, Date.now()), "account record past the bound").toBeNull();
      await expectAllRefused(a, "past the bound");
    }
  });

  it("disable, then re-enable: every way in is refused while disabled (KV says so) and works again at once", async () => {
    const a = await armedAccount();
    await expectAllAccepted(a, "before");
    expectStatus(await call("PATCH", accountPath(a.org.id, a.sa.id), { token: a.adminToken, body: { status: "disabled" } }), 200);
    await expectAllRefused(a, "disabled");
    for (const s of a.secrets) expect((await env.TOKENS.get<TokenRecord>(`tok:${await sha256(s)}`, "json"))?.account.status).toBe("disabled");
    expectStatus(await call("PATCH", accountPath(a.org.id, a.sa.id), { token: a.adminToken, body: { status: "active" } }), 200);
    await expectAllAccepted(a, "re-enabled");
  });
});

// ---------------------------------------------------------------------------------------------

describe("the same names at once", () => {
  const sas = (org: string) => `/api/v1/orgs/${org}/service-accounts`;

  it("two orgs creating the same account, project and role names concurrently each get their own; within an org exactly one of each wins", async () => {
    const orgs = await Promise.all([freshOrg(root.token), freshOrg(root.token)]);
    const N = 6;
    type Tagged = { org: number; kind: "account" | "account-alias" | "project" | "role"; p: Promise<Res> };
    const requests: Tagged[] = [];
    for (let i = 0; i < N; i++) {
      orgs.forEach((o, org) => {
        requests.push({ org, kind: "account", p: call("POST", sas(o.org.id), { token: o.adminToken, body: { name: "deploy-bot", roles: [{ role: "viewer" }], issueToken: true } }) });
        requests.push({ org, kind: "project", p: call("POST", `/api/v1/orgs/${o.org.id}/projects`, { token: o.adminToken, body: { slug: "payments", name: "Payments" } }) });
        requests.push({ org, kind: "role", p: call("POST", `/api/v1/orgs/${o.org.id}/roles`, { token: o.adminToken, body: { name: "deployer", operations: ["orgs.read"] } }) });
      });
    }
    // Different names whose generated emails collide with deploy-bot's (deploy-bot@<slug>.…).
    orgs.forEach((o, org) => {
      for (const name of ["Deploy Bot", "deploy  bot", "DEPLOY/BOT"]) {
        requests.push({ org, kind: "account-alias", p: call("POST", sas(o.org.id), { token: o.adminToken, body: { name, issueToken: true } }) });
      }
    });
    const responses = await Promise.all(requests.map((r) => r.p));
    const label = summary(responses);

    const created: Record<number, { account: any[]; alias: any[]; project: any[]; role: any[] }> = { 0: { account: [], alias: [], project: [], role: [] }, 1: { account: [], alias: [], project: [], role: [] } };
    responses.forEach((res, i) => {
      const { org, kind } = requests[i]!;
      if (kind === "account-alias") {
        expectStatus(res, 201);
        created[org]!.alias.push(res.json);
        return;
      }
      if (res.status === 201) created[org]![kind === "account" ? "account" : kind].push(res.json);
      else expectProblem(res, 409, kind === "project" ? "slug_taken" : "name_taken");
    });
    for (const org of [0, 1]) {
      const c = created[org]!;
      expect(c.account.length, `org ${org} deploy-bot winners: ${label}`).toBe(1);
      expect(c.project.length, `org ${org} payments winners: ${label}`).toBe(1);
      expect(c.role.length, `org ${org} deployer winners: ${label}`).toBe(1);
      expect(c.alias.length).toBe(3);
      // Each winner belongs to its own org.
      const o = orgs[org]!;
      expect(c.account[0].orgId).toBe(o.org.id);
      expect(c.project[0].orgId).toBe(o.org.id);
      expect(c.role[0].orgId).toBe(o.org.id);
      // Exactly one of each in D1.
      const count = async (sql: string) => (await env.DB.prepare(sql).bind(o.org.id).first<{ n: number }>())!.n;
      expect(await count("select count(*) as n from service_accounts where org_id = ? and lower(name) = 'deploy-bot'")).toBe(1);
      expect(await count("select count(*) as n from projects where org_id = ? and slug = 'payments'")).toBe(1);
      expect(await count("select count(*) as n from roles where org_id = ? and name = 'deployer'")).toBe(1);
      // The losers left nothing behind (no half-created account, no audit event for a loser).
      expect(await count("select count(*) as n from service_accounts where org_id = ?")).toBe(1 + 1 + 3); // admin-bot, deploy-bot, three aliases
    }
    // Ids and emails unique across both orgs, and each email under its own org's slug.
    const accounts = [0, 1].flatMap((org) => [...created[org]!.account, ...created[org]!.alias].map((a) => ({ ...a, org })));
    expect(new Set(accounts.map((a) => a.id)).size).toBe(accounts.length);
    expect(new Set(accounts.map((a) => a.email)).size, JSON.stringify(accounts.map((a) => a.email))).toBe(accounts.length);
    for (const a of accounts) expect(a.email, JSON.stringify(a)).toMatch(new RegExp(`@${orgs[a.org]!.org.slug}\\.`));
    expect(created[0]!.project[0].id).not.toBe(created[1]!.project[0].id);
    expect(created[0]!.role[0].id).not.toBe(created[1]!.role[0].id);

    // Nothing crosses orgs: each org lists its own, the other's ids are 404 here, tokens stay home.
    for (const org of [0, 1]) {
      const mine = orgs[org]!;
      const other = created[1 - org]!;
      const list = await call("GET", `${sas(mine.org.id)}?limit=100`, { token: mine.adminToken });
      expectStatus(list, 200);
      expect(list.json.items.every((a: { orgId: string }) => a.orgId === mine.org.id), list.text).toBe(true);
      expectProblem(await call("GET", `${sas(mine.org.id)}/${other.account[0].id}`, { token: mine.adminToken }), 404, "not_found");
      expectProblem(await call("GET", `/api/v1/orgs/${mine.org.id}/projects/${other.project[0].id}`, { token: mine.adminToken }), 404, "not_found");
      expectProblem(await call("GET", `/api/v1/orgs/${mine.org.id}/roles/${other.role[0].id}`, { token: mine.adminToken }), 404, "not_found");
      // The other org's role cannot be assigned here (by id).
      const assign = await call("POST", `${sas(mine.org.id)}/${created[org]!.account[0].id}/role-assignments`, { token: mine.adminToken, body: { role: other.role[0].id } });
      expect([400, 404, 422], assign.text).toContain(assign.status);
      expect(await env.DB.prepare("select count(*) as n from role_assignments where role_id = ? and org_id = ?").bind(other.role[0].id, mine.org.id).first<{ n: number }>()).toEqual({ n: 0 });
      // Same name, different accounts: each token authenticates as its own account, in its own org only.
      const token = created[org]!.account[0].token.token as string;
      const self = await call("GET", `${sas(mine.org.id)}/${created[org]!.account[0].id}`, { token });
      expectStatus(self, 200);
      expect(self.json.id).toBe(created[org]!.account[0].id);
      expectProblem(await call("GET", `${sas(orgs[1 - org]!.org.id)}/${other.account[0].id}`, { token }), 404, "not_found");
    }
  });

  it("the same org slug twice at once: exactly one org", async () => {
    const slug = unique("race-org");
    const responses = await Promise.all(Array.from({ length: 8 }, () => call("POST", "/api/v1/orgs", { token: root.token, body: { slug, name: "Race" } })));
    expect(responses.filter((r) => r.status === 201).length, summary(responses)).toBe(1);
    for (const r of responses.filter((r) => r.status !== 201)) expectProblem(r, 409, "slug_taken");
  });

  /**
   * Renames go through each account's own object, so two objects race in D1: the unique name key
   * refuses all but one. A refused rename that also disables has already written "disabled" into
   * KV (kvBefore): the object drops the change and rewrites KV from D1, so the losers stay usable.
   */
  it("four accounts renamed (and disabled) to the same name at once, racing a create of it: one wins, the losers' credentials still agree with D1", async () => {
    const o = await freshOrg(root.token);
    const accounts = [];
    for (let i = 0; i < 4; i++) {
      const sa = await viewerAccount(o.adminToken, o.org.id);
      const t = await issueOk(o.adminToken, o.org.id, sa.id);
      accounts.push({ sa, secret: t.token });
    }
    const name = unique("shared");
    const responses = await Promise.all([
      ...accounts.map((a) => call("PATCH", accountPath(o.org.id, a.sa.id), { token: o.adminToken, body: { name, status: "disabled" } })),
      call("POST", sas(o.org.id), { token: o.adminToken, body: { name } }),
    ]);
    const label = summary(responses);
    const winners = responses.filter((r) => r.status === 200 || r.status === 201);
    expect(winners.length, label).toBe(1);
    for (const r of responses.filter((r) => r.status !== 200 && r.status !== 201)) expectProblem(r, 409, "name_taken");
    const count = await env.DB.prepare("select count(*) as n from service_accounts where org_id = ? and name = ?").bind(o.org.id, name).first<{ n: number }>();
    expect(count!.n).toBe(1);
    for (const [i, a] of accounts.entries()) {
      const won = responses[i]!.status === 200;
      const row = await env.DB.prepare("select status, name from service_accounts where id = ?").bind(a.sa.id).first<{ status: string; name: string }>();
      expect(row!.status, `${label}: account ${i}`).toBe(won ? "disabled" : "active");
      const record = await env.TOKENS.get<TokenRecord>(`tok:${await sha256(a.secret)}`, "json");
      expect(record?.account.status, `${label}: KV of account ${i} (won: ${won})`).toBe(row!.status);
      expect((await exchange(a.secret)).status, `${label}: account ${i} (won: ${won})`).toBe(won ? 401 : 200);
    }
  });
});
