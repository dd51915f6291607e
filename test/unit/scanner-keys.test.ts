import { describe, expect, it } from "vitest";
import { parseScannerKeys } from "../../src/env.ts";
import { SCANNER_KEYS, SECRET_SCANNING_KEYS_JSON } from "../fixtures/secret-scanning-keys.ts";

/** SECRET_SCANNING_KEYS: the JSON of GitHub's meta endpoint (docs/leaked-tokens.md). */
describe("parseScannerKeys", () => {
  it("reads every key of the meta document, current or not; empty is none", () => {
    expect(parseScannerKeys(SECRET_SCANNING_KEYS_JSON)).toEqual([
      { keyIdentifier: SCANNER_KEYS.current.keyIdentifier, pem: SCANNER_KEYS.current.publicPem },
      { keyIdentifier: SCANNER_KEYS.previous.keyIdentifier, pem: SCANNER_KEYS.previous.publicPem },
    ]);
    expect(parseScannerKeys("")).toEqual([]);
    expect(parseScannerKeys("  ")).toEqual([]);
    expect(parseScannerKeys('{"public_keys":[]}')).toEqual([]);
  });

  it("fails loudly on anything else, without echoing the value", () => {
    for (const bad of ["{", "[]", '{"keys":[]}', '{"public_keys":[{"key":"x"}]}', '{"public_keys":[{"key_identifier":"","key":"x"}]}', '{"public_keys":"x"}']) {
      expect(() => parseScannerKeys(bad), bad).toThrow(/^SECRET_SCANNING_KEYS: expected/);
    }
  });
});
