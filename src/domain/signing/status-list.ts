/**
 * Where a JWT's credential sits in the token status lists (draft-ietf-oauth-status-list;
 * docs/status-list.md). Credential `g` (its global index, credential_status.idx) is bit
 * `g % STATUS_LIST_SIZE` of list `floor(g / STATUS_LIST_SIZE)`, served at `<ISSUER>/statuslists/<n>`;
 * a JWT says so in `status: {status_list: {idx, uri}}`.
 */

/** Bits per list: 2^17, 16 KiB before compression; a list of mostly valid credentials compresses to a few hundred bytes. */
export const STATUS_LIST_SIZE = 131_072;
export const STATUS_LIST_PATH = "/statuslists";

export const statusListNumber = (globalIdx: number) => Math.floor(globalIdx / STATUS_LIST_SIZE);

export const statusListUri = (issuer: string, n: number) => `${issuer}${STATUS_LIST_PATH}/${n}`;

/** The `status_list` member of a referenced token's `status` claim. */
export interface StatusListRef {
  idx: number;
  uri: string;
}

/** The last list URI built: a JWT is minted per request, and nearly all name the same few lists. */
let lastUri = { issuer: "", n: -1, uri: "" };

export function statusListRef(issuer: string, globalIdx: number): StatusListRef {
  const n = statusListNumber(globalIdx);
  if (lastUri.n !== n || lastUri.issuer !== issuer) lastUri = { issuer, n, uri: statusListUri(issuer, n) };
  return { idx: globalIdx % STATUS_LIST_SIZE, uri: lastUri.uri };
}

/**
 * The global index a verified JWT of ours names in its `status` claim, or null when it names none
 * (a JWT minted before the lists, or from a record written before them) or one that is not ours.
 */
export function globalStatusIdx(issuer: string, status: unknown): number | null {
  if (typeof status !== "object" || status === null) return null;
  const ref = (status as { status_list?: unknown }).status_list;
  if (typeof ref !== "object" || ref === null) return null;
  const { idx, uri } = ref as { idx?: unknown; uri?: unknown };
  if (typeof idx !== "number" || !Number.isSafeInteger(idx) || idx < 0 || idx >= STATUS_LIST_SIZE || typeof uri !== "string") return null;
  const prefix = `${issuer}${STATUS_LIST_PATH}/`;
  if (!uri.startsWith(prefix)) return null;
  const n = uri.slice(prefix.length);
  if (!/^(0|[1-9][0-9]{0,8})$/.test(n)) return null;
  return Number(n) * STATUS_LIST_SIZE + idx;
}
