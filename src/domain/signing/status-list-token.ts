import { encodeStatusList } from "../../lib/status-bits.ts";
import type { Ctx } from "../shared/context.ts";
import { signTyped } from "./jws.ts";
import { activeSigner } from "./jwt.ts";
import { STATUS_LIST_SIZE, statusListNumber, statusListUri } from "./status-list.ts";

/** `typ` of a status list token (draft-ietf-oauth-status-list, section 5.1). */
export const STATUS_LIST_TYP = "statuslist+jwt";

export interface StatusListToken {
  /** The signed status list token, a compact JWS. */
  jwt: string;
  /** Its `iat` (epoch seconds): a cached copy is fresh until iat + ttl. */
  iat: number;
  ttl: number;
}

/**
 * Status list `n` as it is in D1 now, signed with the active signing key, or null when no
 * credential has an index in it (n past the last list; list 0 always exists). Every list has
 * STATUS_LIST_SIZE bits, so its size says nothing about how many credentials exist. One D1 call.
 */
export async function renderStatusList(ctx: Ctx, n: number): Promise<StatusListToken | null> {
  const from = n * STATUS_LIST_SIZE;
  const [seq, set] = await ctx.env.DB.batch<{ next_idx: number } | { idx: number }>([
    ctx.env.DB.prepare("SELECT next_idx FROM credential_status_seq WHERE id = 0"),
    ctx.env.DB.prepare("SELECT idx FROM credential_status WHERE revoked = 1 AND idx >= ? AND idx < ?").bind(from, from + STATUS_LIST_SIZE),
  ]);
  const next = (seq?.results[0] as { next_idx: number } | undefined)?.next_idx ?? 0;
  if (n > (next > 0 ? statusListNumber(next - 1) : 0)) return null;
  const lst = await encodeStatusList(
    STATUS_LIST_SIZE,
    (set?.results as { idx: number }[]).map((r) => r.idx - from),
  );
  const ttl = ctx.config.STATUS_LIST_TTL_SECONDS;
  const iat = Math.floor(ctx.now() / 1000);
  const payload = JSON.stringify({ sub: statusListUri(ctx.config.ISSUER, n), iat, exp: iat + ttl, ttl, status_list: { bits: 1, lst } });
  const { key, privateKey } = await activeSigner(ctx);
  return { jwt: await signTyped(key, privateKey, STATUS_LIST_TYP, payload), iat, ttl };
}
