import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.ts";
import { BASE, orgWithAdmin, platformRoot } from "../helpers.ts";

/** env with a D1 binding that records every SQL statement run (sessions included). */
function countingEnv(log: string[]) {
  const wrap = <T extends { prepare(q: string): D1PreparedStatement; batch(s: D1PreparedStatement[]): Promise<unknown> }>(db: T): T =>
    new Proxy(db, {
      get(target, prop) {
        if (prop === "prepare") return (q: string) => (log.push(q), target.prepare(q));
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

describe("management read: D1 statements per request", () => {
  it("GET service-accounts?limit=20 (warm isolate)", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const app = buildApp();
    const get = async () => {
      const log: string[] = [];
      const res = await app.request(`${BASE}/api/v1/orgs/${org.slug}/service-accounts?limit=20`, { headers: { authorization: `Bearer ${adminToken}` } }, countingEnv(log));
      expect(res.status).toBe(200);
      return log;
    };
    const first = await get();
    const warm = await get();
    console.log(`D1 statements: first ${first.length}, warm ${warm.length}\n` + warm.join("\n"));
    expect(warm.length).toBeLessThanOrEqual(3);
  });
});
