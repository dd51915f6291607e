import { FLASH_COOKIE, clearCookie, readCookie, writeCookie } from "./cookies.ts";
import type { ConsoleContext } from "./context.ts";

/**
 * One-shot messages after a redirect (post, redirect, get): a short-lived cookie read and cleared
 * by the next page. Never a secret (a new token's secret is rendered in the POST response only).
 */
export interface Flash {
  kind: "success" | "error";
  message: string;
}

const MAX_LENGTH = 300;

/** Redirects (303) with a message for the next page. */
export function redirectWith(c: ConsoleContext, location: string, message: string, kind: Flash["kind"] = "success") {
  writeCookie(c, FLASH_COOKIE, `${kind}:${message.slice(0, MAX_LENGTH)}`, 60);
  return c.redirect(location, 303);
}

/** The pending message, if any; reading it clears it. */
export function takeFlash(c: ConsoleContext): Flash | null {
  const raw = readCookie(c, FLASH_COOKIE);
  if (!raw) return null;
  clearCookie(c, FLASH_COOKIE);
  const [kind, ...rest] = raw.split(":");
  return { kind: kind === "error" ? "error" : "success", message: rest.join(":").slice(0, MAX_LENGTH) };
}
