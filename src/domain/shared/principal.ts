import type { ActClaim, JwtSource } from "../signing/jwt.ts";

/** An authenticated caller: always a service account, reached through one of its credentials. */
export interface Principal {
  accountId: string;
  /** The account's home org; null for platform-level accounts. */
  orgId: string | null;
  platformPermissions: string[];
  credential: { type: "access_token"; tokenId: string } | { type: "jwt"; jti: string };
  /** A JWT's scope: its operations are the most the principal can do, whatever its roles. */
  scopeLimit?: string[] | undefined;
  /** When the credential stops being valid (epoch ms), null for never. */
  expiresAt?: number | null | undefined;
  /** A JWT's `org_id`: the only org the principal may act in with it. */
  orgLimit?: string | undefined;
  /** What a JWT minted from this credential carries as its source (null: its exchange chain is at its bound). */
  source?: JwtSource | null | undefined;
  /** The key a DPoP-bound JWT is bound to (its possession proven for this request): what it derives is bound to it too. */
  jkt?: string | undefined;
  /** A delegated JWT's actors (RFC 8693 `act`), kept by what it derives. */
  act?: ActClaim | undefined;
}
