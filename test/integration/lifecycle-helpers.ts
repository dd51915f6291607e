import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { runJobs, type RunOptions, type RunSummary } from "../../src/cron/index.ts";
import type { JobResult } from "../../src/cron/types.ts";
import type { TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import { call, expectStatus } from "../helpers.ts";
import { kvKeyOf, sha256 } from "./token-helpers.ts";

/**
 * Shared helpers of the credential-lifecycle tests (cron jobs, backlog, reconciliation, usage,
 * review and audit). Each test file has its own D1/KV/DO storage, so a file may move the jobs'
 * clock or write past dates into D1 without disturbing any other file.
 */

export type Res = Awaited<ReturnType<typeof call>>;

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** A clock `offsetMs` ahead of the real one, for `runJobs({ now })`. */
export const clockAhead = (offsetMs: number) => () => Date.now() + offsetMs;

/** Runs one job through the real `runJobs` and returns its result, failing on a job error. */
export async function runJob(name: string, options: Omit<RunOptions, "jobs"> = {}): Promise<JobResult> {
  const summary = await runJobs(env, { ...options, jobs: [name] });
  return jobResult(summary, name);
}

/** A job's result from a run summary (asserting it ran and did not throw). */
export function jobResult(summary: RunSummary | { jobs: Record<string, unknown> }, name: string): JobResult {
  const result = summary.jobs[name] as JobResult | { error: string } | undefined;
  expect(result, `job ${name} missing from ${JSON.stringify(summary)}`).toBeDefined();
  expect("error" in result! ? result.error : null, `job ${name} failed: ${JSON.stringify(summary)}`).toBeNull();
  const r = result as JobResult;
  expect(r.processed, JSON.stringify(summary)).toBeTypeOf("number");
  expect(r.more, JSON.stringify(summary)).toBeTypeOf("boolean");
  return r;
}

/** The KV record of a secret (null when absent). */
export async function kvRecordOf(secret: string): Promise<TokenRecord | null> {
  return env.TOKENS.get<TokenRecord>(await kvKeyOf(secret), "json");
}

/** Whether KV holds a `tok:` entry for this hash. */
export async function kvHasHash(hash: string): Promise<boolean> {
  return (await env.TOKENS.get(`tok:${hash}`)) !== null;
}

/** Sets columns of one row straight in D1 (past dates, drift, faults). */
export async function setColumns(table: "access_tokens" | "service_accounts", id: string, values: Record<string, unknown>) {
  const cols = Object.keys(values);
  const res = await env.DB.prepare(`update ${table} set ${cols.map((c) => `${c} = ?`).join(", ")} where id = ?`)
    .bind(...cols.map((c) => values[c] ?? null), id)
    .run();
  expect(res.meta.changes, `no ${table} row ${id}`).toBe(1);
}

export interface AccountRow {
  id: string;
  org_id: string | null;
  status: string;
  expires_at: number | null;
  created_at: number;
  last_used_at: number | null;
}

export async function accountRow(id: string): Promise<AccountRow | null> {
  return env.DB.prepare("select * from service_accounts where id = ?").bind(id).first<AccountRow>();
}

export async function tokenLastUsed(id: string): Promise<number | null> {
  const row = await env.DB.prepare("select last_used_at from access_tokens where id = ?").bind(id).first<{ last_used_at: number | null }>();
  return row?.last_used_at ?? null;
}

export interface UsageRow {
  account_id: string;
  hour: number;
  exchanges: number;
}

export async function usageRows(accountId: string): Promise<UsageRow[]> {
  const { results } = await env.DB.prepare("select * from usage_counters where account_id = ? order by hour").bind(accountId).all<UsageRow>();
  return results;
}

/** Polls `probe` until it returns a non-null value (writes made via waitUntil land shortly after the response). */
export async function eventually<T>(probe: () => Promise<T | null | undefined>, what: string, timeoutMs = 3_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A tokens list (the account's or the org's) with query parameters; asserts 200 and returns the items. */
export async function listTokenItems(path: string, token: string, query: Record<string, string | number> = {}) {
  const qs = new URLSearchParams({ limit: "200", ...Object.fromEntries(Object.entries(query).map(([k, v]) => [k, String(v)])) });
  const res = await call("GET", `${path}?${qs}`, { token });
  expectStatus(res, 200);
  expect(res.json.nextCursor, res.text).toBeNull();
  return { items: res.json.items as { id: string; status: string; lastUsedAt: string | null; expiresAt: string | null; accountId: string }[], res };
}

/** Ids of a list response, for membership checks with the body in the message. */
export const idsOf = (items: { id: string }[]) => items.map((i) => i.id);

/** Asserts that `ids` contains every one of `present` and none of `absent`, printing the response. */
export function expectMembership(res: Res, ids: string[], present: string[], absent: string[]) {
  for (const id of present) expect(ids, `${id} should be listed: ${res.text}`).toContain(id);
  for (const id of absent) expect(ids, `${id} should not be listed: ${res.text}`).not.toContain(id);
}

/** A random 64-hex "hash" no token was ever issued for. */
export async function randomHash(): Promise<string> {
  return sha256(crypto.randomUUID());
}

/** A request-id the middleware keeps (SAFE_REQUEST_ID: 8..128 of [A-Za-z0-9._:-]). */
export const requestId = (label: string) => `test-${label}-${crypto.randomUUID()}`;
