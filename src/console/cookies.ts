import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { CookieOptions } from "hono/utils/cookie";
import type { ConsoleContext } from "./context.ts";

export const SESSION_COOKIE = "kw_session";
export const FLASH_COOKIE = "kw_flash";

/** Browsers treat loopback as a secure context, but a Secure cookie is not sent over plain http there by every client. */
const isLocal = (c: ConsoleContext) => {
  const host = new URL(c.req.url).hostname;
  return host === "localhost" || host === "127.0.0.1" || host === "[::1]";
};

/** HttpOnly, SameSite=Strict, Path=/console, Secure unless the request is to localhost. */
export const cookieOptions = (c: ConsoleContext, maxAge?: number): CookieOptions => ({
  path: "/console",
  httpOnly: true,
  sameSite: "Strict",
  secure: !isLocal(c),
  ...(maxAge !== undefined ? { maxAge } : {}),
});

export const readCookie = (c: ConsoleContext, name: string): string | undefined => getCookie(c, name);
export const writeCookie = (c: ConsoleContext, name: string, value: string, maxAge: number) => setCookie(c, name, value, cookieOptions(c, maxAge));
export const clearCookie = (c: ConsoleContext, name: string) => deleteCookie(c, name, cookieOptions(c));
