import { beforeAll, describe, expect, it } from "vitest";
import { BOOKMARK_HEADER } from "../../src/http/middleware/d1-session.ts";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const sas = (org: string) => `/api/v1/orgs/${org}/service-accounts`;

describe("D1 sessions for management requests", () => {
  it("a write returns a bookmark; a read carrying it sees the write, and returns a bookmark too", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const name = unique("bookmarked");
    const created = await call("POST", sas(org.id), { token: adminToken, body: { name } });
    expectStatus(created, 201);
    const bookmark = created.headers.get(BOOKMARK_HEADER);
    expect(bookmark).toMatch(/^[0-9a-f-]+$/i);
    const read = await call("GET", `${sas(org.id)}?limit=20`, { token: adminToken, headers: { [BOOKMARK_HEADER]: bookmark! } });
    expectStatus(read, 200);
    expect(read.json.items.map((a: { name: string }) => a.name)).toContain(name);
    expect(read.headers.get(BOOKMARK_HEADER)).toMatch(/^[0-9a-f-]+$/i);
  });

  it("a read without a bookmark works and carries one back", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const read = await call("GET", `${sas(org.id)}?limit=20`, { token: adminToken });
    expectStatus(read, 200);
    expect(read.json.items.length).toBeGreaterThan(0);
    expect(read.headers.get(BOOKMARK_HEADER)).toBeTruthy();
  });

  it("a malformed bookmark is a 400 problem, not a 500", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    for (const garbage of ["not a bookmark", "<script>", "x".repeat(300), "zz-zz"]) {
      const read = await call("GET", sas(org.id), { token: adminToken, headers: { [BOOKMARK_HEADER]: garbage } });
      expectStatus(read, 400);
      expect(read.headers.get("content-type")).toContain("application/problem+json");
      expect(read.json.detail).toContain(BOOKMARK_HEADER);
    }
  });

  it("a well-formed bookmark D1 never gave does not crash the request", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const read = await call("GET", sas(org.id), { token: adminToken, headers: { [BOOKMARK_HEADER]: "00000000-00000000-00000000-00000000000000000000000000000000" } });
    expect(read.status).toBeLessThan(500);
  });
});
