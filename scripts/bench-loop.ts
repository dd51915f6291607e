/**
 * `npm run bench:loop [-- <git ref>]`: the Worker's own cost per request, measured inside its
 * isolate, for this checkout (B) and optionally another commit (A).
 *
 * Each side is the bundle in workerd through Miniflare (as `npm run bench` runs it), seeded the same
 * way through the API, with an entry module in front (bench/loop-entry.ts) that replays /healthz,
 * the exchange and client_secret_basic through the Worker's `fetch` in the isolate, 32 at a time:
 * no sockets, no HTTP parsing, no load generator competing for the CPU. The client times each loop;
 * rounds alternate the sides (serpentine). What it measures is the JavaScript of a request and the
 * collections it causes, which is what a change to Keyward can move; `npm run bench` measures the
 * same plus the runtime's HTTP work. Its pairs agree within a few per cent where `bench:compare`'s
 * spread ±10-15 % on this machine. A script, not a test.
 *
 * Environment: LOOP_N requests per loop [10000], LOOP_ROUNDS [15], LOOP_CONCURRENCY [32],
 * LOOP_PROFILE=<healthz|exchange|basic>: instead, profile two loops of that scenario per side
 * through workerd's inspector and print the self time by function (.cpuprofile in bench-results/);
 * with LOOP_ALLOC=1, the bytes allocated per request by function instead (one loop per side).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { envNumber, logger, runMain } from "./bench/lifecycle.ts";
import { LOOP_ENTRY } from "./bench/loop-entry.ts";
import { cpuSeconds } from "./bench/proc.ts";
import { allocationsWhile, Inspector, selfTimes, type Profile } from "./bench/profile.ts";
import { table } from "./bench/report.ts";
import { basicRequest, exchangeRequest, healthzRequest } from "./bench/requests.ts";
import type { LoadRequest } from "./bench/load.ts";
import { root, startWorker, type RunningWorker } from "./bench/runtime.ts";
import { median } from "./bench/scenario.ts";
import { seedThroughApi } from "./bench/seed.ts";
import { worktree } from "./bench/worktree.ts";

const log = logger("loop");
const SCENARIOS = ["healthz", "exchange", "basic"] as const;
type ScenarioId = (typeof SCENARIOS)[number];
const LABELS: Record<ScenarioId, string> = { healthz: "GET /healthz", exchange: "POST /api/auth/access-tokens/jwt", basic: "/oauth/token client_secret_basic" };

interface Side {
  name: string;
  worker: RunningWorker;
  requests: Record<ScenarioId, LoadRequest[]>;
  /** µs of wall time per request, per round. */
  rounds: Record<ScenarioId, number[]>;
  cpu: Record<ScenarioId, number[]>;
}

/** As over HTTP: a body with its Content-Length (the Worker's body limit takes that branch). */
const withLength = (r: LoadRequest) => (r.body === undefined ? r : { ...r, headers: { ...r.headers, "content-length": String(Buffer.byteLength(r.body)) } });

async function startSide(name: string, source: string): Promise<Side> {
  const worker = await startWorker({ tmpPrefix: `keyward-loop-${name}-`, signingAlg: null, inspector: Boolean(process.env.LOOP_PROFILE), rateLimits: true, log, source, entry: LOOP_ENTRY });
  const { accounts } = await seedThroughApi(worker.direct.base, worker.secrets.BOOTSTRAP_SECRET, { accounts: 20, pkjwtClients: 0 });
  const requests = { healthz: [healthzRequest], exchange: accounts.map((a) => exchangeRequest(a.token)), basic: accounts.map(basicRequest) };
  return { name, worker, requests, rounds: { healthz: [], exchange: [], basic: [] }, cpu: { healthz: [], exchange: [], basic: [] } };
}

/** One loop of `n` requests of a scenario in the side's isolate: µs of wall and of workerd CPU time per request. */
async function loop(side: Side, id: ScenarioId, n: number, concurrency: number): Promise<{ wall: number; cpu: number }> {
  const pids = side.worker.direct.pids();
  const cpu0 = cpuSeconds(pids);
  const t0 = performance.now();
  const res = await fetch(`${side.worker.direct.base}/__loop`, { method: "POST", body: JSON.stringify({ n, concurrency, requests: side.requests[id].map(withLength) }) });
  const { failures } = (await res.json()) as { failures: string[] };
  if (!res.ok || failures.length > 0) throw new Error(`${side.name} ${id}: ${res.status} ${failures.join("; ")}`);
  return { wall: ((performance.now() - t0) * 1000) / n, cpu: ((cpuSeconds(pids) - cpu0) * 1e6) / n };
}

async function profile(sides: Side[], id: ScenarioId, n: number, concurrency: number) {
  const dir = path.join(root, "bench-results");
  mkdirSync(dir, { recursive: true });
  for (const side of sides) {
    const inspector = await Inspector.connect(side.worker.inspectorPort!, "keyward");
    try {
      if (process.env.LOOP_ALLOC) {
        const rows = await allocationsWhile(inspector, () => loop(side, id, n, concurrency));
        const total = rows.reduce((sum, r) => sum + r.bytes, 0);
        console.log(`\n${side.name} ${id}: ${(total / n / 1024).toFixed(2)} KiB allocated per request (the loop's own share included); by function:`);
        for (const row of rows.slice(0, 30)) console.log(`  ${(row.bytes / n).toFixed(0).padStart(6)} B  ${row.fn}`);
        continue;
      }
      await inspector.send("Profiler.enable");
      await inspector.send("Profiler.setSamplingInterval", { interval: 50 });
      await inspector.send("Profiler.start");
      for (let i = 0; i < 2; i++) await loop(side, id, n, concurrency);
      const { profile } = await inspector.send<{ profile: Profile }>("Profiler.stop");
      const file = path.join(dir, `loop-${side.name}-${id}-${Date.now()}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      console.log(`\n${side.name} ${id}: ${file}; self time by function:`);
      for (const row of selfTimes(profile).slice(0, 30)) console.log(`  ${(row.share * 100).toFixed(1).padStart(5)}%  ${row.fn}`);
    } finally {
      inspector.close();
    }
  }
}

async function main(): Promise<number> {
  const ref = process.argv[2];
  const n = envNumber("LOOP_N", 10_000);
  const roundsWanted = envNumber("LOOP_ROUNDS", 15);
  const concurrency = envNumber("LOOP_CONCURRENCY", 32);
  const sides: Side[] = [];
  if (ref) sides.push(await startSide("A", worktree(ref)));
  sides.push(await startSide("B", root));
  // A first loop of each to warm the JIT and fill the caches; not counted.
  for (const side of sides) for (const id of SCENARIOS) await loop(side, id, n, concurrency);
  const profiled = process.env.LOOP_PROFILE;
  if (profiled) {
    if (!SCENARIOS.includes(profiled as ScenarioId)) throw new Error(`LOOP_PROFILE must be one of ${SCENARIOS.join(", ")}`);
    await profile(sides, profiled as ScenarioId, n, concurrency);
    return 0;
  }
  for (let r = 0; r < roundsWanted; r++) {
    for (const id of SCENARIOS) {
      for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
        const { wall, cpu } = await loop(side, id, n, concurrency);
        side.rounds[id].push(wall);
        side.cpu[id].push(cpu);
      }
    }
  }
  const us = (xs: number[]) => median(xs).toFixed(1);
  const [a, b] = sides.length === 2 ? sides : [undefined, sides[0]!];
  const rows = SCENARIOS.map((id) => {
    const own = [LABELS[id], ...(a ? [us(a.rounds[id])] : []), us(b!.rounds[id]), us(b!.cpu[id])];
    if (!a) return own;
    const pairs = a.rounds[id].map((x, i) => b!.rounds[id][i]! / x);
    return [...own, median(pairs).toFixed(3), pairs.map((p) => p.toFixed(2)).join(" ")];
  });
  const headers = a ? ["scenario", "A µs/req", "B µs/req", "B CPU µs/req", "B/A pairs median", "pairs"] : ["scenario", "µs/req", "CPU µs/req"];
  console.log(`\n${a ? `A = ${ref}, B = this checkout; ` : ""}${roundsWanted} rounds of ${n} requests, ${concurrency} at a time, in the isolate (median per request)\n`);
  console.log(table(headers, rows));
  return 0;
}

await runMain("loop", main);
