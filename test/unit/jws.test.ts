import fc from "fast-check";
import { CompactSign, compactVerify, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { ACCESS_TOKEN_TYP, signCompact } from "../../src/domain/jws.ts";
import { generateSigningKey, importVerifyKey, SIGNING_ALGS, unwrapSigningKey, type SigningAlg } from "../../src/domain/signing-keys.ts";

/** Our compact JWS against jose's CompactSign, the library it stands in for on the hot path. */

const SECRET = "unit-test-key-encryption-secret";

async function keyFor(alg: SigningAlg) {
  const key = await generateSigningKey(alg, SECRET, Date.now(), Date.now());
  return { key, privateKey: await unwrapSigningKey(key, SECRET), publicKey: await importVerifyKey(key) };
}

const joseSign = (alg: SigningAlg, kid: string, privateKey: CryptoKey, payload: string) =>
  new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg, kid, typ: ACCESS_TOKEN_TYP }).sign(privateKey);

/** JSON payloads: ASCII ones (the usual claims, written byte by byte) and ones with any text in them (non-ASCII, escapes, empty values). */
const text = fc.oneof(fc.string({ unit: "grapheme-ascii", maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 }));
const payloads = fc
  .oneof(
    fc.dictionary(fc.string({ unit: "grapheme-ascii", maxLength: 12 }), fc.oneof(fc.string({ unit: "grapheme-ascii" }), fc.integer(), fc.array(fc.string()))),
    fc.dictionary(text, fc.oneof(text, fc.integer(), fc.array(text))),
  )
  .map((o) => JSON.stringify(o));

describe("signCompact", () => {
  it.each(["RS256", "EdDSA"] as const)("%s (deterministic): the same bytes as jose's CompactSign, for any payload", async (alg) => {
    const { key, privateKey } = await keyFor(alg);
    await fc.assert(
      fc.asyncProperty(payloads, async (payload) => {
        expect(await signCompact(key, privateKey, payload)).toBe(await joseSign(alg, key.kid, privateKey, payload));
      }),
      { numRuns: alg === "RS256" ? 40 : 200 },
    );
  });

  it.each(SIGNING_ALGS)("%s: jose verifies it, with the header and payload jose would write", async (alg) => {
    const { key, privateKey, publicKey } = await keyFor(alg);
    await fc.assert(
      fc.asyncProperty(payloads, async (payload) => {
        const ours = await signCompact(key, privateKey, payload);
        const theirs = await joseSign(alg, key.kid, privateKey, payload);
        expect(ours.split(".").slice(0, 2)).toEqual(theirs.split(".").slice(0, 2));
        const verified = await compactVerify(ours, publicKey, { algorithms: [alg] });
        expect(new TextDecoder().decode(verified.payload)).toBe(payload);
        expect(verified.protectedHeader).toEqual({ alg, kid: key.kid, typ: ACCESS_TOKEN_TYP });
      }),
      { numRuns: alg === "RS256" ? 20 : 100 },
    );
  });

  it("a signature does not verify under another key, nor with a changed payload", async () => {
    const a = await keyFor("ES256");
    const b = await keyFor("ES256");
    const jwt = await signCompact(a.key, a.privateKey, JSON.stringify({ sub: "sa_1", exp: 4_000_000_000 }));
    await expect(jwtVerify(jwt, a.publicKey, { typ: ACCESS_TOKEN_TYP })).resolves.toBeTruthy();
    await expect(jwtVerify(jwt, b.publicKey)).rejects.toThrow();
    const [header, , signature] = jwt.split(".");
    const forged = `${header}.${btoa(JSON.stringify({ sub: "sa_2", exp: 4_000_000_000 })).replace(/=+$/, "")}.${signature}`;
    await expect(jwtVerify(forged, a.publicKey)).rejects.toThrow();
  });

  it("ASCII payloads of every length (each tail of base64) and every base64url character", async () => {
    const { key, privateKey } = await keyFor("EdDSA");
    // "?>~" and the like put 62 and 63 (- and _) in the encoding.
    for (let length = 0; length < 40; length++) {
      const payload = JSON.stringify({ s: "?>~\u007f".repeat(10).slice(0, length) });
      expect(await signCompact(key, privateKey, payload), payload).toBe(await joseSign("EdDSA", key.kid, privateKey, payload));
    }
  });

  it("keeps each key's own header when keys rotate", async () => {
    const a = await keyFor("ES256");
    const b = await keyFor("EdDSA");
    for (const { key, privateKey } of [a, b, a]) {
      const jwt = await signCompact(key, privateKey, "{}");
      expect(JSON.parse(atob(jwt.split(".")[0]!))).toEqual({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYP });
    }
  });

  it("RSA keys of any size: the signature's room comes from the key's modulus, and a kid reused with another size still signs whole", async () => {
    const rsa = (modulusLength: number) =>
      crypto.subtle.generateKey({ name: "RSASSA-PKCS1-v1_5", modulusLength, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, false, ["sign", "verify"]) as Promise<CryptoKeyPair>;
    const key = { alg: "RS256" as const, kid: `rsa-${crypto.randomUUID()}` };
    for (const modulusLength of [3072, 2048, 4096]) {
      // The first pair sizes the kid's cached header entry; the others do not match it.
      const pair = await rsa(modulusLength);
      const jwt = await signCompact(key, pair.privateKey, '{"sub":"sa_1"}');
      const verified = await compactVerify(jwt, pair.publicKey, { algorithms: ["RS256"] });
      expect(new TextDecoder().decode(verified.payload)).toBe('{"sub":"sa_1"}');
      expect(jwt.split(".")[2]).toHaveLength(Math.ceil((modulusLength / 8) * 4 / 3));
    }
  });
});
