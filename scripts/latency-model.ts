/**
 * `npm run bench:model`: the production latency model (docs/performance.md, "Production latency model").
 * (a) per scenario, the calls from the code times the published (or assumed) latencies: p50/p99 near/far;
 * (b) a seeded simulation of a client population over colos and isolates with the cache TTLs as configured.
 * Environment: MODEL_SEED, MODEL_CLIENTS, MODEL_USE_EVERY_MIN, MODEL_MINUTES, MODEL_ISOLATE_LIFE_MIN,
 * MODEL_ISOLATES_PER_COLO, MODEL_KV_CACHE_TTL_S (KV's cacheTtl; 60 = the default), MODEL_RECORD_TTL_MS.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { analytic, callsFor, simulate, type ScenarioName } from "./latency/model.ts";

const root = path.join(import.meta.dirname, "..");
/** The configured values, read from the source (the modules themselves need workerd). */
function constant(file: string, pattern: RegExp): number {
  const m = readFileSync(path.join(root, file), "utf8").match(pattern);
  if (!m) throw new Error(`${file}: ${pattern} not found`);
  return Number(m[1]!.replaceAll("_", ""));
}
const recordTtl = constant("src/domain/credentials/record-cache.ts", /TOKEN_CACHE_TTL_MS = ([\d_]+)/);
const recordCapacity = constant("src/domain/credentials/record-cache.ts", /new TtlCache<TokenRecord>\(TOKEN_CACHE_TTL_MS, ([\d_]+)\)/);
const kvSource = readFileSync(path.join(root, "src/domain/credentials/record-cache.ts"), "utf8");
const kvCacheTtlS = /KV_RECORD_CACHE_TTL_S = ([\d_]+)/.exec(kvSource)?.[1] ?? "60";
const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);

const scenarios: ScenarioName[] = ["exchange", "client_secret_basic", "private_key_jwt", "management_read"];
const f = (x: number) => x.toFixed(1).padStart(6);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`.padStart(6);

console.log("(a) analytic: calls x figures, p50/p99 ms (isolate hit | KV hot | KV cold)");
for (const s of scenarios) {
  const row = (["near", "far"] as const).map((d) =>
    (["isolate", "hot", "cold"] as const)
      .map((k) => {
        const r = analytic(callsFor(s, d, k));
        return `${f(r.p50)}/${f(r.p99)}`;
      })
      .join(" |"),
  );
  console.log(`${s.padEnd(20)} near ${row[0]}   far ${row[1]}`);
}

const perColo = env("MODEL_ISOLATES_PER_COLO", 250);
const config = {
  seed: env("MODEL_SEED", 22),
  clients: env("MODEL_CLIENTS", 20_000),
  colos: [
    { name: "near-a", weight: 4, isolates: perColo, distance: "near" as const },
    { name: "near-b", weight: 3, isolates: perColo, distance: "near" as const },
    { name: "near-c", weight: 2, isolates: perColo, distance: "near" as const },
    { name: "far-a", weight: 2, isolates: perColo, distance: "far" as const },
    { name: "far-b", weight: 1, isolates: perColo, distance: "far" as const },
    { name: "far-c", weight: 1, isolates: perColo, distance: "far" as const },
  ],
  useEveryMinutes: env("MODEL_USE_EVERY_MIN", 5),
  simulatedMinutes: env("MODEL_MINUTES", 60),
  isolateLifetimeMinutes: env("MODEL_ISOLATE_LIFE_MIN", 15),
  recordCacheTtlMs: env("MODEL_RECORD_TTL_MS", recordTtl),
  recordCacheCapacity: recordCapacity,
  kvCacheTtlMs: env("MODEL_KV_CACHE_TTL_S", Number(kvCacheTtlS)) * 1000,
};
const started = performance.now();
const results = simulate(config, scenarios);
console.log(
  `\n(b) simulation: seed ${config.seed}, ${config.clients} clients, ${perColo * config.colos.length} isolates over ${config.colos.length} colos, ` +
    `a use every ~${config.useEveryMinutes} min, isolate life ~${config.isolateLifetimeMinutes} min, record cache ${config.recordCacheTtlMs} ms/${recordCapacity}, KV cacheTtl ${config.kvCacheTtlMs / 1000} s, ${config.simulatedMinutes} min`,
);
console.log("scenario              requests  isolate  KV hot KV cold | near p50/p90/p99      | far p50/p90/p99");
for (const r of results)
  console.log(
    `${r.scenario.padEnd(20)} ${String(r.requests).padStart(9)} ${pct(r.isolateHitRate)}  ${pct(r.kvHotRate)} ${pct(r.kvColdRate)} |${f(r.near.p50)}${f(r.near.p90)}${f(r.near.p99)} |${f(r.far.p50)}${f(r.far.p90)}${f(r.far.p99)}`,
  );
console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
