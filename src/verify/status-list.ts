import { base64url, jwtVerify, type JWTVerifyGetKey } from "jose";
import { KeywardJwtError } from "./errors.ts";

/**
 * Token status lists (draft-ietf-oauth-status-list) as a verifier reads them: the list token is
 * verified against the issuer's JWKS (typ statuslist+jwt, `sub` is the list's URI), `lst` is
 * inflated (zlib, RFC 1950), and a status is `bits` bits at position idx. A list is kept until
 * the earlier of its `exp` and fetch time + `ttl`; one fetch at a time per list.
 */

/** Duplicated from the service (src/domain/signing/status-list-token.ts): the SDK imports nothing from the Worker. */
const STATUS_LIST_TYP = "statuslist+jwt";
const STATUS_LIST_PATH = "/statuslists/";
/** Without `ttl` or `exp` a list is kept this long. */
const DEFAULT_TTL_SECONDS = 60;
/** Lists kept per verifier; Keyward's lists hold 131072 credentials each. */
const MAX_LISTS = 64;
/** Bound on an inflated list (a hostile list could inflate without bound otherwise). */
const MAX_LIST_BYTES = 4 * 1024 * 1024;

export interface StatusRef {
  idx: number;
  uri: string;
}

interface CachedList {
  bits: number;
  bytes: Uint8Array;
  /** Epoch ms after which the list is fetched again. */
  until: number;
}

export interface StatusListReader {
  /** The status value of `ref` (0 is valid). */
  statusOf(ref: StatusRef): Promise<number>;
}

/** The `status.status_list` claim, or null when the JWT names none; malformed when it names one badly. */
export function statusRefOf(payload: Record<string, unknown>): StatusRef | null {
  const status = payload.status;
  if (status === undefined) return null;
  const ref = typeof status === "object" && status !== null ? (status as { status_list?: unknown }).status_list : undefined;
  if (ref === undefined) return null;
  const { idx, uri } = (typeof ref === "object" && ref !== null ? ref : {}) as { idx?: unknown; uri?: unknown };
  if (typeof idx !== "number" || !Number.isSafeInteger(idx) || idx < 0 || typeof uri !== "string") {
    throw new KeywardJwtError("malformed", "The status claim is malformed: status.status_list needs an integer idx and a uri");
  }
  return { idx, uri };
}

async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("deflate"));
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > MAX_LIST_BYTES) {
      await reader.cancel();
      throw new Error(`inflates past ${MAX_LIST_BYTES} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export function statusListReader(options: {
  issuer: string;
  keys: JWTVerifyGetKey;
  algorithms: string[];
  fetch: typeof fetch;
  now: () => number;
  clockTolerance: number;
}): StatusListReader {
  const lists = new Map<string, CachedList>();
  const loading = new Map<string, Promise<CachedList>>();
  const prefix = `${options.issuer}${STATUS_LIST_PATH}`;

  async function load(uri: string): Promise<CachedList> {
    const fetchedAt = options.now();
    let text: string;
    try {
      const res = await options.fetch(uri, { headers: { accept: "application/statuslist+jwt" } });
      text = await res.text();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    } catch (err) {
      throw new KeywardJwtError("status_unavailable", `The status list ${uri} could not be fetched (${err instanceof Error ? err.message : "error"})`);
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(text.trim(), options.keys, {
        typ: STATUS_LIST_TYP,
        subject: uri,
        algorithms: options.algorithms,
        clockTolerance: options.clockTolerance,
        currentDate: new Date(fetchedAt),
      }));
    } catch (err) {
      throw new KeywardJwtError("status_unavailable", `The status list ${uri} does not verify (${err instanceof Error ? err.message : "error"})`);
    }
    const list = payload.status_list as { bits?: unknown; lst?: unknown } | undefined;
    const bits = list?.bits;
    if ((bits !== 1 && bits !== 2 && bits !== 4 && bits !== 8) || typeof list?.lst !== "string") {
      throw new KeywardJwtError("status_unavailable", `The status list ${uri} is malformed (bits must be 1, 2, 4 or 8, lst a string)`);
    }
    let bytes: Uint8Array;
    try {
      bytes = await inflate(base64url.decode(list.lst));
    } catch (err) {
      throw new KeywardJwtError("status_unavailable", `The status list ${uri} does not decode (${err instanceof Error ? err.message : "error"})`);
    }
    const ttl = typeof payload.ttl === "number" && payload.ttl > 0 ? payload.ttl : DEFAULT_TTL_SECONDS;
    let until = fetchedAt + ttl * 1000;
    if (typeof payload.exp === "number") until = Math.min(until, payload.exp * 1000);
    return { bits, bytes, until };
  }

  async function listAt(uri: string): Promise<CachedList> {
    const cached = lists.get(uri);
    if (cached && options.now() < cached.until) return cached;
    let pending = loading.get(uri);
    if (!pending) {
      pending = load(uri).finally(() => loading.delete(uri));
      loading.set(uri, pending);
      pending.then(
        (list) => {
          if (lists.size >= MAX_LISTS && !lists.has(uri)) lists.delete(lists.keys().next().value!);
          lists.set(uri, list);
        },
        () => undefined,
      );
    }
    return pending;
  }

  return {
    async statusOf(ref) {
      // The JWT is signed by the issuer, so its uri is too; a list elsewhere is still refused (defence in depth).
      if (!ref.uri.startsWith(prefix)) throw new KeywardJwtError("status_unavailable", `The status list ${ref.uri} is not the issuer's (${prefix}…)`);
      const list = await listAt(ref.uri);
      const bitPos = ref.idx * list.bits;
      const byte = list.bytes[bitPos >> 3];
      if (byte === undefined) throw new KeywardJwtError("status_unavailable", `The status list ${ref.uri} has no index ${ref.idx}`);
      return (byte >> (bitPos & 7)) & ((1 << list.bits) - 1);
    },
  };
}
