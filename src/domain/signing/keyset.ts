import { base64url } from "jose";
import { isolateState } from "../shared/isolate-state.ts";

/**
 * Signing keys of the JWTs Keyward issues. A key is published (in the JWKS) from its creation,
 * signs from `activatesAt`, stops signing when a newer key activates (`retiredAt`), and leaves the
 * JWKS once every JWT it signed has expired. The private half only ever leaves the SigningKeys
 * Durable Object wrapped with AES-256-GCM under SIGNING_KEY_ENCRYPTION_KEY.
 */
export type SigningAlg = "ES256" | "RS256" | "EdDSA";
export const SIGNING_ALGS: SigningAlg[] = ["ES256", "RS256", "EdDSA"];

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  publicJwk: JsonWebKey;
  /** AES-GCM(pkcs8), base64url, with its IV; the kid is the additional data. */
  wrapped: { iv: string; data: string };
  createdAt: number;
  activatesAt: number;
  retiredAt: number | null;
}

export interface KeyPolicy {
  alg: SigningAlg;
  retentionMs: number;
}

/** What the domain asks of the SigningKeys Durable Object (src/durable-objects/signing-keys.ts implements it). */
export interface SigningKeysRpc {
  /** The current keyset, creating the first key if there is none. */
  keyset(policy: KeyPolicy): Promise<Keyset>;
  /** Adds a key that signs from `activateInSeconds` on; the older keys retire then. */
  rotate(policy: KeyPolicy, activateInSeconds: number, now?: number): Promise<{ keyset: Keyset; kid: string }>;
}

export interface Keyset {
  keys: SigningKey[];
  /** How long a retired key stays published: the longest lifetime of any JWT it may have signed. */
  retentionMs: number;
}

const GEN_PARAMS: Record<SigningAlg, SubtleCryptoGenerateKeyAlgorithm> = {
  ES256: { name: "ECDSA", namedCurve: "P-256" },
  RS256: { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
  EdDSA: { name: "Ed25519" },
};
const IMPORT_PARAMS: Record<SigningAlg, SubtleCryptoImportKeyAlgorithm> = {
  ES256: { name: "ECDSA", namedCurve: "P-256" },
  RS256: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  EdDSA: { name: "Ed25519" },
};

const encoder = new TextEncoder();
const keks = isolateState("key-encryption-keys", () => ({ bySecret: new Map<string, Promise<CryptoKey>>() }));

/** The key-encryption key: SHA-256 of the secret, as an AES-256-GCM key. */
function kek(secret: string): Promise<CryptoKey> {
  let key = keks.bySecret.get(secret);
  if (!key) {
    key = crypto.subtle
      .digest("SHA-256", encoder.encode(secret))
      .then((raw) => crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]));
    keks.bySecret.set(secret, key);
  }
  return key;
}

/** The active key at `now`: the newest one whose activation has come and that is not retired. */
export function activeKey(keyset: Keyset, now: number): SigningKey | undefined {
  let active: SigningKey | undefined;
  for (const k of keyset.keys) {
    if (k.activatesAt <= now && (k.retiredAt === null || k.retiredAt > now) && (!active || k.activatesAt > active.activatesAt)) active = k;
  }
  return active;
}

/** Keys still able to verify a live JWT, plus the ones published ahead of use. */
export function publishedKeys(keyset: Keyset, now: number): SigningKey[] {
  return keyset.keys.filter((k) => k.retiredAt === null || k.retiredAt + keyset.retentionMs > now);
}

export async function generateSigningKey(alg: SigningAlg, secret: string, now: number, activatesAt: number): Promise<SigningKey> {
  const pair = (await crypto.subtle.generateKey(GEN_PARAMS[alg], true, ["sign", "verify"])) as CryptoKeyPair;
  const publicJwk = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
  const pkcs8 = (await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer;
  const kid = `${now.toString(36)}-${base64url.encode(crypto.getRandomValues(new Uint8Array(6)))}`;
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(kid) }, await kek(secret), pkcs8);
  const { kty, crv, x, y, n, e } = publicJwk;
  return {
    kid,
    alg,
    publicJwk: Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined)) as unknown as JsonWebKey,
    wrapped: { iv: base64url.encode(iv), data: base64url.encode(new Uint8Array(data)) },
    createdAt: now,
    activatesAt,
    retiredAt: null,
  };
}

/** Unwraps a private key into a non-extractable signing key. */
export async function unwrapSigningKey(key: SigningKey, secret: string): Promise<CryptoKey> {
  const pkcs8 = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: base64url.decode(key.wrapped.iv), additionalData: encoder.encode(key.kid) },
    await kek(secret),
    base64url.decode(key.wrapped.data),
  );
  return crypto.subtle.importKey("pkcs8", pkcs8, IMPORT_PARAMS[key.alg], false, ["sign"]);
}

export function importVerifyKey(key: SigningKey): Promise<CryptoKey> {
  return crypto.subtle.importKey("jwk", key.publicJwk, IMPORT_PARAMS[key.alg], false, ["verify"]);
}

/** The public JWK as published in the JWKS. */
export function toJwk(key: SigningKey) {
  return { ...key.publicJwk, kid: key.kid, alg: key.alg, use: "sig" };
}
