/** What every response of Keyward shares. */

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** The request id of a request: the caller's `x-request-id` when sane, else a fresh one. */
export function requestIdFor(incoming: string | null | undefined): string {
  // A request id needs uniqueness, not secrecy: the runtime's UUID is the cheapest per request.
  return incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : `req_${crypto.randomUUID()}`;
}

/** Adds what every response carries to a response's `headers` (and returns them): its request id and the security headers. */
export function withSecurityHeaders(requestId: string, headers: Record<string, string>): Record<string, string> {
  headers["x-request-id"] = requestId;
  headers["x-content-type-options"] = "nosniff";
  headers["referrer-policy"] = "no-referrer";
  headers["x-frame-options"] = "DENY";
  return headers;
}

/** The media type of a Content-Type header, lowercased, without parameters. */
export const mediaType = (header: string | null | undefined) => (header ?? "").split(";")[0]!.trim().toLowerCase();
