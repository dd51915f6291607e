import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/env.ts";
import { authorizeLimits, exchangeLimits, jwtLifetime, longestJwtLifetimeSeconds, type LifetimeRequest } from "../../src/domain/signing/lifetime.ts";
import { DomainError } from "../../src/domain/shared/errors.ts";

/** The one JWT-lifetime policy: the same bounds, clipped or rejected as the endpoint says. */

const config = getConfig(env);
const now = 1_700_000_000_000;
const source = (secondsLeft: number | null) => ({ name: "the access token", expiresAt: secondsLeft === null ? null : now + secondsLeft * 1000 });
const run = (r: Omit<LifetimeRequest, "now">) => {
  try {
    return jwtLifetime({ ...r, now });
  } catch (err) {
    return err as DomainError;
  }
};

describe("jwtLifetime", () => {
  it("clip: the default, never over the maximum or what the source has left", () => {
    expect(run({ mode: "clip", limits: exchangeLimits(config), source: source(null) })).toBe(300);
    expect(run({ mode: "clip", limits: exchangeLimits(config), source: source(41) })).toBe(41);
    expect(run({ mode: "clip", limits: exchangeLimits(config), requested: 7200, source: source(null) })).toBe(3600);
    expect(run({ mode: "clip", limits: authorizeLimits(config), source: source(90_000) })).toBe(86_400);
  });

  it("reject: the asked (or default) lifetime, or an invalid_duration that names the limit and how to stay in it", () => {
    expect(run({ mode: "reject", limits: exchangeLimits(config), requested: 3600, source: source(null) })).toBe(3600);
    const overMax = run({ mode: "reject", limits: exchangeLimits(config), requested: 7200, source: source(null) }) as DomainError;
    expect(overMax.code).toBe("invalid_duration");
    expect(overMax.detail).toBe("duration_seconds 7200 is over MAX_JWT_TTL_SECONDS (3600): ask for 3600 or less");
    const overSource = run({ mode: "reject", limits: exchangeLimits(config), requested: 60, source: source(41) }) as DomainError;
    expect(overSource.detail).toBe("duration_seconds 60 is more than the access token has left (41 s): ask for at most 41 with duration_seconds");
    const byDefault = run({ mode: "reject", limits: exchangeLimits(config), source: source(41) }) as DomainError;
    expect(byDefault.detail).toBe("The default lifetime DEFAULT_JWT_TTL_SECONDS (300 s) is more than the access token has left (41 s): ask for at most 41 with duration_seconds");
  });

  it("both modes refuse a source with less than a second left", () => {
    for (const mode of ["clip", "reject"] as const) {
      const err = run({ mode, limits: exchangeLimits(config), requested: 1, source: { name: "the subject token", expiresAt: now + 999 } }) as DomainError;
      expect(err, mode).toBeInstanceOf(DomainError);
      expect(err.detail).toBe("The subject token has expired");
    }
  });

  it("the longest lifetime bounds how long revocations are remembered", () => {
    expect(longestJwtLifetimeSeconds(config)).toBe(Math.max(config.MAX_JWT_TTL_SECONDS, config.AUTHORIZE_JWT_TTL_SECONDS, config.DEFAULT_JWT_TTL_SECONDS));
  });
});
