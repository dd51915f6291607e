/**
 * The soak's summary and verdict, printed and written as JSON to bench-results/soak-<timestamp>.json.
 *
 * Verdict "stable": no connection error, timeout or unexpected status in the whole run, and
 * workerd's RSS at the end less than 10 % above the sample at the middle of the run (the 2nd for
 * short runs). The first half holds the warm-up: JIT, the isolate's caches, and above all
 * Miniflare's D1, KV and rate limiter simulations in the same process, which grow for the first
 * minutes and then level off; a leak keeps growing through the second half. With a single full
 * sample the baseline is the first.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fmt, table, type gitState } from "../bench/report.ts";
import { root } from "../bench/runtime.ts";
import { WEIGHTS } from "./mix.ts";
import { slope, type SoakStats } from "./stats.ts";

export const MAX_RSS_GROWTH_PCT = 10;

export interface SoakReportInput {
  settings: { minutes: number; connections: number; sampleSeconds: number };
  seeded: Record<string, number>;
  startedAt: Date;
  git: ReturnType<typeof gitState>;
  stats: SoakStats;
  /** The load's length. */
  seconds: number;
  endRssMiB: number;
  endHeapMiB: number | null;
  maxRssMiB: number;
  hwmMiB: number;
  output: string | undefined;
}

const growth = (from: number, to: number) => (from > 0 ? (100 * (to - from)) / from : null);
const count = (n: number) => n.toLocaleString("en-US");
const signed = (pct: number | null) => (pct === null ? "-" : `${pct >= 0 ? "+" : ""}${pct.toFixed(1)} %`);

/** Prints the summary, writes the JSON; returns whether the run was stable. */
export function soakReport(input: SoakReportInput): boolean {
  const { stats, settings } = input;
  const samples = stats.samples;
  const full = samples.filter((s) => !s.partial);
  const first = full[0] ?? samples[0];
  const baseline = full[Math.max(1, Math.floor(full.length / 2))] ?? full[1] ?? first;
  const { seconds } = input;
  const { requests, errors, unexpected, expected401, expected429 } = stats.totals;
  // Errors and timeouts got no response: they count as attempts.
  const unexpectedRate = requests + errors > 0 ? (errors + unexpected) / (requests + errors) : 0;
  const rssGrowthPct = baseline ? growth(baseline.rssMiB, input.endRssMiB) : null;
  const rssGrowthFromFirstPct = first ? growth(first.rssMiB, input.endRssMiB) : null;
  const heapBaseline = baseline?.heapUsedMiB ?? null;
  const heapGrowthPct = heapBaseline !== null && input.endHeapMiB !== null ? growth(heapBaseline, input.endHeapMiB) : null;
  const heaps = samples.flatMap((s) => (s.heapUsedMiB === null ? [] : [s.heapUsedMiB]));
  const trend = full.slice(full.indexOf(baseline!));
  const heapSlope = heaps.length ? slope(trend.flatMap((s) => (s.heapUsedMiB === null ? [] : [[s.elapsedSeconds / 60, s.heapUsedMiB] as [number, number]]))) : null;
  const p99 = {
    perSample: samples.map((s) => s.p99),
    baseline: baseline?.p99 ?? null,
    last: samples.at(-1)?.p99 ?? null,
    lastOverBaseline: baseline && baseline.p99 > 0 ? samples.at(-1)!.p99 / baseline.p99 : null,
    slopeMsPerMinute: slope(trend.map((s) => [s.elapsedSeconds / 60, s.p99])),
  };
  const reasons = [
    ...(errors + unexpected > 0 ? [`${errors} errors or timeouts and ${unexpected} unexpected statuses`] : []),
    ...(rssGrowthPct === null ? ["no sample"] : rssGrowthPct >= MAX_RSS_GROWTH_PCT ? [`workerd RSS grew ${rssGrowthPct.toFixed(1)} % (limit ${MAX_RSS_GROWTH_PCT} %)`] : []),
  ];
  const verdict = reasons.length === 0 ? "stable" : "unstable";
  const kinds = stats.kinds();

  const lines = [
    "",
    `Keyward soak: ${fmt(seconds / 60, 1)} min at ${settings.connections} connections, samples every ${settings.sampleSeconds} s; mix ${Object.entries(WEIGHTS).map(([k, w]) => `${k} ${w}`).join(", ")} (+ a revoke per created token)`,
    "",
    table(
      ["kind", "statuses", "requests", "p50 ms", "p99 ms"],
      kinds.map((k) => [k.kind, Object.entries(k.statusCodes).map(([code, n]) => `${code} x ${count(n)}`).join(", ") || "-", count(k.requests), fmt(k.p50), fmt(k.p99)]),
    ),
    "",
    `requests: ${count(requests)} (${Math.round(requests / seconds)} req/s); unexpected: ${errors} errors or timeouts, ${unexpected} statuses = ${(100 * unexpectedRate).toFixed(4)} %; expected rejections of wrong secrets: 401 x ${count(expected401)}, 429 x ${count(expected429)}`,
    `workerd RSS: ${fmt(first?.rssMiB, 0)} MiB at the 1st sample, ${fmt(baseline?.rssMiB, 0)} MiB at sample ${baseline ? full.indexOf(baseline) + 1 : "-"} (the baseline, mid-run), ${input.endRssMiB.toFixed(0)} MiB at the end: ${signed(rssGrowthPct)} from the baseline (${signed(rssGrowthFromFirstPct)} from the 1st); max ${input.maxRssMiB.toFixed(0)} MiB`,
    `Keyward isolate's V8 heap in use (garbage included, so it saws): ${fmt(heaps.length ? Math.min(...heaps) : null, 0)} to ${fmt(heaps.length ? Math.max(...heaps) : null, 0)} MiB over the samples, ${fmt(input.endHeapMiB, 0)} MiB at the end; trend from the baseline ${fmt(heapSlope)} MiB/min`,
    `p99: ${fmt(p99.baseline)} ms at the baseline sample, ${fmt(p99.last)} ms at the last (x ${fmt(p99.lastOverBaseline)}), slope ${fmt(p99.slopeMsPerMinute)} ms/min`,
    ...stats.firstUnexpected.map((l) => `first unexpected: ${l}`),
    `verdict: ${verdict.toUpperCase()}${reasons.length ? ` (${reasons.join("; ")})` : ` (no unexpected errors or statuses; RSS growth from the baseline under ${MAX_RSS_GROWTH_PCT} %)`}`,
  ];
  console.log(lines.join("\n"));

  const output = input.output || path.join(root, "bench-results", `soak-${input.startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(path.dirname(output), { recursive: true });
  const json = {
    startedAt: input.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    settings,
    environment: { loadAverageAtEnd: os.loadavg(), node: process.version, cpus: os.cpus().length, git: input.git },
    mix: WEIGHTS,
    seeded: input.seeded,
    totals: { requests, seconds, rps: requests / seconds, errors, unexpectedStatuses: unexpected, unexpectedRate, expected401, expected429 },
    kinds,
    memory: {
      rssFirstSampleMiB: first?.rssMiB ?? null,
      rssBaselineMiB: baseline?.rssMiB ?? null,
      baselineSample: baseline?.index ?? null,
      rssEndMiB: input.endRssMiB,
      rssGrowthPct,
      rssGrowthFromFirstPct,
      maxRssMiB: input.maxRssMiB,
      peakHwmMiB: input.hwmMiB,
      heapBaselineMiB: heapBaseline,
      heapEndMiB: input.endHeapMiB,
      heapGrowthPct,
      heapMaxMiB: heaps.length ? Math.max(...heaps) : null,
      heapSlopeMiBPerMinute: heapSlope,
    },
    p99,
    samples,
    firstUnexpected: stats.firstUnexpected,
    verdict,
    reasons,
    maxRssGrowthPct: MAX_RSS_GROWTH_PCT,
  };
  writeFileSync(output, JSON.stringify(json, null, 2));
  console.log(`\n[soak] wrote ${output.startsWith(root + path.sep) ? path.relative(root, output) : output}`);
  return verdict === "stable";
}
