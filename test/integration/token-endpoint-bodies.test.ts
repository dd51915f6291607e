import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import { rawPost } from "../helpers.ts";
import { basic, formBody, verifyAgainstJwks } from "./oauth-helpers.ts";
import { viewerWithToken } from "./token-helpers.ts";

/**
 * The token exchange and the token endpoints through the Worker's fetch, with the bodies and
 * headers a client can send them: declared and chunked lengths, over the body limit, content
 * types, malformed JSON and forms. Each answer's status, error code and shared headers.
 */

let sa: { id: string };
let secret: string;

beforeAll(async () => {
  ({ sa, secret } = await viewerWithToken());
});

async function send(request: Request) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(request, env, ctx);
  await waitOnExecutionContext(ctx);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
}

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

const post = (path: string, body: string | ReadableStream, headers: Record<string, string>) => rawPost(path, body, headers, "endpoint-bodies-0001");
const json = { "content-type": "application/json" };
const form = { "content-type": "application/x-www-form-urlencoded" };
const EXCHANGE = "/api/auth/access-tokens/jwt";
const TOKEN = "/oauth/token";

/** What, the request, and the answer: its status and (for an error) its code, problem+json `code` or RFC 6749 `error`. */
type Case = [string, () => Request, number, string?];
const cases = (): Case[] => [
  ["exchange", () => post(EXCHANGE, JSON.stringify({ access_token: secret }), json), 200],
  ["exchange with scope and duration", () => post(EXCHANGE, JSON.stringify({ access_token: secret, duration_seconds: 60, scope: "service-accounts.read" }), json), 200],
  ["exchange, unknown token", () => post(EXCHANGE, JSON.stringify({ access_token: `sat_${"A".repeat(40)}` }), json), 401, "unauthenticated"],
  ["exchange, malformed JSON", () => post(EXCHANGE, "{", json), 400, "malformed_json"],
  ["exchange, not JSON", () => post(EXCHANGE, "access_token=x", form), 415, "unsupported_media_type"],
  ["exchange, unknown field", () => post(EXCHANGE, JSON.stringify({ access_token: secret, admin: true }), json), 400, "validation_failed"],
  ["exchange, scope it does not hold", () => post(EXCHANGE, JSON.stringify({ access_token: secret, scope: "orgs.delete" }), json), 400, "invalid_scope"],
  ["exchange, over the body limit", () => post(EXCHANGE, JSON.stringify({ access_token: big }), json), 413, "payload_too_large"],
  ["exchange, streamed over the body limit", () => post(EXCHANGE, stream(JSON.stringify({ access_token: big })), json), 413, "payload_too_large"],
  ["exchange, streamed", () => post(EXCHANGE, stream(JSON.stringify({ access_token: secret })), json), 200],
  ["exchange, empty body", () => post(EXCHANGE, "", json), 400, "malformed_json"],
  ["exchange, no content type", () => post(EXCHANGE, JSON.stringify({ access_token: secret }), {}), 415, "unsupported_media_type"],
  ["exchange, +json content type", () => post(EXCHANGE, JSON.stringify({ access_token: secret }), { "content-type": "application/vnd.api+json; charset=utf-8" }), 200],
  ["exchange, malformed Content-Length", () => post(EXCHANGE, JSON.stringify({ access_token: secret }), { ...json, "content-length": "12a" }), 400, "bad_request"],
  ["exchange, declared length over the limit", () => post(EXCHANGE, JSON.stringify({ access_token: secret }), { ...json, "content-length": "70000" }), 413, "payload_too_large"],
  ["client_secret_basic", () => post(TOKEN, formBody({ grant_type: "client_credentials" }), { ...form, authorization: basic(sa.id, secret) }), 200],
  ["client_secret_basic, with a query string", () => post(`${TOKEN}?via=app`, formBody({ grant_type: "client_credentials" }), { ...form, authorization: basic(sa.id, secret) }), 200],
  ["client_secret_post on the m2m alias", () => post("/api/m2m/oauth/token", formBody({ grant_type: "client_credentials", client_id: sa.id, client_secret: secret }), form), 200],
  ["wrong secret", () => post(TOKEN, formBody({ grant_type: "client_credentials" }), { ...form, authorization: basic(sa.id, `sat_${"B".repeat(40)}`) }), 401, "invalid_client"],
  ["no client authentication", () => post(TOKEN, formBody({ grant_type: "client_credentials" }), form), 401, "invalid_client"],
  ["two client authentications", () => post(TOKEN, formBody({ grant_type: "client_credentials", client_id: sa.id, client_secret: secret }), { ...form, authorization: basic(sa.id, secret) }), 400, "invalid_request"],
  ["JSON instead of a form", () => post(TOKEN, JSON.stringify({ grant_type: "client_credentials" }), json), 400, "invalid_request"],
  ["unsupported grant", () => post(TOKEN, formBody({ grant_type: "password" }), form), 400, "unsupported_grant_type"],
  ["repeated parameter", () => post(TOKEN, formBody({ grant_type: ["client_credentials", "client_credentials"] }), form), 400, "invalid_request"],
  ["form over the body limit", () => post(TOKEN, formBody({ grant_type: "client_credentials", scope: big }), form), 413, "invalid_request"],
  ["form streamed", () => post(TOKEN, stream(formBody({ grant_type: "client_credentials" })), { ...form, authorization: basic(sa.id, secret) }), 200],
  ["form, declared length over the limit", () => post(TOKEN, formBody({ grant_type: "client_credentials" }), { ...form, "content-length": "70000" }), 413, "invalid_request"],
  ["form with a charset", () => post(TOKEN, formBody({ grant_type: "client_credentials" }), { "content-type": "application/x-www-form-urlencoded; charset=UTF-8", authorization: basic(sa.id, secret) }), 200],
  ["form with percent-encoding and +", () => post(TOKEN, `grant_type=client%5Fcredentials&scope=service-accounts.read+service-accounts.read`, { ...form, authorization: basic(sa.id, secret) }), 200],
  ["token exchange grant", () => post(TOKEN, formBody({ grant_type: "urn:ietf:params:oauth:grant-type:token-exchange", subject_token: secret, subject_token_type: "urn:ietf:params:oauth:token-type:access_token" }), form), 200],
];

describe("the exchange and token endpoints, by body", () => {
  it("answers each request with its status, error code and the shared headers", async () => {
    for (const [what, make, status, code] of cases()) {
      const res = await send(make());
      const msg = `${what}: ${res.status} ${res.text.slice(0, 200)}`;
      expect(res.status, msg).toBe(status);
      expect(res.headers.get("x-request-id"), msg).toBe("endpoint-bodies-0001");
      expect(res.headers.get("x-content-type-options"), msg).toBe("nosniff");
      expect(res.headers.get("cache-control"), msg).toBe("no-store");
      const oauth = !what.startsWith("exchange");
      if (status !== 200) {
        expect(oauth ? res.json.error : res.json.code, msg).toBe(code);
        continue;
      }
      expect(res.headers.get("content-type"), msg).toMatch(/^application\/json/);
      const jwt = (res.json.jwt ?? res.json.access_token) as string;
      const { payload, protectedHeader } = await verifyAgainstJwks(jwt);
      expect(payload.sub, msg).toBe(sa.id);
      expect(protectedHeader.typ, msg).toBe("at+jwt");
      if (oauth) {
        expect(res.headers.get("pragma"), msg).toBe("no-cache");
        expect(res.json.token_type, msg).toBe("Bearer");
      } else expect(Object.keys(res.json), msg).toEqual(["jwt"]);
    }
  });

  it("gives a request without a sane x-request-id its own, the one its error body quotes", async () => {
    const res = await send(post(EXCHANGE, "{", { ...json, "x-request-id": "bad id" }));
    expect(res.status).toBe(400);
    expect(res.headers.get("x-request-id")).toMatch(/^req_[0-9a-f-]{36}$/);
    expect(res.json.requestId).toBe(res.headers.get("x-request-id"));
  });
});
