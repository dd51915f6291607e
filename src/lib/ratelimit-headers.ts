/** A quota's state as the headers of draft-ietf-httpapi-ratelimit-headers carry it. */
export interface RateLimitState {
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
  /** The window's length in seconds. */
  windowSeconds: number;
}

/**
 * `RateLimit: limit=N, remaining=M, reset=S`, `RateLimit-Policy: N;w=W` and `Retry-After: S`
 * (RFC 9110 10.2.3) for a refused request.
 */
export function rateLimitHeaders(state: RateLimitState): Record<string, string> {
  return {
    "retry-after": String(state.resetSeconds),
    ratelimit: `limit=${state.limit}, remaining=${state.remaining}, reset=${state.resetSeconds}`,
    "ratelimit-policy": `${state.limit};w=${state.windowSeconds}`,
  };
}
