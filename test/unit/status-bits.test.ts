import { describe, expect, it } from "vitest";
import { base64urlEncode, encodeStatusList, statusBits, zlibDeflate } from "../../src/lib/status-bits.ts";
import { globalStatusIdx, STATUS_LIST_SIZE, statusListRef } from "../../src/domain/signing/status-list.ts";

/** The status list encoding (draft-ietf-oauth-status-list, 1 bit per token) against vectors computed by hand. */

async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const fromBase64url = (s: string) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

/** Adler-32 (RFC 1950 section 8.2), written here. */
function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (const x of bytes) {
    a = (a + x) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

describe("status bits", () => {
  it("bit i is bit i % 8 of byte floor(i / 8), least significant first", () => {
    // The draft's example: statuses 1,0,0,1,1,1,0,1 | 1,1,0,0,0,1,0,1 -> 0xB9 0xA3.
    const set = [0, 3, 4, 5, 7, 8, 9, 13, 15];
    expect([...statusBits(16, set)]).toEqual([0xb9, 0xa3]);
    expect([...statusBits(16, [1])]).toEqual([0x02, 0x00]);
    expect([...statusBits(16, [14])]).toEqual([0x00, 0x40]);
    expect([...statusBits(16, [])]).toEqual([0, 0]);
    expect([...statusBits(16, [16, -1])], "out of range: ignored").toEqual([0, 0]);
  });

  it("compresses as zlib (RFC 1950): a CMF/FLG header, DEFLATE, and the Adler-32 of the bytes", async () => {
    const raw = statusBits(16, [0, 3, 4, 5, 7, 8, 9, 13, 15]);
    const z = await zlibDeflate(raw);
    expect(z[0]! & 0x0f, "CM = 8 (deflate)").toBe(8);
    expect(z[0]! >> 4, "CINFO <= 7 (window of at most 32 KiB)").toBeLessThanOrEqual(7);
    expect(((z[0]! << 8) | z[1]!) % 31, "FCHECK").toBe(0);
    expect(z[1]! & 0x20, "no preset dictionary").toBe(0);
    const tail = z.slice(-4);
    expect(((tail[0]! << 24) | (tail[1]! << 16) | (tail[2]! << 8) | tail[3]!) >>> 0).toBe(adler32(raw));
    expect([...(await inflate(z))]).toEqual([0xb9, 0xa3]);
  });

  it("the draft's own lst decodes to its bytes with the same inflate (the decoder of the tests is right)", async () => {
    expect([...(await inflate(fromBase64url("eNrbuRgAAhcBXQ")))]).toEqual([0xb9, 0xa3]);
  });

  it("lst is base64url without padding of the zlib stream, and round-trips", async () => {
    const lst = await encodeStatusList(STATUS_LIST_SIZE, [5, STATUS_LIST_SIZE - 1]);
    expect(lst).toMatch(/^[A-Za-z0-9_-]+$/);
    const bytes = await inflate(fromBase64url(lst));
    expect(bytes.length).toBe(STATUS_LIST_SIZE / 8);
    expect(bytes[0]).toBe(0x20);
    expect(bytes[bytes.length - 1]).toBe(0x80);
    expect(bytes.slice(1, -1).every((b) => b === 0)).toBe(true);
    // 16 KiB of mostly zeros compresses to a few dozen bytes.
    expect(lst.length).toBeLessThan(200);
  });

  it("base64url: RFC 4648 test vectors, unpadded, URL alphabet", () => {
    const enc = (s: string) => base64urlEncode(new TextEncoder().encode(s));
    expect(["", "f", "fo", "foo", "foob", "fooba", "foobar"].map(enc)).toEqual(["", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"]);
    expect(base64urlEncode(new Uint8Array([0xfb, 0xff]))).toBe("-_8");
  });
});

describe("status list references", () => {
  const issuer = "https://keyward.example";
  it("a global index is (list, bit): list floor(g / 2^17), idx g % 2^17", () => {
    expect(statusListRef(issuer, 0)).toEqual({ idx: 0, uri: `${issuer}/statuslists/0` });
    expect(statusListRef(issuer, 131_071)).toEqual({ idx: 131_071, uri: `${issuer}/statuslists/0` });
    expect(statusListRef(issuer, 131_072)).toEqual({ idx: 0, uri: `${issuer}/statuslists/1` });
    expect(statusListRef(issuer, 3 * 131_072 + 7)).toEqual({ idx: 7, uri: `${issuer}/statuslists/3` });
  });

  it("parses back only a well-formed reference to our own lists", () => {
    for (const g of [0, 1, 131_071, 131_072, 5 * 131_072 + 99]) expect(globalStatusIdx(issuer, { status_list: statusListRef(issuer, g) })).toBe(g);
    const bad: unknown[] = [
      undefined,
      null,
      "x",
      {},
      { status_list: null },
      { status_list: { idx: -1, uri: `${issuer}/statuslists/0` } },
      { status_list: { idx: 131_072, uri: `${issuer}/statuslists/0` } },
      { status_list: { idx: 1.5, uri: `${issuer}/statuslists/0` } },
      { status_list: { idx: "1", uri: `${issuer}/statuslists/0` } },
      { status_list: { idx: 1, uri: `https://elsewhere.example/statuslists/0` } },
      { status_list: { idx: 1, uri: `${issuer}/statuslists/01` } },
      { status_list: { idx: 1, uri: `${issuer}/statuslists/1/x` } },
      { status_list: { idx: 1 } },
    ];
    for (const b of bad) expect(globalStatusIdx(issuer, b), JSON.stringify(b)).toBeNull();
  });
});
