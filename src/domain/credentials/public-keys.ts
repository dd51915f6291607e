import { calculateJwkThumbprint } from "jose";
import { and, eq, gt, isNull, lte, or, type SQL } from "drizzle-orm";
import { publicKeys, type OrgPolicy, type PublicKey, type PublicKeyAlg } from "../../db/schema.ts";
import { DomainError } from "../shared/errors.ts";
import { toHex } from "../../lib/crypto.ts";
import { newId } from "../../lib/ids.ts";
import { accountObject, unwrap } from "./account-object.ts";
import { DEFAULT_POLICY, orgFor, policyOf } from "../registry/orgs.ts";
import { accountFor } from "../registry/accounts.ts";
import { assertJwksUri } from "./client-jwks.ts";
import type { ServiceAccount } from "../../db/schema.ts";
import type { Ctx } from "../shared/context.ts";
import { withPermission } from "../access/permissions.ts";
import { keyset, toPage, type PageQuery } from "../shared/pagination.ts";

const DAY_MS = 86_400_000;

/** Public keys (PEM SPKI or JWK; ES256, RS256, EdDSA) that authenticate an account by private_key_jwt. */

const IMPORT: Record<PublicKeyAlg, SubtleCryptoImportKeyAlgorithm> = {
  ES256: { name: "ECDSA", namedCurve: "P-256" },
  RS256: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  EdDSA: { name: "Ed25519" },
};

const invalid = (detail: string) => new DomainError("invalid_key", detail, { errors: [{ path: "body.publicKey", message: detail }] });

function algOfJwk(jwk: Record<string, unknown>): PublicKeyAlg | undefined {
  if (jwk.kty === "EC" && jwk.crv === "P-256") return "ES256";
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "EdDSA";
  if (jwk.kty === "RSA") return "RS256";
  return undefined;
}

/** What a `kid` may be (printable ASCII), whether given as a field or inside a JWK. */
export const KID_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** SPKI algorithm identifiers (DER of the OID, hex) of the keys we take; anything else is refused. */
const SPKI_ALGS: Record<string, PublicKeyAlg> = {
  "2a8648ce3d0201": "ES256", // id-ecPublicKey (the curve is checked on import)
  "2a864886f70d010101": "RS256", // rsaEncryption
  "2b6570": "EdDSA", // id-Ed25519 (not X25519, 2b656e)
};

/** The algorithm OID of an SPKI: SEQUENCE { SEQUENCE { OID, ... }, BIT STRING }. */
function spkiAlgorithm(der: Uint8Array): PublicKeyAlg | undefined {
  let at = 0;
  const header = (tag: number) => {
    if (der[at++] !== tag) return -1;
    let len = der[at++] ?? 0;
    if (len & 0x80) {
      const bytes = len & 0x7f;
      len = 0;
      for (let i = 0; i < bytes; i++) len = (len << 8) | (der[at++] ?? 0);
    }
    return len;
  };
  if (header(0x30) < 0 || header(0x30) < 0) return undefined;
  const oidLength = header(0x06);
  if (oidLength < 1 || at + oidLength > der.length) return undefined;
  return SPKI_ALGS[toHex(der.subarray(at, at + oidLength))];
}

function pemToDer(pem: string): ArrayBuffer {
  const match = /^-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----$/.exec(pem.trim());
  if (!match) throw invalid("A PEM public key must be a single SPKI block (-----BEGIN PUBLIC KEY-----)");
  try {
    return Uint8Array.from(atob(match[1]!.replace(/\s+/g, "")), (ch) => ch.charCodeAt(0)).buffer;
  } catch {
    throw invalid("The PEM body is not valid base64");
  }
}

/**
 * Imports a key as `alg` and exports its public JWK, or null when it is not such a key. The JWK's
 * type is checked too: some runtimes import any SPKI under Ed25519 and only fail on export.
 */
async function tryImport(format: "spki" | "jwk", data: ArrayBuffer | JsonWebKey, alg: PublicKeyAlg): Promise<Record<string, unknown> | null> {
  try {
    const key = await crypto.subtle.importKey(format as "jwk", data as JsonWebKey, IMPORT[alg], true, ["verify"]);
    const jwk = (await crypto.subtle.exportKey("jwk", key)) as JsonWebKey & Record<string, unknown>;
    return algOfJwk(jwk) === alg ? jwk : null;
  } catch {
    return null;
  }
}

export interface ParsedKey {
  alg: PublicKeyAlg;
  jwk: Record<string, unknown>;
  thumbprint: string;
  /** The JWK's own kid, if it had one. */
  kid?: string | undefined;
}

/** Parses and normalizes a public key; private keys, unsupported types and short RSA keys are refused. */
export async function parsePublicKey(input: string | Record<string, unknown>, algHint?: PublicKeyAlg): Promise<ParsedKey> {
  let full: Record<string, unknown> | null = null;
  let alg: PublicKeyAlg | undefined;
  if (typeof input === "string") {
    const der = pemToDer(input);
    alg = spkiAlgorithm(new Uint8Array(der));
    if (!alg) throw invalid("Supported keys: EC P-256 (ES256), RSA >= 2048 bits (RS256), Ed25519 (EdDSA)");
    if (algHint && algHint !== alg) throw invalid(`The key type does not match alg ${algHint}`);
    full = await tryImport("spki", der, alg);
  } else {
    if ("d" in input || "p" in input || "k" in input) throw invalid("Send the public key only; never a private or symmetric key");
    if (input.kid !== undefined && (typeof input.kid !== "string" || !KID_PATTERN.test(input.kid))) {
      throw new DomainError("validation_failed", "The JWK's kid must be 1-128 printable ASCII characters", { errors: [{ path: "body.publicKey.kid", message: "1-128 printable ASCII characters" }] });
    }
    alg = algOfJwk(input);
    if (!alg) throw invalid("Supported keys: EC P-256 (ES256), RSA >= 2048 bits (RS256), Ed25519 (EdDSA)");
    if (algHint && algHint !== alg) throw invalid(`The key type does not match alg ${algHint}`);
    full = await tryImport("jwk", input as unknown as JsonWebKey, alg);
  }
  if (!full || !alg) throw invalid("The key could not be read as an ES256 (P-256), RS256 or EdDSA (Ed25519) public key");
  const { kty, crv, x, y, n, e } = full;
  const jwk = Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined));
  if (alg === "RS256" && typeof n === "string" && (n.length * 6) / 8 < 255) throw invalid("RSA keys must be at least 2048 bits");
  const kid = typeof input === "object" ? (input.kid as string | undefined) : undefined;
  return { alg, jwk, thumbprint: await calculateJwkThumbprint(jwk as never, "sha256"), kid };
}

export interface AddKeyInput {
  publicKey: string | Record<string, unknown>;
  alg?: PublicKeyAlg | undefined;
  kid?: string | undefined;
  name?: string | undefined;
  /** ISO 8601; defaults to the org policy's maxKeyLifetimeDays from now (none without one). */
  expiresAt?: string | undefined;
}

const isoOf = (ms: number) => new Date(ms).toISOString();

/**
 * A key's expiry under the org policy: the asked one if within `maxKeyLifetimeDays`, the maximum
 * when none is asked, none when the policy sets no maximum and none is asked. Longer is refused.
 */
export function keyExpiry(expiresAt: string | undefined, policy: OrgPolicy, now: number): number | null {
  let asked: number | null = null;
  if (expiresAt !== undefined) {
    asked = Date.parse(expiresAt);
    if (!Number.isFinite(asked) || asked <= now) {
      throw new DomainError("validation_failed", "expiresAt must be in the future", { errors: [{ path: "body.expiresAt", message: "In the past" }] });
    }
  }
  const maxDays = policy.maxKeyLifetimeDays ?? null;
  if (maxDays === null) return asked;
  const cap = now + maxDays * DAY_MS;
  if (asked === null) return cap;
  if (asked > cap) {
    throw new DomainError("key_lifetime_exceeded", `The org's policy allows public keys of at most ${maxDays} days (until ${isoOf(cap)}); ask for that or less, or give no expiresAt to get the longest allowed`, {
      errors: [{ path: "body.expiresAt", message: `At most ${maxDays} days ahead` }],
    });
  }
  return asked;
}

/** Whether a key authenticates now: active and not past its expiry (the cron marks it expired later). */
export const isKeyLive = (key: Pick<PublicKey, "status" | "expiresAt">, now: number) => key.status === "active" && (key.expiresAt === null || key.expiresAt > now);

/** The status a reader sees: an active key past its expiry is expired even before the cron marks it. */
export const keyStatus = (key: Pick<PublicKey, "status" | "expiresAt">, now: number) => (key.status === "active" && !isKeyLive(key, now) ? "expired" : key.status);

export async function keyRow(ctx: Ctx, accountId: string, orgId: string | null, input: AddKeyInput, policy: OrgPolicy = DEFAULT_POLICY): Promise<PublicKey> {
  const now = ctx.now();
  const expiresAt = keyExpiry(input.expiresAt, policy, now);
  const parsed = await parsePublicKey(input.publicKey, input.alg);
  return {
    id: newId("key"),
    accountId,
    orgId,
    kid: input.kid ?? parsed.kid ?? parsed.thumbprint,
    alg: parsed.alg,
    jwk: parsed.jwk,
    fingerprint: parsed.thumbprint,
    name: input.name ?? null,
    expiresAt,
    status: "active",
    updatedAt: null,
    createdAt: now,
    createdBy: ctx.meta.actorId,
  };
}

/** Registers a key through the account's Durable Object (it publishes the key to the account's KV record). */
export async function addKeyTo(ctx: Ctx, accountId: string, orgId: string | null, input: AddKeyInput, policy: OrgPolicy = DEFAULT_POLICY): Promise<PublicKey> {
  const row = await keyRow(ctx, accountId, orgId, input, policy);
  const outcome = await accountObject(ctx, accountId).addKey(row, ctx.meta);
  if (!outcome.ok) throw new DomainError(outcome.code, outcome.detail);
  return row;
}

/** A key authenticates the account with everything it holds: adding one hands a credential out, fully guarded. */
export const addKey = withPermission(
  "service-accounts.access-tokens.edit",
  async (gate, orgRef: string, accountId: string, input: AddKeyInput) => {
    const { account, org } = await accountFor(gate, orgRef, accountId, "grants");
    return addKeyTo(gate.ctx, account.id, account.orgId, input, policyOf(org));
  },
  { guard: "covers" },
);

export const listKeys = withPermission("service-accounts.read", async (gate, orgRef: string, accountId: string) => {
  const { account } = await accountFor(gate, orgRef, accountId);
  return gate.ctx.db.select().from(publicKeys).where(eq(publicKeys.accountId, account.id)).orderBy(publicKeys.createdAt);
});

/** Removing a key takes access away: the guard lets the account itself, and incident response, do it. */
export const removeKey = withPermission(
  "service-accounts.access-tokens.edit",
  async (gate, orgRef: string, accountId: string, keyId: string) => {
    const { account } = await accountFor(gate, orgRef, accountId, "removes");
    const ctx = gate.ctx;
    const key = await ctx.db.select({ id: publicKeys.id }).from(publicKeys).where(and(eq(publicKeys.id, keyId), eq(publicKeys.accountId, account.id))).get();
    if (!key) throw new DomainError("not_found", "Public key not found");
    const outcome = await accountObject(ctx, account.id).removeKey(account.id, keyId, ctx.meta);
    if (!outcome.ok) throw new DomainError(outcome.code, outcome.detail);
  },
  { guard: "covers" },
);

export type KeyStatusChange = "disabled" | "active";

/**
 * Disables a key (reversible: it stops authenticating at once) or enables it again. Disabling
 * takes access away (the guard lets the account itself and incident response do it); enabling
 * hands the credential back, fully guarded. Enabling an expired key is refused (key_expired).
 */
export const setKeyStatus = withPermission(
  "service-accounts.access-tokens.edit",
  async (gate, orgRef: string, accountId: string, keyId: string, status: KeyStatusChange): Promise<PublicKey> => {
    const { account } = await accountFor(gate, orgRef, accountId, status === "disabled" ? "removes" : "grants");
    const ctx = gate.ctx;
    const key = await ctx.db.select({ id: publicKeys.id }).from(publicKeys).where(and(eq(publicKeys.id, keyId), eq(publicKeys.accountId, account.id))).get();
    if (!key) throw new DomainError("not_found", "Public key not found");
    return unwrap(await accountObject(ctx, account.id).setKeyStatus(account.id, keyId, status, ctx.meta)).key;
  },
  { guard: "covers" },
);

export interface KeyReview extends PageQuery {
  status?: "active" | "disabled" | "expired" | undefined;
  /** Active keys that expire within this many days. */
  expiringWithinDays?: number | undefined;
}

/** Filters for key review: expired (marked, or past expiresAt before the cron ran), disabled, about to expire. */
function keyReviewFilters(q: Omit<KeyReview, keyof PageQuery>, now: number): SQL | undefined {
  const k = publicKeys;
  const live = and(eq(k.status, "active"), or(isNull(k.expiresAt), gt(k.expiresAt, now)));
  return and(
    q.status === "active"
      ? live
      : q.status === "expired"
        ? or(eq(k.status, "expired"), and(eq(k.status, "active"), lte(k.expiresAt, now)))
        : q.status === "disabled"
          ? eq(k.status, "disabled")
          : undefined,
    q.expiringWithinDays !== undefined ? and(live, lte(k.expiresAt, now + q.expiringWithinDays * DAY_MS)) : undefined,
  );
}

/** Every public key of the org matching the review filters (e.g. expiring within 14 days, or expired). */
export const listOrgKeys = withPermission("service-accounts.read", async (gate, orgRef: string, q: KeyReview) => {
  const org = await orgFor(gate, orgRef);
  const page = keyset(publicKeys, q.cursor);
  const rows = await gate.ctx.db
    .select()
    .from(publicKeys)
    .where(and(eq(publicKeys.orgId, org.id), page.where, keyReviewFilters(q, gate.ctx.now())))
    .orderBy(...page.orderBy)
    .limit(q.limit + 1);
  return toPage(rows, q.limit, (r) => r);
});

/**
 * Sets (or, with null, clears) the account's jwksUri: the keys published there authenticate it by
 * private_key_jwt, like registered keys, so setting one hands a credential out (fully guarded) and
 * clearing it takes access away.
 */
export const setJwksUri = withPermission(
  "service-accounts.access-tokens.edit",
  async (gate, orgRef: string, accountId: string, jwksUri: string | null): Promise<ServiceAccount> => {
    const { account } = await accountFor(gate, orgRef, accountId, jwksUri === null ? "removes" : "grants");
    const ctx = gate.ctx;
    const next = jwksUri === null ? null : assertJwksUri(ctx, jwksUri);
    if (next === account.jwksUri) return account;
    return unwrap(await accountObject(ctx, account.id).updateAccount(account.id, { jwksUri: next }, ctx.meta)).account;
  },
  { guard: "covers" },
);
