/**
 * Drives the soak's mix with one autocannon run for the whole duration: a planned request per
 * send (setupRequest), its response recorded against its kind, one sample line per window, and
 * workerd's RSS read every second (for the maximum). The Keyward isolate's V8 heap, read through
 * workerd's inspector, tells a leak in the Worker's code from memory workerd holds elsewhere.
 */
import autocannon from "autocannon";
import type { Log } from "../bench/lifecycle.ts";
import { toAutocannon, type Target } from "../bench/load.ts";
import { totalMiB } from "../bench/proc.ts";
import { Inspector } from "../bench/profile.ts";
import { KINDS, type Planned, type SoakMix } from "./mix.ts";
import { SoakStats, type Sample } from "./stats.ts";

/** Sends one request of every kind outside the load; throws (with the body) on a status it did not expect. */
export async function probeMix(target: Target, mix: SoakMix): Promise<void> {
  for (const kind of KINDS) {
    const planned = mix.plan(kind);
    if (!planned) throw new Error(`soak probe: cannot plan a ${kind} request`);
    const { method, path, headers, body } = planned.request;
    const res = await fetch(target.base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    planned.settle(res.status, text);
    if (!planned.expected.includes(res.status)) throw new Error(`soak probe: ${kind} ${method} ${path} got ${res.status}: ${text.slice(0, 500)}`);
  }
}

const clock = (seconds: number) => `${Math.floor(seconds / 60)}:${String(Math.round(seconds % 60)).padStart(2, "0")}`;

export function sampleLine(s: Sample): string {
  const heap = s.heapUsedMiB === null ? "" : ` (Keyward heap ${s.heapUsedMiB.toFixed(0)} MiB)`;
  return `${clock(s.elapsedSeconds).padStart(5)}${s.partial ? "*" : " "} ${Math.round(s.rps).toString().padStart(6)} req/s  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  unexpected ${s.errors} errors / ${s.unexpected} statuses  expected 401 x ${s.expected401}, 429 x ${s.expected429}  workerd RSS ${s.rssMiB.toFixed(0)} MiB${heap}`;
}

export interface SoakRunOptions {
  connections: number;
  seconds: number;
  sampleSeconds: number;
  /** workerd's inspector, for the Keyward isolate's heap. */
  inspectorPort: number | undefined;
  log: Log;
}

/** The V8 heap in use, in MiB, or null when the inspector does not answer (the soak goes on). */
async function heapMiB(inspector: Inspector | null): Promise<number | null> {
  if (!inspector) return null;
  const usage = await Promise.race([inspector.send<{ usedSize: number }>("Runtime.getHeapUsage"), new Promise<null>((r) => setTimeout(() => r(null), 2000).unref())]).catch(() => null);
  return usage ? usage.usedSize / 2 ** 20 : null;
}

export async function runSoak(target: Target, mix: SoakMix, options: SoakRunOptions) {
  const inspector = options.inspectorPort === undefined ? null : await Inspector.connect(options.inspectorPort, "keyward");
  const rss = () => totalMiB(target.pids(), "VmRSS");
  const start = performance.now();
  const stats = new SoakStats(start);
  let maxRssMiB = rss();
  const sampler = setInterval(() => (maxRssMiB = Math.max(maxRssMiB, rss())), 1000);
  const sample = async (partial: boolean) => {
    const heap = await heapMiB(inspector);
    options.log(sampleLine(stats.sample(performance.now(), rss(), heap, partial)));
  };
  let ticking: Promise<void> = Promise.resolve();
  const ticker = setInterval(() => (ticking = sample(false)), options.sampleSeconds * 1000);
  await new Promise<void>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.base,
        connections: options.connections,
        duration: options.seconds,
        timeout: 10,
        requests: [
          {
            method: "GET",
            path: "/healthz",
            // autocannon keeps one context per connection and request: the planned request travels in it to its response.
            setupRequest: (req, context) => {
              const planned = mix.next();
              context.planned = planned;
              return { ...req, ...toAutocannon(planned.request) };
            },
            onResponse: (status, body, context) => {
              const planned = context.planned as Planned;
              planned.settle(status, String(body));
              stats.response(planned, status, String(body));
            },
          },
        ],
      },
      (err) => (err ? reject(err) : resolve()),
    );
    instance.on("response", (_client: unknown, _status: number, _bytes: number, responseTime: number) => stats.latency(responseTime));
    instance.on("reqError", (err: Error) => stats.error(err));
  });
  clearInterval(ticker);
  clearInterval(sampler);
  await ticking;
  const since = (performance.now() - start) / 1000 - (stats.samples.at(-1)?.elapsedSeconds ?? 0);
  // The rest of the run after the last window, if long enough to mean something (the totals count it anyway).
  if (since >= Math.min(1, options.sampleSeconds / 2)) await sample(since < options.sampleSeconds - 0.5);
  const endRssMiB = rss();
  const endHeapMiB = await heapMiB(inspector);
  inspector?.close();
  return { stats, seconds: (performance.now() - start) / 1000, endRssMiB, endHeapMiB, maxRssMiB: Math.max(maxRssMiB, endRssMiB), hwmMiB: totalMiB(target.pids(), "VmHWM") };
}
