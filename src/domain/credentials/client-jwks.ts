import { OutboundError } from "../../lib/outbound.ts";
import { publicUrlProblem } from "../../lib/public-url.ts";
import type { Ctx } from "../shared/context.ts";
import { DomainError } from "../shared/errors.ts";
import { remoteKeys, type RemoteKeys } from "./remote-keys.ts";

/**
 * An account's own JWKS URL (`jwksUri`): its private_key_jwt keys are fetched from there (after its
 * registered keys), by remote-keys.ts's rules (timeout, size limit, cache, refresh on an unknown
 * kid at most once a minute), so a workload rotates its keys without an admin call. The URL must
 * be public https (lib/public-url.ts, the webhooks' rule); loopback only with JWKS_URI_ALLOW_LOOPBACK.
 */

export const MAX_JWKS_URI_LENGTH = 2048;
const KV_PREFIX = "client-jwks:";
export const clientJwksKvKey = (uri: string) => `${KV_PREFIX}${uri}`;

/** Why `uri` may not be an account's jwksUri, or null when it may. */
export function jwksUriProblem(ctx: Pick<Ctx, "config">, uri: string): string | null {
  if (uri.length > MAX_JWKS_URI_LENGTH) return `at most ${MAX_JWKS_URI_LENGTH} characters`;
  const problem = publicUrlProblem(uri, { allowLoopback: ctx.config.JWKS_URI_ALLOW_LOOPBACK });
  if (problem) return problem;
  // Keyward's own signing keys never authenticate a client (and Keyward never fetches itself).
  if (new URL(uri).host === new URL(ctx.config.ISSUER).host) return "the URL is on Keyward's own host";
  return null;
}

/** Refuses a jwksUri that is not a public https URL (422 jwks_uri_not_allowed). */
export function assertJwksUri(ctx: Pick<Ctx, "config">, uri: string): string {
  const problem = jwksUriProblem(ctx, uri);
  if (problem) throw new DomainError("jwks_uri_not_allowed", `jwksUri: ${problem}`, { errors: [{ path: "body.jwksUri", message: problem }] });
  return new URL(uri).href;
}

/**
 * The keys at an account's jwksUri for an assertion naming `kid` (or none). The URL is checked
 * again before each fetch (the configuration may have changed since it was stored). Throws
 * KeysUnavailable when there are none to use.
 */
export function clientJwks(ctx: Ctx, uri: string, kid: string | undefined): Promise<RemoteKeys> {
  return remoteKeys(
    ctx,
    {
      kvKey: clientJwksKvKey(uri),
      jwksUrl: async () => {
        const problem = jwksUriProblem(ctx, uri);
        if (problem) throw new OutboundError(`jwksUri refused: ${problem}`);
        return uri;
      },
    },
    kid,
  );
}
