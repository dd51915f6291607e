/**
 * Benchmark scenarios: each a probe, a warm-up, BENCH_ROUNDS rounds of load (interleaved with the
 * other scenarios of the run), their median, and with BENCH_PROFILE=1 one extra profiled round
 * (not reported).
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Log } from "./lifecycle.ts";
import type { GcStats } from "./gc.ts";
import { load, probe, type LoadRequest, type RoundStats, type Target } from "./load.ts";
import { profileWhile } from "./profile.ts";
import { root } from "./runtime.ts";

export interface ScenarioResult {
  id: string;
  label: string;
  target: Target["name"];
  warmup: RoundStats | null;
  rounds: RoundStats[];
  median: { rps: number; p50: number; p99: number; serverCpuPct: number; generatorCpuPct: number; otherCpuPct: number };
  totals: { requests: number; non2xx: number; errors: number; timeouts: number; statusCodes: Record<string, number> };
  serverPeakRssMiB: number;
  /** BENCH_GC: the median round's GC pause share, the longest pause of all rounds, and the collections of all rounds. */
  gc: GcStats | null;
  /** BINDING_COUNTS=on (direct target): binding calls per completed request over all rounds, waitUntil work included. */
  bindingCounts: Record<string, number> | null;
  notes: string[];
}

/** GET /__binding-counts[?reset=1] of the Worker (null when the Worker does not count: 404). */
async function readBindingCounts(base: string, reset: boolean): Promise<Record<string, number> | null> {
  try {
    const res = await fetch(`${base}/__binding-counts${reset ? "?reset=1" : ""}`);
    return res.ok ? ((await res.json()) as Record<string, number>) : null;
  } catch {
    return null;
  }
}

export interface RunOptions {
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  rounds: number;
  /** The Worker's inspector port, when each direct scenario gets a profiled round. */
  profilePort?: number | undefined;
  log: Log;
}

export interface ScenarioHooks {
  /** Before the warm-up and each round (the private_key_jwt scenario pre-signs its assertions). */
  beforeRun?: (seconds: number, previous: RoundStats | null) => Promise<void>;
  notes?: () => string[];
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** What a scenario sends, where; `next` (if given) builds each request. */
export interface Scenario {
  id: string;
  label: string;
  target: Target;
  request: LoadRequest;
  next?: (() => LoadRequest) | undefined;
  hooks?: ScenarioHooks;
  /** Its own concurrency instead of BENCH_CONNECTIONS (the console page: a few browsers, not a fleet of clients). */
  connections?: number | undefined;
}

function gcOfRounds(rounds: RoundStats[]): GcStats | null {
  const gcs = rounds.map((r) => r.gc).filter((g) => g !== null);
  if (gcs.length === 0) return null;
  return {
    pausePct: median(gcs.map((g) => g.pausePct)),
    maxPauseMs: Math.max(...gcs.map((g) => g.maxPauseMs)),
    scavenges: gcs.reduce((n, g) => n + g.scavenges, 0),
    fullGcs: gcs.reduce((n, g) => n + g.fullGcs, 0),
  };
}

/** One scenario's probe and warm-up, then its rounds one at a time, then its result. */
class ScenarioRun {
  private warmup: RoundStats | null = null;
  private readonly rounds: RoundStats[] = [];
  private readonly callTotals: Record<string, number> = {};
  private countedRequests = 0;
  private readonly options: RunOptions;
  private readonly scenario: Scenario;
  constructor(options: RunOptions, scenario: Scenario) {
    this.options = options;
    this.scenario = scenario;
  }

  private load(seconds: number) {
    const { target, request, next } = this.scenario;
    return load(target, this.scenario.connections ?? this.options.connections, request, seconds, next);
  }

  async start() {
    const { target, request, next, label, hooks } = this.scenario;
    await probe(target, next ? next() : request, label);
    if (this.options.warmupSeconds > 0) {
      await hooks?.beforeRun?.(this.options.warmupSeconds, null);
      this.warmup = await this.load(this.options.warmupSeconds);
    }
  }

  /** A round, after a warm-up of its own: the target sat idle while the other scenarios ran (a Node peer shrinks its heap meanwhile). */
  async round() {
    const { warmupSeconds, durationSeconds } = this.options;
    const previous = this.rounds.at(-1) ?? this.warmup;
    if (warmupSeconds > 0 && this.rounds.length > 0) {
      await this.scenario.hooks?.beforeRun?.(warmupSeconds, previous);
      await this.load(warmupSeconds);
    }
    await this.scenario.hooks?.beforeRun?.(durationSeconds, previous);
    const counting = this.scenario.target.name === "direct";
    if (counting) await readBindingCounts(this.scenario.target.base, true);
    const stats = await this.load(durationSeconds);
    this.rounds.push(stats);
    // Read after the round: background work the round started (waitUntil) is mostly done by now.
    const calls = counting ? await readBindingCounts(this.scenario.target.base, true) : null;
    if (calls) {
      for (const [k, v] of Object.entries(calls)) this.callTotals[k] = (this.callTotals[k] ?? 0) + v;
      this.countedRequests += stats.requests;
    }
  }

  async finish(): Promise<ScenarioResult> {
    const { options, rounds, warmup } = this;
    const { id, label, target, hooks } = this.scenario;
    if (options.profilePort !== undefined && target.name === "direct") {
      const file = path.join(root, "bench-results", `profile-${id}.cpuprofile`);
      mkdirSync(path.dirname(file), { recursive: true });
      await profileWhile(options.profilePort, "keyward", file, () => this.load(options.durationSeconds), options.log);
    }
    const statusCodes: Record<string, number> = {};
    for (const r of rounds) for (const [code, n] of Object.entries(r.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
    const result: ScenarioResult = {
      id,
      label,
      target: target.name,
      warmup,
      rounds,
      median: {
        rps: median(rounds.map((r) => r.rps)),
        p50: median(rounds.map((r) => r.p50)),
        p99: median(rounds.map((r) => r.p99)),
        serverCpuPct: median(rounds.map((r) => r.serverCpuPct)),
        generatorCpuPct: median(rounds.map((r) => r.generatorCpuPct)),
        otherCpuPct: median(rounds.map((r) => r.otherCpuPct)),
      },
      totals: {
        requests: rounds.reduce((s, r) => s + r.requests, 0),
        non2xx: rounds.reduce((s, r) => s + r.non2xx, 0) + (warmup?.non2xx ?? 0),
        errors: rounds.reduce((s, r) => s + r.errors, 0) + (warmup?.errors ?? 0),
        timeouts: rounds.reduce((s, r) => s + r.timeouts, 0) + (warmup?.timeouts ?? 0),
        statusCodes,
      },
      serverPeakRssMiB: Math.max(...rounds.map((r) => r.serverPeakRssMiB), warmup?.serverPeakRssMiB ?? 0),
      gc: gcOfRounds(rounds),
      bindingCounts: this.countedRequests > 0 ? Object.fromEntries(Object.entries(this.callTotals).map(([k, v]) => [k, v / this.countedRequests])) : null,
      notes: hooks?.notes?.() ?? [],
    };
    const m = result.median;
    options.log(
      `${id.padEnd(16)} ${Math.round(m.rps).toString().padStart(6)} req/s  p50 ${m.p50.toFixed(2)} ms  p99 ${m.p99.toFixed(2)} ms  non-2xx ${result.totals.non2xx}  errors ${result.totals.errors}  server CPU ${Math.round(m.serverCpuPct)}%  generator CPU ${Math.round(m.generatorCpuPct)}%  other CPU ${Math.round(m.otherCpuPct)}%  (rounds ${rounds.map((r) => Math.round(r.rps)).join(", ")} req/s)${result.gc ? `  GC ${result.gc.pausePct.toFixed(1)}% of the time, longest ${result.gc.maxPauseMs.toFixed(0)} ms, ${result.gc.scavenges} scavenges + ${result.gc.fullGcs} full` : ""}`,
    );
    return result;
  }
}

/**
 * Runs scenarios with their rounds interleaved: every probe and warm-up first, then round 1 of
 * each scenario, round 2 of each in reverse order, and so on (each later round after a warm-up of
 * its own). A ratio of two medians (x ceiling, x peer) then compares rounds measured a minute or
 * two apart, not a whole run apart, so a drift of the machine's speed (a noisy 2-core VM) moves
 * both sides, and no scenario always runs first or last in a cycle.
 */
export async function runScenarios(options: RunOptions, scenarios: Scenario[]): Promise<ScenarioResult[]> {
  const runs = scenarios.map((s) => new ScenarioRun(options, s));
  for (const run of runs) await run.start();
  for (let r = 0; r < options.rounds; r++) for (const run of r % 2 === 0 ? runs : [...runs].reverse()) await run.round();
  const results: ScenarioResult[] = [];
  for (const run of runs) results.push(await run.finish());
  return results;
}

/** Runs one scenario on its own and logs its median line. */
export async function runScenario(options: RunOptions, id: string, label: string, target: Target, request: LoadRequest, next?: () => LoadRequest, hooks: ScenarioHooks = {}): Promise<ScenarioResult> {
  const [result] = await runScenarios(options, [{ id, label, target, request, next, hooks }]);
  return result!;
}
