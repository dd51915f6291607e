/**
 * Fetching a small JSON document from another server (an OIDC issuer's discovery document and key
 * set), defensively: a remote server is not trusted to answer quickly, briefly, or where it was
 * asked. Every failure is an `OutboundError` with a short reason; nothing here retries.
 */

export interface OutboundLimits {
  /** The whole exchange, headers and body, must finish within this (AbortSignal.timeout). */
  timeoutMs: number;
  /** The body is read as a stream and abandoned once it exceeds this many bytes. */
  maxBytes: number;
}

export const DEFAULT_OUTBOUND_LIMITS: OutboundLimits = { timeoutMs: 3000, maxBytes: 64 * 1024 };

/** Why an outbound fetch gave nothing usable (the reason never quotes the body). */
export class OutboundError extends Error {}

export interface FetchedJson {
  json: unknown;
  /** The response's Cache-Control max-age in seconds, when it states one (no-store and no-cache read as 0). */
  maxAgeSeconds: number | null;
}

/** The max-age a Cache-Control header grants, or null when it says nothing about it. */
export function cacheControlMaxAge(header: string | null): number | null {
  if (!header) return null;
  const directives = header.toLowerCase().split(",").map((d) => d.trim());
  if (directives.some((d) => d === "no-store" || d === "no-cache")) return 0;
  for (const d of directives) {
    const m = /^max-age\s*=\s*"?(\d{1,10})"?$/.exec(d);
    if (m) return Number(m[1]);
  }
  return null;
}

async function readLimited(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array();
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new OutboundError(`response over ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * GETs `url` and parses its JSON body. Redirects are never followed (`redirect: "manual"`): a
 * 3xx is a failure, so a server cannot send the request to another host. Only 200 with a JSON
 * media type (application/json or application/*+json) and at most `maxBytes` of body is accepted.
 */
export async function fetchJson(url: string, limits: OutboundLimits = DEFAULT_OUTBOUND_LIMITS): Promise<FetchedJson> {
  let res: Response;
  const signal = AbortSignal.timeout(limits.timeoutMs);
  try {
    res = await fetch(url, { method: "GET", redirect: "manual", headers: { accept: "application/json" }, signal });
  } catch (err) {
    throw new OutboundError(signal.aborted ? `no answer within ${limits.timeoutMs} ms` : "unreachable");
  }
  try {
    if (res.status >= 300 && res.status < 400) throw new OutboundError(`redirect (${res.status}) refused`);
    if (res.status !== 200) throw new OutboundError(`status ${res.status}`);
    const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (!/^application\/(?:[a-z0-9.+-]+\+)?json$/.test(type)) throw new OutboundError("not JSON (content-type)");
    const declared = Number(res.headers.get("content-length") ?? NaN);
    if (declared > limits.maxBytes) throw new OutboundError(`response over ${limits.maxBytes} bytes`);
    let bytes: Uint8Array;
    try {
      bytes = await readLimited(res.body, limits.maxBytes);
    } catch (err) {
      if (err instanceof OutboundError) throw err;
      throw new OutboundError(signal.aborted ? `no answer within ${limits.timeoutMs} ms` : "body unreadable");
    }
    try {
      return { json: JSON.parse(utf8.decode(bytes)), maxAgeSeconds: cacheControlMaxAge(res.headers.get("cache-control")) };
    } catch {
      throw new OutboundError("malformed JSON");
    }
  } finally {
    if (!res.bodyUsed) await res.body?.cancel().catch(() => undefined);
  }
}

/** What a receiver answered to a POST: its status, how long it asked us to wait (Retry-After), and nothing of its body. */
export interface PostOutcome {
  status: number;
  /** Retry-After in seconds (delta-seconds or an HTTP date), when the answer states one. */
  retryAfterSeconds: number | null;
}

/** Retry-After (RFC 9110 10.2.3) as seconds from `now`, or null when absent or unreadable. */
export function retryAfterSeconds(header: string | null, now: number): number | null {
  if (!header) return null;
  const text = header.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * POSTs `body` to `url` under the same limits as fetchJson: no redirect followed (a 3xx is an
 * answer, never a hop), the whole exchange within the timeout, and at most `maxBytes` of the
 * answer read (then dropped: a receiver's body is never kept). A network failure or timeout is an
 * OutboundError; any status is an outcome.
 */
export async function postLimited(url: string, body: string, headers: Record<string, string>, limits: OutboundLimits = DEFAULT_OUTBOUND_LIMITS): Promise<PostOutcome> {
  const signal = AbortSignal.timeout(limits.timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { method: "POST", redirect: "manual", headers, body, signal });
  } catch {
    throw new OutboundError(signal.aborted ? `no answer within ${limits.timeoutMs} ms` : "unreachable");
  }
  try {
    await readLimited(res.body, limits.maxBytes);
  } catch (err) {
    if (signal.aborted) throw new OutboundError(`no answer within ${limits.timeoutMs} ms`);
    // An answer over the limit still has its status: the receiver answered.
    if (!(err instanceof OutboundError)) throw new OutboundError("body unreadable");
  } finally {
    if (!res.bodyUsed) await res.body?.cancel().catch(() => undefined);
  }
  return { status: res.status, retryAfterSeconds: retryAfterSeconds(res.headers.get("retry-after"), Date.now()) };
}
