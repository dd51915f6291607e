import { decodeProtectedHeader, jwtVerify, type JWTPayload } from "jose";
import type { Bindings } from "../../env.ts";
import { DomainError } from "../shared/errors.ts";
import { JsonBytes } from "../../lib/json-bytes.ts";
import { auditInsert } from "../audit/audit-log.ts";
import { ACCESS_TOKEN_TYP, jwsText, signJws } from "./jws.ts";
import type { Ctx } from "../shared/context.ts";
import { KEYSET_KEY, kvExpiration, revokedJtiKey, revokedTokenKey, type AccountClaims } from "../credentials/kv-records.ts";
import { longestJwtLifetimeSeconds } from "./lifetime.ts";
import { activeKey, importVerifyKey, publishedKeys, unwrapSigningKey, type Keyset, type SigningKey, type SigningKeysRpc } from "./keyset.ts";
import { isolateState } from "../shared/isolate-state.ts";
import { globalStatusIdx, statusListRef, type StatusListRef } from "./status-list.ts";

export { ACCESS_TOKEN_TYP };
/** Keyset freshness in an isolate: a rotation reaches every isolate within this bound. */
const KEYSET_TTL_MS = 30_000;
/** How stale the keyset may be when a JWT names a kid the isolate does not know. */
const UNKNOWN_KID_REFRESH_MS = 5_000;
/**
 * Clock skew accepted on the JWTs Keyward signed itself: they are minted and verified on the
 * clocks of Cloudflare's machines, so a few seconds cover an isolate whose clock runs ahead
 * (`iat`/`nbf`). `exp` gets no skew at all: a JWT is dead at its exp on our clock (RFC 7519 4.1.4,
 * RFC 7662 2.2), on the management API and in introspection alike.
 */
export const OWN_JWT_CLOCK_SKEW_SECONDS = 5;
/**
 * Clock skew accepted on JWTs signed elsewhere (private_key_jwt client assertions, external OIDC
 * tokens of federated credentials): signed on the client's or the issuer's clock, which may be off
 * by more than a few seconds.
 */
export const FOREIGN_JWT_CLOCK_SKEW_SECONDS = 30;
/**
 * How many JWTs may stand between a JWT and its root credential (RFC 8693 exchanges of exchanged
 * JWTs): each ancestor jti is checked on every use, so the chain, and that check, stay bounded.
 */
export const MAX_EXCHANGE_DEPTH = 4;
/** How long a retired key stays in the JWKS beyond the longest JWT lifetime (clock skew, caches). */
const RETENTION_SLACK_MS = 5 * 60_000;

/** Imported keys by kid: the import under way, and once done the key itself (no await per request). */
interface KeyCache {
  loading: Map<string, Promise<CryptoKey>>;
  ready: Map<string, CryptoKey>;
}
function newKeyCache(): KeyCache {
  return { loading: new Map(), ready: new Map() };
}

/** The keyset (fresh for KEYSET_TTL_MS) and the keys imported from it by kid (a failed import is forgotten, and tried again). */
const signing = isolateState("signing-keys", () => ({
  keyset: undefined as { keyset: Keyset; at: number; source: KVNamespace } | undefined,
  privateKeys: newKeyCache(),
  publicKeys: newKeyCache(),
}));

const keysObject = (env: Bindings): SigningKeysRpc => {
  const namespace: DurableObjectNamespace = env.SIGNING_KEYS;
  return namespace.get(namespace.idFromName("global")) as unknown as SigningKeysRpc;
};

export function keyPolicy(ctx: Pick<Ctx, "config">) {
  return { alg: ctx.config.JWT_SIGNING_ALG, retentionMs: longestJwtLifetimeSeconds(ctx.config) * 1000 + RETENTION_SLACK_MS };
}

/** Replaces the isolate's keyset (after a rotation through this isolate it applies at once). */
export function useKeyset(env: Bindings, keyset: Keyset, now: number) {
  signing.keyset = { keyset, at: now, source: env.TOKENS };
}

/** The isolate's keyset while it is fresh, else undefined. */
function freshKeyset(ctx: Ctx, maxAgeMs = KEYSET_TTL_MS): Keyset | undefined {
  const cached = signing.keyset;
  return cached && cached.source === ctx.env.TOKENS && ctx.now() - cached.at < maxAgeMs ? cached.keyset : undefined;
}

/** The keyset, from the isolate cache, else KV, else the SigningKeys object (which creates the first key). */
export async function getKeyset(ctx: Ctx, maxAgeMs = KEYSET_TTL_MS): Promise<Keyset> {
  const fresh = freshKeyset(ctx, maxAgeMs);
  if (fresh) return fresh;
  const now = ctx.now();
  if (!ctx.config.signingSecret) throw new DomainError("signing_not_configured", "Set the SIGNING_KEY_ENCRYPTION_KEY secret to issue JWTs");
  let keyset = await ctx.env.TOKENS.get<Keyset>(KEYSET_KEY, "json");
  if (!keyset || !activeKey(keyset, now)) keyset = await keysObject(ctx.env).keyset(keyPolicy(ctx));
  useKeyset(ctx.env, keyset, now);
  return keyset;
}

export async function rotateSigningKey(ctx: Ctx, activateInSeconds: number) {
  if (!ctx.config.signingSecret) throw new DomainError("signing_not_configured", "Set the SIGNING_KEY_ENCRYPTION_KEY secret to issue JWTs");
  const { keyset, kid } = await keysObject(ctx.env).rotate(keyPolicy(ctx), activateInSeconds, ctx.now());
  useKeyset(ctx.env, keyset, ctx.now());
  await auditInsert(ctx, { action: "signing_key.rotated", orgId: null, targetType: "signing_key", targetId: kid, details: { activateInSeconds } });
  return { keyset, kid };
}

function cachedKey(cache: KeyCache, key: SigningKey, load: () => Promise<CryptoKey>): CryptoKey | Promise<CryptoKey> {
  const ready = cache.ready.get(key.kid);
  if (ready) return ready;
  let k = cache.loading.get(key.kid);
  if (!k) {
    k = load();
    cache.loading.set(key.kid, k);
    k.then(
      (imported) => cache.ready.set(key.kid, imported),
      () => cache.loading.delete(key.kid),
    );
  }
  return k;
}

/**
 * Where a JWT comes from, carried in its claims so that it dies with its source: the access token
 * at the root of its lineage (`source_token_id`, none for a private_key_jwt client), and the jtis
 * of the JWTs it was exchanged from by RFC 8693, oldest first (`source_jtis`).
 */
export interface JwtSource {
  tokenId: string | null;
  jtis: readonly string[];
  /**
   * The status list index of the credential at the root (an access token, a public key, a trust
   * policy; the JWT's `status` claim), or null when the credential's record has none yet.
   */
  statusIdx: number | null;
  /**
   * The credentials of the actors of a delegated JWT (RFC 8693 `act`), every level's: their access
   * tokens and JWTs (`act_token_ids`, `act_jtis`), so that it dies when an actor's credential does.
   */
  actors?: ActorLineage | undefined;
}

export interface ActorLineage {
  tokenIds: readonly string[];
  jtis: readonly string[];
}

/** RFC 8693 4.1: who acted, nested when that actor itself acted for someone (the outermost is the current actor). */
export interface ActClaim {
  sub: string;
  act?: ActClaim | undefined;
}

/** How deep `act` may nest (a bot calling a bot calling a bot...), and so how long the actors' lineage lists may be. */
export const MAX_DELEGATION_DEPTH = 4;
export const MAX_ACTOR_JTIS = MAX_DELEGATION_DEPTH * (MAX_EXCHANGE_DEPTH + 1);

export const NO_SOURCE: JwtSource = { tokenId: null, jtis: [], statusIdx: null };

export interface MintInput {
  account: AccountClaims;
  scope: string[];
  audience: string | string[];
  ttlSeconds: number;
  /** The credential the JWT is minted from. */
  source: JwtSource;
  /** The org the token is for, when not the account's own (cross-org authorization). */
  orgId?: string | null;
  /** The external token a federated grant accepted (the JWT's `federated` claim). */
  federated?: FederatedOrigin | undefined;
  /** RFC 9449: the thumbprint of the key the JWT is bound to (`cnf.jkt`). */
  jkt?: string | undefined;
  /** RFC 8693 delegation: the actor chain (`act`). */
  act?: ActClaim | undefined;
}

/** Where a federated JWT came from: the external token's issuer and subject, and the trust policy that took it. */
export interface FederatedOrigin {
  iss: string;
  sub: string;
  policy_id: string;
}

export interface MintedJwt {
  /** The JWT, a compact JWS. */
  jws: string;
  jti: string;
  exp: number;
  iat: number;
}

/** Signs an RFC 9068 access token with the active key. */
export function mintJwt(ctx: Ctx, input: MintInput): Promise<MintedJwt> {
  // Without an async frame while the keyset and the key are cached: an await per exchange costs
  // promises and closures (src/lib/maybe-promise.ts).
  const keyset = freshKeyset(ctx);
  const key = keyset && activeKey(keyset, ctx.now());
  const privateKey = key && signing.privateKeys.ready.get(key.kid);
  return privateKey ? signClaims(ctx, key, privateKey, input) : mintSlowly(ctx, input);
}

async function mintSlowly(ctx: Ctx, input: MintInput): Promise<MintedJwt> {
  const { key, privateKey } = await activeSigner(ctx);
  return signClaims(ctx, key, privateKey, input);
}

/** The active signing key and its private half (for the other JWTs Keyward signs: status lists). */
export async function activeSigner(ctx: Ctx): Promise<{ key: SigningKey; privateKey: CryptoKey }> {
  const keyset = await getKeyset(ctx);
  const key = activeKey(keyset, ctx.now());
  if (!key) throw new Error("no active signing key");
  return { key, privateKey: await cachedKey(signing.privateKeys, key, () => unwrapSigningKey(key, ctx.config.signingSecret!)) };
}

function signClaims(ctx: Ctx, key: SigningKey, privateKey: CryptoKey, input: MintInput): Promise<MintedJwt> {
  const iat = Math.floor(ctx.now() / 1000);
  const exp = iat + input.ttlSeconds;
  const jti = crypto.randomUUID();
  const orgId = input.orgId === undefined ? input.account.orgId : input.orgId;
  const payload = accessTokenPayload({
    iss: ctx.config.ISSUER,
    sub: input.account.accountId,
    aud: input.audience,
    iat,
    exp,
    jti,
    client_id: input.account.accountId,
    scope: input.scope,
    org_id: orgId,
    groups: input.account.groups,
    roles: input.account.roles,
    source_token_id: input.source.tokenId,
    source_jtis: input.source.jtis,
    federated: input.federated,
    status: input.source.statusIdx === null ? undefined : statusListRef(ctx.config.ISSUER, input.source.statusIdx),
    act_token_ids: input.source.actors?.tokenIds,
    act_jtis: input.source.actors?.jtis,
    act: input.act,
    jkt: input.jkt,
    // Computed for the account's org: a JWT for another org carries only what was computed for that org.
    custom: orgId === input.account.orgId ? input.account.customClaims : undefined,
  });
  return signJws(key, privateKey, payload).then((jws) => ({ jws: jwsText(jws), jti, exp, iat }));
}

/**
 * The claims of an access token; `scope` as its list, `org_id` left out when there is none, the
 * source claims left out when there is no source token and no ancestor JWT.
 */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  iat: number;
  exp: number;
  jti: string;
  client_id: string;
  scope: readonly string[];
  org_id: string | null;
  groups: readonly string[];
  roles: readonly string[];
  source_token_id?: string | null | undefined;
  source_jtis?: readonly string[] | undefined;
  federated?: FederatedOrigin | undefined;
  /** draft-ietf-oauth-status-list: where the root credential's status bit is. */
  status?: StatusListRef | undefined;
  act_token_ids?: readonly string[] | undefined;
  act_jtis?: readonly string[] | undefined;
  act?: ActClaim | undefined;
  /** Written as `cnf: {jkt}`. */
  jkt?: string | undefined;
  /** The org's custom claims (src/domain/signing/custom-claims.ts), written after Keyward's own. */
  custom?: Readonly<Record<string, string>> | undefined;
}

/**
 * Every claim Keyward itself writes into its access tokens. A custom claim may never take one of
 * these names (custom-claims.ts refuses them in a mapping; accessTokenPayload skips them, for a
 * mapping stored before a claim joined this list). A new claim in AccessTokenClaims that is not
 * listed here fails the typecheck below.
 */
export const KEYWARD_JWT_CLAIMS = [
  "iss",
  "sub",
  "aud",
  "iat",
  "exp",
  "jti",
  "client_id",
  "scope",
  "org_id",
  "groups",
  "roles",
  "source_token_id",
  "source_jtis",
  "federated",
  "status",
  "act_token_ids",
  "act_jtis",
  "act",
  "jkt",
] as const satisfies readonly Exclude<keyof AccessTokenClaims, "custom">[];
type UnlistedClaim = Exclude<keyof AccessTokenClaims, "custom" | (typeof KEYWARD_JWT_CLAIMS)[number]>;
const everyClaimListed: [UnlistedClaim] extends [never] ? true : UnlistedClaim = true;
void everyClaimListed;
/** The names those claims have in the JSON (the key binding `jkt` is written as `cnf`). */
export const KEYWARD_JWT_CLAIM_NAMES: readonly string[] = KEYWARD_JWT_CLAIMS.map((k) => (k === "jkt" ? "cnf" : k));
const KEYWARD_CLAIM_SET: ReadonlySet<string> = new Set(KEYWARD_JWT_CLAIM_NAMES);

const payloadWriter = new JsonBytes();

/**
 * The JSON of an access token's claims as UTF-8, in a buffer the next call reuses (signJws reads it
 * at once): per request, no claims string, no scope string and no UTF-8 copy of either.
 */
export function accessTokenPayload(c: AccessTokenClaims): Uint8Array {
  const json = payloadWriter.begin().raw('{"iss":').string(c.iss).raw(',"sub":').string(c.sub).raw(',"aud":');
  if (typeof c.aud === "string") json.string(c.aud);
  else json.strings(c.aud);
  json.raw(',"iat":').number(c.iat).raw(',"exp":').number(c.exp).raw(',"jti":').string(c.jti);
  json.raw(',"client_id":').string(c.client_id).raw(',"scope":').joined(c.scope, " ");
  if (c.org_id) json.raw(',"org_id":').string(c.org_id);
  json.raw(',"groups":').strings(c.groups).raw(',"roles":').strings(c.roles);
  if (c.source_token_id) json.raw(',"source_token_id":').string(c.source_token_id);
  if (c.source_jtis && c.source_jtis.length > 0) json.raw(',"source_jtis":').strings(c.source_jtis);
  if (c.federated) json.raw(',"federated":{"iss":').string(c.federated.iss).raw(',"sub":').string(c.federated.sub).raw(',"policy_id":').string(c.federated.policy_id).raw("}");
  if (c.status) json.raw(',"status":{"status_list":{"idx":').number(c.status.idx).raw(',"uri":').string(c.status.uri).raw("}}");
  if (c.act_token_ids && c.act_token_ids.length > 0) json.raw(',"act_token_ids":').strings(c.act_token_ids);
  if (c.act_jtis && c.act_jtis.length > 0) json.raw(',"act_jtis":').strings(c.act_jtis);
  if (c.act) {
    json.raw(',"act":');
    let depth = 0;
    for (let a: ActClaim | undefined = c.act; a; a = a.act, depth++) {
      json.raw('{"sub":').string(a.sub);
      if (a.act) json.raw(',"act":');
    }
    for (let i = 0; i < depth; i++) json.raw("}");
  }
  if (c.jkt) json.raw(',"cnf":{"jkt":').string(c.jkt).raw("}");
  if (c.custom) writeCustomClaims(json, c.custom);
  return json.raw("}").bytes();
}

/**
 * Custom claims after Keyward's own, each name and value JSON-escaped. A name Keyward writes itself
 * is skipped: JSON parsers keep the last of duplicate names, so it would override ours.
 */
function writeCustomClaims(json: JsonBytes, custom: Readonly<Record<string, string>>): void {
  for (const name in custom) {
    if (KEYWARD_CLAIM_SET.has(name) || !Object.hasOwn(custom, name)) continue;
    json.raw(",").string(name).raw(":").string(custom[name]!);
  }
}

export interface VerifiedJwt extends JWTPayload {
  sub: string;
  jti: string;
  exp: number;
  client_id?: string;
  scope?: string;
  org_id?: string;
  source_token_id?: string;
  source_jtis?: string[];
  act?: ActClaim;
  cnf?: { jkt?: string };
}

const isStringList = (v: unknown, max: number): v is string[] => Array.isArray(v) && v.length <= max && v.every((j) => typeof j === "string");

/** A well-formed `act` claim at most MAX_DELEGATION_DEPTH deep. */
export function actDepth(act: unknown): number | null {
  let depth = 0;
  for (let a = act; a !== undefined; a = (a as { act?: unknown }).act) {
    if (!a || typeof a !== "object" || typeof (a as { sub?: unknown }).sub !== "string" || ++depth > MAX_DELEGATION_DEPTH) return null;
  }
  return depth;
}

/** The source a verified JWT names (ours: `issuer` is the ISSUER), or null when its source claims are malformed. */
export function sourceOf(jwt: JWTPayload, issuer: string): JwtSource | null {
  const { source_token_id: tokenId, source_jtis: jtis, act_token_ids: actorTokens, act_jtis: actorJtis } = jwt;
  if (tokenId !== undefined && typeof tokenId !== "string") return null;
  if (jtis !== undefined && !isStringList(jtis, MAX_EXCHANGE_DEPTH)) return null;
  if (actorTokens !== undefined && !isStringList(actorTokens, MAX_DELEGATION_DEPTH)) return null;
  if (actorJtis !== undefined && !isStringList(actorJtis, MAX_ACTOR_JTIS)) return null;
  if (actDepth(jwt.act) === null) return null;
  const source: JwtSource = { tokenId: tokenId ?? null, jtis: (jtis as string[] | undefined) ?? [], statusIdx: globalStatusIdx(issuer, jwt.status) };
  if (actorTokens !== undefined || actorJtis !== undefined) source.actors = { tokenIds: actorTokens ?? [], jtis: actorJtis ?? [] };
  return source;
}

/**
 * Verifies a JWT we issued: a published kid, the key's own algorithm (no alg confusion, no `none`),
 * `typ: at+jwt`, our issuer, the expected audience (null: any), exp (strictly) and iat, and that
 * neither it, nor a JWT it was exchanged from, nor the access token at its root was revoked.
 */
export async function verifyJwt(ctx: Ctx, token: string, audience: string | null): Promise<VerifiedJwt | null> {
  if (token.length > 8192 || token.split(".").length !== 3) return null;
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    return null;
  }
  if (!kid) return null;
  let key = publishedKeys(await getKeyset(ctx), ctx.now()).find((k) => k.kid === kid);
  // A kid this isolate has not seen may come from a rotation elsewhere: look again, at most every few seconds.
  if (!key) key = publishedKeys(await getKeyset(ctx, UNKNOWN_KID_REFRESH_MS), ctx.now()).find((k) => k.kid === kid);
  if (!key) return null;
  try {
    const { payload } = await jwtVerify(token, await cachedKey(signing.publicKeys, key, () => importVerifyKey(key)), {
      algorithms: [key.alg],
      issuer: ctx.config.ISSUER,
      ...(audience ? { audience } : {}),
      typ: ACCESS_TOKEN_TYP,
      clockTolerance: OWN_JWT_CLOCK_SKEW_SECONDS,
      currentDate: new Date(ctx.now()),
      requiredClaims: ["sub", "jti", "exp", "iat"],
    });
    if (payload.exp! * 1000 <= ctx.now()) return null;
    // jose checks iat only against a maximum age; a JWT "issued" in the future is refused here.
    if (payload.iat! > ctx.now() / 1000 + OWN_JWT_CLOCK_SKEW_SECONDS) return null;
    const source = sourceOf(payload, ctx.config.ISSUER);
    if (!source || (await revokedAlongLineage(ctx.env, payload.jti!, source))) return null;
    return payload as VerifiedJwt;
  } catch {
    return null;
  }
}

/**
 * Whether the JWT, one of the JWTs it was exchanged from, its root access token, or a credential
 * of one of its actors was revoked: one KV read (a bulk get of at most MAX_EXCHANGE_DEPTH + 2 keys,
 * plus the actors' at most MAX_DELEGATION_DEPTH * (MAX_EXCHANGE_DEPTH + 2)), the cost of the jti check alone.
 */
async function revokedAlongLineage(env: Bindings, jti: string, source: JwtSource): Promise<boolean> {
  const keys = [revokedJtiKey(jti), ...source.jtis.map(revokedJtiKey)];
  if (source.tokenId) keys.push(revokedTokenKey(source.tokenId));
  if (source.actors) keys.push(...source.actors.jtis.map(revokedJtiKey), ...source.actors.tokenIds.map(revokedTokenKey));
  if (keys.length === 1) return (await env.TOKENS.get(keys[0]!)) !== null;
  for (const marker of (await env.TOKENS.get(keys, "text")).values()) if (marker !== null) return true;
  return false;
}

/** Puts a JWT's jti on the revocation list until the JWT would have expired anyway. */
export async function revokeJti(ctx: Ctx, jti: string, exp: number): Promise<void> {
  // Kept as long as the JWT could still verify: its exp plus the accepted clock skew.
  await ctx.env.TOKENS.put(revokedJtiKey(jti), "1", { expiration: kvExpiration((exp + OWN_JWT_CLOCK_SKEW_SECONDS) * 1000, ctx.now()) });
}
