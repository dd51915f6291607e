import { describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot } from "../helpers.ts";

describe("first slice", () => {
  it("creates an org, an account and a token that authenticates", async () => {
    const root = await platformRoot();
    const { org, adminToken } = await orgWithAdmin(root.token);
    const list = await call("GET", `/api/v1/orgs/${org.id}/service-accounts`, { token: adminToken });
    expectStatus(list, 200);
    expect(list.json.items.length).toBe(1);
  });
});
