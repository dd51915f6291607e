import { getKeyset, rotateSigningKey } from "../domain/signing/jwt.ts";
import { activeKey } from "../domain/signing/keyset.ts";
import type { Job } from "./types.ts";

const DAY_MS = 86_400_000;

/**
 * Rotates the JWT signing key every KEY_ROTATION_DAYS: the new key is published at once and signs
 * after JWKS_MAX_AGE_SECONDS (publish before use); the old one stays published until every JWT it
 * signed has expired (the keyset drops it after the retention period).
 */
export const rotateKeys: Job = async (ctx) => {
  if (!ctx.config.signingSecret) return { processed: 0, more: false, rotated: 0 };
  const now = ctx.now();
  const keyset = await getKeyset(ctx, 0);
  const active = activeKey(keyset, now);
  const pending = keyset.keys.some((k) => k.activatesAt > now);
  if (pending || (active && active.activatesAt > now - ctx.config.KEY_ROTATION_DAYS * DAY_MS)) return { processed: 0, more: false, rotated: 0 };
  await rotateSigningKey(ctx, ctx.config.JWKS_MAX_AGE_SECONDS);
  return { processed: 1, more: false, rotated: 1 };
};
