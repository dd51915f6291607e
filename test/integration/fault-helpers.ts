import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { exportJWK, type JWK } from "jose";
import { expect } from "vitest";
import { accountObject } from "../../src/domain/credentials/account-object.ts";
import { forgetCredentials, TOKEN_CACHE_TTL_MS, verifyAccessToken } from "../../src/domain/credentials/record-cache.ts";
import { createCtx } from "../../src/domain/shared/context.ts";
import type { Change } from "../../src/domain/credentials/change.ts";
import { accountDeadReason, deadReason, type AccountRecord, type TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import type { AccountCredentials } from "../../src/durable-objects/account-credentials.ts";
import type { Bindings } from "../../src/env.ts";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { addPublicKey, assertionGrant, clientAssertion, exchange, keyPair } from "./oauth-helpers.ts";
import { accountPath, freshOrg, issueOk, regenerate, setPolicy, sha256, tokenPath, tokensPath, viewerAccount } from "./token-helpers.ts";

/**
 * Fault injection into the credential changes of an account's Durable Object (used by
 * faults.test.ts and faults-reconcile.test.ts).
 *
 * The object applies a change as: journal (`storage.put("pending-change")`), arm the alarm
 * (`storage.setAlarm`), KV writes that take access away (`kvBefore`), one D1 batch, KV writes that
 * grant access (`kvAfter`), clear the journal (`storage.delete`). An `Injector` makes exactly one of
 * those calls fail: the object's REAL bindings (its `env.TOKENS`, `env.DB` and `ctx.storage`) are
 * wrapped in proxies that throw at the chosen call and pass every other call through to the real
 * binding (nothing is replaced by a fake store). The change is driven the way production drives it
 * (over HTTP through the Worker, or the cron's own call to the object).
 *
 * After the fault, (a) `expectNothingDeadAccepted`: KV grants nothing D1 does not (every `tok:`
 * record that authenticates is backed by a live D1 row of a live account; the `sa:` record grants
 * no status or key D1 does not), and the exchange endpoint, a JWT as Bearer and private_key_jwt
 * accept only what D1 says is live. After a repair, (b) `expectAgreement`: D1 and KV agree and
 * every known secret works exactly when D1 says it is live.
 *
 * A throw followed by `evictDurableObject` stands for a crash at that point: eviction waits for
 * in-flight requests to drain, so an instance cannot be torn down in the middle of a call here.
 */

export const PENDING = "pending-change";
const SYSTEM = { actorId: "fault-test", requestId: null, ip: null, userAgent: null };
export const sysCtx = () => createCtx(env, SYSTEM);

export type Res = Awaited<ReturnType<typeof call>>;

// ---------------------------------------------------------------------------------------------
// The injector: one fault, at one call of the object's real bindings.
// ---------------------------------------------------------------------------------------------

export type Step = "journal-put" | "alarm-set" | "kv-before" | "d1-before-commit" | "d1-constraint" | "d1-after-commit" | "kv-after" | "journal-clear";

export interface Fault {
  step: Step;
  /** For kv-before / kv-after: which KV write of that phase fails (1-based). */
  n?: number;
}

export const faultName = (f: Fault) => (f.n !== undefined ? `${f.step}#${f.n}` : f.step);

export class Injector {
  fired: string | null = null;
  /** Whether the D1 batch has run (KV writes before it are kvBefore, after it kvAfter). */
  committed = false;
  readonly counts = { before: 0, after: 0 };
  /** Every KV key the change wrote (or tried to), so the checks can look at all of them. */
  readonly kvKeys = new Set<string>();
  readonly log: string[] = [];
  saved: { env: Bindings; ctx: DurableObjectState } | null = null;

  constructor(readonly fault: Fault) {}

  private fire(what: string, message = `injected fault: ${what}`): never {
    this.fired = what;
    this.log.push(`FAULT ${what}`);
    throw new Error(message);
  }

  private matches(step: Step, n?: number) {
    return this.fired === null && this.fault.step === step && (this.fault.n === undefined || this.fault.n === n);
  }

  kvWrite(op: "put" | "delete", key: string) {
    this.kvKeys.add(key);
    const phase = this.committed ? "after" : "before";
    const n = ++this.counts[phase];
    this.log.push(`kv-${phase}#${n} ${op} ${key.slice(0, 16)}`);
    if (this.matches(`kv-${phase}`, n)) this.fire(`kv-${phase}#${n} (${op} ${key.slice(0, 12)}…)`);
  }

  async batch(real: D1Database, statements: D1PreparedStatement[]) {
    this.log.push(`d1 batch (${statements.length})`);
    if (this.matches("d1-before-commit")) this.fire("d1-before-commit");
    // What D1 reports when it refuses a batch on a constraint: the object drops the change.
    if (this.matches("d1-constraint")) this.fire("d1-constraint", "D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (injected)");
    const result = await real.batch(statements);
    this.committed = true;
    if (this.matches("d1-after-commit")) this.fire("d1-after-commit");
    return result;
  }

  storage(op: "put" | "setAlarm" | "delete", key?: string) {
    if (op === "put" && key === PENDING && this.matches("journal-put")) this.fire("journal-put");
    if (op === "setAlarm" && this.matches("alarm-set")) this.fire("alarm-set");
    if (op === "delete" && key === PENDING && this.matches("journal-clear")) this.fire("journal-clear");
  }
}

/** A proxy of a real binding: every member passes through (bound to the real object) unless `override` handles it. */
export function passThrough<T extends object>(real: T, override: (prop: string | symbol) => unknown): T {
  return new Proxy(real, {
    get(target, prop) {
      const own = override(prop);
      if (own !== undefined) return own;
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

export function wrapEnv(real: Bindings, inj: Injector): Bindings {
  const kv = passThrough(real.TOKENS, (prop) => {
    if (prop === "put" || prop === "delete") {
      return async (key: string, ...rest: unknown[]) => {
        inj.kvWrite(prop, key);
        return (real.TOKENS[prop] as (...a: unknown[]) => Promise<void>).call(real.TOKENS, key, ...rest);
      };
    }
    return undefined;
  });
  const db = passThrough(real.DB, (prop) => (prop === "batch" ? (statements: D1PreparedStatement[]) => inj.batch(real.DB, statements) : undefined));
  return { ...real, TOKENS: kv, DB: db };
}

export function wrapState(real: DurableObjectState, inj: Injector): DurableObjectState {
  const storage = passThrough(real.storage, (prop) => {
    if (prop === "put" || prop === "delete" || prop === "setAlarm") {
      return async (...args: unknown[]) => {
        inj.storage(prop, typeof args[0] === "string" ? args[0] : undefined);
        return (real.storage[prop] as (...a: unknown[]) => Promise<unknown>).apply(real.storage, args);
      };
    }
    return undefined;
  });
  return passThrough(real, (prop) => (prop === "storage" ? storage : undefined));
}

type Instance = { env: Bindings; ctx: DurableObjectState };

export const stubOf = (accountId: string) => env.ACCOUNT_DO.get(env.ACCOUNT_DO.idFromName(accountId));
export type Stub = ReturnType<typeof stubOf>;

export async function install(stub: Stub, inj: Injector, options: { dropAlarm?: boolean } = {}) {
  await runInDurableObject<AccountCredentials, void>(stub, async (instance, state) => {
    // Only the alarm this change arms counts (the setup's changes armed one too).
    if (options.dropAlarm) await state.storage.deleteAlarm();
    expect(await state.storage.get(PENDING), "nothing pending before the fault").toBeUndefined();
    const o = instance as unknown as Instance;
    inj.saved = { env: o.env, ctx: o.ctx };
    o.env = wrapEnv(o.env, inj);
    o.ctx = wrapState(o.ctx, inj);
  });
}

/** Puts the real bindings back on the same (still running) instance; returns the journal it holds. */
export async function uninstall(stub: Stub, inj: Injector) {
  return runInDurableObject<AccountCredentials, Change | undefined>(stub, (instance, state) => {
    const o = instance as unknown as Instance;
    o.env = inj.saved!.env;
    o.ctx = inj.saved!.ctx;
    return state.storage.get<Change>(PENDING);
  });
}

export const pendingOf = (stub: Stub) => runInDurableObject<AccountCredentials, Change | undefined>(stub, (_i, state) => state.storage.get<Change>(PENDING));
export const alarmOf = (stub: Stub) => runInDurableObject<AccountCredentials, number | null>(stub, (_i, state) => state.storage.getAlarm());
export const dropAlarm = (stub: Stub) => runInDurableObject<AccountCredentials, void>(stub, (_i, state) => state.storage.deleteAlarm());

// ---------------------------------------------------------------------------------------------
// D1 as the source of truth, and the checks against it.
// ---------------------------------------------------------------------------------------------

export interface D1State {
  account: { id: string; status: string; expires_at: number | null } | null;
  tokens: { id: string; status: string; secret_hash: string; expires_at: number | null; previous_secret_hash: string | null; previous_secret_expires_at: number | null }[];
  kids: string[];
}

export async function d1State(accountId: string): Promise<D1State> {
  const account = await env.DB.prepare("select id, status, expires_at from service_accounts where id = ?").bind(accountId).first<D1State["account"]>();
  const tokens = (await env.DB.prepare("select * from access_tokens where account_id = ?").bind(accountId).all<D1State["tokens"][number]>()).results;
  const kids = (await env.DB.prepare("select kid from public_keys where account_id = ? order by kid").bind(accountId).all<{ kid: string }>()).results.map((k) => k.kid);
  return { account, tokens, kids };
}

export const accountLive = (s: D1State, now: number) => s.account !== null && s.account.status === "active" && (s.account.expires_at === null || s.account.expires_at > now);

/** Hashes D1 says authenticate at token level (current secret of a live token, or its previous one in grace), with their token row. */
export function liveHashes(s: D1State, now: number) {
  const out = new Map<string, { tokenId: string; expiresAt: number | null; tokenExpiresAt: number | null; previous: boolean }>();
  if (!s.account) return out;
  for (const t of s.tokens) {
    if (t.status !== "active" || (t.expires_at !== null && t.expires_at <= now)) continue;
    out.set(t.secret_hash, { tokenId: t.id, expiresAt: t.expires_at, tokenExpiresAt: t.expires_at, previous: false });
    if (t.previous_secret_hash && t.previous_secret_expires_at !== null && t.previous_secret_expires_at > now) {
      out.set(t.previous_secret_hash, { tokenId: t.id, expiresAt: t.previous_secret_expires_at, tokenExpiresAt: t.expires_at, previous: true });
    }
  }
  return out;
}

export interface Subject {
  org: string;
  accountId: string;
  stub: Stub;
  /** Every secret ever handed out for the account. */
  secrets: string[];
  /** Every `tok:` hash that could belong to the account (D1 rows seen, secrets, keys the change wrote). */
  hashes: Set<string>;
  /** A JWT minted from one of its secrets before the change (null: not checked). */
  jwt: string | null;
  keys: { kid: string; privateKey: CryptoKey }[];
}

export async function hashUniverse(subject: Subject, inj?: Injector, state?: D1State) {
  const s = state ?? (await d1State(subject.accountId));
  for (const t of s.tokens) {
    subject.hashes.add(t.secret_hash);
    if (t.previous_secret_hash) subject.hashes.add(t.previous_secret_hash);
  }
  for (const secret of subject.secrets) subject.hashes.add(await sha256(secret));
  for (const key of inj?.kvKeys ?? []) if (key.startsWith("tok:")) subject.hashes.add(key.slice(4));
  return subject.hashes;
}

const msgOf = (label: string, inj: Injector | undefined, extra: unknown) => `${label}${inj ? ` [${faultName(inj.fault)}: ${inj.log.join(" | ")}]` : ""} ${JSON.stringify(extra)}`;

/** (a) KV and every way in accept nothing D1 does not say is live. */
export async function expectNothingDeadAccepted(subject: Subject, label: string, inj?: Injector) {
  const s = await d1State(subject.accountId);
  const hashes = await hashUniverse(subject, inj, s);
  const now = Date.now();
  const live = liveHashes(s, now);
  const alive = accountLive(s, now);
  for (const hash of hashes) {
    const record = await env.TOKENS.get<TokenRecord>(`tok:${hash}`, "json");
    if (record && deadReason(record, now) === null) {
      expect(alive && live.has(hash), msgOf(`${label}: KV grants tok:${hash.slice(0, 12)}… that D1 does not`, inj, { record, d1: s })).toBe(true);
    }
  }
  const sa = await env.TOKENS.get<AccountRecord>(`sa:${subject.accountId}`, "json");
  if (sa && accountDeadReason(sa.account, now) === null) {
    expect(alive, msgOf(`${label}: the sa: record grants an account D1 says is dead or gone`, inj, { sa: sa.account, d1: s.account })).toBe(true);
    for (const k of sa.keys) expect(s.kids, msgOf(`${label}: the sa: record grants key ${k.kid} that D1 does not hold`, inj, s.kids)).toContain(k.kid);
  }
  for (const secret of subject.secrets) {
    const res = await exchange(secret, { duration_seconds: 60 });
    expect([200, 401], msgOf(`${label}: exchange ${res.status} ${res.text}`, inj, {})).toContain(res.status);
    if (res.status === 200) expect(alive && live.has(await sha256(secret)), msgOf(`${label}: a secret D1 says is dead was exchanged`, inj, s)).toBe(true);
  }
  await expectWaysInHonourD1(subject, label, inj, s);
}

/** A JWT minted before the change (as Bearer) and private_key_jwt with each key: accepted only if D1 says so. */
export async function expectWaysInHonourD1(subject: Subject, label: string, inj?: Injector, state?: D1State) {
  if (!subject.jwt && subject.keys.length === 0) return;
  const s = state ?? (await d1State(subject.accountId));
  const alive = accountLive(s, Date.now());
  if (subject.jwt) {
    const bearer = await call("GET", `/api/v1/orgs/${subject.org}`, { token: subject.jwt });
    expect([200, 401], bearer.text).toContain(bearer.status);
    if (bearer.status === 200) expect(alive, msgOf(`${label}: a JWT of a dead account was accepted as Bearer`, inj, s.account)).toBe(true);
  }
  for (const key of subject.keys) {
    const res = await assertionGrant(await clientAssertion(key.privateKey, subject.accountId, { kid: key.kid }));
    expect([200, 401], res.text).toContain(res.status);
    if (res.status === 200) expect(alive && s.kids.includes(key.kid), msgOf(`${label}: private_key_jwt with ${key.kid} accepted, D1 says no`, inj, s)).toBe(true);
  }
}

export interface AgreementOptions {
  /** Also compare the account record (status, keys). */
  sa: boolean;
  /**
   * Hold KV only to what the reconcile job promises (README, "Scheduled work"): the record of every
   * live token's CURRENT secret exists and agrees with D1 on the token and its account, and no
   * record lacks an active row. Not compared: a previous secret's record (in its grace) and a
   * record's own `expiresAt`; those are covered by the journal (faults-reconcile.test.ts, gaps).
   */
  reconcileContract?: boolean;
  inj?: Injector | undefined;
}

/**
 * (b) D1 and KV agree: the `tok:` records of the account are exactly D1's live hashes and say what
 * D1 says; with `sa`, the account record too (status and keys); every known secret works exactly
 * when D1 says it is live.
 */
export async function expectAgreement(subject: Subject, label: string, options: AgreementOptions) {
  const { inj } = options;
  const loose = options.reconcileContract === true;
  const s = await d1State(subject.accountId);
  const hashes = await hashUniverse(subject, inj, s);
  const now = Date.now();
  const live = liveHashes(s, now);
  const alive = accountLive(s, now);
  for (const hash of hashes) {
    const record = await env.TOKENS.get<TokenRecord>(`tok:${hash}`, "json");
    const want = live.get(hash);
    if (!want) {
      expect(record, msgOf(`${label}: tok:${hash.slice(0, 12)}… in KV, not live in D1`, inj, { record, d1: s })).toBeNull();
      continue;
    }
    if (loose && want.previous) continue;
    expect(record, msgOf(`${label}: tok:${hash.slice(0, 12)}… live in D1, missing in KV`, inj, s)).not.toBeNull();
    const got = { tokenId: record!.tokenId, expiresAt: record!.expiresAt, tokenExpiresAt: record!.tokenExpiresAt, status: record!.account.status, accountExpiresAt: record!.account.expiresAt };
    const { previous: _previous, ...fields } = want;
    const expectedFields = { ...fields, status: s.account!.status, accountExpiresAt: s.account!.expires_at };
    if (loose) {
      got.expiresAt = null;
      expectedFields.expiresAt = null;
    }
    expect(got, msgOf(`${label}: tok:${hash.slice(0, 12)}… disagrees with D1`, inj, {})).toEqual(expectedFields);
  }
  if (options.sa) {
    const sa = await env.TOKENS.get<AccountRecord>(`sa:${subject.accountId}`, "json");
    if (!s.account) expect(sa, msgOf(`${label}: sa: record of a deleted account`, inj, sa)).toBeNull();
    else {
      expect(sa, msgOf(`${label}: no sa: record`, inj, s)).not.toBeNull();
      expect({ status: sa!.account.status, kids: sa!.keys.map((k) => k.kid).sort() }, msgOf(`${label}: sa: record disagrees with D1`, inj, {})).toEqual({
        status: s.account.status,
        kids: s.kids,
      });
    }
  }
  for (const secret of subject.secrets) {
    const hash = await sha256(secret);
    if (loose && live.get(hash)?.previous) continue;
    const works = (await exchange(secret, { duration_seconds: 60 })).status === 200;
    const should = alive && live.has(hash);
    expect(works, msgOf(`${label}: secret ${secret.slice(0, 8)}… works=${works}, D1 live=${should}`, inj, s)).toBe(should);
  }
}

/** What any isolate that cached the account's records before the repair sees once the 10 s bound has passed. */
export async function expectCachesHonourD1(subject: Subject, label: string) {
  const s = await d1State(subject.accountId);
  const later = Date.now() + TOKEN_CACHE_TTL_MS;
  const live = liveHashes(s, later);
  for (const secret of subject.secrets) {
    const record = await verifyAccessToken(env, secret, later);
    if (record) expect(accountLive(s, later) && live.has(await sha256(secret)), `${label}: ${secret.slice(0, 8)}… still verifies after the cache bound`).toBe(true);
  }
}

export async function auditCount(accountId: string, action: string, since: number) {
  const row = await env.DB.prepare(
    "select count(*) as n from audit_events where action = ? and (target_id = ? or json_extract(details, '$.accountId') = ?) and created_at >= ?",
  )
    .bind(action, accountId, accountId, since)
    .first<{ n: number }>();
  return row!.n;
}

/**
 * One reconcile run the way an operator triggers it (POST /api/v1/admin/jobs/run, the default batch
 * size). The sequential matrix keeps fewer than 50 `tok:` keys in this file's KV so that one run
 * sweeps everything (see the batch-size test at the end of the file for why it must stay under 50).
 */
export async function runReconcile() {
  const res = await call("POST", "/api/v1/admin/jobs/run", { token: fx.root.token, body: { jobs: ["reconcile"] } });
  expectStatus(res, 200);
  const result = res.json.jobs.reconcile;
  expect(result?.error, `reconcile failed: ${res.text}`).toBeUndefined();
  return result as { processed: number; more: boolean; accountsResynced: number; orphansDeleted: number };
}

/** The object's next call, the way every route makes it (through the Worker's proxy, which evicts this isolate's cached records). */
export const nextCall = (accountId: string) => accountObject(sysCtx(), accountId).sync(accountId);

// ---------------------------------------------------------------------------------------------
// The changes.
// ---------------------------------------------------------------------------------------------

/** What every cell shares: a root token, an org allowing two tokens per account with its admin, two ES256 key pairs. */
export interface Fixture {
  root: { id: string; token: string };
  org: { id: string; slug: string };
  adminToken: string;
  k1: CryptoKeyPair;
  k2: CryptoKeyPair;
  k1Jwk: JWK;
  k2Jwk: JWK;
}

let fx: Fixture;

/** Builds the shared fixture (call once per file, in beforeAll). */
export async function setupFixture(): Promise<Fixture> {
  const root = await platformRoot();
  const o = await freshOrg(root.token);
  await setPolicy(o.adminToken, o.org.id, { maxActiveTokensPerAccount: 2 });
  const k1 = (await keyPair("ES256")) as CryptoKeyPair;
  const k2 = (await keyPair("ES256")) as CryptoKeyPair;
  fx = { root, org: o.org, adminToken: o.adminToken, k1, k2, k1Jwk: await exportJWK(k1.publicKey), k2Jwk: await exportJWK(k2.publicKey) };
  return fx;
}

export interface Scenario extends Subject {
  tokenId: string;
  /** a0: the previous secret (in a one-hour grace); a1: the current one. */
  a0: string;
  a1: string;
  k1Id: string;
  /** The hashes of a0 and a1. */
  originalHashes: string[];
}

/**
 * An account holding one token (regenerated with a one-hour grace, so it has two live secrets:
 * every KV step of a change has more than one write) and one public key, in an org allowing two
 * tokens per account.
 */
export async function scenario(options: { key?: boolean; jwt?: boolean } = {}): Promise<Scenario> {
  const { key: withKey = true, jwt: withJwt = true } = options;
  const sa = await viewerAccount(fx.adminToken, fx.org.id);
  const t = await issueOk(fx.adminToken, fx.org.id, sa.id);
  const r = await regenerate(fx.adminToken, fx.org.id, sa.id, t.id, { graceSeconds: 3_600 });
  expectStatus(r, 200);
  let k1Id = "";
  if (withKey) {
    const key = await addPublicKey(fx.adminToken, fx.org.id, sa.id, { publicKey: { ...fx.k1Jwk, kid: "k1" }, alg: "ES256" });
    expectStatus(key, 201);
    k1Id = key.json.id;
  }
  let jwt: string | null = null;
  if (withJwt) {
    const minted = await exchange(r.json.token);
    expectStatus(minted, 200);
    jwt = minted.json.jwt;
  }
  const stub = stubOf(sa.id);
  return {
    org: fx.org.id,
    accountId: sa.id,
    stub,
    secrets: [t.token, r.json.token],
    hashes: new Set(),
    jwt,
    keys: withKey ? [{ kid: "k1", privateKey: fx.k1.privateKey }] : [],
    tokenId: t.id,
    a0: t.token,
    a1: r.json.token,
    k1Id,
    originalHashes: [await sha256(t.token), await sha256(r.json.token)],
  };
}

export interface ChangeSpec {
  name: string;
  /** KV writes the change makes before and after its D1 batch (for this scenario). */
  kvBefore: number;
  kvAfter: number;
  /** The audit action the change records (once). */
  action: string;
  /** Whether the change concerns the account's keys or status (then private_key_jwt and a JWT as Bearer are checked too). */
  keysAndJwt: boolean;
  prepare?: (s: Scenario) => Promise<void>;
  /** Runs the change the way production does; returns the HTTP status (or 200/409/500 for the cron's object call). */
  run: (s: Scenario) => Promise<{ status: number; secret?: string; text: string }>;
  okStatus: number;
  /** Whether D1 holds the change's result. */
  applied: (s: Scenario, d1: D1State) => boolean;
}

const http = (r: Res) => ({ status: r.status, text: r.text, ...(r.json?.token && typeof r.json.token === "string" ? { secret: r.json.token as string } : {}) });

export const CHANGES: ChangeSpec[] = [
  {
    name: "issue",
    keysAndJwt: false,
    kvBefore: 0,
    kvAfter: 2, // sa: record, the new secret
    action: "access_token.created",
    run: async (s) => http(await call("POST", tokensPath(s.org, s.accountId), { token: fx.adminToken, body: { name: "faulted" } })),
    okStatus: 201,
    applied: (_s, d) => d.tokens.filter((t) => t.status === "active").length === 2,
  },
  {
    name: "revoke",
    keysAndJwt: false,
    kvBefore: 2, // delete the current secret, delete the previous one
    kvAfter: 0,
    action: "access_token.revoked",
    run: async (s) => http(await call("DELETE", tokenPath(s.org, s.accountId, s.tokenId), { token: fx.adminToken })),
    okStatus: 204,
    applied: (s, d) => d.tokens.find((t) => t.id === s.tokenId)?.status === "revoked",
  },
  {
    name: "regenerate (no grace)",
    keysAndJwt: false,
    kvBefore: 2, // delete the previous secret, delete the current one
    kvAfter: 1, // the new secret
    action: "access_token.regenerated",
    run: async (s) => http(await regenerate(fx.adminToken, s.org, s.accountId, s.tokenId, { graceSeconds: 0 })),
    okStatus: 200,
    applied: (s, d) => regenerated(s, d),
  },
  {
    name: "regenerate (300 s grace)",
    keysAndJwt: false,
    kvBefore: 2, // delete the previous secret, shorten the current one to the grace's end
    kvAfter: 1,
    action: "access_token.regenerated",
    run: async (s) => http(await regenerate(fx.adminToken, s.org, s.accountId, s.tokenId, { graceSeconds: 300 })),
    okStatus: 200,
    applied: (s, d) => regenerated(s, d),
  },
  {
    name: "delete account",
    keysAndJwt: true,
    kvBefore: 3, // delete sa:, the current secret, the previous one
    kvAfter: 0,
    action: "service_account.deleted",
    run: async (s) => http(await call("DELETE", accountPath(s.org, s.accountId), { token: fx.adminToken })),
    okStatus: 204,
    applied: (_s, d) => d.account === null && d.tokens.length === 0 && d.kids.length === 0,
  },
  {
    name: "add key",
    keysAndJwt: true,
    kvBefore: 0,
    kvAfter: 1, // sa: record with the key
    action: "public_key.created",
    prepare: async (s) => {
      s.keys.push({ kid: "k2", privateKey: fx.k2.privateKey });
    },
    run: async (s) => http(await addPublicKey(fx.adminToken, s.org, s.accountId, { publicKey: { ...fx.k2Jwk, kid: "k2" }, alg: "ES256" })),
    okStatus: 201,
    applied: (_s, d) => d.kids.includes("k2"),
  },
  {
    name: "remove key",
    keysAndJwt: true,
    kvBefore: 1, // sa: record without the key
    kvAfter: 0,
    action: "public_key.deleted",
    run: async (s) => http(await call("DELETE", `${accountPath(s.org, s.accountId)}/keys/${s.k1Id}`, { token: fx.adminToken })),
    okStatus: 204,
    applied: (_s, d) => !d.kids.includes("k1"),
  },
  {
    name: "disable account",
    keysAndJwt: true,
    kvBefore: 3, // sa: record, both secrets' records, all saying disabled
    kvAfter: 0,
    action: "service_account.disabled",
    run: async (s) => http(await call("PATCH", accountPath(s.org, s.accountId), { token: fx.adminToken, body: { status: "disabled" } })),
    okStatus: 200,
    applied: (_s, d) => d.account?.status === "disabled",
  },
  {
    name: "enable account",
    keysAndJwt: true,
    kvBefore: 0,
    kvAfter: 3, // sa: record, both secrets' records, saying active
    action: "service_account.enabled",
    prepare: async (s) => expectStatus(await call("PATCH", accountPath(s.org, s.accountId), { token: fx.adminToken, body: { status: "disabled" } }), 200),
    run: async (s) => http(await call("PATCH", accountPath(s.org, s.accountId), { token: fx.adminToken, body: { status: "active" } })),
    okStatus: 200,
    applied: (_s, d) => d.account?.status === "active",
  },
  {
    name: "revoke all (cron expireAccounts)",
    keysAndJwt: false,
    kvBefore: 2,
    kvAfter: 0,
    action: "access_token.revoked",
    run: async (s) => {
      try {
        const outcome = await accountObject(sysCtx(), s.accountId).revokeAll(s.accountId, "fault-test");
        return { status: outcome.ok ? 200 : 409, text: JSON.stringify(outcome) };
      } catch (err) {
        return { status: 500, text: String(err) };
      }
    },
    okStatus: 200,
    applied: (_s, d) => d.tokens.every((t) => t.status !== "active"),
  },
];

/** Regenerated: the token's current secret is neither a0 nor a1. */
function regenerated(s: Scenario, d: D1State) {
  const row = d.tokens.find((t) => t.id === s.tokenId);
  return row !== undefined && !s.originalHashes.includes(row.secret_hash);
}

export function faultsOf(c: ChangeSpec): Fault[] {
  return [
    { step: "journal-put" },
    { step: "alarm-set" },
    ...Array.from({ length: c.kvBefore }, (_, i) => ({ step: "kv-before" as const, n: i + 1 })),
    { step: "d1-before-commit" },
    { step: "d1-constraint" },
    { step: "d1-after-commit" },
    ...Array.from({ length: c.kvAfter }, (_, i) => ({ step: "kv-after" as const, n: i + 1 })),
    { step: "journal-clear" },
  ];
}

/** What each fault leaves behind, by construction of the write order. */
export function expected(f: Fault) {
  return {
    /** The caller's status. */
    status: f.step === "d1-constraint" ? 409 : 500,
    /** Whether the journal holds the change right after the fault. */
    journaled: !["journal-put", "d1-constraint"].includes(f.step),
    /** Whether D1 committed the change right after the fault. */
    committedNow: ["d1-after-commit", "kv-after", "journal-clear"].includes(f.step),
    /** Whether the change ends up applied once repaired (never journaled, or refused by D1: never). */
    appliedFinally: !["journal-put", "d1-constraint"].includes(f.step),
    /** Whether the object armed its replay alarm. */
    alarmArmed: !["journal-put", "alarm-set"].includes(f.step),
  };
}


export type Repair = "next-call" | "alarm" | "reconcile";

export interface Cell {
  change: ChangeSpec;
  fault: Fault;
  repair: Repair;
  label: string;
}

export const cellsFor = (repair: Repair): Cell[] =>
  CHANGES.flatMap((change) =>
    faultsOf(change)
      // A fault before the journal, or D1 refusing the batch, leaves nothing to replay: one repair path is enough for them.
      .filter((fault) => repair === "next-call" || !["journal-put", "d1-constraint"].includes(fault.step))
      .map((fault) => ({ change, fault, repair, label: `${change.name} × ${faultName(fault)} → ${repair}` })),
  );

/** Runs one cell on a fresh scenario: fault, (a), repair, (b). */
export async function runCell({ change, fault, repair }: Cell, s: Scenario) {
  await change.prepare?.(s);
  await hashUniverse(s);
  const since = Date.now();
  const inj = new Injector(fault);
  await install(s.stub, inj, { dropAlarm: true });
  let res: Awaited<ReturnType<ChangeSpec["run"]>>;
  let journal: Change | undefined;
  try {
    res = await change.run(s);
  } finally {
    journal = await uninstall(s.stub, inj);
  }
  const want = expected(fault);
  expect(inj.fired, `the fault never fired: ${inj.log.join(" | ")}`).not.toBeNull();
  expect(res.status, `${res.status} ${res.text} [${inj.log.join(" | ")}]`).toBe(want.status);

  // (a) Right after the fault.
  expect(journal !== undefined, `journal after ${faultName(fault)}`).toBe(want.journaled);
  expect(change.applied(s, await d1State(s.accountId)), `D1 committed after ${faultName(fault)}`).toBe(want.committedNow);
  await expectNothingDeadAccepted(s, "right after the fault", inj);
  if (fault.step === "d1-constraint") await expectAgreement(s, "after a refused batch (dropped, KV rewritten from D1)", { sa: true, inj });

  // Repair.
  if (repair === "next-call") {
    expect((await nextCall(s.accountId)).ok).toBe(true);
  } else if (repair === "alarm") {
    await evictDurableObject(s.stub);
    const ran = await runDurableObjectAlarm(s.stub);
    if (want.alarmArmed) expect(ran, "the change armed its replay alarm").toBe(true);
    // The alarm runs in the object, not through this isolate's request path: isolates that cached
    // the account's records honour it within the documented 10 s bound.
    await expectCachesHonourD1(s, "after the alarm");
    forgetCredentials({ accountId: s.accountId });
    if ((await pendingOf(s.stub)) !== undefined) {
      // Only when the alarm could not be armed: nothing applied yet, the journal waits for the next call.
      expect(want.alarmArmed, "an armed alarm finished the journal").toBe(false);
      await expectAgreement(s, "journaled without an alarm", { sa: true, inj });
      expect((await nextCall(s.accountId)).ok).toBe(true);
    }
  } else {
    await evictDurableObject(s.stub);
    await dropAlarm(s.stub);
    await runReconcile();
    await expectNothingDeadAccepted(s, "after reconcile", inj);
    // Reconcile's contract: the tok: records of live tokens agree with D1, none without a live row.
    await expectAgreement(s, "after reconcile", { sa: false, reconcileContract: true, inj });
    // What reconcile does not see (nothing applied yet, a grace secret's record, the sa: record) waits for the object's next call.
    expect((await nextCall(s.accountId)).ok).toBe(true);
  }

  // (b) Completed exactly once (never journaled or refused by D1: not at all), D1 and KV agreeing.
  expect(await pendingOf(s.stub), "journal after the repair").toBeUndefined();
  const d1 = await d1State(s.accountId);
  expect(change.applied(s, d1), `applied after the repair: ${JSON.stringify(d1)}`).toBe(want.appliedFinally);
  expect(await auditCount(s.accountId, change.action, since), "audit events of the change").toBe(want.appliedFinally ? 1 : 0);
  await expectAgreement(s, `after ${repair}`, { sa: true, inj });
  await expectWaysInHonourD1(s, `after ${repair}`, inj);
}

/** A fresh scenario for a change. */
export const scenarioFor = (change: ChangeSpec) => scenario({ key: change.keysAndJwt, jwt: change.keysAndJwt });

/** Deletes the account (if the cell left it) so that this file's KV stays small for the sequential reconcile cells. */
export async function cleanup(s: Scenario) {
  const res = await call("DELETE", accountPath(s.org, s.accountId), { token: fx.adminToken });
  expect([204, 404], res.text).toContain(res.status);
}


