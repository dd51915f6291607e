import { createLocalJWKSet, type JSONWebKeySet, type JWK } from "jose";
import { fetchJson, OutboundError } from "../../lib/outbound.ts";
import type { Ctx } from "../shared/context.ts";
import { isolateState } from "../shared/isolate-state.ts";

/**
 * Public keys published by someone else as a JWKS (RFC 7517) at a URL: an external OIDC issuer's
 * (federation, issuer-keys.ts) or an OAuth client's own `jwksUri` (client-jwks.ts). One set of
 * rules for both:
 *
 *  - The fetch is lib/outbound.ts's: timeout, size limit, no redirects, JSON only.
 *  - Keys are cached in the isolate and in KV (under the source's `kvKey`), fresh for the key
 *    set's Cache-Control max-age clamped to [MIN_FRESH_S, MAX_FRESH_S].
 *  - A kid the cached set lacks triggers a refresh, at most once per source per REFRESH_EVERY_MS
 *    (counted from the last fetch, in any isolate, as KV records when it was made): a stream of
 *    tokens with made-up kids cannot make us hammer the server.
 *  - A source that cannot be reached leaves its cached keys working up to STALE_LIMIT_MS past
 *    their fetch; with no keys at all, nothing verifies (fail closed).
 */

/** The floor and ceiling on how long a fetched key set is fresh. */
export const MIN_FRESH_S = 60;
export const MAX_FRESH_S = 86_400;
/** At most one fetch per source in this interval, whatever triggers it. */
export const REFRESH_EVERY_MS = 60_000;
/** After a failed fetch with nothing cached, how long before the next try. */
const RETRY_EMPTY_MS = 10_000;
/** How long past their fetch cached keys keep verifying while the source cannot be reached. */
export const STALE_LIMIT_MS = 24 * 3600_000;
/** The most keys taken from one set. */
const MAX_KEYS = 64;
const MAX_SOURCES = 256;

/** Where a key set comes from: its cache key (KV and isolate) and how to find its URL. */
export interface KeySource {
  kvKey: string;
  /** The URL of the key set (for an issuer: found by discovery). Throws OutboundError when there is none usable. */
  jwksUrl: () => Promise<string>;
}

/** What is cached of a source (KV and isolate alike). */
interface StoredKeys {
  jwks: JSONWebKeySet;
  fetchedAt: number;
  freshUntil: number;
}

export interface RemoteKeys extends StoredKeys {
  /** jose's key resolver over the set (kid, kty and alg matching). */
  resolve: ReturnType<typeof createLocalJWKSet>;
}

/** Named "issuer-keys" since federation introduced it: resetting it forgets every source's keys. */
const keys = isolateState("issuer-keys", () => ({
  entries: new Map<string, RemoteKeys>(),
  /** When this isolate last tried to fetch each source's keys (success or not). */
  attempts: new Map<string, number>(),
  loading: new Map<string, Promise<RemoteKeys>>(),
}));

const ACCEPTED_KTY = new Set(["RSA", "EC", "OKP"]);
const ACCEPTED_ALG = new Set(["RS256", "ES256", "EdDSA", "Ed25519"]);

/** The signing keys of a set we can use: RSA, EC or OKP public keys for signatures with an accepted alg (or none stated). */
function usableKeys(json: unknown): JWK[] {
  const list = (json as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) throw new OutboundError("the key set has no keys array");
  const usable = list.filter(
    (k): k is JWK =>
      typeof k === "object" &&
      k !== null &&
      ACCEPTED_KTY.has((k as JWK).kty as string) &&
      (k as JWK).d === undefined &&
      ((k as JWK).use === undefined || (k as JWK).use === "sig") &&
      ((k as JWK).alg === undefined || ACCEPTED_ALG.has((k as JWK).alg as string)),
  );
  return usable.slice(0, MAX_KEYS);
}

function entryOf(stored: StoredKeys): RemoteKeys {
  return { ...stored, resolve: createLocalJWKSet(stored.jwks) };
}

function remember(id: string, entry: RemoteKeys): RemoteKeys {
  if (keys.entries.size >= MAX_SOURCES && !keys.entries.has(id)) keys.entries.clear();
  keys.entries.set(id, entry);
  return entry;
}

/** Fetches the key set, and stores it in KV and here. */
async function fetchKeys(ctx: Ctx, source: KeySource): Promise<RemoteKeys> {
  const { json, maxAgeSeconds } = await fetchJson(await source.jwksUrl());
  const usable = usableKeys(json);
  if (usable.length === 0) throw new OutboundError("the key set has no usable signing key");
  const now = ctx.now();
  const freshS = Math.min(MAX_FRESH_S, Math.max(MIN_FRESH_S, maxAgeSeconds ?? 0));
  const stored: StoredKeys = { jwks: { keys: usable }, fetchedAt: now, freshUntil: now + freshS * 1000 };
  const kvTtlS = Math.ceil((freshS * 1000 + STALE_LIMIT_MS) / 1000);
  ctx.waitUntil(ctx.env.TOKENS.put(source.kvKey, JSON.stringify(stored), { expirationTtl: kvTtlS }).catch(() => undefined));
  return remember(source.kvKey, entryOf(stored));
}

async function storedEntry(ctx: Ctx, id: string): Promise<RemoteKeys | undefined> {
  const cached = keys.entries.get(id);
  if (cached) return cached;
  const stored = await ctx.env.TOKENS.get<StoredKeys>(id, "json").catch(() => null);
  if (!stored || !Array.isArray(stored.jwks?.keys)) return undefined;
  return remember(id, entryOf(stored));
}

/** One fetch at a time per source in this isolate; callers during it share its outcome. */
function refresh(ctx: Ctx, source: KeySource): Promise<RemoteKeys> {
  const id = source.kvKey;
  let loading = keys.loading.get(id);
  if (!loading) {
    keys.attempts.set(id, ctx.now());
    loading = fetchKeys(ctx, source).finally(() => keys.loading.delete(id));
    keys.loading.set(id, loading);
  }
  return loading;
}

const hasKid = (entry: RemoteKeys, kid: string) => entry.jwks.keys.some((k) => k.kid === kid);

/** Why a source's keys cannot be had (no keys cached and the fetch failed or may not run yet). */
export class KeysUnavailable extends Error {}

/**
 * The source's keys for verifying a token whose header names `kid` (or none): the cached set while
 * it is fresh and knows the kid, else a refresh within the limits above, else the cached set as it
 * is (the verification then fails on an unknown kid). Throws KeysUnavailable when there are no
 * keys to use.
 */
export async function remoteKeys(ctx: Ctx, source: KeySource, kid: string | undefined): Promise<RemoteKeys> {
  const id = source.kvKey;
  const entry = await storedEntry(ctx, id);
  const now = ctx.now();
  const fresh = entry !== undefined && entry.freshUntil > now;
  if (fresh && (kid === undefined || hasKid(entry, kid))) return entry;
  const lastTry = keys.attempts.get(id) ?? -Infinity;
  const lastFetch = entry?.fetchedAt ?? -Infinity;
  const mayFetch = keys.loading.has(id) || now - Math.max(lastTry, lastFetch) >= (entry ? REFRESH_EVERY_MS : RETRY_EMPTY_MS);
  const usableStale = entry !== undefined && now - entry.fetchedAt < STALE_LIMIT_MS ? entry : undefined;
  if (!mayFetch) {
    if (usableStale) return usableStale;
    throw new KeysUnavailable("the keys are not available (a fetch failed moments ago)");
  }
  try {
    return await refresh(ctx, source);
  } catch (err) {
    if (usableStale) return usableStale;
    throw new KeysUnavailable(err instanceof OutboundError ? err.message : "fetch failed");
  }
}
