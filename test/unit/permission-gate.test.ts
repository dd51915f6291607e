import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createCtx } from "../../src/domain/shared/context.ts";
import { withPermission } from "../../src/domain/access/permissions.ts";
import type { Principal } from "../../src/domain/shared/principal.ts";

/** withPermission: an operation carries the permission it enforces, and cannot skip enforcing it. */

const ctx = createCtx(env, { actorId: "test", requestId: null, ip: null, userAgent: null });
const root: Principal = { accountId: "sa_root", orgId: null, platformPermissions: ["platform.root"], credential: { type: "jwt", jti: "" } };
const nobody: Principal = { accountId: "sa_nobody", orgId: null, platformPermissions: [], credential: { type: "jwt", jti: "" } };

describe("withPermission", () => {
  it("exposes the permission and guard it enforces (what needs() puts in the OpenAPI document)", () => {
    const op = withPermission("audit.read", async (gate) => gate.permission, { guard: "covers" });
    expect(op.permission).toBe("audit.read");
    expect(op.guard).toBe("covers");
    expect(withPermission("orgs.read", async () => 1).guard).toBe("none");
  });

  it("checks that permission through the gate, and no other", async () => {
    const op = withPermission("platform.root", async (gate) => {
      gate.authorizePlatform();
      return gate.permission;
    });
    await expect(op(ctx, root)).resolves.toBe("platform.root");
    await expect(op(ctx, nobody)).rejects.toMatchObject({ code: "permission_denied", data: { missing: ["platform.root"] } });
  });

  it("an operation that returns without checking its permission fails loudly instead of answering", async () => {
    const forgetful = withPermission("platform.root", async () => "answered");
    await expect(forgetful(ctx, root)).rejects.toThrow(/without checking/);
  });

  it("an operation declaring the escalation guard fails loudly when it returns without running it", async () => {
    const unguarded = withPermission(
      "platform.root",
      async (gate) => {
        gate.authorizePlatform();
        return "answered";
      },
      { guard: "covers" },
    );
    await expect(unguarded(ctx, root)).rejects.toThrow(/escalation guard/);
  });
});
