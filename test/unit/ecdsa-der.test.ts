import { describe, expect, it } from "vitest";
import { base64Bytes, derToP1363 } from "../../src/lib/ecdsa-der.ts";

/** An independent DER writer (X.690): minimal two's-complement INTEGERs in a SEQUENCE. */
function derOf(r: Uint8Array, s: Uint8Array): Uint8Array {
  const int = (v: Uint8Array) => {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    const body = v[i]! & 0x80 ? [0, ...v.subarray(i)] : [...v.subarray(i)];
    return [0x02, body.length, ...body];
  };
  const content = [...int(r), ...int(s)];
  const length = content.length < 0x80 ? [content.length] : [0x81, content.length];
  return new Uint8Array([0x30, ...length, ...content]);
}

const bytes = (...values: number[]) => new Uint8Array(values);
const filled = (first: number, size = 32) => {
  const v = new Uint8Array(size).fill(0x11);
  v[0] = first;
  return v;
};
const hex = (b: Uint8Array | null) => (b ? [...b].map((x) => x.toString(16).padStart(2, "0")).join("") : null);

describe("derToP1363", () => {
  it("pads r and s to 32 bytes: plain, high bit set (DER's extra 0x00), and leading zero bytes (shorter DER integers)", () => {
    const cases: [Uint8Array, Uint8Array][] = [
      [filled(0x7f), filled(0x01)],
      [filled(0x80), filled(0xff)],
      [filled(0x00), filled(0x00)],
      [bytes(...new Array(31).fill(0), 0x05), filled(0x90)],
      [new Uint8Array(32).fill(0xff), bytes(...new Array(30).fill(0), 0x80, 0x01)],
    ];
    for (const [r, s] of cases) {
      const der = derOf(r, s);
      expect(hex(derToP1363(der)), hex(der)!).toBe(hex(new Uint8Array([...r, ...s])));
    }
  });

  it("handles the long-form length (a P-521 signature, 66-byte r and s) and the size parameter", () => {
    const r = filled(0x80, 66);
    const s = filled(0x80, 66);
    const der = derOf(r, s);
    expect(der[1]).toBe(0x81);
    expect(hex(derToP1363(der, 66))).toBe(hex(new Uint8Array([...r, ...s])));
    expect(derToP1363(der, 32)).toBeNull();
  });

  it("refuses what is not strict DER: wrong tags, lengths, negative or padded integers, trailing bytes, empty input", () => {
    const good = derOf(filled(0x80), filled(0x01));
    expect(derToP1363(good)).not.toBeNull();
    const broken = [
      new Uint8Array(),
      bytes(0x30),
      bytes(0x31, ...good.subarray(1)),
      bytes(0x30, good[1]! + 1, ...good.subarray(2)),
      bytes(...good, 0x00),
      bytes(0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01), // r negative
      bytes(0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01), // r with a redundant zero
      bytes(0x30, 0x06, 0x03, 0x01, 0x01, 0x02, 0x01, 0x01), // not an INTEGER
      bytes(0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01), // empty INTEGER
      bytes(0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01), // long form for a short length
      derOf(filled(0x01, 33), filled(0x01)), // r longer than the curve
    ];
    for (const der of broken) expect(derToP1363(der), hex(der)!).toBeNull();
  });

  it("round-trips real P-256 signatures through DER, including ones whose r or s starts with a zero byte or has its top bit set", async () => {
    const { privateKey, publicKey } = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"])) as CryptoKeyPair;
    const seen = { leadingZero: false, highBit: false, plain: false };
    const data = new TextEncoder().encode("payload");
    for (let i = 0; i < 3000 && !(seen.leadingZero && seen.highBit && seen.plain); i++) {
      const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, data));
      const [r, s] = [raw.subarray(0, 32), raw.subarray(32)];
      const parts = [r[0]!, s[0]!];
      const kind = parts.some((b) => b === 0) ? "leadingZero" : parts.some((b) => b & 0x80) ? "highBit" : "plain";
      if (seen[kind] && i > 10) continue;
      seen[kind] = true;
      const back = derToP1363(derOf(r, s))!;
      expect(hex(back)).toBe(hex(raw));
      expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, publicKey, back, data)).toBe(true);
    }
    expect(seen).toEqual({ leadingZero: true, highBit: true, plain: true });
  });
});

describe("base64Bytes", () => {
  it("decodes standard base64 with or without padding, and refuses anything else", () => {
    expect(hex(base64Bytes("AAEC"))).toBe("000102");
    expect(hex(base64Bytes("AAE="))).toBe("0001");
    expect(hex(base64Bytes("AAE"))).toBe("0001");
    for (const bad of ["A", "AA-_", "AA==A", "A A=", "%%%%"]) expect(base64Bytes(bad), bad).toBeNull();
  });
});
