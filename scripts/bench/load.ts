/**
 * One round of load with autocannon against a target, with its latency percentiles, status
 * codes and the CPU and memory the serving processes used meanwhile; and the probe that fails a
 * misconfigured scenario fast.
 */
import autocannon from "autocannon";
import { gcBetween, type GcStats } from "./gc.ts";
import { cpuSeconds, machineBusySeconds, totalMiB } from "./proc.ts";

export interface LoadRequest {
  method: "GET" | "POST" | "DELETE";
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface Target {
  name: "direct" | "miniflare-entry" | "peer" | "wrangler-dev";
  base: string;
  /** The processes that serve it (their CPU time and memory are reported). */
  pids: () => number[];
}

export interface RoundStats {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** CPU used by the serving processes / by this process (the load generator), as % of one core. */
  serverCpuPct: number;
  generatorCpuPct: number;
  /** CPU used by everything else on the machine meanwhile (other processes skew the numbers). */
  otherCpuPct: number;
  /** Peak resident memory of the serving processes during the round (sampled). */
  serverPeakRssMiB: number;
  /** V8's collections in workerd during the round (BENCH_GC), else null. */
  gc: GcStats | null;
  /** The first non-2xx response of the round (status and the start of its body), for diagnosis. */
  firstFailure: string | null;
}

/** The p-quantile (0..1) of sorted latencies, nearest rank. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** The fields of a LoadRequest that autocannon takes as a request. */
export const toAutocannon = (r: LoadRequest) => ({ method: r.method, path: r.path, headers: r.headers, ...(r.body !== undefined ? { body: r.body } : {}) });

/**
 * One autocannon run. `next` (if given) builds each request (autocannon's setupRequest), else the
 * same request repeats. Latencies come from autocannon's per-response timings (sub-millisecond;
 * its own histogram rounds to whole milliseconds).
 */
export async function load(target: Target, connections: number, request: LoadRequest, seconds: number, next?: () => LoadRequest): Promise<RoundStats> {
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  const pids = target.pids();
  const cpu0 = cpuSeconds(pids);
  const gen0 = process.cpuUsage();
  const busy0 = machineBusySeconds();
  let peakRss = totalMiB(pids, "VmRSS");
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, totalMiB(pids, "VmRSS"));
  }, 250);
  const start = performance.now();
  const startedAt = Date.now();
  let firstFailure: string | null = null;
  const base: autocannon.Request = {
    ...toAutocannon(request),
    onResponse: (status, body) => {
      if ((status < 200 || status > 299) && firstFailure === null) firstFailure = `${status} ${String(body).slice(0, 300)}`;
    },
  };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.base,
        connections,
        duration: seconds,
        sampleInt: 100,
        timeout: 10,
        requests: [next ? { ...base, setupRequest: (req) => ({ ...req, ...toAutocannon(next()) }) } : base],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      latencies.push(responseTime);
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
    });
  });
  const elapsed = (performance.now() - start) / 1000;
  const endedAt = Date.now();
  clearInterval(sampler);
  const gen = process.cpuUsage(gen0);
  const busy = machineBusySeconds() - busy0;
  const server = cpuSeconds(pids) - cpu0;
  const generator = (gen.user + gen.system) / 1e6;
  const sorted = Float64Array.from(latencies).sort();
  const ok2xx = Object.entries(statusCodes).reduce((s, [code, n]) => s + (code.startsWith("2") ? n : 0), 0);
  return {
    requests: latencies.length,
    seconds: elapsed,
    rps: latencies.length / elapsed,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1]! : 0,
    ok2xx,
    non2xx: latencies.length - ok2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    serverCpuPct: (100 * server) / elapsed,
    generatorCpuPct: (100 * generator) / elapsed,
    otherCpuPct: Math.max(0, (100 * (busy - server - generator)) / elapsed),
    serverPeakRssMiB: peakRss,
    gc: target.name === "direct" ? gcBetween(pids, startedAt, endedAt) : null,
    firstFailure,
  };
}

/** One request outside the load, to fail fast (with the body) when a scenario is misconfigured. */
export async function probe(target: Target, r: LoadRequest, label: string): Promise<void> {
  const res = await fetch(target.base + r.path, { method: r.method, headers: r.headers, ...(r.body !== undefined ? { body: r.body } : {}) });
  const text = await res.text();
  if (res.status < 200 || res.status > 299) throw new Error(`${label}: the probe request got ${res.status}: ${text.slice(0, 500)}`);
}
