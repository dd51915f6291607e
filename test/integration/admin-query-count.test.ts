import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.ts";
import { BASE, call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";

interface D1Log {
  statements: string[];
  /** Round trips to D1: a batch is one, a statement run alone is one. */
  trips: number;
}

/** env with a D1 binding that records every statement and round trip (sessions included); the statements stay the runtime's own. */
function countingEnv(log: D1Log) {
  const executions = ["all", "first", "run", "raw"] as const;
  const counted = (stmt: D1PreparedStatement): D1PreparedStatement => {
    const bind = stmt.bind.bind(stmt);
    for (const name of executions) {
      const run = (stmt[name] as (...a: unknown[]) => unknown).bind(stmt);
      Object.defineProperty(stmt, name, { value: (...a: unknown[]) => ((log.trips += 1), run(...a)) });
    }
    Object.defineProperty(stmt, "bind", { value: (...a: unknown[]) => counted(bind(...a)) });
    return stmt;
  };
  const wrap = <T extends { prepare(q: string): D1PreparedStatement; batch(s: D1PreparedStatement[]): Promise<unknown> }>(db: T): T =>
    new Proxy(db, {
      get(target, prop) {
        if (prop === "prepare") return (q: string) => (log.statements.push(q), counted(target.prepare(q)));
        if (prop === "batch") return (s: D1PreparedStatement[]) => ((log.trips += 1), target.batch(s));
        if (prop === "withSession") return (b?: string) => wrap((target as unknown as D1Database).withSession(b));
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  return { ...env, DB: wrap(env.DB) };
}

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const app = buildApp();
const list = async (orgRef: string, token: string) => {
  const log: D1Log = { statements: [], trips: 0 };
  const res = await app.request(`${BASE}/api/v1/orgs/${orgRef}/service-accounts?limit=20`, { headers: { authorization: `Bearer ${token}` } }, countingEnv(log));
  return { res, body: (await res.json()) as any, log };
};

describe("management read: D1 statements per request", () => {
  it("GET service-accounts?limit=20 (warm isolate): the org, the caller's grants and the page in one round trip", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const first = await list(org.slug, adminToken);
    const warm = await list(org.slug, adminToken);
    expect(warm.res.status).toBe(200);
    console.log(`D1: first ${first.log.statements.length} statements / ${first.log.trips} trips, warm ${warm.log.statements.length} / ${warm.log.trips}\n` + warm.log.statements.join("\n"));
    expect(warm.body.items.map((a: any) => a.name)).toContain("admin-bot");
    expect(warm.log.statements.length).toBeLessThanOrEqual(2);
    expect(warm.log.trips).toBe(1);
  });

  it("the batched page is handed out only after the permission check", async () => {
    const a = await orgWithAdmin(root.token);
    const b = await orgWithAdmin(root.token);
    const prj = await call("POST", `/api/v1/orgs/${a.org.id}/projects`, { token: a.adminToken, body: { slug: unique("p"), name: "P" } });
    expectStatus(prj, 201);
    const viewer = await call("POST", `/api/v1/orgs/${a.org.id}/service-accounts`, {
      token: a.adminToken,
      body: { name: unique("pv"), roles: [{ role: "viewer", scope: { type: "project", id: prj.json.id } }], issueToken: true },
    });
    expectStatus(viewer, 201);

    for (const ref of [a.org.id, a.org.slug, a.org.slug.toUpperCase()]) {
      const own = await list(ref, a.adminToken);
      expect(own.res.status, ref).toBe(200);
      expect(own.body.items.length).toBeGreaterThanOrEqual(2);
    }

    const foreign = await list(a.org.slug, b.adminToken);
    expect(foreign.res.status).toBe(404);
    expect(JSON.stringify(foreign.body)).not.toContain("admin-bot");

    const projectViewer = await list(a.org.slug, viewer.json.token.token);
    expect(projectViewer.res.status).toBe(403);
    expect(projectViewer.body.missing).toEqual(["service-accounts.read"]);
    expect(projectViewer.body.items).toBeUndefined();

    const unknown = await list(unique("nope"), a.adminToken);
    expect(unknown.res.status).toBe(404);
  });
});
