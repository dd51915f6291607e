/** The requests of the hot paths, as the benchmark and the soak send them. */
import { ASSERTION_TYPE } from "./assertions.ts";
import type { LoadRequest } from "./load.ts";
import type { BenchAccount } from "./seed.ts";

export const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

export const basicAuth = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

export const healthzRequest: LoadRequest = { method: "GET", path: "/healthz", headers: {} };

/** POST /api/auth/access-tokens/jwt: an access token for a short-lived JWT. */
export const exchangeRequest = (token: string): LoadRequest => ({
  method: "POST",
  path: "/api/auth/access-tokens/jwt",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ access_token: token }),
});

/** /oauth/token client_credentials with client_secret_basic (the access token is the secret). */
export const basicRequest = (a: BenchAccount): LoadRequest => ({
  method: "POST",
  path: "/oauth/token",
  headers: { "content-type": "application/x-www-form-urlencoded", authorization: basicAuth(a.id, a.token) },
  body: form({ grant_type: "client_credentials" }),
});

/** /oauth/token client_credentials with private_key_jwt. */
export const assertionRequest = (assertion: string): LoadRequest => ({
  method: "POST",
  path: "/oauth/token",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: form({ grant_type: "client_credentials", client_assertion_type: ASSERTION_TYPE, client_assertion: assertion }),
});

/** An authenticated management read: the first page of an org's service accounts. */
export const listAccountsRequest = (org: string, token: string): LoadRequest => ({
  method: "GET",
  path: `/api/v1/orgs/${org}/service-accounts?limit=20`,
  headers: { authorization: `Bearer ${token}` },
});

/** The console's service-account list (a server-rendered page) with a session cookie. */
export const consolePageRequest = (org: string, cookie: string): LoadRequest => ({
  method: "GET",
  path: `/console/orgs/${org}/service-accounts`,
  headers: { cookie },
});

/** Signs in to the console with an access token (as its sign-in form posts); the session cookie. */
export async function consoleSession(base: string, token: string): Promise<string> {
  const res = await fetch(`${base}/console/login`, {
    method: "POST",
    body: form({ token }),
    headers: { "content-type": "application/x-www-form-urlencoded", origin: base, "sec-fetch-site": "same-origin" },
    redirect: "manual",
  });
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith("kw_session="))?.split(";")[0];
  if (res.status !== 303 || !cookie) throw new Error(`console sign-in failed: ${res.status} ${await res.text()}`);
  return cookie;
}
