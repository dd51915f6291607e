import { describe, expect, it } from "vitest";
import { refCrc32 } from "./reference.ts";
import fc from "fast-check";
import { crc32, sha256Hex, timingSafeEqualString, toHex } from "../../src/lib/crypto.ts";

/** The token format's primitives, against reference values computed independently. */


describe("crc32", () => {
  it("matches the check value and the reference on ASCII and non-ASCII input (both code paths)", () => {
    expect(crc32("123456789")).toBe(0xcbf43926);
    for (const s of ["", "sat_abc", "héllo wörld", "日本語", "\u{1F600}x", "\x7f\x80", "a".repeat(300)]) expect(crc32(s), s).toBe(refCrc32(s));
  });
});

describe("sha256Hex", () => {
  const webCrypto = async (s: string) => toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s))));

  it("gives the FIPS 180-2 vectors in lowercase hex", () => {
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).toBe("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    expect(sha256Hex("a".repeat(1_000_000))).toBe("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  });

  it("equals WebCrypto's digest of the UTF-8 bytes at every length around the block edges", async () => {
    for (let length = 0; length <= 200; length++) {
      for (const unit of ["x", "é", "\u{1F600}", "\x7f"]) {
        const s = unit.repeat(length).slice(0, length);
        expect(sha256Hex(s), `${JSON.stringify(unit)} x ${length}`).toBe(await webCrypto(s));
      }
    }
  });

  it("equals WebCrypto's digest for any string (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: "binary", maxLength: 300 }), fc.string({ unit: "grapheme-ascii", maxLength: 300 }), fc.string({ unit: fc.constantFrom(..."sat_0123456789ABCxyz"), minLength: 30, maxLength: 80 })), async (s) => {
        expect(sha256Hex(s)).toBe(await webCrypto(s));
      }),
      { numRuns: 2_000 },
    );
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
