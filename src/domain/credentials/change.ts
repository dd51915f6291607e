import type { Bindings } from "../../env.ts";
import { kvExpiration } from "./kv-records.ts";

/**
 * One KV write of a credential change. A put carries the epoch ms its value dies at (not a KV
 * expiration): the expiration is computed when the write runs, so a replay long after planning
 * never hands KV an expiration in the past, and a value already dead is deleted instead.
 */
export type KvOp =
  | { op: "put"; key: string; value: string; expiresAt: number | null }
  | { op: "delete"; key: string };

export interface SqlStatement {
  sql: string;
  params: unknown[];
}

/**
 * A credential change, applied in this order (docs/architecture.md, "The credential write path: plan → journal → apply"):
 *   1. `kvBefore`: KV writes that take access away (deletes, shortened records);
 *   2. `d1`: one D1 batch (a transaction) with the change and its audit event;
 *   3. `kvAfter`: KV writes that grant access (new secrets, re-enabled records).
 * A crash at any point therefore leaves KV granting no more than D1 does, so a revoked or
 * disabled credential can never be usable; the Durable Object journals the change first and
 * replays it until it completes. Every statement is idempotent (inserts ignore conflicts).
 */
export interface Change {
  kvBefore: KvOp[];
  d1: SqlStatement[];
  kvAfter: KvOp[];
}

/** Freezes a drizzle query into a replayable statement. */
export function statement(query: { toSQL(): { sql: string; params: unknown[] } }): SqlStatement {
  const { sql, params } = query.toSQL();
  return { sql, params };
}

async function runKv(kv: KVNamespace, ops: KvOp[]): Promise<void> {
  const now = Date.now();
  await Promise.all(
    ops.map((op) => {
      if (op.op === "delete" || (op.expiresAt !== null && op.expiresAt <= now)) return kv.delete(op.key);
      const expiration = kvExpiration(op.expiresAt, now);
      return kv.put(op.key, op.value, expiration === undefined ? {} : { expiration });
    }),
  );
}

/** Applies a change in the safe order. Safe to call again with the same change. */
export async function runChange(env: Bindings, change: Change): Promise<void> {
  await runKv(env.TOKENS, change.kvBefore);
  if (change.d1.length > 0) {
    await env.DB.batch(change.d1.map((s) => env.DB.prepare(s.sql).bind(...s.params)));
  }
  await runKv(env.TOKENS, change.kvAfter);
}
