import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import { BASE } from "../helpers.ts";

/** Helpers of the console's route-level tests: sign in (a session cookie), get a page, post a form as a browser would. */

export interface PageRes {
  status: number;
  headers: Headers;
  text: string;
  location: string | null;
}

async function send(request: Request): Promise<PageRes> {
  const res = await exports.default.fetch(request);
  return { status: res.status, headers: res.headers, text: await res.text(), location: res.headers.get("location") };
}

/** The `kw_session=...` pair of a response's Set-Cookie, or null. */
export function sessionCookieOf(res: { headers: Headers }): string | null {
  for (const cookie of res.headers.getSetCookie()) {
    const match = /^kw_session=([^;]*)/.exec(cookie);
    if (match && match[1]) return `kw_session=${match[1]}`;
  }
  return null;
}

/** GET a console page with a cookie (none: signed out). */
export const consoleGet = (path: string, cookie?: string | null, headers: Record<string, string> = {}) =>
  send(new Request(BASE + path, { headers: { ...(cookie ? { cookie } : {}), ...headers }, redirect: "manual" }));

/** POST a form as a page of the console does: same Origin, Sec-Fetch-Site same-origin (override with headers). */
export function consolePost(path: string, cookie: string | null | undefined, fields: Record<string, string | string[]> = {}, headers: Record<string, string> = {}) {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) body.append(name, v);
  return send(
    new Request(BASE + path, {
      method: "POST",
      body,
      headers: { "content-type": "application/x-www-form-urlencoded", origin: BASE, "sec-fetch-site": "same-origin", ...(cookie ? { cookie } : {}), ...headers },
      redirect: "manual",
    }),
  );
}

/** Signs in with a credential; returns the session cookie to send. */
export async function consoleLogin(token: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await consolePost("/console/login", null, { token }, headers);
  expect(res.status, res.text).toBe(303);
  const cookie = sessionCookieOf(res);
  expect(cookie, "a session cookie").not.toBeNull();
  return cookie!;
}

/** A 303 to `where` (a prefix of the Location). */
export function expectRedirect(res: PageRes, where: string) {
  expect(res.status, res.text.slice(0, 500)).toBe(303);
  expect(res.location ?? "").toContain(where);
}

/** A page with the status, as HTML. */
export function expectPage(res: PageRes, status = 200) {
  expect(res.status, res.text.slice(0, 2000)).toBe(status);
  expect(res.headers.get("content-type") ?? "").toMatch(/^text\/html/);
  return res.text;
}

/** The flash cookie's message of a redirect. */
export function flashOf(res: { headers: Headers }): string | null {
  for (const cookie of res.headers.getSetCookie()) {
    const match = /^kw_flash=([^;]+)/.exec(cookie);
    if (match) return decodeURIComponent(match[1]!);
  }
  return null;
}

/** Follows a redirect with the cookie (and the flash cookie it set). */
export async function follow(res: PageRes, cookie: string): Promise<PageRes> {
  const flash = res.headers.getSetCookie().find((c) => c.startsWith("kw_flash="))?.split(";")[0];
  return consoleGet(res.location!, flash ? `${cookie}; ${flash}` : cookie);
}

/** Whether the HTML holds a form posting to `action`. */
export const hasFormTo = (html: string, action: string) => html.includes(`action="${action}"`);
