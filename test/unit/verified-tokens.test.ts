import { afterEach, describe, expect, it } from "vitest";
import { recallVerified, rememberVerified, VERIFIED_MAX, VERIFIED_TTL_MS } from "../../src/domain/credentials/verified-tokens.ts";
import { resetIsolateState } from "../../src/domain/shared/isolate-state.ts";

const t0 = 1_800_000_000_000;
const claims = (expS: number) => ({ iss: "https://issuer.example.test", sub: "s", exp: expS });

describe("the isolate's verified external tokens", () => {
  afterEach(() => resetIsolateState("federated-verified-tokens"));

  it("recalls a token until VERIFIED_TTL_MS, then verifies it again", () => {
    rememberVerified("h", claims(t0 / 1000 + 3600), t0);
    expect(recallVerified("h", t0 + VERIFIED_TTL_MS - 1, 30)?.sub).toBe("s");
    expect(recallVerified("h", t0 + VERIFIED_TTL_MS, 30)).toBeUndefined();
  });

  it("never past the token's exp", () => {
    rememberVerified("h", claims(t0 / 1000 + 10), t0);
    expect(recallVerified("h", t0 + 9_999, 30)).toBeDefined();
    expect(recallVerified("h", t0 + 10_000, 30)).toBeUndefined();
  });

  it("holds at most VERIFIED_MAX tokens, dropping the oldest", () => {
    for (let i = 0; i <= VERIFIED_MAX; i++) rememberVerified(`h${i}`, claims(t0 / 1000 + 3600), t0);
    expect(recallVerified("h0", t0, 30)).toBeUndefined();
    expect(recallVerified("h1", t0, 30)).toBeDefined();
    expect(recallVerified(`h${VERIFIED_MAX}`, t0, 30)).toBeDefined();
  });
});
