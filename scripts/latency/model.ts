/**
 * The production latency model (docs/performance.md, "Production latency model"): pure functions,
 * no Worker runtime and no Node modules, so the unit test runs them in workerd and the script in Node.
 *
 * A call's latency is a lognormal given by its p50 and p99; a scenario's latency is the sum of the
 * calls it makes on the response path (they are sequential in the code). The simulation decides, for
 * every use of a token, whether the isolate's record cache answers (no call), else whether KV's colo
 * cache is hot (cacheTtl) or the read goes cold, and adds the calls that are made on every request.
 */

export type Percentiles = { p50: number; p99: number };
export type Call = "kvHot" | "kvCold" | "doNear" | "doFar" | "d1Near" | "d1Far" | "d1Replica" | "worker";
export type Figures = Record<Call, Percentiles>;

/** The published figures, or the stated assumptions where none is published (sources in docs/performance.md). */
export const FIGURES: Figures = {
  worker: { p50: 0.5, p99: 3 },
  kvHot: { p50: 1, p99: 5 },
  kvCold: { p50: 30, p99: 150 },
  doNear: { p50: 3, p99: 15 },
  doFar: { p50: 90, p99: 250 },
  d1Near: { p50: 5, p99: 25 },
  d1Far: { p50: 110, p99: 300 },
  d1Replica: { p50: 5, p99: 25 },
};

export type ScenarioName = "exchange" | "client_secret_basic" | "private_key_jwt" | "management_read";
export type Distance = "near" | "far";

/** The calls a request makes, from the code: `cached` = the isolate's record cache answered. */
export function callsFor(scenario: ScenarioName, distance: Distance, kv: "isolate" | "hot" | "cold"): Call[] {
  const calls: Call[] = ["worker"];
  if (kv === "hot") calls.push("kvHot");
  if (kv === "cold") calls.push("kvCold");
  if (scenario === "private_key_jwt") calls.push(distance === "near" ? "doNear" : "doFar");
  // One D1 round trip (the org, the caller's grants and the page in one batch), in a D1 session that
  // reads from the nearest replica: far from the primary it is the replica's round trip.
  if (scenario === "management_read") calls.push(distance === "near" ? "d1Near" : "d1Replica");
  return calls;
}

const Z99 = 2.326;
/** A deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}
/** One draw of a call's latency (ms): lognormal with the given p50 and p99. */
export function draw(p: Percentiles, rand: () => number): number {
  const sigma = Math.log(p.p99 / p.p50) / Z99;
  return p.p50 * Math.exp(sigma * normal(rand));
}
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** (a) The analytic model: the p50/p99 of the sum of the calls, by sampling the sum (seeded). */
export function analytic(calls: Call[], figures: Figures = FIGURES, seed = 1, samples = 20_000): Percentiles {
  const rand = rng(seed);
  const xs: number[] = [];
  for (let i = 0; i < samples; i++) xs.push(calls.reduce((s, c) => s + draw(figures[c], rand), 0));
  xs.sort((a, b) => a - b);
  return { p50: percentile(xs, 0.5), p99: percentile(xs, 0.99) };
}

export type SimConfig = {
  seed: number;
  clients: number;
  /** Colos: weight of clients, isolates serving the Worker there, and distance to the primary/DO. */
  colos: { name: string; weight: number; isolates: number; distance: Distance }[];
  /** Mean minutes between two uses of a client's token (each client's own interval is lognormal around it, at least 1 s, each use jittered ±20%). */
  useEveryMinutes: number;
  simulatedMinutes: number;
  /** Mean isolate lifetime before eviction (minutes); 0 = evicted after every request. */
  isolateLifetimeMinutes: number;
  /** The isolate record cache (src/domain/credentials/record-cache.ts). */
  recordCacheTtlMs: number;
  recordCacheCapacity: number;
  /** KV's colo cache for a read (`cacheTtl`, default 60 s). */
  kvCacheTtlMs: number;
  figures?: Figures;
};

export type SimResult = {
  scenario: ScenarioName;
  requests: number;
  isolateHitRate: number;
  kvHotRate: number;
  kvColdRate: number;
  near: Percentiles & { p90: number };
  far: Percentiles & { p90: number };
  all: Percentiles & { p90: number };
};

type Isolate = { diesAt: number; records: Map<number, number> };

/** (b) The simulation: one run per scenario over the same population and the same uses. */
export function simulate(config: SimConfig, scenarios: ScenarioName[]): SimResult[] {
  const figures = config.figures ?? FIGURES;
  const rand = rng(config.seed);
  const totalWeight = config.colos.reduce((s, c) => s + c.weight, 0);
  const clientColo: number[] = [];
  const events: { t: number; client: number }[] = [];
  const horizon = config.simulatedMinutes * 60_000;
  for (let c = 0; c < config.clients; c++) {
    let pick = rand() * totalWeight;
    let colo = 0;
    while (colo < config.colos.length - 1 && (pick -= config.colos[colo]!.weight) > 0) colo++;
    clientColo.push(colo);
    const mean = Math.max(1000, config.useEveryMinutes * 60_000 * Math.exp(0.7 * normal(rand)));
    for (let t = rand() * mean; t < horizon; t += mean * (0.8 + 0.4 * rand())) events.push({ t, client: c });
  }
  events.sort((a, b) => a.t - b.t);
  const life = () => (config.isolateLifetimeMinutes <= 0 ? 0 : config.isolateLifetimeMinutes * 60_000 * -Math.log(Math.max(rand(), 1e-9)));
  const isolates = config.colos.map((c) => Array.from({ length: c.isolates }, (): Isolate => ({ diesAt: life(), records: new Map() })));
  const coloKv = config.colos.map(() => new Map<number, number>());
  // Whether each use was answered by the isolate, KV's colo cache, or a cold read: the same for every scenario.
  const kinds: ("isolate" | "hot" | "cold")[] = [];
  for (const e of events) {
    const colo = clientColo[e.client]!;
    const pool = isolates[colo]!;
    const iso = pool[Math.floor(rand() * pool.length)]!;
    if (e.t >= iso.diesAt || config.isolateLifetimeMinutes <= 0) {
      iso.records.clear();
      iso.diesAt = e.t + life();
    }
    const cachedAt = iso.records.get(e.client);
    if (cachedAt !== undefined && e.t - cachedAt < config.recordCacheTtlMs) {
      kinds.push("isolate");
      continue;
    }
    const kvAt = coloKv[colo]!.get(e.client);
    kinds.push(kvAt !== undefined && e.t - kvAt < config.kvCacheTtlMs ? "hot" : "cold");
    // KV refreshes a read key in the background before its cacheTtl runs out: every read keeps it hot.
    coloKv[colo]!.set(e.client, e.t);
    if (config.recordCacheTtlMs > 0) {
      iso.records.delete(e.client);
      iso.records.set(e.client, e.t);
      if (iso.records.size > config.recordCacheCapacity) iso.records.delete(iso.records.keys().next().value!);
    }
  }
  return scenarios.map((scenario) => {
    const near: number[] = [];
    const far: number[] = [];
    const counts = { isolate: 0, hot: 0, cold: 0 };
    events.forEach((e, i) => {
      const kind = kinds[i]!;
      counts[kind]++;
      const distance = config.colos[clientColo[e.client]!]!.distance;
      const ms = callsFor(scenario, distance, kind).reduce((s, c) => s + draw(figures[c], rand), 0);
      (distance === "near" ? near : far).push(ms);
    });
    const stats = (xs: number[]) => {
      xs.sort((a, b) => a - b);
      return { p50: percentile(xs, 0.5), p90: percentile(xs, 0.9), p99: percentile(xs, 0.99) };
    };
    const n = events.length || 1;
    return {
      scenario,
      requests: events.length,
      isolateHitRate: counts.isolate / n,
      kvHotRate: counts.hot / n,
      kvColdRate: counts.cold / n,
      all: stats([...near, ...far]),
      near: stats(near),
      far: stats(far),
    };
  });
}
