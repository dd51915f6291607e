import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import * as jose from "jose";
import { ERROR_STATUS } from "../../src/http/problem.ts";
import { BASE, readResponse } from "../helpers.ts";

/**
 * Shared pieces of the property-based hardening tests (fuzz-api, fuzz-oauth): raw requests, the
 * D1 snapshot used for "a rejected request changes nothing", the response-shape checks of both
 * error dialects, and generators of hostile input (bodies, headers, credentials, JWTs).
 */

// ---------------------------------------------------------------------------------------------
// Raw requests
// ---------------------------------------------------------------------------------------------

export interface FuzzRequest {
  method: string;
  /** Path and query, already encoded (garbage escapes are sent as they are). */
  path: string;
  headers: [string, string][];
  body?: string | Uint8Array | undefined;
  /** Human-readable notes for the failure message (the mutation that produced the request). */
  label?: string;
  /** The request must be refused whoever sends it (e.g. it carries a private key as public key). */
  mustReject?: boolean;
}

export interface FuzzResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** Sends a request through the Worker's real default export, with full control over headers and bytes. */
export async function send(req: FuzzRequest): Promise<FuzzResponse> {
  const headers = new Headers();
  for (const [k, v] of req.headers) headers.append(k, v);
  return readResponse(await exports.default.fetch(new Request(BASE + req.path, { method: req.method, headers, body: req.body ?? null })));
}

/** A short, printable description of a request for assertion messages (bodies truncated). */
export function describeRequest(req: FuzzRequest): string {
  const body =
    req.body === undefined
      ? "(no body)"
      : typeof req.body === "string"
        ? JSON.stringify(req.body.length > 300 ? `${req.body.slice(0, 300)}…(${req.body.length} chars)` : req.body)
        : `bytes[${req.body.length}] ${[...req.body.slice(0, 40)].map((b) => b.toString(16).padStart(2, "0")).join(" ")}`;
  const headers = req.headers.map(([k, v]) => `${k}: ${v.length > 120 ? `${v.slice(0, 120)}…(${v.length} chars)` : v}`).join(" | ");
  const path = req.path.length > 300 ? `${req.path.slice(0, 300)}…(${req.path.length} chars)` : req.path;
  return `${req.method} ${path}\n  headers: ${headers}\n  body: ${body}${req.label ? `\n  mutation: ${req.label}` : ""}`;
}

const describeResponse = (res: FuzzResponse) =>
  `${res.status} ${res.headers.get("content-type") ?? ""} ${res.text.length > 600 ? `${res.text.slice(0, 600)}…` : res.text}`;

export class PropertyViolation extends Error {
  constructor(what: string, req: FuzzRequest, res: FuzzResponse | null, extra = "") {
    super(`${what}\nrequest: ${describeRequest(req)}\nresponse: ${res ? describeResponse(res) : "-"}${extra ? `\n${extra}` : ""}`);
    this.name = "PropertyViolation";
  }
}

// ---------------------------------------------------------------------------------------------
// D1 snapshots
// ---------------------------------------------------------------------------------------------

/**
 * Excluded from the "no state change on a rejected request" comparison: usage telemetry.
 * `usage_counters` and the `last_used_at` columns of `access_tokens` and `service_accounts` are
 * written by design whenever a credential authenticates, even if the request it authenticated is
 * rejected afterwards (403, 404, 400...): the use happened. They are buffered per isolate and
 * flushed through waitUntil at most once a minute, so the write lands after an unpredictable later
 * request, not necessarily the one that caused it. Comparing them would only report that flush.
 * Everything else, audit events included, must stay untouched by a rejected request.
 */
export const EXCLUDED_TABLES = new Set(["usage_counters"]);
export const EXCLUDED_COLUMNS: Record<string, string[]> = { access_tokens: ["last_used_at"], service_accounts: ["last_used_at"] };

export interface Snapshot {
  /** table -> SHA-256 (hex) of its sorted, serialized rows. */
  hashes: Map<string, string>;
  /** table -> serialized rows (kept only to explain a mismatch). */
  rows: Map<string, string[]>;
}

let tableNames: string[] | undefined;

async function tables(): Promise<string[]> {
  if (!tableNames) {
    const { results } = await env.DB.prepare(
      "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '_cf_%' order by name",
    ).all<{ name: string }>();
    tableNames = results.map((r) => r.name).filter((n) => !EXCLUDED_TABLES.has(n));
  }
  return tableNames;
}

const replacer = (_k: string, v: unknown) =>
  v instanceof ArrayBuffer ? `bytes:${[...new Uint8Array(v)].join(",")}` : ArrayBuffer.isView(v) ? `bytes:${[...new Uint8Array(v.buffer)].join(",")}` : v;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every table of D1 (from sqlite_master), one batch of reads, one hash per table. */
export async function snapshot(): Promise<Snapshot> {
  const names = await tables();
  const results = await env.DB.batch(names.map((n) => env.DB.prepare(`select * from "${n}"`)));
  const hashes = new Map<string, string>();
  const rows = new Map<string, string[]>();
  await Promise.all(
    names.map(async (name, i) => {
      const drop = EXCLUDED_COLUMNS[name] ?? [];
      const serialized = (results[i]!.results as Record<string, unknown>[])
        .map((row) => {
          const copy: Record<string, unknown> = {};
          for (const key of Object.keys(row).sort()) if (!drop.includes(key)) copy[key] = row[key];
          return JSON.stringify(copy, replacer);
        })
        .sort();
      rows.set(name, serialized);
      hashes.set(name, await sha256Hex(serialized.join("\n")));
    }),
  );
  return { hashes, rows };
}

/** The tables whose hash differs, with a few added and removed rows of each. */
export function diffSnapshots(before: Snapshot, after: Snapshot): { tables: string[]; detail: string } {
  const changed: string[] = [];
  const lines: string[] = [];
  for (const name of new Set([...before.hashes.keys(), ...after.hashes.keys()])) {
    if (before.hashes.get(name) === after.hashes.get(name)) continue;
    changed.push(name);
    const a = new Set(before.rows.get(name) ?? []);
    const b = new Set(after.rows.get(name) ?? []);
    const removed = [...a].filter((r) => !b.has(r)).slice(0, 3);
    const added = [...b].filter((r) => !a.has(r)).slice(0, 3);
    lines.push(`table ${name}:`, ...removed.map((r) => `  - ${r.slice(0, 400)}`), ...added.map((r) => `  + ${r.slice(0, 400)}`));
  }
  return { tables: changed, detail: lines.join("\n") };
}

// ---------------------------------------------------------------------------------------------
// Response checks
// ---------------------------------------------------------------------------------------------

export const ERROR_CODES = new Set(Object.keys(ERROR_STATUS));
const ERROR_TABLE: Record<string, number> = ERROR_STATUS;
const PROBLEM_REQUIRED = ["type", "title", "status", "detail", "code", "requestId"];
const PROBLEM_OPTIONAL = ["errors", "missing"];

/** A 429 is acceptable only with a Retry-After header (delta-seconds or an HTTP date). */
function checkRetryAfter(req: FuzzRequest, res: FuzzResponse) {
  if (res.status !== 429) return;
  const retry = res.headers.get("retry-after") ?? "";
  if (!/^\d+$/.test(retry.trim()) && Number.isNaN(Date.parse(retry))) throw new PropertyViolation("429 without a valid Retry-After", req, res);
}

/**
 * The management API's RFC 9457 problem: application/problem+json, exactly the documented members,
 * `code` one of ERROR_STATUS, `status` equal to the HTTP status and to the code's table status,
 * `requestId` equal to the x-request-id header.
 */
export function checkProblem(req: FuzzRequest, res: FuzzResponse): void {
  const fail = (what: string) => {
    throw new PropertyViolation(`not a documented problem+json: ${what}`, req, res);
  };
  if (!/^application\/problem\+json(;|$)/.test(res.headers.get("content-type") ?? "")) fail("content-type");
  const body = res.json;
  if (typeof body !== "object" || body === null || Array.isArray(body)) fail("body is not a JSON object");
  for (const key of PROBLEM_REQUIRED) if (!(key in body)) fail(`missing ${key}`);
  const unknown = Object.keys(body).filter((k) => !PROBLEM_REQUIRED.includes(k) && !PROBLEM_OPTIONAL.includes(k));
  if (unknown.length > 0) fail(`unexpected members ${unknown.join(", ")}`);
  for (const key of ["type", "title", "detail", "code", "requestId"]) if (typeof body[key] !== "string") fail(`${key} is not a string`);
  if (!ERROR_CODES.has(body.code) && !(res.status === 429 && body.code === "rate_limited")) fail(`unknown code ${body.code}`);
  if (body.status !== res.status) fail(`status member ${body.status} differs from HTTP ${res.status}`);
  if (ERROR_CODES.has(body.code) && ERROR_TABLE[body.code] !== res.status) fail(`code ${body.code} belongs to ${ERROR_TABLE[body.code]}, not ${res.status}`);
  if (body.requestId.length === 0 || res.headers.get("x-request-id") !== body.requestId) fail("requestId differs from x-request-id");
  if (body.errors !== undefined) {
    if (!Array.isArray(body.errors)) fail("errors is not an array");
    for (const e of body.errors) if (typeof e?.path !== "string" || typeof e?.message !== "string") fail("errors[] item shape");
  }
  if (body.missing !== undefined && (!Array.isArray(body.missing) || body.missing.some((m: unknown) => typeof m !== "string"))) fail("missing[] shape");
  // A signed request (POST /api/v1/secret-scanning) is challenged for its signature, anything else for a bearer credential.
  const scheme = body.code === "invalid_signature" ? /^Signature\b/ : /^Bearer\b/i;
  if (res.status === 401 && !scheme.test(res.headers.get("www-authenticate") ?? "")) fail(`401 without WWW-Authenticate: ${body.code === "invalid_signature" ? "Signature" : "Bearer"}`);
  if (res.status === 405 && !res.headers.get("allow")) fail("405 without Allow");
  checkRetryAfter(req, res);
}

/**
 * Error codes an OAuth endpoint may answer: RFC 6749 §5.2 (token endpoint), RFC 7009 §2.2.1
 * (unsupported_token_type), RFC 8707 / RFC 8693 (invalid_target), RFC 6749 §4.1.2.1's
 * temporarily_unavailable (what src/oauth/errors.ts emits for a 503) and slow_down (RFC 8628 §3.5,
 * the OAuth way of saying "rate limited", accepted with a 429 only). RFC 7662 adds none.
 */
export const OAUTH_ERRORS = new Set([
  "invalid_request",
  "invalid_client",
  "invalid_grant",
  "unauthorized_client",
  "unsupported_grant_type",
  "invalid_scope",
  "invalid_target",
  "unsupported_token_type",
  "temporarily_unavailable",
]);

export interface OAuthCheckOptions {
  /** RFC 6749 §5.2: error_description MUST stay within %x20-21 / %x23-5B / %x5D-7E (default: checked). */
  descriptionCharset?: boolean;
}

/** An RFC 6749 §5.2 error response: JSON `{error, error_description?, error_uri?}`, never cached. */
export function checkOAuthError(req: FuzzRequest, res: FuzzResponse, options: OAuthCheckOptions = {}): void {
  const fail = (what: string) => {
    throw new PropertyViolation(`not an RFC 6749 error response: ${what}`, req, res);
  };
  if (!/^application\/json(;|$)/.test(res.headers.get("content-type") ?? "")) fail("content-type");
  const body = res.json;
  if (typeof body !== "object" || body === null || Array.isArray(body)) fail("body is not a JSON object");
  const unknown = Object.keys(body).filter((k) => !["error", "error_description", "error_uri"].includes(k));
  if (unknown.length > 0) fail(`unexpected members ${unknown.join(", ")}`);
  const allowed = res.status === 429 ? body.error === "slow_down" || OAUTH_ERRORS.has(body.error) : OAUTH_ERRORS.has(body.error);
  if (!allowed) fail(`unknown error ${body.error}`);
  if (body.error_description !== undefined && typeof body.error_description !== "string") fail("error_description is not a string");
  // RFC 6749 §5.2 error_description: printable ASCII except " and \.
  if (options.descriptionCharset !== false && typeof body.error_description === "string" && !/^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(body.error_description)) fail("error_description has characters outside %x20-21 / %x23-5B / %x5D-7E");
  if (!/no-store/.test(res.headers.get("cache-control") ?? "")) fail("no Cache-Control: no-store");
  const statusFor: Record<string, number[]> = { invalid_client: [400, 401], invalid_request: [400, 413], temporarily_unavailable: [503] };
  const expected = res.status === 429 ? [429] : statusFor[body.error] ?? [400];
  if (!expected.includes(res.status)) fail(`${body.error} with HTTP ${res.status}`);
  const auth = req.headers.find(([k]) => k.toLowerCase() === "authorization")?.[1] ?? "";
  if (res.status === 401 && /^Basic /i.test(auth) && !/^Basic\b/i.test(res.headers.get("www-authenticate") ?? "")) fail("401 to a Basic client without WWW-Authenticate: Basic");
  checkRetryAfter(req, res);
}

// ---------------------------------------------------------------------------------------------
// The property runner: one request, its response checked, D1 compared when it was rejected
// ---------------------------------------------------------------------------------------------

export type Dialect = "problem" | "oauth";

/**
 * Runs one generated request and checks the three properties: (1) no 5xx; (2) an error has the
 * documented shape of `dialect(res)`; (3) a rejected request (>= 400) leaves D1 as it was.
 * Keeps the previous snapshot as the next "before" so each case costs one snapshot.
 */
export class StateTracker {
  private last: Snapshot | undefined;
  rejected = 0;
  accepted = 0;
  /** How often each outcome ("400 invalid_request", "404 not_found", "200") was seen. */
  readonly outcomes = new Map<string, number>();

  async reset(): Promise<void> {
    this.last = await snapshot();
  }

  constructor(private readonly oauthOptions: OAuthCheckOptions = {}) {}

  async check(req: FuzzRequest, dialect: (res: FuzzResponse) => Dialect): Promise<FuzzResponse> {
    const before = this.last ?? (await snapshot());
    let res: FuzzResponse;
    try {
      res = await send(req);
    } catch (err) {
      this.last = undefined;
      throw new PropertyViolation(`the Worker threw: ${String((err as Error)?.stack ?? err)}`, req, null);
    }
    const after = await snapshot();
    this.last = after;
    const outcome = `${res.status}${res.status >= 400 ? ` ${res.json?.code ?? res.json?.error ?? ""}` : ""}`;
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
    if (res.status >= 500) throw new PropertyViolation("5xx", req, res);
    if (req.mustReject && res.status < 400) throw new PropertyViolation("accepted a request that must be refused", req, res);
    if (res.status >= 400) {
      this.rejected += 1;
      const d = dialect(res);
      if (d === "oauth") checkOAuthError(req, res, this.oauthOptions);
      else checkProblem(req, res);
      const diff = diffSnapshots(before, after);
      if (diff.tables.length > 0) throw new PropertyViolation(`a rejected request changed D1 (${diff.tables.join(", ")})`, req, res, diff.detail);
    } else {
      this.accepted += 1;
    }
    return res;
  }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const enc = new TextEncoder();
const b64url = (bytes: Uint8Array) => jose.base64url.encode(bytes);
export const b64urlJson = (v: unknown) => b64url(enc.encode(JSON.stringify(v)));

/** Bytes that are not UTF-8: a lone continuation, overlong NUL, a UTF-16 surrogate, truncated sequences, 0xFF. */
export const INVALID_UTF8: Uint8Array[] = [
  Uint8Array.of(0xff),
  Uint8Array.of(0xfe, 0xff),
  Uint8Array.of(0x80),
  Uint8Array.of(0xc0, 0x80),
  Uint8Array.of(0xed, 0xa0, 0x80),
  Uint8Array.of(0xe0, 0xa4),
  Uint8Array.of(0xf0, 0x9f, 0xa4),
  Uint8Array.of(0xf8, 0x88, 0x80, 0x80, 0x80),
];

export function concatBytes(...parts: (string | Uint8Array)[]): Uint8Array {
  const arrays = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/**
 * A header value workerd passes through unchanged: printable ASCII. Other bytes (of the UTF-8 form)
 * become %HH. (workerd re-encodes any code point above 0x7F as UTF-8 and logs a warning for each
 * such header, so raw non-ASCII header bytes cannot be sent through `fetch` anyway; unicode reaches
 * credentials through base64 and percent-encoding instead.)
 */
export function headerSafe(s: string): string {
  let out = "";
  for (const byte of enc.encode(s)) out += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}

/** Percent-encodes every byte outside the unreserved set (a lone surrogate becomes U+FFFD first, as a client's encoder does). */
export const pct = (s: string) =>
  [...enc.encode(s)].map((b) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`)).join("");

/** Strings with odd content: unicode, controls, escapes, injections, long runs. */
export const oddString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "\ud800",
    "\udfff",
    "a\ud800b",
    "\u202e\u200b\ufeff",
    "🤖𝔘",
    "null",
    "undefined",
    "NaN",
    "-1",
    "1e309",
    "0x10",
    "__proto__",
    "constructor",
    "toString",
    "' or '1'='1",
    "%' or 1=1--",
    "../../etc/passwd",
    "%00",
    "%ZZ",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "sat_",
    "sa_",
    "org_",
    "Bearer",
  ),
  fc.integer({ min: 1, max: 5000 }).map((n) => "x".repeat(n)),
);

/** JSON that nests `depth` levels (arrays or objects), as text. */
export function deepJson(depth: number, kind: "array" | "object"): string {
  return kind === "array" ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

export const deepJsonText: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(100, 1000, 10_000), fc.constantFrom<"array" | "object">("array", "object"))
  .map(([depth, kind]) => deepJson(depth, kind));

/** Values of every JSON type, wrong for most fields (raw JSON text, to reach what JSON.stringify cannot say). */
export const wrongJsonValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1.5",
    "-1",
    "1e309",
    "-1e309",
    "9007199254740993",
    '""',
    '" "',
    '"\\u0000"',
    '"\\ud800"',
    '"\\udfff\\ud800"',
    "[]",
    "{}",
    '[""]',
    "[null]",
    '{"$ne":null}',
    '{"__proto__":{"admin":true}}',
    '["a","a"]',
    '"1"',
    '"true"',
  ),
  oddString.map((s) => JSON.stringify(s)),
  fc.integer({ min: 10_000, max: 30_000 }).map((n) => `[${"0,".repeat(n)}0]`),
  fc.integer({ min: 2_000, max: 60_000 }).map((n) => JSON.stringify("h".repeat(n))),
  deepJsonText,
);

/** Content types that are not JSON, or JSON-looking ones that are not application/json. */
export const NON_JSON_TYPES = [
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/xml",
  "application/octet-stream",
  "application/jsonx",
  "json",
  "application/ json",
  "*/*",
  "",
];
export const JSON_LIKE_TYPES = ["application/json; charset=utf-8", "application/json;charset=utf-16", "APPLICATION/JSON", "application/merge-patch+json", "application/problem+json"];

/** Malformed JSON text. */
export const MALFORMED_JSON = ['{"a":', "{'a':1}", '{"a":1,}', "{a:1}", "not json", "{}}", "[", '{"a":1 /* c */}', "NaN", "\u0000", "{\"a\":\"\\x41\"}", '{"a":"\\u12"}', "\ufeff{}"];

/** Malformed `Authorization` values for a Bearer API (and a few Basic ones). */
export function malformedAuthorizations(realToken: string, realJwt: string): fc.Arbitrary<string> {
  const flipped = realToken.slice(0, 12) + (realToken[12] === "A" ? "B" : "A") + realToken.slice(13);
  return fc.oneof(
    fc.constantFrom(
      "",
      "Bearer",
      "Bearer ",
      "Bearer  ",
      realToken,
      `Token ${realToken}`,
      `Bearer ${flipped}`,
      `Bearer ${realToken}x`,
      `Bearer ${realToken} ${realToken}`,
      `Bearer ${realToken},Bearer ${realToken}`,
      `Basic ${btoa(`x:${realToken}`)}`,
      "Basic !!!",
      `Basic ${btoa("no-colon")}`,
      "Bearer sat_",
      `Bearer ${"sat_" + "A".repeat(38)}`,
      `Bearer ${headerSafe("sat_ü🤖")}`,
      `Basic ${btoa(String.fromCharCode(...enc.encode("ü🤖:sat_ü")))}`,
    ),
    fc.string({ maxLength: 60 }).map((s) => `Bearer ${headerSafe(s)}`),
    fc.constantFrom(8_000, 8_193, 16_384).map((n) => `Bearer ${"a".repeat(n)}`),
    malformedJwt(realJwt).map((jwt) => `Bearer ${jwt}`),
  );
}

/**
 * Malformed JWTs derived from a real one (so most are near-valid): bad base64, 2 or 4 segments,
 * alg none, a huge header, a flipped signature, HS256 with a public key as secret, unknown kid,
 * claims changed without re-signing.
 */
export function malformedJwt(realJwt: string): fc.Arbitrary<string> {
  const [h = "", p = "", s = ""] = realJwt.split(".");
  const header = JSON.parse(new TextDecoder().decode(jose.base64url.decode(h)));
  const payload = JSON.parse(new TextDecoder().decode(jose.base64url.decode(p)));
  const flip = (x: string) => x.slice(0, -2) + (x.at(-2) === "A" ? "B" : "A") + x.slice(-1);
  return fc.oneof(
    fc.constantFrom(
      `${h}.${p}`,
      `${h}.${p}.${s}.${s}`,
      `${h}..${s}`,
      `..`,
      `.`,
      `${h}.${p}.`,
      `${b64urlJson({ ...header, alg: "none" })}.${p}.`,
      `${b64urlJson({ alg: "none", typ: "at+jwt" })}.${p}.`,
      `${b64urlJson({ ...header, alg: "HS256" })}.${p}.${s}`,
      `${b64urlJson({ ...header, kid: "unknown-kid" })}.${p}.${s}`,
      `${b64urlJson({ ...header, kid: 42 })}.${p}.${s}`,
      `${b64urlJson({ ...header, crit: ["exp"] })}.${p}.${s}`,
      `${b64urlJson({ ...header, jku: "https://evil.test/jwks.json" })}.${p}.${s}`,
      `${h}.${b64urlJson({ ...payload, scope: "platform.root" })}.${s}`,
      `${h}.${b64urlJson({ ...payload, exp: payload.exp + 86_400 })}.${s}`,
      `${h}.${b64urlJson({ ...payload, sub: "sa_nobody" })}.${s}`,
      `${h}.${p}.${flip(s)}`,
      `${h}.${p}.${s}=`,
      `${h}+/.${p}.${s}`,
      `${h}.${p}.${s.replace(/[A-Za-z]/g, "-")}`,
      `${b64urlJson({ ...header, pad: "x".repeat(6_000) })}.${p}.${s}`,
      `${b64urlJson({ ...header, pad: "x".repeat(12_000) })}.${p}.${s}`,
      `${b64urlJson([header])}.${p}.${s}`,
      `${b64urlJson("string")}.${p}.${s}`,
      `${b64url(Uint8Array.of(0xff, 0xfe, 0xfd))}.${p}.${s}`,
      `${h}.${b64url(Uint8Array.of(0x7b, 0xff, 0x7d))}.${s}`,
      `${b64urlJson({ ...header, b64: false, crit: ["b64"] })}.${p}.${s}`,
      `${b64urlJson({ alg: "ES256", typ: "at+jwt", kid: header.kid })}.${b64urlJson({ ...payload, exp: 1 })}.${s}`,
      "eyJ.eyJ.eyJ",
      "a.b.c",
      "%%.%%.%%",
    ),
    fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 })).map(([a, b, c]) => `${a}.${b}.${c}`),
    fc.tuple(fc.nat({ max: 5 }), fc.string({ maxLength: 8 })).map(([n, seg]) => Array.from({ length: n }, () => b64urlJson(seg)).join(".")),
  );
}

/** A JWT signed by a key Keyward does not know, with a header copied from a real one. */
export async function foreignJwt(realJwt: string): Promise<string> {
  const { privateKey } = await jose.generateKeyPair("ES256");
  const header = jose.decodeProtectedHeader(realJwt);
  return new jose.SignJWT(jose.decodeJwt(realJwt)).setProtectedHeader({ ...header, alg: "ES256" } as jose.JWTHeaderParameters).sign(privateKey);
}

/** HS256 over the JWT with a published public JWK (as JSON text) for secret: the classic key-confusion forgery. */
export async function keyConfusionJwt(realJwt: string, publicJwk: jose.JWK): Promise<string> {
  const secret = enc.encode(JSON.stringify(publicJwk));
  const header = jose.decodeProtectedHeader(realJwt);
  return new jose.SignJWT(jose.decodeJwt(realJwt)).setProtectedHeader({ ...header, alg: "HS256" } as jose.JWTHeaderParameters).sign(secret);
}

/** A publicKey value (as JSON text) for the key-registration bodies, and whether Keyward must refuse it. */
export interface HostileKey {
  text: string;
  mustReject: boolean;
  label: string;
  /**
   * Sent with this `alg` (only where the body has one). A P-384 SPKI without a hint is also tried as
   * Ed25519, which workerd imports and then fails to export, logging an internal error line on
   * every such request (the request itself is a clean 400): hinted, to keep the output quiet.
   */
  alg?: string;
}

/**
 * Malformed and unacceptable public keys (PEM and JWK): private and symmetric keys, unsupported
 * curves, short RSA, broken armor and base64, JWK members WebCrypto refuses (use, key_ops, ext),
 * points off the curve; plus a few well-formed ones that may be accepted (CRLF PEM, Ed25519, extra
 * JWK members), so the generator is not all-reject.
 */
export async function hostileKeys(): Promise<HostileKey[]> {
  const ec = await jose.generateKeyPair("ES256", { extractable: true });
  const p384 = await jose.generateKeyPair("ES384", { extractable: true });
  const ed = await jose.generateKeyPair("EdDSA", { extractable: true });
  const x25519 = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
  // jose refuses to make a short RSA key; WebCrypto does not.
  const rsa1024 = (await crypto.subtle.generateKey({ name: "RSASSA-PKCS1-v1_5", modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const pem = await jose.exportSPKI(ec.publicKey);
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").trim();
  const pkcs8 = await jose.exportPKCS8(ec.privateKey);
  const ecJwk = await jose.exportJWK(ec.publicKey);
  const ecPrivate = await jose.exportJWK(ec.privateKey);
  const x25519Spki = new Uint8Array((await crypto.subtle.exportKey("spki", (x25519 as CryptoKeyPair).publicKey)) as ArrayBuffer);
  const x25519Pem = `-----BEGIN PUBLIC KEY-----\n${btoa(String.fromCharCode(...x25519Spki))}\n-----END PUBLIC KEY-----`;
  const x25519Jwk = (await crypto.subtle.exportKey("jwk", (x25519 as CryptoKeyPair).publicKey)) as JsonWebKey;
  const reject = (label: string, value: unknown, raw = false): HostileKey => ({ text: raw ? String(value) : JSON.stringify(value), mustReject: true, label });
  const accept = (label: string, value: unknown, raw = false): HostileKey => ({ text: raw ? String(value) : JSON.stringify(value), mustReject: false, label });
  return [
    reject("PEM truncated", pem.replace(body, body.slice(0, -20))),
    reject("PEM private key (PKCS#8)", pkcs8),
    reject("PEM certificate armor", pem.replace(/PUBLIC KEY/g, "CERTIFICATE")),
    reject("PEM garbage base64", "-----BEGIN PUBLIC KEY-----\n!!!!****\n-----END PUBLIC KEY-----"),
    reject("PEM bad padding", `-----BEGIN PUBLIC KEY-----\nabc=def\n-----END PUBLIC KEY-----`),
    reject("PEM two blocks", `${pem}\n${pem}`),
    reject("PEM with NUL", pem.replace("\n", "\n\u0000")),
    reject("PEM empty body", "-----BEGIN PUBLIC KEY----------END PUBLIC KEY-----"),
    { ...reject("PEM P-384 (alg ES256)", await jose.exportSPKI(p384.publicKey)), alg: "ES256" },
    reject("PEM RSA 1024", await jose.exportSPKI(rsa1024.publicKey)),
    reject("PEM X25519", x25519Pem),
    { ...reject("JWK with a NUL in kid", { ...ecJwk, kid: "\u0000" }) },
    { ...reject("JWK with a 5000-char kid", { ...ecJwk, kid: "k".repeat(5000) }) },
    { ...reject("JWK with a lone surrogate kid", `{"kty":"EC","crv":"P-256","x":${JSON.stringify(ecJwk.x)},"y":${JSON.stringify(ecJwk.y)},"kid":"\\ud800"}`, true) },
    reject("DER base64 without armor", body),
    reject("PEM over 8192 chars", pem + " ".repeat(8200)),
    reject("empty string", ""),
    reject("PEM lone surrogate", '"-----BEGIN PUBLIC KEY-----\\ud800-----END PUBLIC KEY-----"', true),
    reject("JWK without crv", { kty: "EC" }),
    reject("JWK empty", {}),
    reject("JWK array", [ecJwk], false),
    reject("JWK x and y swapped", { ...ecJwk, x: ecJwk.y, y: ecJwk.x }),
    reject("JWK private (d)", ecPrivate),
    reject("JWK symmetric (oct)", { kty: "oct", k: "c2VjcmV0" }),
    reject("JWK RSA prime (p)", { kty: "RSA", n: "AQAB", e: "AQAB", p: "AQAB" }),
    reject("JWK X25519", x25519Jwk),
    reject("JWK P-384", await jose.exportJWK(p384.publicKey)),
    reject("JWK RSA 1024", await jose.exportJWK(rsa1024.publicKey)),
    reject("JWK RSA empty n", { kty: "RSA", n: "", e: "AQAB" }),
    reject("JWK use enc", { ...ecJwk, use: "enc" }),
    reject("JWK key_ops encrypt", { ...ecJwk, key_ops: ["encrypt"] }),
    reject("JWK ext false", { ...ecJwk, ext: false }),
    reject("JWK numeric x", { ...ecJwk, x: 42 }),
    reject("JWK crv P-256 on kty OKP", { ...ecJwk, kty: "OKP" }),
    reject("JWK kty array", { ...ecJwk, kty: ["EC"] }),
    reject("JWK __proto__ kty", `{"__proto__":{"kty":"EC","crv":"P-256"},"x":${JSON.stringify(ecJwk.x)},"y":${JSON.stringify(ecJwk.y)}}`, true),
    reject("JWK deep member", `{"kty":"EC","crv":"P-256","x":${deepJson(10_000, "array")}}`, true),
    reject("number", 42),
    reject("null", null),
    accept("PEM with CRLF and indentation", pem.replace(/\n/g, "\r\n  ")),
    accept("JWK Ed25519", await jose.exportJWK(ed.publicKey)),
    accept("JWK with extra members", { ...ecJwk, foo: "bar", nested: { a: [1, 2] } }),
  ];
}

/** Oversized or odd request headers added beside the real ones (x-request-id, user-agent, forwarded addresses, junk). */
export const extraHeaders: fc.Arbitrary<[string, string][]> = fc.array(
  fc.oneof(
    fc.constantFrom<[string, string]>(
      ["x-request-id", "x".repeat(16_384)],
      ["x-request-id", "has spaces"],
      ["user-agent", "u".repeat(16_384)],
      ["cf-connecting-ip", "not-an-ip"],
      ["cf-connecting-ip", "::ffff:10.0.0.1"],
      ["cf-connecting-ip", "999.1.1.1"],
      ["x-forwarded-for", "1.1.1.1, 2.2.2.2"],
      ["accept", "application/xml"],
      ["accept-encoding", "x".repeat(16_384)],
      ["x-junk", "j".repeat(16_384)],
      ["cookie", "a=".repeat(5_000)],
      ["origin", "https://evil.test"],
      ["x-http-method-override", "DELETE"],
    ),
    fc.tuple(fc.constantFrom("x-request-id", "user-agent", "x-fuzz", "cf-connecting-ip"), oddString).map(([k, v]): [string, string] => [k, headerSafe(v)]),
  ),
  { maxLength: 2 },
);

/** Query suffixes made only of junk (duplicated, unknown, malformed escapes), appended to any path. */
export const junkQuery: fc.Arbitrary<string> = fc.oneof(
  fc.constant(""),
  fc.constantFrom("?", "?&&", "?=", "?a", "?a=1&a=2", "?%ZZ=1", "?x=%E0%A4%A", "?x=%00", "?__proto__=1", "?limit=1&limit=2", `?q=${"q".repeat(9000)}`),
  fc.array(fc.tuple(oddString, oddString), { maxLength: 3 }).map((pairs) => (pairs.length ? "?" + pairs.map(([k, v]) => `${pct(k)}=${pct(v)}`).join("&") : "")),
);

/** Weighted choice helper. */
export const weighted = <T>(...items: [number, fc.Arbitrary<T>][]) => fc.oneof(...items.map(([weight, arbitrary]) => ({ weight, arbitrary })));
