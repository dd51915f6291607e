import type { Bindings } from "../env.ts";
import { ApiError } from "../errors.ts";
import { hashToken, isWellFormedAccessToken, TOKEN_PREFIX } from "./access-token.ts";
import { deadReason, tokenKey, type TokenRecord } from "./kv-records.ts";
import type { Principal } from "./principal.ts";

const unauthenticated = (detail: string) =>
  new ApiError("unauthenticated", detail, { headers: { "www-authenticate": 'Bearer realm="keyward"' } });

/** The credential of an `Authorization: Bearer` header, or a 401. */
export function bearerCredential(header: string | undefined): string {
  const match = /^Bearer[ ]+([\x21-\x7e]{1,4096})[ ]*$/i.exec(header ?? "");
  if (!match) throw unauthenticated("Send Authorization: Bearer <access token>");
  return match[1]!;
}

/**
 * Resolves an access token to the record that makes it valid. Garbage and typos fail the
 * checksum before any lookup; a valid-looking token costs one KV read (no D1 on this path).
 */
export async function verifyAccessToken(env: Bindings, token: string, now: number): Promise<TokenRecord | null> {
  if (!isWellFormedAccessToken(token)) return null;
  const record = await env.TOKENS.get<TokenRecord>(tokenKey(await hashToken(token)), "json");
  if (!record || deadReason(record, now) !== null) return null;
  return record;
}

/** Authenticates a bearer credential into a principal, or throws 401 (one message for every failure). */
export async function authenticate(env: Bindings, header: string | undefined, now: number): Promise<Principal> {
  const credential = bearerCredential(header);
  if (credential.startsWith(TOKEN_PREFIX)) {
    const record = await verifyAccessToken(env, credential, now);
    if (record) {
      return {
        accountId: record.account.accountId,
        orgId: record.account.orgId,
        platformPermissions: record.account.platformPermissions,
        credential: { type: "access_token", tokenId: record.tokenId },
      };
    }
  }
  throw unauthenticated("The credential is invalid, expired or revoked");
}
