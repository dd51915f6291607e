import { fetchJson, OutboundError } from "../../lib/outbound.ts";
import type { Ctx } from "../shared/context.ts";
import { DomainError } from "../shared/errors.ts";
import { KeysUnavailable, remoteKeys, type RemoteKeys } from "./remote-keys.ts";

export { MAX_FRESH_S, MIN_FRESH_S, REFRESH_EVERY_MS, STALE_LIMIT_MS } from "./remote-keys.ts";

/**
 * The signing keys of the external OIDC issuers that trust policies name, found by OpenID Connect
 * Discovery 1.0 (`{issuer}/.well-known/openid-configuration` -> `jwks_uri`), fetched and cached by
 * remote-keys.ts (cache, refresh on an unknown kid at most once a minute, stale limit). Here:
 *
 *  - The discovery document's `issuer` must be the issuer exactly (Discovery 4.3), and its
 *    `jwks_uri` on the issuer's own scheme and host: a document that sends us elsewhere is refused.
 *  - Keys are cached in KV under `fed-jwks:<issuer>`.
 */

const KV_PREFIX = "fed-jwks:";
export const issuerKeysKvKey = (issuer: string) => `${KV_PREFIX}${issuer}`;

export type IssuerKeys = RemoteKeys;

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

/**
 * The issuer's keys for verifying a token whose header names `kid` (or none), by remote-keys.ts's
 * rules. Throws `issuer_unavailable` when there are no keys to use.
 */
export async function issuerKeys(ctx: Ctx, issuer: string, kid: string | undefined): Promise<IssuerKeys> {
  try {
    return await remoteKeys(ctx, { kvKey: issuerKeysKvKey(issuer), jwksUrl: () => discoverJwksUri(issuer) }, kid);
  } catch (err) {
    if (!(err instanceof KeysUnavailable)) throw err;
    throw new DomainError("issuer_unavailable", `The issuer's keys are not available: ${err.message}`);
  }
}
