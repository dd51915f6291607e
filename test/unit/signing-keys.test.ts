import { jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { activeKey, generateSigningKey, importVerifyKey, publishedKeys, SIGNING_ALGS, toJwk, unwrapSigningKey, type Keyset } from "../../src/domain/signing/keyset.ts";

const SECRET = "unit-test-key-encryption-secret";

describe("signing keys", () => {
  it.each(SIGNING_ALGS)("%s: generated, wrapped, unwrapped, signs and verifies", async (alg) => {
    const now = Date.now();
    const key = await generateSigningKey(alg, SECRET, now, now);
    expect(key.alg).toBe(alg);
    expect(JSON.stringify(key.publicJwk)).not.toMatch(/"d"|"p"|"q"/);
    const jwt = await new SignJWT({ scope: "x" })
      .setProtectedHeader({ alg, kid: key.kid, typ: "at+jwt" })
      .setIssuer("iss")
      .setExpirationTime("5m")
      .sign(await unwrapSigningKey(key, SECRET));
    const { payload, protectedHeader } = await jwtVerify(jwt, await importVerifyKey(key), { algorithms: [alg], issuer: "iss", typ: "at+jwt" });
    expect(payload.scope).toBe("x");
    expect(protectedHeader.kid).toBe(key.kid);
    expect(toJwk(key)).toMatchObject({ kid: key.kid, alg, use: "sig" });
  });

  it("a wrapped key does not open with another secret, nor under another kid", async () => {
    const key = await generateSigningKey("ES256", SECRET, Date.now(), Date.now());
    await expect(unwrapSigningKey(key, "another secret")).rejects.toThrow();
    await expect(unwrapSigningKey({ ...key, kid: "someone-else" }, SECRET)).rejects.toThrow();
  });

  it("picks the newest activated key, and publishes next and retired keys only while useful", async () => {
    const t = 1_800_000_000_000;
    const old = { ...(await generateSigningKey("ES256", SECRET, t, t)), retiredAt: t + 1000 };
    const current = await generateSigningKey("ES256", SECRET, t, t + 1000);
    const next = await generateSigningKey("ES256", SECRET, t, t + 5000);
    const keyset: Keyset = { keys: [old, current, next], retentionMs: 10_000 };
    expect(activeKey(keyset, t + 500)?.kid).toBe(old.kid);
    expect(activeKey(keyset, t + 2000)?.kid).toBe(current.kid);
    expect(activeKey(keyset, t + 6000)?.kid).toBe(next.kid);
    expect(publishedKeys(keyset, t + 2000).map((k) => k.kid)).toEqual([old.kid, current.kid, next.kid]);
    expect(publishedKeys(keyset, t + 11_001).map((k) => k.kid)).toEqual([current.kid, next.kid]);
  });
});
