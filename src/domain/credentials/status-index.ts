import type { CredentialType } from "../../db/schema.ts";
import type { Ctx } from "../shared/context.ts";
import type { SqlStatement } from "./change.ts";

/**
 * Each credential's index in the token status lists (docs/status-list.md). The write path takes
 * the index while planning, so that the KV record it writes carries it and the JWTs minted from the
 * credential name it without a binding call; the status row is inserted in the change's D1 batch,
 * before the credential itself (the insert triggers of migrations/0007_status_list.sql give an
 * index only to a credential that has none). An index taken by a plan that never runs stays unused.
 */

/** Takes the next index (one D1 write, outside the hot path: only credential creation calls it). */
export async function allocateStatusIdx(ctx: Ctx): Promise<number> {
  const row = await ctx.env.DB.prepare("UPDATE credential_status_seq SET next_idx = next_idx + 1 WHERE id = 0 RETURNING next_idx - 1 AS idx").first<{ idx: number }>();
  if (!row) throw new Error("credential_status_seq is empty (migration 0007 not applied)");
  return row.idx;
}

/**
 * The status row of a new credential: its bit starts set when the account is not active (a key
 * added to a disabled account), as the triggers would set it. Idempotent (a replayed change).
 */
export function statusInsert(ctx: Ctx, idx: number, type: CredentialType, credentialId: string, accountId: string): SqlStatement {
  return {
    sql:
      "INSERT INTO credential_status (idx, credential_type, credential_id, account_id, revoked, updated_at) " +
      "SELECT ?, ?, ?, ?, CASE WHEN EXISTS (SELECT 1 FROM service_accounts WHERE id = ? AND status = 'active') THEN 0 ELSE 1 END, ? WHERE true " +
      "ON CONFLICT DO NOTHING",
    params: [idx, type, credentialId, accountId, accountId, ctx.now()],
  };
}
