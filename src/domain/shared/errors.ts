/**
 * The domain's one error type: a stable code, a detail for the caller, and data (field errors,
 * missing permissions, a retry delay). No status, no header: the management API
 * (src/http/problem.ts) and the OAuth surface (src/oauth/errors.ts) each map codes to what their
 * protocol says, in one table each.
 */

/** Every stable error code, with its one-line meaning (the problem+json `title`). */
export const ERROR_TITLES = {
  validation_failed: "The request did not validate",
  malformed_json: "The request body is not valid JSON",
  bad_request: "Bad request",
  token_lifetime_exceeded: "The requested lifetime exceeds what is allowed",
  invalid_key: "The public key is not usable",
  invalid_scope: "The requested scope is not allowed",
  invalid_duration: "The requested duration is not allowed",
  invalid_target: "The requested audience is not allowed",
  issuer_unavailable: "The external issuer's keys are not available",
  unauthenticated: "Authentication required",
  invalid_signature: "The request's signature does not verify",
  permission_denied: "Permission denied",
  not_found: "Not found",
  route_not_found: "No such route",
  status_list_not_found: "No such status list",
  method_not_allowed: "Method not allowed",
  name_taken: "The name is already taken",
  email_taken: "The email is already taken",
  slug_taken: "The slug is already taken",
  already_assigned: "The account already holds this role at this scope",
  token_limit_reached: "The account already holds its maximum of active tokens",
  token_not_active: "The token is not active",
  token_scope_not_allowed: "The token's scopes are not within its account's",
  token_cidr_not_allowed: "The token's networks are not within its account's",
  jwt_quota_exceeded: "The account's JWT issuance quota is used up for now",
  key_exists: "A key with this kid is already registered",
  key_limit_reached: "The account holds its maximum of public keys",
  key_lifetime_exceeded: "The key's expiry is beyond the org policy's maximum",
  key_expired: "The public key has expired",
  jwks_uri_not_allowed: "The JWKS URL is not a public https URL",
  federated_credential_limit_reached: "The account holds its maximum of federated credentials",
  issuer_not_allowed: "The issuer is not one federation may trust",
  policy_too_broad: "The trust policy would match every token of its issuer",
  webhook_url_not_allowed: "The webhook URL is not a public https URL",
  webhook_limit_reached: "The org holds its maximum of webhook endpoints",
  conflict: "Conflict with the current state",
  account_not_active: "The service account is not active",
  already_bootstrapped: "The platform is already bootstrapped",
  role_not_assignable: "The role cannot be assigned to a service account",
  invalid_metadata: "The account metadata is not allowed",
  invalid_claim_mapping: "The custom claim mapping is not valid",
  claim_name_reserved: "The custom claim name is reserved",
  payload_too_large: "The request body is too large",
  rate_limited: "Too many requests",
  unsupported_media_type: "Unsupported media type",
  internal_error: "Internal error",
  bootstrap_not_configured: "Bootstrap is not configured",
  signing_not_configured: "JWT signing is not configured",
  secret_scanning_not_configured: "Secret scanning reports are not configured",
  invalid_dpop_proof: "The DPoP proof is not valid",
  use_dpop_nonce: "The DPoP proof must carry the server's nonce",
  dpop_required: "The token is bound to a key: present it with a DPoP proof",
} as const;

export type ErrorCode = keyof typeof ERROR_TITLES;

export interface FieldError {
  path: string;
  message: string;
}

export interface ErrorData {
  /** Which fields failed, for validation errors. */
  errors?: FieldError[];
  /** The permissions the caller lacks. */
  missing?: string[];
  /** How long to wait before trying again. */
  retryAfterSeconds?: number;
  /** A quota's state, for the RateLimit and RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-headers). */
  rateLimit?: { limit: number; remaining: number; resetSeconds: number; windowSeconds: number } | undefined;
  /** The methods a path takes (method_not_allowed). */
  allow?: string[];
  /** The nonce a DPoP proof must carry (use_dpop_nonce: the `DPoP-Nonce` header). */
  dpopNonce?: string;
}

/** What services throw; each surface renders it in its own protocol. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly data: ErrorData = {},
  ) {
    super(detail);
  }
}

export const notFound = (what: string) => new DomainError("not_found", `${what} not found`);
