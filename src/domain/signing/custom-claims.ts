import type { ClaimMapping } from "../../db/schema.ts";
import { DomainError, type ErrorCode } from "../shared/errors.ts";
import { KEYWARD_JWT_CLAIM_NAMES } from "./jwt.ts";

/**
 * Custom claims (docs/claims.md): an account's metadata (a small string map) and the org policy's
 * `jwtClaims` mapping, which copies account attributes into the org's JWTs under names that can
 * never stand in for a registered claim or one of Keyward's own. Values are computed when the
 * account's KV records are written (access/claims.ts), so minting reads nothing.
 */

export const METADATA_KEY = /^[a-zA-Z][a-zA-Z0-9_.-]{0,62}$/;
export const MAX_METADATA_KEYS = 20;
export const MAX_METADATA_VALUE_CHARS = 256;
/** The bound on the metadata's JSON (UTF-8 bytes): it is copied into every KV record of the account. */
export const MAX_METADATA_BYTES = 2048;

export const CLAIM_NAME = /^[a-z][a-z0-9_]{0,31}$/;
export const MAX_CLAIM_MAPPINGS = 10;
/** Where a custom claim's value comes from, besides `metadata.<key>`. */
export const CLAIM_SOURCES = ["externalId", "projectId", "environmentId"] as const;
const METADATA_SOURCE = "metadata.";

/**
 * Claim names a custom claim may not take: the IANA JWT claims registry (RFC 7519, OpenID Connect,
 * RFC 8693, RFC 9068, RFC 7800, ...), names other access tokens give a meaning (`typ`,
 * `token_use`, `tid`, `ver`), the members of an RFC 7662 introspection answer (which carries the
 * custom claims beside them), and every claim Keyward writes itself.
 */
const REGISTERED_CLAIMS = [
  "iss", "sub", "aud", "exp", "nbf", "iat", "jti",
  "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "profile", "picture", "website",
  "email", "email_verified", "gender", "birthdate", "zoneinfo", "locale", "phone_number", "phone_number_verified", "address", "updated_at",
  "azp", "nonce", "auth_time", "at_hash", "c_hash", "acr", "amr", "sub_jwk", "sid", "cnf", "events", "toe", "txn",
  "act", "may_act", "scope", "client_id", "roles", "groups", "entitlements", "authorization_details", "status", "status_list",
  "vc", "vp", "jcard", "orig", "dest", "mky", "rph", "attest", "origid", "cnonce", "exi", "ace_profile",
  "typ", "token_use", "tid", "ver", "kid", "alg",
  "active", "token_type", "username",
] as const;

export const RESERVED_CLAIM_NAMES: ReadonlySet<string> = new Set<string>([...REGISTERED_CLAIMS, ...KEYWARD_JWT_CLAIM_NAMES]);

function refuse(code: ErrorCode, path: string, message: string): never {
  throw new DomainError(code, message, { errors: [{ path, message }] });
}

const CONTROL = /[\u0000-\u001f\u007f]/;
const encoder = new TextEncoder();

/**
 * The metadata as given, or a 422 `invalid_metadata` naming the first offending key: keys
 * `^[a-zA-Z][a-zA-Z0-9_.-]{0,62}$`, at most 20, values of at most 256 characters without control
 * characters, the JSON at most 2 KiB.
 */
export function checkMetadata(metadata: Record<string, string>, path = "body.metadata"): Record<string, string> {
  const keys = Object.keys(metadata);
  if (keys.length > MAX_METADATA_KEYS) refuse("invalid_metadata", path, `metadata holds at most ${MAX_METADATA_KEYS} keys, not ${keys.length}`);
  for (const key of keys) {
    const shown = key.length > 64 ? `${key.slice(0, 64)}...` : key;
    if (!METADATA_KEY.test(key)) refuse("invalid_metadata", `${path}.${shown}`, `metadata key ${JSON.stringify(shown)} must match ${METADATA_KEY.source}`);
    const value = metadata[key]!;
    if (value.length > MAX_METADATA_VALUE_CHARS) refuse("invalid_metadata", `${path}.${key}`, `metadata.${key} must be at most ${MAX_METADATA_VALUE_CHARS} characters long`);
    if (CONTROL.test(value)) refuse("invalid_metadata", `${path}.${key}`, `metadata.${key} must not contain control characters`);
  }
  const bytes = encoder.encode(JSON.stringify(metadata)).length;
  if (bytes > MAX_METADATA_BYTES) refuse("invalid_metadata", path, `metadata must be at most ${MAX_METADATA_BYTES} bytes as JSON, not ${bytes}`);
  return metadata;
}

const isSource = (from: string) =>
  (CLAIM_SOURCES as readonly string[]).includes(from) || (from.startsWith(METADATA_SOURCE) && METADATA_KEY.test(from.slice(METADATA_SOURCE.length)));

/**
 * The org policy's `jwtClaims`, or a 422: `claim_name_reserved` for a registered or Keyward name
 * (whatever its case), `invalid_claim_mapping` for a name outside `^[a-z][a-z0-9_]{0,31}$`, a name
 * given twice, an unknown source, or more than 10 entries.
 */
export function checkClaimMapping(mapping: ClaimMapping[], path = "body.policy.jwtClaims"): ClaimMapping[] {
  if (mapping.length > MAX_CLAIM_MAPPINGS) refuse("invalid_claim_mapping", path, `jwtClaims holds at most ${MAX_CLAIM_MAPPINGS} entries, not ${mapping.length}`);
  const seen = new Set<string>();
  mapping.forEach(({ claim, from }, i) => {
    const at = `${path}.${i}`;
    const shown = JSON.stringify(claim.length > 40 ? `${claim.slice(0, 40)}...` : claim);
    if (RESERVED_CLAIM_NAMES.has(claim.toLowerCase())) {
      refuse("claim_name_reserved", `${at}.claim`, `The claim name ${shown} is registered or written by Keyward itself; choose another (e.g. a prefixed name such as "x_${claim.toLowerCase().replace(/[^a-z0-9_]/g, "")}")`);
    }
    if (!CLAIM_NAME.test(claim)) refuse("invalid_claim_mapping", `${at}.claim`, `The claim name ${shown} must match ${CLAIM_NAME.source}`);
    if (seen.has(claim)) refuse("invalid_claim_mapping", `${at}.claim`, `The claim name ${shown} is mapped twice`);
    seen.add(claim);
    if (!isSource(from)) {
      refuse("invalid_claim_mapping", `${at}.from`, `from must be ${CLAIM_SOURCES.join(", ")} or metadata.<key> (the key matching ${METADATA_KEY.source})`);
    }
  });
  return mapping.map(({ claim, from }) => ({ claim, from }));
}

/** What a mapping may draw on for one account in one org (null or absent: the claim is left out). */
export interface ClaimSourceValues {
  externalId: string | null;
  metadata: Readonly<Record<string, string>>;
  projectId: string | null;
  environmentId: string | null;
}

/** The custom claims `mapping` gives an account, or undefined for none (a source without a value leaves its claim out). */
export function customClaimsOf(mapping: readonly ClaimMapping[] | undefined, values: ClaimSourceValues): Record<string, string> | undefined {
  if (!mapping || mapping.length === 0) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const { claim, from } of mapping) {
    // A stored mapping was checked when written; a name reserved since then is left out here.
    if (RESERVED_CLAIM_NAMES.has(claim) || !CLAIM_NAME.test(claim)) continue;
    const value = sourceValue(from, values);
    if (value === null) continue;
    out[claim] = value;
    any = true;
  }
  return any ? out : undefined;
}

function sourceValue(from: string, values: ClaimSourceValues): string | null {
  if (from === "externalId") return values.externalId;
  if (from === "projectId") return values.projectId;
  if (from === "environmentId") return values.environmentId;
  if (!from.startsWith(METADATA_SOURCE)) return null;
  const key = from.slice(METADATA_SOURCE.length);
  // Own keys only: "metadata.constructor" must not find Object.prototype's.
  return Object.hasOwn(values.metadata, key) ? values.metadata[key]! : null;
}

/** The custom claims a verified JWT of ours carries (for introspection): string claims that are not reserved. */
export function customClaimsOfJwt(payload: Readonly<Record<string, unknown>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(payload)) {
    if (typeof value === "string" && CLAIM_NAME.test(name) && !RESERVED_CLAIM_NAMES.has(name)) out[name] = value;
  }
  return out;
}
