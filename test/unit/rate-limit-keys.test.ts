import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createCtx } from "../../src/domain/shared/context.ts";
import { failureKeys } from "../../src/domain/credentials/failure-limits.ts";

/** Failed authentications count under one key of the surface, the claimed client id and the IP together. */
const ctxFrom = (ip: string | null) => createCtx(env, { actorId: "t", requestId: null, ip, userAgent: null });

describe("failureKeys", () => {
  it("one key of client and IP together, per surface", () => {
    expect(failureKeys(ctxFrom("192.0.2.1"), "sa_x", "token")).toEqual(["token:client:sa_x:ip:192.0.2.1"]);
    expect(failureKeys(ctxFrom("192.0.2.1"), null, "token")).toEqual(["token:ip:192.0.2.1"]);
    expect(failureKeys(ctxFrom("192.0.2.1"), null, "api")).toEqual(["api:ip:192.0.2.1"]);
    expect(failureKeys(ctxFrom(null), "sa_x", "token")).toEqual(["token:client:sa_x:ip:-"]);
  });

  it("nothing to count under when neither the IP nor a client id is known", () => {
    expect(failureKeys(ctxFrom(null), null, "api")).toEqual([]);
  });

  it("a claimed client id is cut to 128 characters", () => {
    expect(failureKeys(ctxFrom("192.0.2.1"), "x".repeat(500), "token")[0]).toBe(`token:client:${"x".repeat(128)}:ip:192.0.2.1`);
  });
});
