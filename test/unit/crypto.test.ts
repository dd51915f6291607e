import { describe, expect, it } from "vitest";
import { refCrc32 } from "./reference.ts";
import { crc32, sha256Hex, timingSafeEqualString } from "../../src/lib/crypto.ts";

/** The primitives under the hot path, against reference values computed independently. */


describe("crc32", () => {
  it("matches the check value and the reference on ASCII and non-ASCII input (both code paths)", () => {
    expect(crc32("123456789")).toBe(0xcbf43926);
    for (const s of ["", "sat_abc", "héllo wörld", "日本語", "\u{1F600}x", "\x7f\x80", "a".repeat(300)]) expect(crc32(s), s).toBe(refCrc32(s));
  });
});

describe("sha256Hex", () => {
  it("gives the FIPS 180-2 vectors in lowercase hex", async () => {
    expect(await sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(await sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });
});

describe("timingSafeEqualString", () => {
  it("is true only for equal strings, whatever the lengths", async () => {
    expect(await timingSafeEqualString("secret-value", "secret-value")).toBe(true);
    expect(await timingSafeEqualString("secret-value", "secret-valuE")).toBe(false);
    expect(await timingSafeEqualString("secret-value", "secret")).toBe(false);
    expect(await timingSafeEqualString("", "")).toBe(true);
    expect(await timingSafeEqualString("", "x")).toBe(false);
  });
});
