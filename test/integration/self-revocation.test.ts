import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { expectUnauthorized, jwtFor, postForm } from "./oauth-helpers.ts";
import { auditOf, freshOrg, issueOk, tokenRow, viewerAccount } from "./token-helpers.ts";

/**
 * Self-revocation and public leak reports (docs/leaked-tokens.md): DELETE /api/v1/tokens/current,
 * RFC 7009 revocation authenticated by the token itself, and POST /api/v1/leaked-tokens, which
 * answers the same whatever it is given and is limited per IP (LEAK_REPORTS: 10 per 60 s).
 */

const REPORT_LIMIT = 10;

let root: { id: string; token: string };
let O: Awaited<ReturnType<typeof freshOrg>>;

beforeAll(async () => {
  root = await platformRoot();
  O = await freshOrg(root.token);
});

/** A fresh documentation-range address per use, so that tests never share a report counter. */
const freshIp = () => `2001:db8::${crypto.randomUUID().slice(0, 4)}:${crypto.randomUUID().slice(0, 4)}`;
let ip: string;
beforeEach(() => {
  ip = freshIp();
});

async function holder() {
  const sa = await viewerAccount(O.adminToken, O.org.id);
  const issued = await issueOk(O.adminToken, O.org.id, sa.id);
  return { sa, issued, secret: issued.token };
}

const works = async (credential: string) => (await call("GET", "/api/v1/orgs", { token: credential })).status === 200;
const actionsOf = async (id: string) => (await auditOf(id)).map((a) => a.action);
const reportLeak = (body: unknown, from = ip) => call("POST", "/api/v1/leaked-tokens", { body, headers: { "cf-connecting-ip": from } });

describe("DELETE /api/v1/tokens/current", () => {
  it("an access token revokes itself (204), audited as the holder's own act; it and the JWTs minted from it stop working", async () => {
    const h = await holder();
    const jwt = await jwtFor(h.secret);
    expect(await works(jwt)).toBe(true);
    const res = await call("DELETE", "/api/v1/tokens/current", { token: h.secret });
    expectStatus(res, 204);
    expect(res.text).toBe("");
    expectUnauthorized(await call("GET", "/api/v1/orgs", { token: h.secret }));
    expect(await works(jwt), "a JWT minted from it").toBe(false);
    const row = await tokenRow(h.issued.id);
    expect([row!.status, row!.revoked_by]).toEqual(["revoked", h.sa.id]);
    const revoked = (await auditOf(h.issued.id)).find((a) => a.action === "access_token.revoked")!;
    expect([revoked.actor_id, JSON.parse(revoked.details).reason]).toEqual([h.sa.id, "self"]);
    // Once dead, it cannot authenticate the route any more.
    expectUnauthorized(await call("DELETE", "/api/v1/tokens/current", { token: h.secret }));
  });

  it("a JWT revokes its jti only: the JWT dies, its access token and a sibling JWT live", async () => {
    const h = await holder();
    const jwt = await jwtFor(h.secret);
    const sibling = await jwtFor(h.secret);
    expectStatus(await call("DELETE", "/api/v1/tokens/current", { token: jwt }), 204);
    expect(await works(jwt)).toBe(false);
    expect(await works(sibling)).toBe(true);
    expect(await works(h.secret)).toBe(true);
    const jti = JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).jti as string;
    const event = (await auditOf(jti)).find((a) => a.action === "jwt.revoked")!;
    expect([event.actor_id, JSON.parse(event.details).reason]).toEqual([h.sa.id, "self"]);
  });

  it("no credential, or a dead one, is 401 and revokes nothing", async () => {
    expectUnauthorized(await call("DELETE", "/api/v1/tokens/current"));
    expectUnauthorized(await call("DELETE", "/api/v1/tokens/current", { token: generateAccessToken() }));
    expectUnauthorized(await call("DELETE", "/api/v1/tokens/current", { headers: { authorization: "Basic eDp5" } }));
  });

  it("junk bodies, queries and headers change nothing of the answer: 204 with a live token (then it is dead), never a 5xx", async () => {
    const junk: { body?: string; headers?: Record<string, string>; query?: string }[] = [
      { body: '{"token":"x"}', headers: { "content-type": "application/json" } },
      { body: "x".repeat(70_000), headers: { "content-type": "application/json" } },
      { body: "a=b", headers: { "content-type": "application/x-www-form-urlencoded" } },
      { query: "?all=true&accountId=sa_x" },
      { query: "?%ZZ=%00" },
      { headers: { "x-request-id": "<script>", "cf-connecting-ip": "not-an-ip" } },
    ];
    for (const j of junk) {
      const h = await holder();
      const label = JSON.stringify(j).slice(0, 120);
      const res = await call("DELETE", `/api/v1/tokens/current${j.query ?? ""}`, { token: h.secret, body: j.body, headers: j.headers ?? {} });
      expect(res.status, `${label}: ${res.text}`).toBe(204);
      expect(await works(h.secret), label).toBe(false);
    }
  });

  it("attack: another account's token cannot be revoked through it (the path names nothing but the caller)", async () => {
    const victim = await holder();
    const attacker = await holder();
    expectStatus(await call("DELETE", `/api/v1/tokens/current?token=${victim.secret}`, { token: attacker.secret, headers: { "x-token": victim.secret } }), 204);
    expect(await works(victim.secret)).toBe(true);
    expect(await works(attacker.secret)).toBe(false);
    expect((await call("DELETE", `/api/v1/tokens/${victim.issued.id}`, { token: victim.secret })).status).toBe(404);
    expect(await works(victim.secret)).toBe(true);
  });
});

describe("POST /oauth/revoke authenticated by the token itself (RFC 7009)", () => {
  it("an access token without client credentials is revoked (200, empty body); so are the JWTs minted from it", async () => {
    const h = await holder();
    const jwt = await jwtFor(h.secret);
    const res = await postForm("/oauth/revoke", { token: h.secret });
    expectStatus(res, 200);
    expect(res.text).toBe("");
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    expect(await works(h.secret)).toBe(false);
    expect(await works(jwt)).toBe(false);
    const revoked = (await auditOf(h.issued.id)).find((a) => a.action === "access_token.revoked")!;
    expect([revoked.actor_id, JSON.parse(revoked.details).reason]).toEqual([h.sa.id, "self"]);
  });

  it("a JWT is revoked by its jti; its access token lives", async () => {
    const h = await holder();
    const jwt = await jwtFor(h.secret);
    expectStatus(await postForm("/oauth/revoke", { token: jwt, token_type_hint: "access_token" }), 200);
    expect(await works(jwt)).toBe(false);
    expect(await works(h.secret)).toBe(true);
  });

  it("unknown, garbage, missing or dead tokens: the same 200 with nothing revoked", async () => {
    const h = await holder();
    for (const token of [generateAccessToken(), "garbage", "", "a.b.c"]) {
      const res = await postForm("/oauth/revoke", { token });
      expect([res.status, res.text], token).toEqual([200, ""]);
    }
    expect([(await postForm("/oauth/revoke", {})).status]).toEqual([200]);
    expect(await works(h.secret)).toBe(true);
  });

  it("a client_id that is not the token's account revokes nothing; its own does", async () => {
    const h = await holder();
    const other = await holder();
    expectStatus(await postForm("/oauth/revoke", { token: h.secret, client_id: other.sa.id }), 200);
    expect(await works(h.secret)).toBe(true);
    expectStatus(await postForm("/oauth/revoke", { token: h.secret, client_id: h.sa.id }), 200);
    expect(await works(h.secret)).toBe(false);
  });
});

describe("POST /api/v1/leaked-tokens (no authentication)", () => {
  it("answers exactly the same for a live token, an unknown one, garbage, a dead one and a JWT; revokes the live ones with access_token.leaked", async () => {
    const live = await holder();
    const dead = await holder();
    expectStatus(await call("DELETE", "/api/v1/tokens/current", { token: dead.secret }), 204);
    const jwtHolder = await holder();
    const jwt = await jwtFor(jwtHolder.secret);
    const answers = [];
    for (const token of [live.secret, generateAccessToken(), "garbage", `${live.secret}x`, dead.secret, jwt]) {
      const res = await reportLeak({ token, url: "https://paste.example/abc" }, freshIp());
      answers.push({ status: res.status, text: res.text, type: res.headers.get("content-type"), length: res.headers.get("content-length") });
    }
    expect(new Set(answers.map((a) => JSON.stringify(a))).size, JSON.stringify(answers)).toBe(1);
    expect(answers[0]!.status).toBe(202);
    expect(JSON.parse(answers[0]!.text)).toEqual({ received: true });

    expect(await works(live.secret)).toBe(false);
    const leaked = (await auditOf(live.issued.id)).find((a) => a.action === "access_token.leaked")!;
    expect(JSON.parse(leaked.details)).toEqual({ accountId: live.sa.id, hint: live.issued.hint, reporter: "report", source: null, url: "https://paste.example/abc" });
    expect(leaked.actor_id).toBe("leak-report");
    expect(await actionsOf(dead.issued.id)).not.toContain("access_token.leaked");
    expect(await works(jwt), "a reported JWT is revoked by its jti").toBe(false);
    expect(await works(jwtHolder.secret), "its access token was not reported").toBe(true);
    const jti = JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).jti as string;
    expect(JSON.parse((await auditOf(jti)).find((a) => a.action === "jwt.revoked")!.details)).toMatchObject({ reason: "leaked", reporter: "report" });
  });

  it("the answer says nothing about the account: no id, org or hint of it anywhere in the response", async () => {
    const h = await holder();
    const res = await reportLeak({ token: h.secret });
    expectStatus(res, 202);
    const everything = res.text + JSON.stringify([...res.headers]);
    for (const fact of [h.sa.id, O.org.id, h.issued.id, h.issued.hint]) expect(everything).not.toContain(fact);
  });

  it("bad bodies are problems and revoke nothing", async () => {
    const h = await holder();
    for (const body of [{}, { token: "" }, { token: h.secret, extra: 1 }, { token: 5 }, [h.secret]]) {
      const res = await reportLeak(body, freshIp());
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.code).toBe("validation_failed");
    }
    expect((await reportLeak("{nope", freshIp())).json.code).toBe("malformed_json");
    const text = await call("POST", "/api/v1/leaked-tokens", { body: h.secret, headers: { "content-type": "text/plain", "cf-connecting-ip": freshIp() } });
    expect(text.status).toBe(415);
    expect(await works(h.secret)).toBe(true);
  });

  it("is limited per IP: within 2 x limit + 1 reports one is refused with 429 and Retry-After (never before the limit); another IP is served", async () => {
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i <= 2 * REPORT_LIMIT; i++) {
      const res = await reportLeak({ token: generateAccessToken() });
      if (res.status === 429) {
        expect(i, "refused before the limit").toBeGreaterThanOrEqual(REPORT_LIMIT);
        limited = res;
        break;
      }
      expectStatus(res, 202);
    }
    expect(limited, "no 429 within 2 x limit + 1 reports").toBeDefined();
    expect(limited!.headers.get("content-type")).toBe("application/problem+json");
    expect(limited!.json.code).toBe("rate_limited");
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThan(0);
    // A live token reported over the limit is not revoked: nothing is looked up.
    const h = await holder();
    expect((await reportLeak({ token: h.secret })).status).toBe(429);
    expect(await works(h.secret)).toBe(true);
    expectStatus(await reportLeak({ token: generateAccessToken() }, freshIp()), 202);
  });

  it("the limiter counts per address only when it is bound: without LEAK_REPORTS nothing is limited", async () => {
    const bindings = env as unknown as Record<string, unknown>;
    const saved = bindings.LEAK_REPORTS;
    bindings.LEAK_REPORTS = undefined;
    try {
      for (let i = 0; i < 2 * REPORT_LIMIT + 2; i++) expectStatus(await reportLeak({ token: generateAccessToken() }), 202);
    } finally {
      bindings.LEAK_REPORTS = saved;
    }
  });
});
