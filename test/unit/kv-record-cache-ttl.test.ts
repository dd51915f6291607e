import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { KV_RECORD_CACHE_TTL_S } from "../../src/domain/credentials/record-cache.ts";
import { simulate } from "../../scripts/latency/model.ts";

describe("the KV cacheTtl of the credential record reads", () => {
  it("is within the revocation bound docs/architecture.md states (at most 300 s) and above KV's default 60 s", () => {
    expect(KV_RECORD_CACHE_TTL_S).toBeGreaterThan(60);
    expect(KV_RECORD_CACHE_TTL_S).toBeLessThanOrEqual(300);
  });

  it("is accepted by the KV binding", async () => {
    await env.TOKENS.put("t:cache-ttl-probe", JSON.stringify({ ok: true }));
    expect(await env.TOKENS.get("t:cache-ttl-probe", { type: "json", cacheTtl: KV_RECORD_CACHE_TTL_S })).toEqual({ ok: true });
  });

  it("makes most reads of tokens used every 5 minutes hot in the colo (the model)", () => {
    const config = {
      seed: 3,
      clients: 300,
      colos: [{ name: "near", weight: 1, isolates: 8, distance: "near" as const }],
      useEveryMinutes: 5,
      simulatedMinutes: 60,
      isolateLifetimeMinutes: 15,
      recordCacheTtlMs: 10_000,
      recordCacheCapacity: 10_000,
    };
    const [byDefault] = simulate({ ...config, kvCacheTtlMs: 60_000 }, ["exchange"]);
    const [configured] = simulate({ ...config, kvCacheTtlMs: KV_RECORD_CACHE_TTL_S * 1000 }, ["exchange"]);
    expect(byDefault!.kvHotRate).toBeLessThan(0.3);
    expect(configured!.kvHotRate).toBeGreaterThan(0.5);
  });
});
