/**
 * `keyward/verify`: verifying Keyward JWTs in a service (docs/sdk.md). Imports nothing from the
 * Worker: it runs in any runtime with fetch, WebCrypto and DecompressionStream (Workers, Node 18+, Deno, Bun).
 */
export { KeywardJwtError, type KeywardJwtErrorCode } from "./errors.ts";
export { createKeywardVerifier, verifyKeywardJwt, KEYWARD_ALGORITHMS, type KeywardClaims, type KeywardVerifier, type KeywardVerifierOptions, type VerifyRequestOptions } from "./verifier.ts";
export { memoryReplayCache, type DpopReplayCache, type DpopRequest } from "./dpop.ts";
export { withKeywardAuth, verifyRequest, refusal, type KeywardAuthOptions, type KeywardFetchHandler } from "./http.ts";
export { keywardAuth, type KeywardAuthEnv } from "./hono.ts";
