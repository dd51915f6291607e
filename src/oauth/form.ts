import { OAuthError } from "./errors.ts";

/**
 * The form bodies of the OAuth endpoints (application/x-www-form-urlencoded, RFC 6749 appendix B).
 * A spec names the parameters a form takes: `one` at most once (RFC 6749 3.2), at most 8,192
 * characters; `many` (RFC 8707 `resource`, `audience`) up to 10 values of at most 2,048. Others
 * are ignored. Every problem is an RFC 6749 invalid_request.
 */
export type FormSpec = Record<string, "one" | "many">;
export type FormOf<S extends FormSpec> = { [K in keyof S]?: S[K] extends "many" ? string | string[] : string };

/** The client authentication parameters (RFC 6749 2.3.1, RFC 7523 2.2), taken by every endpoint. */
export const CLIENT_FIELDS = { client_id: "one", client_secret: "one", client_assertion: "one", client_assertion_type: "one" } as const;

const MAX_PARAM = 8192;
const MAX_REPEATED_PARAM = 2048;
const MAX_REPEATS = 10;

/** UTF-8 only, and strictly: a body that is not well-formed UTF-8 is refused, never repaired into U+FFFD. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function decodeBody(body: ArrayBuffer): string {
  try {
    return utf8.decode(body);
  } catch {
    throw new OAuthError("invalid_request", "The body is not well-formed UTF-8");
  }
}

/**
 * The parameters of a form body (its bytes). Bytes, not .text(): the decoding must be strict, and
 * workerd warns on every text() of a form body.
 */
export function formOf<S extends FormSpec>(body: ArrayBuffer, spec: S): FormOf<S> {
  // Only the spec's names are stored (never `__proto__`).
  const fields: Record<string, string | string[]> = {};
  for (const [key, value] of new URLSearchParams(decodeBody(body))) {
    const kind = Object.hasOwn(spec, key) ? spec[key] : undefined;
    if (kind === undefined) continue;
    const prev = fields[key];
    if (kind === "one") {
      if (prev !== undefined) throw new OAuthError("invalid_request", "A parameter is repeated or not a string");
      if (value.length > MAX_PARAM) throw new OAuthError("invalid_request", "Malformed parameters");
      fields[key] = value;
    } else {
      if (value.length > MAX_REPEATED_PARAM) throw new OAuthError("invalid_request", "Malformed parameters");
      if (prev === undefined) fields[key] = value;
      else if (!Array.isArray(prev)) fields[key] = [prev, value];
      else if (prev.length < MAX_REPEATS) prev.push(value);
      else throw new OAuthError("invalid_request", "Malformed parameters");
    }
  }
  return fields as FormOf<S>;
}

/** A `many` parameter as a list. */
export const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
