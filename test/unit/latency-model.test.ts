import { describe, expect, it } from "vitest";
import { analytic, callsFor, FIGURES, simulate, type SimConfig } from "../../scripts/latency/model.ts";

const base: SimConfig = {
  seed: 7,
  clients: 200,
  colos: [
    { name: "near", weight: 1, isolates: 4, distance: "near" },
    { name: "far", weight: 1, isolates: 4, distance: "far" },
  ],
  useEveryMinutes: 5,
  simulatedMinutes: 60,
  isolateLifetimeMinutes: 15,
  recordCacheTtlMs: 10_000,
  recordCacheCapacity: 10_000,
  kvCacheTtlMs: 60_000,
};

describe("the production latency model", () => {
  it("never hits the isolate cache with a TTL of 0, nor KV's colo cache with a cacheTtl of 0", () => {
    const [r] = simulate({ ...base, recordCacheTtlMs: 0, kvCacheTtlMs: 0 }, ["exchange"]);
    expect(r!.requests).toBeGreaterThan(1000);
    expect(r!.isolateHitRate).toBe(0);
    expect(r!.kvHotRate).toBe(0);
    expect(r!.kvColdRate).toBe(1);
  });

  it("hits the isolate cache almost always for one client using its token every second on one isolate", () => {
    const [r] = simulate(
      { ...base, clients: 1, useEveryMinutes: 1 / 60, colos: [{ name: "near", weight: 1, isolates: 1, distance: "near" }], isolateLifetimeMinutes: 600, recordCacheTtlMs: 60_000 },
      ["exchange"],
    );
    expect(r!.isolateHitRate).toBeGreaterThan(0.9);
  });

  it("is deterministic for a seed", () => {
    expect(simulate(base, ["private_key_jwt"])).toEqual(simulate(base, ["private_key_jwt"]));
  });

  it("composes a request's latency as the sum of its calls", () => {
    expect(callsFor("management_read", "far", "cold")).toEqual(["worker", "kvCold", "d1Replica"]);
    expect(callsFor("private_key_jwt", "near", "isolate")).toEqual(["worker", "doNear"]);
    const zero = { p50: 1e-9, p99: 1e-9 };
    const fixed = { ...FIGURES, worker: zero, kvCold: { p50: 30, p99: 30.0001 }, d1Replica: { p50: 100, p99: 100.0001 } };
    const r = analytic(callsFor("management_read", "far", "cold"), fixed);
    expect(r.p50).toBeCloseTo(130, 1);
    expect(r.p99).toBeCloseTo(130, 1);
  });

  it("a longer KV cacheTtl turns cold reads hot for tokens used every few minutes", () => {
    const [short] = simulate(base, ["exchange"]);
    const [long] = simulate({ ...base, kvCacheTtlMs: 600_000 }, ["exchange"]);
    expect(long!.kvHotRate).toBeGreaterThan(short!.kvHotRate + 0.3);
    expect(long!.all.p50).toBeLessThan(short!.all.p50);
  });
});
