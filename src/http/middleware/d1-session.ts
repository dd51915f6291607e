import type { MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { DomainError } from "../../domain/shared/errors.ts";
import type { AppEnv } from "../app-env.ts";

/** The response header carrying the D1 bookmark; send it back (same name) to read your own writes. */
export const BOOKMARK_HEADER = "x-keyward-d1-bookmark";
/** The console carries the bookmark in this cookie (same meaning as the header). */
export const BOOKMARK_COOKIE = "keyward_d1_bookmark";

const READS = new Set(["GET", "HEAD", "OPTIONS"]);
/** A D1 bookmark is an opaque token of hex groups and dashes; anything else is refused before D1 sees it. */
const BOOKMARK = /^[0-9a-f-]{1,256}$/i;

/** The bookmark a request carries (header first, then the console cookie), or null; throws bad_request when malformed. */
export function presentedBookmark(header: string | undefined, cookie: string | undefined): string | null {
  const value = header?.trim() || cookie?.trim() || null;
  if (value === null) return null;
  if (!BOOKMARK.test(value)) throw new DomainError("bad_request", `${BOOKMARK_HEADER} is not a D1 bookmark: send back the value a response gave, or nothing`);
  return value;
}

/**
 * Management requests run in one D1 session (Sessions API). A read without a bookmark may be
 * served by any replica ("first-unconstrained"); a write starts at the primary ("first-primary");
 * a request carrying a bookmark reads a database at least as new as that bookmark, so a caller
 * sending back the bookmark of its write reads that write. Every response carries the session's
 * latest bookmark.
 */
export function d1Sessions(options: { cookie?: boolean } = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const bookmark = presentedBookmark(c.req.header(BOOKMARK_HEADER), options.cookie ? getCookie(c, BOOKMARK_COOKIE) : undefined);
    const session = c.env.DB.withSession(bookmark ?? (READS.has(c.req.method) ? "first-unconstrained" : "first-primary"));
    c.set("d1Session", session);
    await next();
    const latest = session.getBookmark() ?? bookmark;
    if (latest === null) return;
    try {
      c.res.headers.set(BOOKMARK_HEADER, latest);
      if (options.cookie) setCookie(c, BOOKMARK_COOKIE, latest, { path: "/console", httpOnly: true, secure: true, sameSite: "Lax", maxAge: 3600 });
    } catch {
      // immutable response headers (a passed-through fetch): no bookmark on it
    }
  };
}
