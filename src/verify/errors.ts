/**
 * Why a Keyward JWT was refused: a stable `code` for the service's logic and a message for its
 * logs. Neither ever contains the token or the DPoP proof.
 */
export type KeywardJwtErrorCode =
  | "missing_token"
  | "malformed"
  | "alg_not_allowed"
  | "bad_signature"
  | "wrong_type"
  | "wrong_issuer"
  | "wrong_audience"
  | "expired"
  | "not_yet_valid"
  | "missing_claim"
  | "insufficient_scope"
  | "revoked"
  | "jwks_unavailable"
  | "status_unavailable"
  | "dpop_required"
  | "dpop_invalid"
  | "dpop_mismatch"
  | "dpop_replayed";

export class KeywardJwtError extends Error {
  override readonly name = "KeywardJwtError";
  constructor(
    readonly code: KeywardJwtErrorCode,
    message: string,
  ) {
    super(message);
  }

  /** The HTTP status a resource server answers with (RFC 6750 section 3.1; 503 when Keyward could not be reached). */
  get status(): 401 | 403 | 503 {
    if (this.code === "insufficient_scope") return 403;
    if (this.code === "jwks_unavailable" || this.code === "status_unavailable") return 503;
    return 401;
  }
}
