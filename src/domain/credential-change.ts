import type { Bindings } from "../env.ts";

/** One KV write of a credential change. */
export type KvOp =
  | { op: "put"; key: string; value: string; expiration?: number }
  | { op: "delete"; key: string };

export interface SqlStatement {
  sql: string;
  params: unknown[];
}

/**
 * A credential change, applied in this order (documented in the README):
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
  await Promise.all(
    ops.map((op) =>
      op.op === "delete"
        ? kv.delete(op.key)
        : kv.put(op.key, op.value, op.expiration === undefined ? {} : { expiration: op.expiration }),
    ),
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
