import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { call, expectStatus, unique } from "../helpers.ts";
import { auditRows, authStatus, expectProblem, expectUnauthenticated } from "./registry-helpers.ts";

/** BOOTSTRAP_SECRET as vitest.config.ts sets it for the tests. */
const SECRET = "test-bootstrap-secret-0123456789";

/**
 * The database is shared with other tests and may already be bootstrapped: forget the bootstrap
 * marker and the root account it made, so that each test starts from an unbootstrapped platform.
 */
async function resetBootstrap() {
  await env.DB.batch([
    env.DB.prepare("delete from system_state where key = 'bootstrap'"),
    env.DB.prepare("delete from service_accounts where name_key = '/root'"),
  ]);
}

const bootstrap = (authorization?: string) =>
  call("POST", "/api/v1/bootstrap", { headers: authorization === undefined ? {} : { authorization } });

describe("POST /api/v1/bootstrap", () => {
  beforeEach(resetBootstrap);

  it("refuses a missing or wrong secret with 401 and creates nothing", async () => {
    for (const authorization of [undefined, "", "Bearer", `Bearer ${SECRET}x`, `Bearer ${SECRET.slice(0, -1)}`, `Basic ${btoa(`root:${SECRET}`)}`, SECRET, "Bearer wrong-secret"]) {
      const res = await bootstrap(authorization);
      expectUnauthenticated(res);
      expect(res.text, "the secret is never echoed").not.toContain(SECRET);
    }
    const marker = await env.DB.prepare("select count(*) as n from system_state where key = 'bootstrap'").first<{ n: number }>();
    expect(marker?.n).toBe(0);
    const rootRows = await env.DB.prepare("select count(*) as n from service_accounts where name_key = '/root'").first<{ n: number }>();
    expect(rootRows?.n).toBe(0);
  });

  it("with the right secret creates the root account once and returns a working token", async () => {
    const res = await bootstrap(`Bearer ${SECRET}`);
    expectStatus(res, 201);
    const { account, token } = res.json;
    expect(account.id, res.text).toMatch(/^sa_/);
    expect(account.orgId, res.text).toBeNull();
    expect(account.name).toBe("root");
    expect(account.status).toBe("active");
    expect(account.expiresAt).toBeNull();
    expect(token.token, res.text).toMatch(/^sat_[0-9A-Za-z]{36,}$/);
    expect(token.id).toMatch(/^tok_/);
    expect(token.accountId).toBe(account.id);
    expect(token.status).toBe("active");
    expect(token.hint.startsWith(token.token.slice(0, 8))).toBe(true);
    expect(res.text).not.toContain(SECRET);

    // The token is a platform root: it creates an org and then works inside it.
    const slug = unique("boot");
    const org = await call("POST", "/api/v1/orgs", { token: token.token, body: { slug, name: "Bootstrapped" } });
    expectStatus(org, 201);
    const sa = await call("POST", `/api/v1/orgs/${org.json.id}/service-accounts`, { token: token.token, body: { name: "first-bot" } });
    expectStatus(sa, 201);
    expect(sa.json.createdBy).toBe(account.id);

    const marker = await env.DB.prepare("select value from system_state where key = 'bootstrap'").first<{ value: string }>();
    expect(marker?.value).toBe(account.id);
    expect((await auditRows(account.id)).map((e) => e.action)).toContain("platform.bootstrapped");

    // A second bootstrap is refused, and the first token keeps working.
    expectProblem(await bootstrap(`Bearer ${SECRET}`), 409, "already_bootstrapped");
    // A wrong secret is still a 401 afterwards: nothing about the state leaks without the secret.
    expectUnauthenticated(await bootstrap("Bearer wrong-secret"));
    expectStatus(await authStatus(token.token), 200);
    const rootRows = await env.DB.prepare("select count(*) as n from service_accounts where name_key = '/root'").first<{ n: number }>();
    expect(rootRows?.n).toBe(1);
  });

  it("the body is ignored and the scheme is case-insensitive", async () => {
    const res = await call("POST", "/api/v1/bootstrap", { headers: { authorization: `bearer ${SECRET}` }, body: { name: "evil", platformPermissions: [] } });
    expectStatus(res, 201);
    expect(res.json.account.name).toBe("root");
  });

  it("5 concurrent bootstraps: exactly one 201 and four 409 already_bootstrapped", async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => bootstrap(`Bearer ${SECRET}`)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses, results.map((r) => `${r.status}: ${r.text}`).join("\n")).toEqual([201, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) expectProblem(r, 409, "already_bootstrapped");
    const winner = results.find((r) => r.status === 201)!;
    const rows = await env.DB.prepare("select id from service_accounts where name_key = '/root'").all<{ id: string }>();
    expect(rows.results.map((r) => r.id)).toEqual([winner.json.account.id]);
    const marker = await env.DB.prepare("select value from system_state where key = 'bootstrap'").first<{ value: string }>();
    expect(marker?.value).toBe(winner.json.account.id);
    expectStatus(await authStatus(winner.json.token.token), 200);
  });
});
