import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import type { AccountClaims, TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import worker from "../../src/index.ts";
import { platformRoot } from "../helpers.ts";
import { DAY_MS, runJob } from "./lifecycle-helpers.ts";
import { expectDead, freshOrg, kvKeys, sha256, viewerAccount } from "./token-helpers.ts";

/**
 * A backlog far larger than one run may handle: 5,000 active tokens past their expiry, seeded
 * straight into D1 (some with KV entries that still say "alive"), drained by expireTokens in
 * bounded batches, oldest first, each run resuming where the last stopped.
 */

const BACKLOG = 5_000;
const BATCH = 500;

interface Seeded {
  id: string;
  hash: string;
  previousHash: string | null;
  accountId: string;
  expiresAt: number;
}

let root: { id: string; token: string };
let o: Awaited<ReturnType<typeof freshOrg>>;
let accounts: string[];
beforeAll(async () => {
  root = await platformRoot();
  o = await freshOrg(root.token);
  accounts = [];
  for (let i = 0; i < 4; i++) accounts.push((await viewerAccount(o.adminToken, o.org.id)).id);
});

const claimsOf = (accountId: string): AccountClaims => ({
  accountId,
  orgId: o.org.id,
  status: "active",
  expiresAt: null,
  platformPermissions: [],
  groups: [],
  roles: ["viewer"],
  scopes: ["orgs.read", "service-accounts.read", "audit.read"],
  allowedCidrs: [],
  tokenEndpointAuthMethod: null,
});

/** A KV record that says the secret lives forever (stale: D1 says it expired). */
const staleRecord = (t: Seeded): string => JSON.stringify({ tokenId: t.id, expiresAt: null, tokenExpiresAt: null, account: claimsOf(t.accountId) } satisfies TokenRecord);

/**
 * Inserts `count` active tokens whose expiry has passed (distinct expiries, index 0 the oldest) in
 * D1 batches, with a KV entry for every `kvEvery`-th one and a grace secret for every
 * `previousEvery`-th one; `secrets` of them get real secrets so that they can be tried.
 */
async function seedBacklog(label: string, count: number, opts: { kvEvery: number; previousEvery: number; secrets: number }) {
  const now = Date.now();
  const seeded: Seeded[] = [];
  const secrets: { secret: string; t: Seeded }[] = [];
  for (let i = 0; i < count; i++) {
    const secret = i < opts.secrets ? generateAccessToken() : null;
    const t: Seeded = {
      id: `tok_${label}${String(i).padStart(5, "0")}`,
      hash: await sha256(secret ?? `${label}-${i}-${crypto.randomUUID()}`),
      previousHash: i % opts.previousEvery === 0 ? await sha256(`${label}-prev-${i}-${crypto.randomUUID()}`) : null,
      accountId: accounts[i % accounts.length]!,
      expiresAt: now - 60_000 - (count - i) * 1000,
    };
    seeded.push(t);
    if (secret) secrets.push({ secret, t });
  }
  const insert = env.DB.prepare(
    "insert into access_tokens (id, account_id, org_id, name, secret_hash, hint, status, expires_at, previous_secret_hash, previous_secret_expires_at, created_at, created_by) values (?, ?, ?, ?, ?, 'sat_seed…seed', 'active', ?, ?, ?, ?, 'backlog-test')",
  );
  for (let i = 0; i < seeded.length; i += 500) {
    await env.DB.batch(
      seeded.slice(i, i + 500).map((t) =>
        insert.bind(t.id, t.accountId, o.org.id, `backlog ${label}`, t.hash, t.expiresAt, t.previousHash, t.previousHash ? now + DAY_MS : null, now - 30 * DAY_MS),
      ),
    );
  }
  const puts: Promise<void>[] = [];
  seeded.forEach((t, i) => {
    if (i % opts.kvEvery === 0 || i < opts.secrets) puts.push(env.TOKENS.put(`tok:${t.hash}`, staleRecord(t)));
    if (t.previousHash) puts.push(env.TOKENS.put(`tok:${t.previousHash}`, staleRecord(t)));
  });
  await Promise.all(puts);
  return { seeded, secrets, kvWritten: puts.length };
}

const count = async (sql: string, ...params: unknown[]) => (await env.DB.prepare(sql).bind(...params).first<{ n: number }>())!.n;

describe("a 5,000-token expiry backlog", () => {
  it(
    "drains in exactly 10 runs of at most 500 (more: true until the last full batch), then a run with 0; oldest first; no KV entry left",
    async () => {
      const started = Date.now();
      const { seeded, secrets, kvWritten } = await seedBacklog("bl", BACKLOG, { kvEvery: 20, previousEvery: 500, secrets: 5 });
      expect(await count("select count(*) as n from access_tokens where status = 'active' and expires_at <= ?", Date.now()), "seeded backlog").toBe(BACKLOG);
      const hashes = new Set(seeded.flatMap((t) => [t.hash, ...(t.previousHash ? [t.previousHash] : [])]));
      const inKv = (await kvKeys("tok:")).filter((k) => hashes.has(k.slice(4)));
      expect(inKv.length, "KV entries seeded").toBe(kvWritten);
      // The KV records say "alive": before the drain the edge accepts these secrets (stale KV, the job's reason to exist).
      expect(await env.TOKENS.get(`tok:${secrets[0]!.t.hash}`), "stale KV record of a seeded secret").not.toBeNull();

      const runs: { processed: number; more: boolean }[] = [];
      for (let run = 0; run < 15; run++) {
        const r = await runJob("expireTokens", { batchSize: BATCH, maxItems: BATCH });
        runs.push({ processed: r.processed, more: r.more });
        expect(r.processed, `run ${run + 1}: ${JSON.stringify(runs)}`).toBeLessThanOrEqual(BATCH);
        // Resumable: what is expired so far is always the oldest part of the backlog.
        const newestExpired = await env.DB.prepare("select max(expires_at) as t from access_tokens where status = 'expired'").first<{ t: number | null }>();
        const oldestActive = await env.DB.prepare("select min(expires_at) as t from access_tokens where status = 'active' and expires_at is not null").first<{ t: number | null }>();
        if (newestExpired?.t != null && oldestActive?.t != null) expect(newestExpired.t, `run ${run + 1} left an older token behind`).toBeLessThan(oldestActive.t);
        expect(await count("select count(*) as n from access_tokens where status = 'expired'"), `after run ${run + 1}`).toBe(Math.min(BACKLOG, (run + 1) * BATCH));
        if (!r.more) break;
      }
      expect(runs, JSON.stringify(runs)).toEqual([...Array.from({ length: 10 }, () => ({ processed: BATCH, more: true })), { processed: 0, more: false }]);

      expect(await count("select count(*) as n from access_tokens where status = 'active' and expires_at <= ?", Date.now()), "left active past expiry").toBe(0);
      expect(await count("select count(*) as n from access_tokens where status = 'expired' and id like 'tok_bl%'"), "expired").toBe(BACKLOG);
      expect(await count("select count(*) as n from access_tokens where previous_secret_hash is not null and id like 'tok_bl%'"), "grace secrets left").toBe(0);
      expect(await count("select count(*) as n from audit_events where action = 'access_token.expired'"), "one audit event per token").toBe(BACKLOG);
      const leftInKv = (await kvKeys("tok:")).filter((k) => hashes.has(k.slice(4)));
      expect(leftInKv.length, `KV entries left: ${leftInKv.slice(0, 5).join(", ")}`).toBe(0);
      for (const { secret, t } of secrets) await expectDead(secret, o.org.id, t.accountId, "a drained secret");

      // Idempotent once drained.
      expect(await runJob("expireTokens", { batchSize: BATCH, maxItems: BATCH })).toMatchObject({ processed: 0, more: false });
      expect(Date.now() - started, "the whole drain should stay well under a minute").toBeLessThan(60_000);
    },
    120_000,
  );

  it("the real scheduled() handler goes on past one batch of CRON_BATCH_SIZE (200) within its bounds: 250 in one run", async () => {
    await seedBacklog("cr", 250, { kvEvery: 10, previousEvery: 1_000, secrets: 0 });
    const summaries: any[] = [];
    for (let i = 0; i < 3; i++) {
      const spy = vi.spyOn(console, "log");
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), env, ctx);
      await waitOnExecutionContext(ctx);
      const lines = spy.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('"cron.run"'));
      spy.mockRestore();
      expect(lines.length, lines.join("\n")).toBe(1);
      summaries.push(JSON.parse(lines[0]!));
    }
    expect(
      summaries.map((s) => ({ processed: s.jobs.expireTokens.processed, more: s.jobs.expireTokens.more })),
      JSON.stringify(summaries),
    ).toEqual([
      { processed: 250, more: false },
      { processed: 0, more: false },
      { processed: 0, more: false },
    ]);
    expect(await count("select count(*) as n from access_tokens where status = 'expired' and id like 'tok_cr%'")).toBe(250);
  });
});
