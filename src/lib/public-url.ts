import { cidrContains, parseCidr, parseIp, type Cidr } from "./cidr.ts";

/**
 * Whether a URL given by a customer may be called by the service (a webhook endpoint): it must
 * name a host on the public internet, so that a request from inside the platform cannot be
 * pointed at its own network (SSRF). The WHATWG URL parser has already turned every numeric form
 * of an IPv4 address (decimal `2130706433`, hex `0x7f.1`, octal, short forms) into dotted quads,
 * so an address literal is checked once, as bytes. A hostname cannot be resolved here (the runtime
 * has no DNS API): names that only resolve inside a network (`localhost`, `*.internal`, single
 * labels) are refused by name, and every fetch refuses redirects.
 */

/** Blocks that are never a public destination (RFC 6890 special-purpose registries, cloud metadata). */
const BLOCKED = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.88.99.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
  "::/96",
  "64:ff9b::/96",
  "64:ff9b:1::/48",
  "100::/64",
  "2001::/32",
  "2001:db8::/32",
  "2002::/16",
  "fc00::/7",
  "fe80::/10",
  "fec0::/10",
  "ff00::/8",
].map((c) => parseCidr(c)!);

const LOOPBACK: Cidr[] = ["127.0.0.0/8", "::1/128"].map((c) => parseCidr(c)!);

/** Names that resolve only inside a network (RFC 6761, RFC 6762, ICANN's `.internal`), and cloud metadata aliases. */
const INTERNAL_SUFFIXES = [".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet", ".corp"];
const INTERNAL_NAMES = new Set(["localhost", "metadata", "instance-data"]);

export interface PublicUrlOptions {
  /** Accept http and https on loopback (127.0.0.0/8, ::1, localhost): local development and tests only. */
  allowLoopback: boolean;
}

/** Why `raw` may not be called, or null when it may (https, a public host, no credentials, no fragment). */
export function publicUrlProblem(raw: string, options: PublicUrlOptions): string | null {
  if (!URL.canParse(raw)) return "not an absolute URL";
  const url = new URL(raw);
  if (url.username || url.password) return "credentials in the URL are not allowed (the signature authenticates the sender)";
  if (url.hash || raw.includes("#")) return "a fragment is not allowed";
  const host = url.hostname.replace(/\.$/, "").toLowerCase();
  const literal = host.startsWith("[") ? host.slice(1, -1) : host;
  const ip = parseIp(literal);
  const loopback = ip ? LOOPBACK.some((c) => cidrContains(c, ip)) : host === "localhost" || host.endsWith(".localhost");
  if (loopback && options.allowLoopback) {
    return url.protocol === "https:" || url.protocol === "http:" ? null : "only https URLs are allowed";
  }
  if (url.protocol !== "https:") return "only https URLs are allowed";
  if (ip) {
    // An IPv4-mapped IPv6 address arrives here as its IPv4 bytes (parseIp), and is judged as one.
    if (BLOCKED.some((c) => cidrContains(c, ip))) {
      return `the address ${literal} is not public (private, loopback, link-local, reserved or metadata)`;
    }
    if (ip.length === 16 && (ip[0]! & 0xe0) !== 0x20) return `the address ${literal} is not a global unicast address`;
    return null;
  }
  if (!host.includes(".")) return `the host ${host} is not a public name (a single label)`;
  if (INTERNAL_NAMES.has(host) || INTERNAL_SUFFIXES.some((s) => host.endsWith(s))) return `the host ${host} is an internal name`;
  // Characters a hostname can carry only as an address in disguise.
  if (/^[0-9.]+$/.test(host) || /^0x/i.test(host)) return `the host ${host} is not a valid public address`;
  return null;
}
