import { exports } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { tokenSource, TokenSourceError, type TokenSourceOptions } from "../../src/client/token-source.ts";
import { createKeywardVerifier } from "../../src/verify/index.ts";
import { platformRoot } from "../helpers.ts";
import { API_AUDIENCE, ISSUER, newClient, newKeyClient, type Client } from "../integration/oauth-helpers.ts";

/**
 * keyward/client's tokenSource (issue 21) against the Worker (every grant it can serve here, with
 * the requests counted), and against scripted answers for what the Worker does not answer on
 * demand (429 with Retry-After, 5xx, network failures).
 */

/** The Worker's default export as the network, counting requests by path. */
function countingWorker() {
  const counts = new Map<string, number>();
  const fetchImpl: typeof fetch = async (input, init) => {
    const req = new Request(input as RequestInfo, init);
    const path = new URL(req.url).pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    return exports.default.fetch(req);
  };
  return { fetch: fetchImpl, counts };
}

const verifier = (audience: string = ISSUER) => createKeywardVerifier({ issuer: ISSUER, audience, fetch: (i, init) => exports.default.fetch(new Request(i as RequestInfo, init)) });
const flush = () => new Promise((r) => setTimeout(r, 50));

let root: { id: string; token: string };
let client: Client;
beforeAll(async () => {
  root = await platformRoot();
  client = await newClient(root.token, { roles: [{ role: "viewer" }] });
});

describe("tokenSource against the Worker", () => {
  it("access token exchange: 10 concurrent callers, 1 request; the JWT verifies; cached until refreshAt of its lifetime, then refreshed ahead of expiry", async () => {
    const net = countingWorker();
    let clock = Date.now();
    const source = tokenSource({ baseUrl: ISSUER, grant: { type: "access_token", accessToken: client.token, scope: "orgs.read" }, fetch: net.fetch, now: () => clock });
    const jwts = await Promise.all(Array.from({ length: 10 }, () => source.getToken()));
    expect(new Set(jwts).size).toBe(1);
    expect(net.counts.get("/api/auth/access-tokens/jwt")).toBe(1);
    const claims = await verifier().verify(jwts[0]!);
    expect(claims.sub).toBe(client.account.id);
    expect(claims.scopes).toEqual(["orgs.read"]);
    const lifetime = claims.exp - claims.iat!;
    // Before 0.8 of the lifetime: the cached JWT, no request.
    clock += lifetime * 790;
    expect(await source.getToken()).toBe(jwts[0]);
    expect(net.counts.get("/api/auth/access-tokens/jwt")).toBe(1);
    // Past it: still the current JWT at once, and one refresh behind it for all callers.
    clock += lifetime * 20;
    const during = await Promise.all(Array.from({ length: 5 }, () => source.getToken()));
    expect(during.every((j) => j === jwts[0])).toBe(true);
    // The new JWT is handed out once the refresh lands; callers meanwhile start no other request.
    await vi.waitFor(async () => expect(await source.getToken()).not.toBe(jwts[0]), { timeout: 10_000, interval: 20 });
    expect(net.counts.get("/api/auth/access-tokens/jwt")).toBe(2);
    // invalidate(): the next call fetches.
    source.invalidate();
    await source.getToken();
    expect(net.counts.get("/api/auth/access-tokens/jwt")).toBe(3);
  });

  it("an expired cached JWT is never handed out: the caller waits for the new one", async () => {
    const net = countingWorker();
    let clock = Date.now();
    const source = tokenSource({ baseUrl: ISSUER, grant: { type: "access_token", accessToken: client.token, durationSeconds: 60 }, fetch: net.fetch, now: () => clock, refreshAt: 0.5 });
    const first = await source.getToken();
    clock += 60_000;
    const second = await source.getToken();
    expect(second).not.toBe(first);
    expect(net.counts.get("/api/auth/access-tokens/jwt")).toBe(2);
  });

  it("client_credentials with client_secret_basic, and an audience", async () => {
    const net = countingWorker();
    const source = tokenSource({ baseUrl: ISSUER, grant: { type: "client_credentials", clientId: client.account.id, clientSecret: client.token, audience: API_AUDIENCE }, fetch: net.fetch });
    const [a, b] = await Promise.all([source.getToken(), source.getToken()]);
    expect(a).toBe(b);
    expect(net.counts.get("/oauth/token")).toBe(1);
    const claims = await verifier(API_AUDIENCE).verify(a!);
    expect(claims.sub).toBe(client.account.id);
  });

  it("client_credentials with private_key_jwt (a fresh assertion per request)", async () => {
    const keyClient = await newKeyClient(root.token, "ES256", "jwk");
    const net = countingWorker();
    const source = tokenSource({ baseUrl: ISSUER, grant: { type: "private_key_jwt", clientId: keyClient.clientId, privateKey: keyClient.privateKey, alg: "ES256", kid: keyClient.kid }, fetch: net.fetch });
    const jwt = await source.getToken();
    expect((await verifier().verify(jwt)).sub).toBe(keyClient.clientId);
    source.invalidate();
    // A second request needs a second assertion (the jti is used once).
    expect(await source.getToken()).not.toBe(jwt);
    expect(net.counts.get("/oauth/token")).toBe(2);
  });

  it("a refused grant fails at once (no retry on 4xx), with Keyward's code and without the secret", async () => {
    const net = countingWorker();
    const wrong = `${client.token.slice(0, -6)}AAAAAA`;
    const bad = tokenSource({ baseUrl: ISSUER, grant: { type: "client_credentials", clientId: client.account.id, clientSecret: wrong }, fetch: net.fetch });
    const err = (await bad.getToken().catch((e: unknown) => e)) as TokenSourceError;
    expect(err).toBeInstanceOf(TokenSourceError);
    expect(err.status).toBe(401);
    expect(err.code).toBe("invalid_client");
    expect(err.message).not.toContain(wrong);
    expect(net.counts.get("/oauth/token")).toBe(1);
    const exchange = tokenSource({ baseUrl: ISSUER, grant: { type: "access_token", accessToken: wrong }, fetch: net.fetch });
    const e2 = (await exchange.getToken().catch((e: unknown) => e)) as TokenSourceError;
    expect(e2.status).toBe(401);
    expect(e2.message).not.toContain(wrong);
    expect(`${e2.message} ${e2.stack}`).not.toContain(wrong.slice(4));
  });
});

/** Scripted answers, one per request, recording what was sent. */
function scripted(answers: (() => Response | Promise<Response>)[]) {
  const sent: Request[] = [];
  const fetchImpl: typeof fetch = async (input, init) => {
    sent.push(new Request(input as RequestInfo, init));
    const next = answers.shift();
    if (!next) throw new Error("no more answers");
    return next();
  };
  return { fetch: fetchImpl, sent };
}

const fakeJwt = (lifetime = 300) => {
  const iat = Math.floor(Date.now() / 1000);
  return `${jose.base64url.encode(JSON.stringify({ alg: "ES256", typ: "at+jwt" }))}.${jose.base64url.encode(JSON.stringify({ iat, exp: iat + lifetime }))}.sig`;
};
const okJwt = () => Response.json({ jwt: fakeJwt() });

describe("tokenSource retries", () => {
  const base = (net: { fetch: typeof fetch }, delays: number[], extra: Partial<TokenSourceOptions> = {}): TokenSourceOptions => ({
    baseUrl: "https://keyward.example.test",
    grant: { type: "access_token", accessToken: "sat_secret0000000000000000000000000000000" },
    fetch: net.fetch,
    sleep: async (ms) => {
      delays.push(ms);
    },
    random: () => 0.5,
    ...extra,
  });

  it("429 and 5xx are retried, Retry-After (seconds or a date) first, else exponential backoff with jitter, capped", async () => {
    const delays: number[] = [];
    const net = scripted([
      () => new Response("{}", { status: 429, headers: { "retry-after": "2" } }),
      () => new Response("{}", { status: 503 }),
      () => new Response("{}", { status: 502, headers: { "retry-after": new Date(Date.now() + 30_000).toUTCString() } }),
      okJwt,
    ]);
    const jwt = await tokenSource(base(net, delays, { maxDelayMs: 5_000 })).getToken();
    expect(jwt.split(".")).toHaveLength(3);
    expect(delays).toEqual([2000, 0.5 * 250 * 2, 5000]);
    expect(net.sent).toHaveLength(4);
  });

  it("attempts are bounded: the last error is thrown with its status", async () => {
    const delays: number[] = [];
    const net = scripted(Array.from({ length: 3 }, () => () => Response.json({ code: "internal_error" }, { status: 500 })));
    const err = (await tokenSource(base(net, delays, { maxAttempts: 3 })).getToken().catch((e: unknown) => e)) as TokenSourceError;
    expect(err).toBeInstanceOf(TokenSourceError);
    expect(err.status).toBe(500);
    expect(err.code).toBe("internal_error");
    expect(net.sent).toHaveLength(3);
    expect(delays).toHaveLength(2);
  });

  it("a network failure is retried; its message names no secret", async () => {
    const delays: number[] = [];
    const net = scripted([
      () => {
        throw new TypeError("connect ECONNREFUSED sat_secret0000000000000000000000000000000");
      },
      okJwt,
    ]);
    await tokenSource(base(net, delays)).getToken();
    expect(net.sent).toHaveLength(2);
    const down = scripted([
      () => {
        throw new TypeError("sat_secret0000000000000000000000000000000");
      },
    ]);
    const err = (await tokenSource(base(down, [], { maxAttempts: 1 })).getToken().catch((e: unknown) => e)) as Error;
    expect(err.message).toContain("could not be reached");
    expect(err.message).not.toContain("sat_secret");
  });

  it("a failed background refresh keeps the current JWT and is tried again on the next call", async () => {
    let clock = Date.now();
    const net = scripted([okJwt, () => new Response("{}", { status: 503 }), okJwt]);
    const source = tokenSource(base(net, [], { now: () => clock, maxAttempts: 1 }));
    const first = await source.getToken();
    clock += 250_000;
    expect(await source.getToken()).toBe(first);
    await flush();
    expect(await source.getToken()).toBe(first);
    await flush();
    expect(net.sent).toHaveLength(3);
  });

  it("the jwt-bearer grant sends the external token fresh per request, as RFC 7523 says", async () => {
    let n = 0;
    const net = scripted([() => Response.json({ access_token: fakeJwt(), token_type: "Bearer", expires_in: 300 })]);
    const source = tokenSource({
      baseUrl: "https://keyward.example.test/",
      grant: { type: "jwt_bearer", assertion: () => `external-${++n}`, clientId: "sa_1", scope: "orgs.read", audience: ["https://a.test", "https://b.test"] },
      fetch: net.fetch,
    });
    await source.getToken();
    const req = net.sent[0]!;
    expect(req.url).toBe("https://keyward.example.test/oauth/token");
    const body = new URLSearchParams(await req.text());
    expect(body.get("grant_type")).toBe("urn:ietf:params:oauth:grant-type:jwt-bearer");
    expect(body.get("assertion")).toBe("external-1");
    expect(body.get("client_id")).toBe("sa_1");
    expect(body.getAll("audience")).toEqual(["https://a.test", "https://b.test"]);
  });

  it("refuses a refreshAt outside (0, 1]", () => {
    for (const refreshAt of [0, 1.5, -1]) expect(() => tokenSource({ baseUrl: "https://k.test", grant: { type: "access_token", accessToken: "x" }, refreshAt })).toThrow(TypeError);
  });
});
