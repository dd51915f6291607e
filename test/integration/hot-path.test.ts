import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { hotRoute } from "../../src/hot-path.ts";
import worker from "../../src/index.ts";
import { BASE, rawPost } from "../helpers.ts";
import { basic, formBody, verifyAgainstJwks } from "./oauth-helpers.ts";
import { viewerWithToken } from "./token-helpers.ts";

/**
 * The token exchange is served by the hot path (src/hot-path.ts), before the Hono app; with CORS
 * on (or a query string, or a chunked body) the app serves it through the same endpoint. The
 * token endpoints always go through the app. Every request here is sent both ways and the two answers must be the same:
 * status, headers, body.
 */

let sa: { id: string };
let secret: string;

beforeAll(async () => {
  ({ sa, secret } = await viewerWithToken());
});

/** The same bindings with CORS on: the app, not the hot path, serves every request. */
const corsEnv = () => ({ ...env, CORS_ALLOWED_ORIGINS: "https://console.example" });

async function send(request: Request, bindings: typeof env) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(request, bindings, ctx);
  await waitOnExecutionContext(ctx);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
}

const COMPARED_HEADERS = ["content-type", "cache-control", "pragma", "www-authenticate", "retry-after", "x-request-id", "x-content-type-options", "referrer-policy", "x-frame-options"];

const big = "x".repeat(70_000); // over MAX_BODY_BYTES (65536)

function stream(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 16_384) controller.enqueue(bytes.subarray(i, i + 16_384));
      controller.close();
    },
  });
}

type Case = [string, () => Request];

const post = (path: string, body: string | ReadableStream, headers: Record<string, string>) => rawPost(path, body, headers, "hot-path-test-0001");
const json = { "content-type": "application/json" };
const form = { "content-type": "application/x-www-form-urlencoded" };
const cases = (): Case[] => [
  ["exchange", () => post("/api/auth/access-tokens/jwt", JSON.stringify({ access_token: secret }), json)],
  ["exchange with scope and duration", () => post("/api/auth/access-tokens/jwt", JSON.stringify({ access_token: secret, duration_seconds: 60, scope: "service-accounts.read" }), json)],
  ["exchange, unknown token", () => post("/api/auth/access-tokens/jwt", JSON.stringify({ access_token: `sat_${"A".repeat(40)}` }), json)],
  ["exchange, malformed JSON", () => post("/api/auth/access-tokens/jwt", "{", json)],
  ["exchange, not JSON", () => post("/api/auth/access-tokens/jwt", "access_token=x", form)],
  ["exchange, unknown field", () => post("/api/auth/access-tokens/jwt", JSON.stringify({ access_token: secret, admin: true }), json)],
  ["exchange, scope it does not hold", () => post("/api/auth/access-tokens/jwt", JSON.stringify({ access_token: secret, scope: "orgs.delete" }), json)],
  ["exchange, over the body limit", () => post("/api/auth/access-tokens/jwt", JSON.stringify({ access_token: big }), json)],
  ["exchange, streamed over the body limit", () => post("/api/auth/access-tokens/jwt", stream(JSON.stringify({ access_token: big })), json)],
  ["exchange, streamed", () => post("/api/auth/access-tokens/jwt", stream(JSON.stringify({ access_token: secret })), json)],
  ["client_secret_basic", () => post("/oauth/token", formBody({ grant_type: "client_credentials" }), { ...form, authorization: basic(sa.id, secret) })],
  ["client_secret_post on the m2m alias", () => post("/api/m2m/oauth/token", formBody({ grant_type: "client_credentials", client_id: sa.id, client_secret: secret }), form)],
  ["wrong secret", () => post("/oauth/token", formBody({ grant_type: "client_credentials" }), { ...form, authorization: basic(sa.id, `sat_${"B".repeat(40)}`) })],
  ["no client authentication", () => post("/oauth/token", formBody({ grant_type: "client_credentials" }), form)],
  ["two client authentications", () => post("/oauth/token", formBody({ grant_type: "client_credentials", client_id: sa.id, client_secret: secret }), { ...form, authorization: basic(sa.id, secret) })],
  ["JSON instead of a form", () => post("/oauth/token", JSON.stringify({ grant_type: "client_credentials" }), json)],
  ["unsupported grant", () => post("/oauth/token", formBody({ grant_type: "password" }), form)],
  ["repeated parameter", () => post("/oauth/token", formBody({ grant_type: ["client_credentials", "client_credentials"] }), form)],
  ["form over the body limit", () => post("/oauth/token", formBody({ grant_type: "client_credentials", scope: big }), form)],
  ["form streamed", () => post("/oauth/token", stream(formBody({ grant_type: "client_credentials" })), { ...form, authorization: basic(sa.id, secret) })],
  ["exchange, empty body", () => post("/api/auth/access-tokens/jwt", "", json)],
  ["exchange, no content type", () => post("/api/auth/access-tokens/jwt", JSON.stringify({ access_token: secret }), {})],
  ["exchange, +json content type", () => post("/api/auth/access-tokens/jwt", JSON.stringify({ access_token: secret }), { "content-type": "application/vnd.api+json; charset=utf-8" })],
  ["exchange, malformed Content-Length", () => post("/api/auth/access-tokens/jwt", JSON.stringify({ access_token: secret }), { ...json, "content-length": "12a" })],
  ["exchange, declared length over the limit", () => post("/api/auth/access-tokens/jwt", JSON.stringify({ access_token: secret }), { ...json, "content-length": "70000" })],
  ["form, declared length over the limit", () => post("/oauth/token", formBody({ grant_type: "client_credentials" }), { ...form, "content-length": "70000" })],
  ["form with a charset", () => post("/oauth/token", formBody({ grant_type: "client_credentials" }), { "content-type": "application/x-www-form-urlencoded; charset=UTF-8", authorization: basic(sa.id, secret) })],
  ["token exchange grant", () => post("/oauth/token", formBody({ grant_type: "urn:ietf:params:oauth:grant-type:token-exchange", subject_token: secret, subject_token_type: "urn:ietf:params:oauth:token-type:access_token" }), form)],
];

describe("the hot path", () => {
  it("takes exactly a POST to the exchange, and only with CORS off", () => {
    const req = (method: string, path: string, headers: Record<string, string> = { "content-length": "0" }) =>
      new Request(BASE + path, { method, headers, ...(method === "POST" ? { body: "" } : {}) });
    for (const path of ["/api/auth/access-tokens/jwt"]) {
      expect(hotRoute(req("POST", path), env), path).toBeDefined();
      expect(hotRoute(req("POST", path), corsEnv()), `${path} with CORS on`).toBeUndefined();
      expect(hotRoute(req("GET", path), env), `GET ${path}`).toBeUndefined();
      expect(hotRoute(req("POST", `${path}?x=1`), env), `${path} with a query`).toBeUndefined();
      expect(hotRoute(req("POST", `${path}/`), env), `${path}/`).toBeUndefined();
      expect(hotRoute(req("POST", path, {}), env), `${path} without a Content-Length`).toBeUndefined();
      expect(hotRoute(req("POST", path, { "content-length": "0", "transfer-encoding": "chunked" }), env), `${path} chunked`).toBeUndefined();
    }
    for (const path of ["/oauth/token", "/api/m2m/oauth/token", "/oauth/introspect", "/oauth/revoke", "/api/v1/orgs", "/healthz", "/oauth/token2", "/x/oauth/token"]) {
      expect(hotRoute(req("POST", path), env), path).toBeUndefined();
    }
  });

  it("answers every request exactly as the app does (status, headers, body)", async () => {
    for (const [what, make] of cases()) {
      const request = make();
      const exchange = new URL(request.url).pathname === "/api/auth/access-tokens/jwt";
      expect(hotRoute(request, env) !== undefined, `${what}: hot path taken`).toBe(exchange && request.headers.has("content-length"));
      const hot = await send(request, env);
      const app = await send(make(), corsEnv());
      const msg = `${what}: hot ${hot.status} ${hot.text.slice(0, 200)} / app ${app.status} ${app.text.slice(0, 200)}`;
      expect(hot.status, msg).toBe(app.status);
      for (const h of COMPARED_HEADERS) expect(hot.headers.get(h), `${msg} [${h}]`).toBe(app.headers.get(h));
      expect(hot.headers.get("x-request-id"), msg).toBe("hot-path-test-0001");
      if (hot.status !== 200) {
        expect(hot.json, msg).toEqual(app.json);
        continue;
      }
      // Successes differ only in the JWT's jti and times: both verify, with the same claims otherwise.
      const token = (r: typeof hot) => (r.json.jwt ?? r.json.access_token) as string;
      expect(Object.keys(hot.json).sort(), msg).toEqual(Object.keys(app.json).sort());
      const [a, b] = [await verifyAgainstJwks(token(hot)), await verifyAgainstJwks(token(app))];
      const stable = (p: Record<string, unknown>) => ({ ...p, jti: undefined, iat: undefined, exp: (p.exp as number) - (p.iat as number) });
      expect(stable(a.payload), msg).toEqual(stable(b.payload));
      expect(a.payload.jti, msg).not.toBe(b.payload.jti);
      expect({ ...hot.json, jwt: undefined, access_token: undefined }, msg).toEqual({ ...app.json, jwt: undefined, access_token: undefined });
    }
  });

  it("gives a request without a sane x-request-id its own, the one its error body quotes", async () => {
    const res = await send(post("/api/auth/access-tokens/jwt", "{", { ...json, "x-request-id": "bad id" }), env);
    expect(res.status).toBe(400);
    expect(res.headers.get("x-request-id")).toMatch(/^req_[0-9a-f-]{36}$/);
    expect(res.json.requestId).toBe(res.headers.get("x-request-id"));
  });

  it("serves the exchange through the app when a query string keeps it off the hot path", async () => {
    const res = await send(post("/api/auth/access-tokens/jwt?via=app", JSON.stringify({ access_token: secret }), json), env);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    await verifyAgainstJwks(res.json.jwt);
  });
});
