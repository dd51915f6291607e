import type { Config } from "../../env.ts";
import { DomainError } from "../shared/errors.ts";

/**
 * The one lifetime policy of every JWT Keyward mints. A JWT lives the requested time (or the
 * endpoint's default), never more than the configured maximum and never past the credential it is
 * minted from. What an endpoint does with a lifetime over a bound is its named `mode`:
 *
 *   reject  the request fails and says which limit and how to stay in it (the exchange endpoint,
 *           POST /api/auth/access-tokens/jwt: its client asked for a number and must get it);
 *   clip    the JWT gets the most it may (the /oauth/token grants and POST /api/v1/auth/authorize,
 *           whose clients ask for no lifetime and read `expires_in` / `expiresAt`).
 *
 * Both modes fail once the source credential has less than a second left.
 */
export type LifetimeMode = "clip" | "reject";

/** A lifetime in seconds and the configuration variable that sets it (for messages). */
export interface NamedSeconds {
  seconds: number;
  name: string;
}

export interface JwtLimits {
  /** The lifetime when none is asked for. */
  default: NamedSeconds;
  /** The most any JWT of the endpoint may live. */
  max: NamedSeconds;
}

/** The limits of JWTs from the exchange endpoint and /oauth/token. */
export const exchangeLimits = (config: Config): JwtLimits => ({
  default: { seconds: config.DEFAULT_JWT_TTL_SECONDS, name: "DEFAULT_JWT_TTL_SECONDS" },
  max: { seconds: config.MAX_JWT_TTL_SECONDS, name: "MAX_JWT_TTL_SECONDS" },
});

/** The limits of the cross-org JWTs of POST /api/v1/auth/authorize (valid a day by default). */
export const authorizeLimits = (config: Config): JwtLimits => ({
  default: { seconds: config.AUTHORIZE_JWT_TTL_SECONDS, name: "AUTHORIZE_JWT_TTL_SECONDS" },
  max: { seconds: config.AUTHORIZE_JWT_TTL_SECONDS, name: "AUTHORIZE_JWT_TTL_SECONDS" },
});

/** The longest a console session lives (an hour), never past the credential it was opened with. */
export const CONSOLE_SESSION_SECONDS = 3600;

/** The limits of console sessions (JWTs for the audience `<ISSUER>/console`), clipped to the credential signed in with. */
export const consoleSessionLimits = (): JwtLimits => ({
  default: { seconds: CONSOLE_SESSION_SECONDS, name: "the console session lifetime" },
  max: { seconds: CONSOLE_SESSION_SECONDS, name: "the console session lifetime" },
});

/** The longest any JWT may live: how long a revocation that kills JWTs must be remembered. */
export function longestJwtLifetimeSeconds(config: Config): number {
  return Math.max(config.DEFAULT_JWT_TTL_SECONDS, config.MAX_JWT_TTL_SECONDS, config.AUTHORIZE_JWT_TTL_SECONDS, CONSOLE_SESSION_SECONDS);
}

/** Seconds a credential has left (whole seconds, rounded down), or Infinity when it does not expire. */
export function remainingSeconds(expiresAt: number | null, now: number): number {
  return expiresAt === null ? Infinity : Math.floor((expiresAt - now) / 1000);
}

export interface LifetimeRequest {
  mode: LifetimeMode;
  limits: JwtLimits;
  /** Seconds the client asked for; the default applies when undefined. */
  requested?: number | undefined;
  /** The credential the JWT is minted from: what it is called in messages, and when it stops being valid. */
  source: { name: string; expiresAt: number | null };
  now: number;
}

/** The lifetime (seconds) of a JWT to mint, or an error that names the limit and how to stay within it. */
export function jwtLifetime(r: LifetimeRequest): number {
  const left = remainingSeconds(r.source.expiresAt, r.now);
  if (left < 1) throw new DomainError("unauthenticated", `${capitalized(r.source.name)} has expired`);
  const asked = r.requested ?? r.limits.default.seconds;
  if (r.mode === "clip") return Math.min(asked, r.limits.max.seconds, left);
  const what = r.requested === undefined ? `The default lifetime ${r.limits.default.name} (${asked} s)` : `duration_seconds ${asked}`;
  if (asked > r.limits.max.seconds) {
    throw new DomainError("invalid_duration", `${what} is over ${r.limits.max.name} (${r.limits.max.seconds}): ask for ${r.limits.max.seconds} or less`);
  }
  if (asked > left) {
    throw new DomainError("invalid_duration", `${what} is more than ${r.source.name} has left (${left} s): ask for at most ${left} with duration_seconds`);
  }
  return asked;
}

const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
