/** IPv4 and IPv6 addresses and CIDR blocks, as bytes. */

function parseV4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : null;
}

function parseV6(s: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  let tail: number[] = [];
  let text = s;
  if (s.includes(".")) {
    // An embedded IPv4 address (e.g. ::ffff:192.0.2.1) stands for the last two groups.
    const i = s.lastIndexOf(":");
    const v4 = parseV4(s.slice(i + 1));
    if (!v4) return null;
    tail = v4;
    text = s.slice(0, i + 1);
    if (!text.endsWith("::")) text = text.slice(0, -1);
  }
  const parts = text.split("::");
  if (parts.length > 2) return null;
  const groupsOf = (p: string) => (p === "" ? [] : p.split(":"));
  const head = groupsOf(parts[0]!);
  const rest = parts.length === 2 ? groupsOf(parts[1]!) : null;
  if ([...head, ...(rest ?? [])].some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  const wanted = 8 - tail.length / 2;
  let groups: string[];
  if (rest === null) {
    if (head.length !== wanted) return null;
    groups = head;
  } else {
    const missing = wanted - head.length - rest.length;
    if (missing < 1) return null;
    groups = [...head, ...Array<string>(missing).fill("0"), ...rest];
  }
  return [...groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]), ...tail];
}

const isMapped = (v6: number[]) => v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;

/** The bytes of an IP address (4 or 16), or null. An IPv4-mapped IPv6 address yields its IPv4 bytes. */
export function parseIp(s: string): number[] | null {
  const v4 = parseV4(s);
  if (v4) return v4;
  const v6 = parseV6(s);
  return v6 && isMapped(v6) ? v6.slice(12) : v6;
}

export interface Cidr {
  bytes: number[];
  prefix: number;
}

/** A CIDR block (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a /32 or /128), or null. */
export function parseCidr(s: string): Cidr | null {
  const [addr, prefixText, extra] = s.trim().split("/");
  if (extra !== undefined || !addr) return null;
  const bytes = parseV4(addr) ?? parseV6(addr);
  if (!bytes) return null;
  const max = bytes.length * 8;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix <= max)) return null;
  // An IPv4-mapped block (::ffff:a.b.c.d/96+) is the IPv4 block it maps, as client addresses are.
  if (bytes.length === 16 && prefix >= 96 && isMapped(bytes)) return { bytes: bytes.slice(12), prefix: prefix - 96 };
  return { bytes, prefix };
}

export function cidrContains(cidr: Cidr, ip: number[]): boolean {
  if (cidr.bytes.length !== ip.length) return false;
  for (let bit = 0; bit < cidr.prefix; bit++) {
    const mask = 0x80 >> bit % 8;
    if ((cidr.bytes[bit >> 3]! & mask) !== (ip[bit >> 3]! & mask)) return false;
  }
  return true;
}

/** Whether `ip` is inside any of the CIDR strings (unparseable entries never match). */
export function ipAllowed(ip: string | null, cidrs: string[]): boolean {
  const bytes = ip ? parseIp(ip) : null;
  if (!bytes) return false;
  return cidrs.some((c) => {
    const cidr = parseCidr(c);
    return cidr !== null && cidrContains(cidr, bytes);
  });
}
