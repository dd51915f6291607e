import { describe, expect, it } from "vitest";
import { refCrc32 } from "./reference.ts";
import { checksum, generateAccessToken, hashToken, isWellFormedAccessToken, TOKEN_PREFIX, tokenHint } from "../../src/domain/credentials/access-token.ts";
import { deadReason, kvExpiration, KV_MIN_TTL_SECONDS, type AccountClaims, type TokenRecord } from "../../src/domain/credentials/kv-records.ts";

/**
 * The access token format of the contract ("Credentials"), checked against reference
 * implementations written here (a bitwise CRC-32 and a base62 encoder), not against the code's own.
 */

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TOKEN_RE = /^sat_[0-9A-Za-z]{32}[0-9A-Za-z]{6}$/;


/** Big-endian, zero-padded base62 of `n` in `width` characters. */
function refBase62(n: number, width: number): string {
  let out = "";
  for (let i = 0; i < width; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

const refChecksum = (body: string) => refBase62(refCrc32(body), 6);
const withChecksum = (body: string) => body + refChecksum(body);
const randomBody = (n: number) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => BASE62[b % 62]).join("");

/** A different base62 character at position i. */
function flip(token: string, i: number): string {
  const c = token[i]!;
  const next = BASE62[(BASE62.indexOf(c) + 1) % 62]!;
  return token.slice(0, i) + next + token.slice(i + 1);
}

describe("access token format", () => {
  it("is sat_ + 32 base62 + 6 base62 of the CRC-32 of what precedes", () => {
    for (let i = 0; i < 50; i++) {
      const token = generateAccessToken();
      expect(token, token).toMatch(TOKEN_RE);
      expect(token.length, token).toBe(4 + 32 + 6);
      expect(token.startsWith(TOKEN_PREFIX), token).toBe(true);
      const body = token.slice(0, -6);
      expect(token.slice(-6), token).toBe(refChecksum(body));
      expect(isWellFormedAccessToken(token), token).toBe(true);
    }
  });

  it("uses standard CRC-32 (IEEE): the check value of '123456789' is 0xCBF43926", () => {
    expect(refCrc32("123456789")).toBe(0xcbf43926);
    expect(checksum("123456789")).toBe(refBase62(0xcbf43926, 6));
    expect(checksum("sat_")).toBe(refChecksum("sat_"));
    // 62^6 > 2^32, so the full CRC fits: the largest CRC does not wrap around.
    expect(checksum("")).toBe(refBase62(0, 6));
    expect(refBase62(0xffffffff, 6)).not.toBe(refBase62(0, 6));
  });
});

describe("checksum validation (no I/O)", () => {
  it("rejects a token with any single character changed", () => {
    const token = generateAccessToken();
    for (let i = TOKEN_PREFIX.length; i < token.length; i++) {
      const bad = flip(token, i);
      expect(isWellFormedAccessToken(bad), `position ${i}: ${bad} (from ${token})`).toBe(false);
    }
  });

  it("rejects a changed character in the prefix", () => {
    const token = generateAccessToken();
    expect(isWellFormedAccessToken("sak_" + token.slice(4))).toBe(false);
    expect(isWellFormedAccessToken("SAT_" + token.slice(4))).toBe(false);
  });

  it("rejects a wrong prefix even with a checksum that matches it", () => {
    const random = randomBody(32);
    for (const prefix of ["sak_", "SAT_", "sat-", "sat", "tok_", ""]) {
      const forged = withChecksum(prefix + random);
      expect(isWellFormedAccessToken(forged), forged).toBe(false);
    }
  });

  it("rejects a wrong length: truncated, extended, or too short a random part", () => {
    const token = generateAccessToken();
    expect(isWellFormedAccessToken(token.slice(0, -1))).toBe(false);
    expect(isWellFormedAccessToken(token + "A")).toBe(false);
    expect(isWellFormedAccessToken("A" + token)).toBe(false);
    expect(isWellFormedAccessToken(token.slice(0, 10))).toBe(false);
    expect(isWellFormedAccessToken("")).toBe(false);
    expect(isWellFormedAccessToken("sat_")).toBe(false);
    // The contract requires at least 30 random characters: 29 with a valid checksum is not a token.
    const short = withChecksum("sat_" + randomBody(29));
    expect(isWellFormedAccessToken(short), short).toBe(false);
    // Only the checksum, no random part.
    expect(isWellFormedAccessToken(withChecksum("sat_"))).toBe(false);
    // An absurdly long one is refused before any hashing.
    const huge = withChecksum("sat_" + randomBody(200));
    expect(isWellFormedAccessToken(huge)).toBe(false);
  });

  it("rejects non-base62 characters even with a matching checksum", () => {
    const random = randomBody(32);
    for (const c of ["-", "_", "+", "/", "=", " ", ".", "é", "\u0000", "\n"]) {
      const forged = withChecksum("sat_" + random.slice(0, 16) + c + random.slice(17));
      expect(isWellFormedAccessToken(forged), JSON.stringify(forged)).toBe(false);
    }
    // Non-base62 in the checksum position.
    const token = generateAccessToken();
    expect(isWellFormedAccessToken(token.slice(0, -1) + "-")).toBe(false);
  });

  it("rejects a token followed or preceded by whitespace", () => {
    const token = generateAccessToken();
    expect(isWellFormedAccessToken(` ${token}`)).toBe(false);
    expect(isWellFormedAccessToken(`${token}\n`)).toBe(false);
  });
});

describe("hint", () => {
  it("is sat_ + the first 4 random characters + … + the last 4 characters", () => {
    for (let i = 0; i < 20; i++) {
      const token = generateAccessToken();
      const hint = tokenHint(token);
      expect(hint, hint).toMatch(/^sat_[0-9A-Za-z]{4}\u2026[0-9A-Za-z]{4}$/);
      expect(hint).toBe(`${token.slice(0, 8)}\u2026${token.slice(-4)}`);
      // The hint reveals at most 8 of the 38 characters after the prefix.
      expect(token.includes(hint)).toBe(false);
    }
  });
});

describe("randomness", () => {
  const tokens = Array.from({ length: 1000 }, () => generateAccessToken());

  it("1,000 tokens are all distinct (and so are their random parts)", () => {
    expect(new Set(tokens).size).toBe(1000);
    expect(new Set(tokens.map((t) => t.slice(4, 36))).size).toBe(1000);
    expect(new Set(tokens.map((t) => t.slice(4, 12))).size).toBe(1000);
  });

  it("uses all 62 characters without modulo bias", () => {
    const counts = new Map<string, number>();
    for (const t of tokens) for (const c of t.slice(4, 36)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size, JSON.stringify([...counts])).toBe(62);
    // 32,000 draws: about 516 per character, standard deviation about 22.
    for (const [c, n] of counts) expect(n, `${c}: ${n}`).toBeGreaterThan(350);
    for (const [c, n] of counts) expect(n, `${c}: ${n}`).toBeLessThan(700);
    // `byte % 62` without rejection would favour 0-7 (5/256 against 4/256): about 625 against 500.
    const low = [..."01234567"].map((c) => counts.get(c) ?? 0);
    const rest = [...BASE62.slice(8)].map((c) => counts.get(c) ?? 0);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(low) - mean(rest), JSON.stringify({ low: mean(low), rest: mean(rest) })).toBeLessThan(50);
  });
});

describe("hashing", () => {
  it("is lowercase hex SHA-256 (FIPS 180-2 test vector)", async () => {
    expect(await hashToken("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("hashes a token to 64 hex characters equal to WebCrypto's digest", async () => {
    const token = generateAccessToken();
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    const hash = await hashToken(token);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).toBe(hex);
    expect(await hashToken(flip(token, 10))).not.toBe(hash);
  });
});

describe("kvExpiration", () => {
  const now = Date.UTC(2030, 0, 1, 12, 0, 0, 250);
  const nowS = Math.ceil(now / 1000);

  it("is undefined for a secret that never expires", () => {
    expect(kvExpiration(null, now)).toBeUndefined();
  });

  it("is the expiry in epoch seconds (rounded up) when further than 60 s", () => {
    expect(kvExpiration(now + 3_600_000, now)).toBe(Math.ceil((now + 3_600_000) / 1000));
    expect(kvExpiration(now + 86_400_123, now)).toBe(Math.ceil((now + 86_400_123) / 1000));
    expect(KV_MIN_TTL_SECONDS).toBe(60);
  });

  it("clamps to now + 60 s (KV's minimum) for a closer, current or past expiry", () => {
    for (const at of [now + 59_000, now + 10_000, now + 1, now, now - 1, now - 86_400_000, 0]) {
      const exp = kvExpiration(at, now)!;
      expect(exp, `expiresAt ${at}`).toBe(nowS + 60);
      expect(exp - now / 1000, `expiresAt ${at}`).toBeGreaterThanOrEqual(60);
    }
  });

  it("never returns an expiration closer than 60 s from now", () => {
    for (let delta = -120_000; delta <= 120_000; delta += 7_777) {
      const exp = kvExpiration(now + delta, now)!;
      expect(exp * 1000 - now, `delta ${delta}`).toBeGreaterThanOrEqual(60_000);
      expect(exp * 1000, `delta ${delta}`).toBeGreaterThanOrEqual(now + delta);
    }
  });
});

describe("deadReason", () => {
  const now = Date.UTC(2030, 0, 1);
  const claims = (over: Partial<AccountClaims> = {}): AccountClaims => ({
    accountId: "sa_test",
    orgId: "org_test",
    status: "active",
    tokenEndpointAuthMethod: null,
    allowedCidrs: [],
    expiresAt: null,
    platformPermissions: [],
    groups: [],
    roles: [],
    scopes: [],
    ...over,
  });
  const record = (expiresAt: number | null, account = claims()): TokenRecord => ({ tokenId: "tok_test", expiresAt, tokenExpiresAt: expiresAt, account });

  it("is null for a live token of a live account", () => {
    expect(deadReason(record(null), now)).toBeNull();
    expect(deadReason(record(now + 1), now)).toBeNull();
    expect(deadReason(record(now + 1000, claims({ expiresAt: now + 1 })), now)).toBeNull();
  });

  it("names an expired token (expiry reached or passed; KV expiry is lazy)", () => {
    expect(deadReason(record(now - 1), now)).toBe("token expired");
    expect(deadReason(record(now), now)).toBe("token expired");
    expect(deadReason(record(now - 86_400_000), now)).toBe("token expired");
  });

  it("names a disabled account", () => {
    expect(deadReason(record(null, claims({ status: "disabled" })), now)).toBe("account disabled");
    expect(deadReason(record(now + 1000, claims({ status: "disabled" })), now)).toBe("account disabled");
  });

  it("names an expired account", () => {
    expect(deadReason(record(null, claims({ expiresAt: now - 1 })), now)).toBe("account expired");
    expect(deadReason(record(null, claims({ expiresAt: now })), now)).toBe("account expired");
  });

  it("is never null when anything is dead", () => {
    const dead = [
      record(now - 1, claims({ status: "disabled" })),
      record(now - 1, claims({ expiresAt: now - 1 })),
      record(null, claims({ status: "disabled", expiresAt: now - 1 })),
    ];
    for (const r of dead) expect(deadReason(r, now), JSON.stringify(r)).not.toBeNull();
  });
});
