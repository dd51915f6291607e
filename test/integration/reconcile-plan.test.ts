import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { runJobs } from "../../src/cron/index.ts";
import { platformRoot } from "../helpers.ts";
import { freshOrg } from "./token-helpers.ts";

/**
 * The query plans of the cron jobs that walk the token store, as D1 (SQLite in workerd) makes
 * them for the statements the jobs really send: none may read every row of access_tokens or
 * service_accounts, or sort them, on every run (at a million tokens that was seconds a batch).
 */

interface Statement {
  sql: string;
  params: unknown[];
}

/** env whose D1 binding records each statement and its parameters on the way to the real D1. */
function recordingEnv(log: Statement[]) {
  const statement = (s: D1PreparedStatement, sql: string): D1PreparedStatement =>
    new Proxy(s, {
      get(target, prop) {
        if (prop === "bind") return (...params: unknown[]) => (log.push({ sql, params }), statement(target.bind(...params), sql));
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => statement(target.prepare(sql), sql);
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { ...env, DB: db };
}

/** The SELECTs one job sent in one run, each with its EXPLAIN QUERY PLAN lines. */
async function plansOf(job: string): Promise<{ sql: string; plan: string[] }[]> {
  const log: Statement[] = [];
  await runJobs(recordingEnv(log), { jobs: [job], batchSize: 200 });
  const selects = log.filter((s) => /^\s*select/i.test(s.sql));
  return Promise.all(
    selects.map(async (s) => {
      const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${s.sql}`).bind(...s.params).all<{ detail: string }>();
      return { sql: s.sql, plan: results.map((r) => r.detail) };
    }),
  );
}

const touching = (plans: { sql: string; plan: string[] }[], table: string) => plans.filter((p) => new RegExp(`from "?${table}"?\\b|join "?${table}"?\\b`, "i").test(p.sql));

beforeAll(async () => {
  const root = await platformRoot();
  const o = await freshOrg(root.token);
  // An org with the unused-token policy, so revokeUnused has an org to look in.
  await env.DB.prepare("update orgs set policy = json_set(policy, '$.unusedTokenRevokeAfterDays', 30) where id = ?").bind(o.org.id).run();
});

describe("cron query plans", () => {
  it("reconcile walks access_tokens by primary key from its cursor (no sort) and looks KV's hashes up by index", async () => {
    const plans = touching(await plansOf("reconcile"), "access_tokens");
    expect(plans.length, "reconcile's D1 side and its KV side").toBeGreaterThanOrEqual(1);
    for (const { sql, plan } of plans) {
      const text = plan.join(" | ");
      expect(text, sql).not.toMatch(/TEMP B-TREE/);
      expect(text, sql).not.toMatch(/SCAN access_tokens\b/);
      expect(text, sql).not.toMatch(/access_tokens_status_expiry/);
    }
    const d1Side = plans.find((p) => /order by/i.test(p.sql))!;
    expect(d1Side.plan.join(" | ")).toMatch(/SEARCH access_tokens USING (INTEGER PRIMARY KEY|INDEX sqlite_autoindex_access_tokens_1) \(id>\?\)/);
  });

  it("revokeUnused reads only the orgs with the policy, and their candidates by access_tokens_org_unused", async () => {
    const plans = touching(await plansOf("revokeUnused"), "access_tokens");
    expect(plans).toHaveLength(1);
    const text = plans[0]!.plan.join(" | ");
    expect(text, plans[0]!.sql).toMatch(/SEARCH access_tokens USING INDEX access_tokens_org_unused \(org_id=\? AND status=\? AND <expr><\?\)/);
    expect(text).not.toMatch(/SCAN access_tokens\b/);
  });

  it("expireAccounts finds expired accounts by service_accounts_expires", async () => {
    const plans = touching(await plansOf("expireAccounts"), "service_accounts");
    expect(plans).toHaveLength(1);
    const text = plans[0]!.plan.join(" | ");
    expect(text, plans[0]!.sql).toMatch(/SEARCH service_accounts USING INDEX service_accounts_expires/);
    expect(text).not.toMatch(/SCAN service_accounts\b/);
  });

  it("expireTokens takes the oldest expired by access_tokens_status_expiry, in index order", async () => {
    const plans = touching(await plansOf("expireTokens"), "access_tokens");
    expect(plans).toHaveLength(1);
    const text = plans[0]!.plan.join(" | ");
    expect(text, plans[0]!.sql).toMatch(/SEARCH access_tokens USING INDEX access_tokens_status_expiry \(status=\? AND expires_at/);
    expect(text).not.toMatch(/TEMP B-TREE/);
  });
});
