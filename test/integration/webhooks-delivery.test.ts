import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot } from "../helpers.ts";
import { acceptedOfType, endpointFor, receiver } from "./webhook-helpers.ts";

let O: Awaited<ReturnType<typeof orgWithAdmin>>;

beforeAll(async () => {
  const root = await platformRoot();
  O = await orgWithAdmin(root.token);
});

describe("a change reaches the receiver, signed", () => {
  it("creating an account sends account.created through the real queue; standardwebhooks verifies it", async () => {
    const r = receiver();
    await endpointFor(O.adminToken, O.org.id, r);
    const created = await call("POST", `/api/v1/orgs/${O.org.id}/service-accounts`, { token: O.adminToken, body: { name: "hooked" } });
    expectStatus(created, 201);
    const { request, body } = await acceptedOfType(r, "account.created");
    expect(request.verifiedWith).toEqual([true]);
    expect(request.id).toMatch(/^evt_/);
    expect(body).toMatchObject({ id: request.id, type: "account.created", version: 1, orgId: O.org.id, data: { target: { type: "service_account", id: created.json.id } } });
  });
});
