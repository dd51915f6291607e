/**
 * The benchmark's report: one table (the median round of each scenario, relative to the ceiling
 * and the peer), the targets, notes and warnings; printed, and written with every round as JSON.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { CronCheck, JobPass } from "./cron.ts";
import { root } from "./runtime.ts";
import type { ScenarioResult } from "./scenario.ts";

export function gitState() {
  const git = (...args: string[]) => spawnSync("git", ["-C", root, ...args], { encoding: "utf8" }).stdout?.trim() ?? "";
  return { commit: git("rev-parse", "HEAD") || null, dirty: git("status", "--porcelain", "--untracked-files=no") !== "" };
}

/** A text table: the first two columns left-aligned, the others right-aligned. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export const fmt = (n: number | null | undefined, digits = 2) => (n === null || n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits));

export interface ReportSettings {
  smoke: boolean;
  rounds: number;
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
  scaleBase: number;
  scaleTokens: number;
  signingAlg: string | null;
}

export interface ReportInput {
  /** Written to the JSON as is. */
  settings: ReportSettings;
  startedAt: Date;
  git: ReturnType<typeof gitState>;
  jwtSigningAlg: string | undefined;
  ceiling: number;
  results: ScenarioResult[];
  scale: Record<string, unknown>;
  /** workerd's peak RSS over the whole run (direct). */
  directHwm: number;
  /** The JSON file; by default bench-results/bench-<timestamp>[-smoke].json. */
  output: string | undefined;
}

function tableRows(results: ScenarioResult[], ceiling: number, peerRps: number | null) {
  return results.map((r) => {
    const m = r.median;
    const toPeer = r.id === "client-basic" && peerRps ? m.rps / peerRps : null;
    return {
      id: r.id,
      label: r.label,
      target: r.target,
      rps: m.rps,
      p50: m.p50,
      p99: m.p99,
      p99OverP50: m.p50 > 0 ? m.p99 / m.p50 : null,
      non2xx: r.totals.non2xx,
      errors: r.totals.errors,
      toCeiling: r.target === "peer" ? null : m.rps / ceiling,
      toPeer,
      serverCpuPct: m.serverCpuPct,
      generatorCpuPct: m.generatorCpuPct,
      otherCpuPct: m.otherCpuPct,
      serverPeakRssMiB: r.serverPeakRssMiB,
      gc: r.gc,
      bindingCounts: r.bindingCounts,
    };
  });
}

type Row = ReturnType<typeof tableRows>[number];

function printTable(rows: Row[]): string {
  const traced = rows.some((r) => r.gc);
  return table(
    ["scenario", "target", "req/s", "p50 ms", "p99 ms", "p99/p50", "non-2xx", "errors", "x ceiling", "x peer", "srv CPU%", "gen CPU%", "other CPU%", "srv RSS MiB", ...(traced ? ["GC %", "GC max ms", "full GCs"] : []), "KV r/req", "KV w/req", "DO/req", "D1/req", "fetch/req", "cache/req"],
    rows.map((r) => [
      r.label,
      r.target,
      Math.round(r.rps).toString(),
      fmt(r.p50),
      fmt(r.p99),
      fmt(r.p99OverP50, 1),
      String(r.non2xx),
      String(r.errors),
      fmt(r.toCeiling),
      fmt(r.toPeer),
      Math.round(r.serverCpuPct).toString(),
      Math.round(r.generatorCpuPct).toString(),
      Math.round(r.otherCpuPct).toString(),
      Math.round(r.serverPeakRssMiB).toString(),
      ...(traced ? (r.gc ? [r.gc.pausePct.toFixed(1), r.gc.maxPauseMs.toFixed(0), String(r.gc.fullGcs)] : ["-", "-", "-"]) : []),
      ...(["kvRead", "kvWrite", "doCall", "d1", "fetch", "cache"] as const).map((k) => (r.bindingCounts ? fmt(r.bindingCounts[k] ?? 0) : "-")),
    ]),
  );
}

/** Prints the report and writes the JSON; returns the table's rows (the smoke checks them). */
export function report(input: ReportInput) {
  const { settings, ceiling, results, scale } = input;
  const byId = new Map(results.map((r) => [r.id, r]));
  const peerRps = byId.get("peer")?.median.rps ?? null;
  const rows = tableRows(results, ceiling, peerRps);
  const printed = printTable(rows);

  const exchange = byId.get("exchange");
  const basic = byId.get("client-basic");
  const federated = byId.get("federated");
  const dpop = byId.get("dpop");
  const quota = byId.get("quota");
  const pkjwt = byId.get("private-key-jwt");
  const peerPkjwt = byId.get("peer-private-key-jwt");
  const dev = byId.get("healthz@wrangler-dev");
  const viaEntry = byId.get("healthz@miniflare-entry");
  // Scenarios (a)-(f) on the Worker's own socket and the peer; the scale rows (id "exchange@…")
  // and the proxy comparisons are reported beside them, not held to the latency target.
  const measured = rows.filter((r) => (r.target === "direct" || r.target === "peer") && !r.id.includes("@") && r.id !== "console-page");
  const consolePage = byId.get("console-page");
  const scaleRows = rows.filter((r) => r.id.startsWith("exchange@"));
  const targets = [
    { name: "token exchange >= 0.45 x ceiling", value: exchange ? exchange.median.rps / ceiling : null, pass: exchange ? exchange.median.rps / ceiling >= 0.45 : null },
    { name: "federated grant (h) >= 0.35 x ceiling", value: federated ? federated.median.rps / ceiling : null, pass: federated ? federated.median.rps / ceiling >= 0.35 : null },
    { name: "client_credentials with DPoP (i) >= 0.7 x without (c)", value: dpop && basic ? dpop.median.rps / basic.median.rps : null, pass: dpop && basic ? dpop.median.rps / basic.median.rps >= 0.7 : null },
    { name: "client_credentials under a JWT quota (j) >= 0.95 x without (c)", value: quota && basic ? quota.median.rps / basic.median.rps : null, pass: quota && basic ? quota.median.rps / basic.median.rps >= 0.95 : null },
    { name: "private_key_jwt (d) >= 1.2 x peer (g)", value: pkjwt && peerPkjwt ? pkjwt.median.rps / peerPkjwt.median.rps : null, pass: pkjwt && peerPkjwt ? pkjwt.median.rps / peerPkjwt.median.rps >= 1.2 : null },
    { name: "client_credentials (basic) >= 1.2 x peer", value: basic && peerRps ? basic.median.rps / peerRps : null, pass: basic && peerRps ? basic.median.rps / peerRps >= 1.2 : null },
    // The proxy comparisons (miniflare-entry, wrangler-dev) are not Keyward's scenarios.
    { name: "p99 <= 4 x p50 in every scenario (a)-(f)", value: Math.max(...measured.map((r) => r.p99OverP50 ?? 0)), pass: measured.every((r) => r.p99OverP50 !== null && r.p99OverP50 <= 4) },
    // (k) is held to its own latency target (a page for people, at a few connections).
    { name: "console page p50 < 50 ms", value: consolePage ? consolePage.median.p50 : null, pass: consolePage ? consolePage.median.p50 < 50 : null },
    { name: "no errors or non-2xx under load", value: rows.reduce((s, r) => s + r.non2xx + r.errors, 0), pass: rows.every((r) => r.non2xx === 0 && r.errors === 0) },
    // The cost per exchange must not grow with the store: the same picks (the same cache hits)
    // with 1,000 times more tokens stored, on two Workers whose rounds interleave. Picks over all
    // tokens measure a cache miss (a KV read in Miniflare's simulation) instead, reported on its
    // own line, as is the aftermath of those (the usage writes of thousands of accounts).
    {
      name: `scale: exchange with ${settings.scaleTokens} / with ${settings.scaleBase} tokens >= 0.9 (same picks)`,
      value: (scale.ratioHot as number | undefined) ?? null,
      pass: scale.ratioHot === undefined ? null : (scale.ratioHot as number) >= 0.9,
    },
    {
      name: "scale rows: p99 <= 4 x p50 (informative: picks over all are cache misses)",
      value: scaleRows.length ? Math.max(...scaleRows.map((r) => r.p99OverP50 ?? 0)) : null,
      pass: null,
    },
  ];
  const contended = results.filter((r) => [...r.rounds, ...(r.warmup ? [r.warmup] : [])].some((x) => x.otherCpuPct >= 15)).map((r) => r.id);
  const verdict = (g: { pass: boolean | null; value: number | null }) => (g.pass === null ? (g.value === null ? "n/a " : "info") : g.pass ? "PASS" : "FAIL");

  const lines = [
    "",
    `Keyward benchmark${settings.smoke ? " (SMOKE: numbers meaningless)" : ""}: median of ${settings.rounds} round(s) of ${settings.durationSeconds} s, ${settings.connections} connections, after a ${settings.warmupSeconds} s warm-up (autocannon ${JSON.parse(readFileSync(path.join(root, "node_modules", "autocannon", "package.json"), "utf8")).version}, ${os.cpus().length} CPUs)`,
    "direct = the bundled Worker in local workerd (started by Miniflare), load on the Worker's own workerd socket; miniflare-entry = the same through Miniflare's entry Worker; wrangler-dev = through `wrangler dev`; peer = oidc-provider on Node " +
      process.version,
    "",
    printed,
    "",
    `workerd (direct) peak RSS over the whole run: ${input.directHwm.toFixed(0)} MiB${settings.signingAlg ? `; JWT_SIGNING_ALG=${settings.signingAlg}` : `; JWT_SIGNING_ALG=${input.jwtSigningAlg}`}`,
    dev
      ? `wrangler dev caps /healthz at ${Math.round(dev.median.rps)} req/s = ${fmt(dev.median.rps / ceiling)} x the runtime reached directly (${Math.round(ceiling)} req/s)${viaEntry ? `; Miniflare's entry Worker alone at ${Math.round(viaEntry.median.rps)} req/s = ${fmt(viaEntry.median.rps / ceiling)} x` : ""}: measure on the Worker's own socket, never through wrangler dev.`
      : "wrangler dev comparison: skipped",
    scale.skipped
      ? "scale check: skipped"
      : `scale check (two Workers, the same bundle): exchange with ${settings.scaleTokens.toLocaleString("en-US")} tokens / with ${settings.scaleBase}: ${fmt(scale.ratioHot as number)} (picks over ${settings.scaleBase} on both, rounds interleaved), ${fmt(scale.ratioSpread as number)} (picks uniform over all tokens: cache misses), ${fmt(scale.ratioHotAfterSpread as number)} (picks over ${settings.scaleBase} again, right after those)`,
    ...cronLines(scale.cron as Record<string, CronCheck> | null | undefined),
    ...results.flatMap((r) => r.notes.map((n) => `note (${r.id}): ${n}`)),
    ...(contended.length > 0
      ? [`WARNING: other processes used >= 15 % of a core during ${contended.join(", ")} (column "other CPU%"); on ${os.cpus().length} CPUs that skews the numbers: run again on a quiet machine.`]
      : []),
    "",
    "targets:",
    ...targets.map((g) => `  ${verdict(g)}  ${g.name}: ${typeof g.value === "number" ? fmt(g.value) : "-"}`),
  ];
  console.log(lines.join("\n"));

  const finishedAt = new Date();
  const output = input.output || path.join(root, "bench-results", `bench-${input.startedAt.toISOString().replace(/[:.]/g, "-")}${settings.smoke ? "-smoke" : ""}.json`);
  mkdirSync(path.dirname(output), { recursive: true });
  writeFileSync(
    output,
    JSON.stringify(
      {
        startedAt: input.startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        settings,
        environment: { loadAverageAtEnd: os.loadavg(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, platform: `${os.platform()} ${os.release()}`, git: input.git, jwtSigningAlg: input.jwtSigningAlg },
        ceilingRps: ceiling,
        table: rows,
        targets,
        scale,
        workerdPeakRssMiB: input.directHwm,
        scenarios: results,
        printed: lines.join("\n"),
      },
      null,
      2,
    ),
  );
  console.log(`\n[bench] wrote ${output.startsWith(root + path.sep) ? path.relative(root, output) : output}`);
  return { rows, byId };
}

/** The smoke's failure message: the scenarios with errors or non-2xx responses, or null. */
export function smokeFailure(rows: Row[], byId: Map<string, ScenarioResult>): string | null {
  const bad = rows.filter((r) => r.non2xx > 0 || r.errors > 0);
  if (bad.length === 0) return null;
  return `SMOKE FAILED: errors or non-2xx in ${bad.map((r) => `${r.id} (${JSON.stringify(byId.get(r.id)!.totals.statusCodes)}, ${r.errors} errors; first: ${byId.get(r.id)!.rounds.map((x) => x.firstFailure).find(Boolean) ?? byId.get(r.id)!.warmup?.firstFailure ?? "-"})`).join(", ")}`;
}

/** The cron over the scale check's store, per bounds profile: items per run and per second, and runs per full pass. */
function cronLines(cron: Record<string, CronCheck> | null | undefined): string[] {
  if (!cron) return ["cron over the scale store: skipped"];
  const stops = (p: JobPass) => Object.entries(p.stoppedBy).map(([k, v]) => k + " " + v).join(", ");
  const pass = (p: JobPass) => `${p.itemsPerRun} items a run, ${p.itemsPerSecond} items/s, longest run ${p.maxRunMs} ms, runs stopped by ${stops(p)}`;
  return Object.entries(cron).flatMap(([profile, c]) => [
    `cron (${profile} bounds), expireTokens: ${c.expiring.toLocaleString("en-US")} tokens due took ${c.expiry.runs} runs (${pass(c.expiry)}; ${c.expiredLeft} still due after)`,
    `cron (${profile} bounds), reconcile: ${c.reconcile.runs} runs (${pass(c.reconcile)}; ${c.reconcile.totals.accountsResynced ?? 0} accounts resynced, ${c.reconcile.totals.orphansDeleted ?? 0} orphans deleted); a full cycle over ${c.active.toLocaleString("en-US")} tokens needs ${c.reconcileRunsPerPass} runs`,
  ]);
}
