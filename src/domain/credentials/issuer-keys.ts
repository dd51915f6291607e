import { createLocalJWKSet, type JSONWebKeySet, type JWK } from "jose";
import { fetchJson, OutboundError } from "../../lib/outbound.ts";
import type { Ctx } from "../shared/context.ts";
import { DomainError } from "../shared/errors.ts";
import { isolateState } from "../shared/isolate-state.ts";

/**
 * The signing keys of the external OIDC issuers that trust policies name, found by OpenID Connect
 * Discovery 1.0 (`{issuer}/.well-known/openid-configuration` -> `jwks_uri`). The rules:
 *
 *  - The discovery document's `issuer` must be the issuer exactly (Discovery 4.3), and its
 *    `jwks_uri` on the issuer's own scheme and host: a document that sends us elsewhere is refused.
 *  - Keys are cached in the isolate and in KV (`fed-jwks:<issuer>`), fresh for the key set's
 *    Cache-Control max-age clamped to [MIN_FRESH_S, MAX_FRESH_S].
 *  - A kid the cached set lacks triggers a refresh, at most once per issuer per REFRESH_EVERY_MS
 *    (counted from the last fetch, in any isolate, as KV records when it was made): a stream of
 *    tokens with made-up kids cannot make us hammer the issuer.
 *  - An issuer that cannot be reached leaves its cached keys working up to STALE_LIMIT_MS past
 *    their fetch; with no keys at all, nothing verifies (fail closed).
 */

/** The floor and ceiling on how long a fetched key set is fresh. */
export const MIN_FRESH_S = 60;
export const MAX_FRESH_S = 86_400;
/** At most one fetch per issuer in this interval, whatever triggers it. */
export const REFRESH_EVERY_MS = 60_000;
/** After a failed fetch with nothing cached, how long before the next try. */
const RETRY_EMPTY_MS = 10_000;
/** How long past their fetch cached keys keep verifying while the issuer cannot be reached. */
export const STALE_LIMIT_MS = 24 * 3600_000;
/** The most keys taken from one issuer's set. */
const MAX_KEYS = 64;
const MAX_ISSUERS = 256;

const KV_PREFIX = "fed-jwks:";
export const issuerKeysKvKey = (issuer: string) => `${KV_PREFIX}${issuer}`;

/** What is cached of an issuer (KV and isolate alike). */
interface StoredIssuerKeys {
  jwks: JSONWebKeySet;
  fetchedAt: number;
  freshUntil: number;
}

export interface IssuerKeys extends StoredIssuerKeys {
  /** jose's key resolver over the set (kid, kty and alg matching). */
  resolve: ReturnType<typeof createLocalJWKSet>;
}

const keys = isolateState("issuer-keys", () => ({
  entries: new Map<string, IssuerKeys>(),
  /** When this isolate last tried to fetch each issuer's keys (success or not). */
  attempts: new Map<string, number>(),
  loading: new Map<string, Promise<IssuerKeys>>(),
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

/** Discovery's well-known URL: the issuer with any trailing slash removed, plus the path (Discovery 4). */
export const discoveryUrl = (issuer: string) => `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;

/** The jwks_uri of an issuer, checked against the issuer's identity and host. */
async function discoverJwksUri(issuer: string): Promise<string> {
  const { json } = await fetchJson(discoveryUrl(issuer));
  const doc = json as { issuer?: unknown; jwks_uri?: unknown } | null;
  if (doc?.issuer !== issuer) throw new OutboundError("the discovery document names another issuer");
  if (typeof doc.jwks_uri !== "string") throw new OutboundError("the discovery document has no jwks_uri");
  let jwksUrl: URL;
  try {
    jwksUrl = new URL(doc.jwks_uri);
  } catch {
    throw new OutboundError("jwks_uri is not a URL");
  }
  const issuerUrl = new URL(issuer);
  if (jwksUrl.protocol !== issuerUrl.protocol || jwksUrl.host !== issuerUrl.host) throw new OutboundError("jwks_uri is on another host than the issuer");
  return jwksUrl.href;
}

function entryOf(stored: StoredIssuerKeys): IssuerKeys {
  return { ...stored, resolve: createLocalJWKSet(stored.jwks) };
}

function remember(issuer: string, entry: IssuerKeys): IssuerKeys {
  if (keys.entries.size >= MAX_ISSUERS && !keys.entries.has(issuer)) keys.entries.clear();
  keys.entries.set(issuer, entry);
  return entry;
}

/** Fetches discovery and the key set, and stores them in KV and here. */
async function fetchIssuerKeys(ctx: Ctx, issuer: string): Promise<IssuerKeys> {
  const jwksUri = await discoverJwksUri(issuer);
  const { json, maxAgeSeconds } = await fetchJson(jwksUri);
  const usable = usableKeys(json);
  if (usable.length === 0) throw new OutboundError("the key set has no usable signing key");
  const now = ctx.now();
  const freshS = Math.min(MAX_FRESH_S, Math.max(MIN_FRESH_S, maxAgeSeconds ?? 0));
  const stored: StoredIssuerKeys = { jwks: { keys: usable }, fetchedAt: now, freshUntil: now + freshS * 1000 };
  const kvTtlS = Math.ceil((freshS * 1000 + STALE_LIMIT_MS) / 1000);
  ctx.waitUntil(ctx.env.TOKENS.put(issuerKeysKvKey(issuer), JSON.stringify(stored), { expirationTtl: kvTtlS }).catch(() => undefined));
  return remember(issuer, entryOf(stored));
}

async function storedEntry(ctx: Ctx, issuer: string): Promise<IssuerKeys | undefined> {
  const cached = keys.entries.get(issuer);
  if (cached) return cached;
  const stored = await ctx.env.TOKENS.get<StoredIssuerKeys>(issuerKeysKvKey(issuer), "json").catch(() => null);
  if (!stored || !Array.isArray(stored.jwks?.keys)) return undefined;
  return remember(issuer, entryOf(stored));
}

/** One fetch at a time per issuer in this isolate; callers during it share its outcome. */
function refresh(ctx: Ctx, issuer: string): Promise<IssuerKeys> {
  let loading = keys.loading.get(issuer);
  if (!loading) {
    keys.attempts.set(issuer, ctx.now());
    loading = fetchIssuerKeys(ctx, issuer).finally(() => keys.loading.delete(issuer));
    keys.loading.set(issuer, loading);
  }
  return loading;
}

const hasKid = (entry: IssuerKeys, kid: string) => entry.jwks.keys.some((k) => k.kid === kid);

/**
 * The issuer's keys for verifying a token whose header names `kid` (or none): the cached set while
 * it is fresh and knows the kid, else a refresh within the limits above, else the cached set as it
 * is (the verification then fails on an unknown kid). Throws `issuer_unavailable` when there are
 * no keys to use.
 */
export async function issuerKeys(ctx: Ctx, issuer: string, kid: string | undefined): Promise<IssuerKeys> {
  const entry = await storedEntry(ctx, issuer);
  const now = ctx.now();
  const fresh = entry !== undefined && entry.freshUntil > now;
  if (fresh && (kid === undefined || hasKid(entry, kid))) return entry;
  const lastTry = keys.attempts.get(issuer) ?? -Infinity;
  const lastFetch = entry?.fetchedAt ?? -Infinity;
  const mayFetch = keys.loading.has(issuer) || now - Math.max(lastTry, lastFetch) >= (entry ? REFRESH_EVERY_MS : RETRY_EMPTY_MS);
  const usableStale = entry !== undefined && now - entry.fetchedAt < STALE_LIMIT_MS ? entry : undefined;
  if (!mayFetch) {
    if (usableStale) return usableStale;
    throw new DomainError("issuer_unavailable", "The issuer's keys are not available");
  }
  try {
    return await refresh(ctx, issuer);
  } catch (err) {
    if (usableStale) return usableStale;
    const why = err instanceof OutboundError ? err.message : "fetch failed";
    throw new DomainError("issuer_unavailable", `The issuer's keys are not available: ${why}`);
  }
}
