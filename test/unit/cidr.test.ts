import { describe, expect, it } from "vitest";
import { cidrContains, ipAllowed, parseCidr, parseIp } from "../../src/lib/cidr.ts";

/**
 * IP addresses and CIDR blocks (src/lib/cidr.ts), the ground of the network bounds of issue 4.
 * Expected bytes are written out by hand here, never derived from the code under test.
 */

const hex = (bytes: number[] | null) => (bytes === null ? null : bytes.map((b) => b.toString(16).padStart(2, "0")).join(""));
const zeros = (n: number) => Array<number>(n).fill(0);

/** A parsed block, asserting that it parsed. */
function block(text: string) {
  const cidr = parseCidr(text);
  expect(cidr, `parseCidr(${JSON.stringify(text)})`).not.toBeNull();
  return cidr!;
}

/** An address, asserting that it parsed. */
function ip(text: string) {
  const bytes = parseIp(text);
  expect(bytes, `parseIp(${JSON.stringify(text)})`).not.toBeNull();
  return bytes!;
}

describe("parseIp: IPv4", () => {
  it.each([
    ["10.1.2.3", [10, 1, 2, 3]],
    ["0.0.0.0", [0, 0, 0, 0]],
    ["255.255.255.255", [255, 255, 255, 255]],
    ["192.0.2.1", [192, 0, 2, 1]],
  ])("%s gives its four bytes", (text, bytes) => {
    expect(parseIp(text), text).toEqual(bytes);
  });

  it.each(["300.1.1.1", "256.0.0.0", "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3", "a.b.c.d", "1.2.3.-4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4/32", "", "abc"])(
    "%j is not an address",
    (text) => {
      expect(parseIp(text), JSON.stringify(text)).toBeNull();
    },
  );
});

describe("parseIp: IPv6", () => {
  it("a full address gives its sixteen bytes", () => {
    expect(hex(parseIp("2001:0db8:0000:0000:0000:ff00:0042:8329"))).toBe("20010db8000000000000ff0000428329");
    expect(hex(parseIp("2001:db8:0:0:0:ff00:42:8329"))).toBe("20010db8000000000000ff0000428329");
    expect(hex(parseIp("FFFF:ffff:FFFF:ffff:FFFF:ffff:FFFF:ffff"))).toBe("ff".repeat(16));
  });

  it("compressed forms expand to the same bytes", () => {
    expect(parseIp("::"), "::").toEqual(zeros(16));
    expect(parseIp("::1"), "::1").toEqual([...zeros(15), 1]);
    expect(hex(parseIp("fe80::1"))).toBe("fe800000000000000000000000000001");
    expect(hex(parseIp("2001:db8::"))).toBe("20010db8000000000000000000000000");
    expect(hex(parseIp("2001:db8::ff00:42:8329"))).toBe("20010db8000000000000ff0000428329");
    expect(hex(parseIp("1:2:3:4:5:6:7::"))).toBe("00010002000300040005000600070000");
    expect(hex(parseIp("::2:3:4:5:6:7:8"))).toBe("00000002000300040005000600070008");
  });

  it("an embedded IPv4 tail stands for the last two groups", () => {
    expect(hex(parseIp("64:ff9b::192.0.2.33"))).toBe("0064ff9b0000000000000000c0000221");
    expect(hex(parseIp("1:2:3:4:5:6:10.0.0.1"))).toBe("0001000200030004000500060a000001");
  });

  it("an IPv4-mapped address yields the IPv4 bytes (so it can match IPv4 blocks)", () => {
    expect(parseIp("::ffff:10.1.2.3")).toEqual([10, 1, 2, 3]);
    expect(parseIp("::FFFF:192.0.2.1")).toEqual([192, 0, 2, 1]);
    expect(parseIp("0:0:0:0:0:ffff:10.1.2.3")).toEqual([10, 1, 2, 3]);
    expect(parseIp("::ffff:a01:203"), "hex form of ::ffff:10.1.2.3").toEqual([10, 1, 2, 3]);
    // Not mapped: the IPv4-compatible and NAT64 forms stay IPv6.
    expect(parseIp("::10.1.2.3")?.length).toBe(16);
    expect(parseIp("::fffe:10.1.2.3")?.length).toBe(16);
  });

  it.each([
    ":::",
    "1::2::3",
    "::1::",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "12345::1",
    "g::1",
    "2001:db8:::1",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:",
    "::ffff:300.1.2.3",
    "::ffff:1.2.3",
    "1:2:3:4:5:6:7:1.2.3.4",
    "fe80::1%eth0",
    "[::1]",
    "2001:db8::/32",
  ])("%j is not an address", (text) => {
    expect(parseIp(text), JSON.stringify(text)).toBeNull();
  });
});

describe("parseCidr", () => {
  it("reads IPv4 and IPv6 blocks with their prefix", () => {
    expect(parseCidr("10.0.0.0/8")).toEqual({ bytes: [10, 0, 0, 0], prefix: 8 });
    expect(parseCidr("0.0.0.0/0")).toEqual({ bytes: [0, 0, 0, 0], prefix: 0 });
    expect(parseCidr("192.0.2.7/32")).toEqual({ bytes: [192, 0, 2, 7], prefix: 32 });
    const v6 = block("2001:db8::/32");
    expect(hex(v6.bytes)).toBe("20010db8000000000000000000000000");
    expect(v6.prefix).toBe(32);
    expect(block("::/0")).toEqual({ bytes: zeros(16), prefix: 0 });
    expect(block("::1/128")).toEqual({ bytes: [...zeros(15), 1], prefix: 128 });
  });

  it("a bare address is a single-host block (/32 or /128)", () => {
    expect(parseCidr("10.1.2.3")).toEqual({ bytes: [10, 1, 2, 3], prefix: 32 });
    expect(block("fe80::1").prefix).toBe(128);
  });

  it.each([
    "",
    "/8",
    "abc",
    "abc/8",
    "300.1.1.1/8",
    "1.2.3/24",
    "10.0.0.0/33",
    "10.0.0.0/-1",
    "10.0.0.0/",
    "10.0.0.0/8/1",
    "10.0.0.0/8a",
    "10.0.0.0/ 8",
    "10.0.0.0/1000",
    "2001:db8::/129",
    "2001:db8::/",
    ":::/0",
    "1::2::3/64",
    "1::2::3",
    ":::",
    "2001:db8::/32/1",
  ])("%j is refused", (text) => {
    expect(parseCidr(text), JSON.stringify(text)).toBeNull();
  });
});

describe("cidrContains", () => {
  it("IPv4: the prefix bits decide, the host bits do not", () => {
    const net = block("10.0.0.0/8");
    expect(cidrContains(net, ip("10.1.2.3"))).toBe(true);
    expect(cidrContains(net, ip("10.255.255.255"))).toBe(true);
    expect(cidrContains(net, ip("11.0.0.0"))).toBe(false);
    expect(cidrContains(net, ip("9.255.255.255"))).toBe(false);
    const odd = block("192.0.2.64/26"); // 192.0.2.64 .. 192.0.2.127
    expect(cidrContains(odd, ip("192.0.2.64"))).toBe(true);
    expect(cidrContains(odd, ip("192.0.2.127"))).toBe(true);
    expect(cidrContains(odd, ip("192.0.2.63"))).toBe(false);
    expect(cidrContains(odd, ip("192.0.2.128"))).toBe(false);
  });

  it("/0 holds every address of its family and none of the other", () => {
    const all4 = block("0.0.0.0/0");
    for (const a of ["0.0.0.0", "10.1.2.3", "255.255.255.255"]) expect(cidrContains(all4, ip(a)), a).toBe(true);
    expect(cidrContains(all4, ip("2001:db8::5")), "an IPv6 address in 0.0.0.0/0").toBe(false);
    const all6 = block("::/0");
    for (const a of ["::", "::1", "2001:db8::5", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]) expect(cidrContains(all6, ip(a)), a).toBe(true);
    expect(cidrContains(all6, ip("10.1.2.3")), "an IPv4 address in ::/0").toBe(false);
  });

  it("/32 and /128 hold exactly one address", () => {
    const one4 = block("192.0.2.1/32");
    expect(cidrContains(one4, ip("192.0.2.1"))).toBe(true);
    expect(cidrContains(one4, ip("192.0.2.0"))).toBe(false);
    expect(cidrContains(one4, ip("192.0.2.2"))).toBe(false);
    const one6 = block("2001:db8::1/128");
    expect(cidrContains(one6, ip("2001:db8::1"))).toBe(true);
    expect(cidrContains(one6, ip("2001:db8::"))).toBe(false);
    expect(cidrContains(one6, ip("2001:db8::3"))).toBe(false);
  });

  it("IPv6 blocks, compressed or not", () => {
    const doc = block("2001:db8::/32");
    expect(cidrContains(doc, ip("2001:db8::5"))).toBe(true);
    expect(cidrContains(doc, ip("2001:0db8:ffff:ffff:ffff:ffff:ffff:ffff"))).toBe(true);
    expect(cidrContains(doc, ip("2001:db9::1"))).toBe(false);
    expect(cidrContains(doc, ip("2001:db7:ffff::1"))).toBe(false);
    const linkLocal = block("fe80::/10");
    expect(cidrContains(linkLocal, ip("fe80::1"))).toBe(true);
    expect(cidrContains(linkLocal, ip("febf::1"))).toBe(true);
    expect(cidrContains(linkLocal, ip("fec0::1"))).toBe(false);
  });
});

describe("ipAllowed", () => {
  it("inside any of the blocks", () => {
    const cidrs = ["10.0.0.0/8", "2001:db8::/32"];
    expect(ipAllowed("10.1.2.3", cidrs)).toBe(true);
    expect(ipAllowed("2001:db8::5", cidrs)).toBe(true);
    expect(ipAllowed("192.0.2.1", cidrs)).toBe(false);
    expect(ipAllowed("2001:db9::1", cidrs)).toBe(false);
  });

  it("an IPv4-mapped IPv6 client address matches IPv4 blocks", () => {
    expect(ipAllowed("::ffff:10.1.2.3", ["10.0.0.0/8"])).toBe(true);
    expect(ipAllowed("::ffff:192.0.2.1", ["10.0.0.0/8"])).toBe(false);
    expect(ipAllowed("::ffff:192.0.2.1", ["192.0.2.1/32"])).toBe(true);
  });

  it("no address, an unparseable address or no blocks: never allowed", () => {
    expect(ipAllowed(null, ["0.0.0.0/0", "::/0"])).toBe(false);
    expect(ipAllowed("", ["0.0.0.0/0"])).toBe(false);
    expect(ipAllowed("not-an-ip", ["0.0.0.0/0", "::/0"])).toBe(false);
    expect(ipAllowed("300.1.1.1", ["0.0.0.0/0"])).toBe(false);
    expect(ipAllowed("10.1.2.3", [])).toBe(false);
  });

  it("unparseable blocks never match, and do not spoil the valid ones", () => {
    expect(ipAllowed("10.1.2.3", ["10.0.0.0/33"])).toBe(false);
    expect(ipAllowed("10.1.2.3", ["garbage", "10.0.0.0/8"])).toBe(true);
  });

  it("blocks with surrounding spaces are read like the trimmed text", () => {
    expect(ipAllowed("10.1.2.3", [" 10.0.0.0/8 "])).toBe(true);
  });

  // A block written in IPv4-mapped form is accepted by parseCidr (so a write with it is not a 400),
  // and client addresses in mapped form are folded to IPv4; the block must then match IPv4 clients
  // too, or it is a bound that can never let anything through.
  it("an IPv4-mapped block (::ffff:10.0.0.0/104) matches the IPv4 clients it names", () => {
    expect(parseCidr("::ffff:10.0.0.0/104"), "accepted at write time").not.toBeNull();
    expect(ipAllowed("10.1.2.3", ["::ffff:10.0.0.0/104"]), "plain IPv4 client").toBe(true);
    expect(ipAllowed("::ffff:10.1.2.3", ["::ffff:10.0.0.0/104"]), "mapped client").toBe(true);
    expect(ipAllowed("192.0.2.1", ["::ffff:10.0.0.0/104"]), "outside").toBe(false);
  });
});
