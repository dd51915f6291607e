/**
 * The benchmark's scenarios on the Worker: (a) the /healthz ceiling (and through Miniflare's entry
 * Worker), (b) the token exchange, (c) client_secret_basic, (d) private_key_jwt, (e) a management
 * read, run interleaved with the peer (f, in peer.ts); then the scale check (the exchange with few
 * and with many tokens in the store) and /healthz through `wrangler dev`.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { AssertionPool } from "./assertions.ts";
import { onCleanup } from "./lifecycle.ts";
import type { LoadRequest, Target } from "./load.ts";
import { descendants, totalMiB, workerdPids } from "./proc.ts";
import { assertionRequest, basicRequest, exchangeRequest, healthzRequest, listAccountsRequest } from "./requests.ts";
import { startWranglerDev, type RunningWorker } from "./runtime.ts";
import { runScenario, type RunOptions, type Scenario, type ScenarioResult } from "./scenario.ts";
import { seedTokensDirect, type AccountTemplate, type BenchAccount } from "./seed.ts";

export interface Seeded {
  rootAccountId: string;
  org: { slug: string };
  accounts: BenchAccount[];
}

export interface WorkerScenarioOptions {
  /** Whether a scenario id was asked for (BENCH_SCENARIOS); the ceiling always runs. */
  wanted: (id: string) => boolean;
  /** /healthz through Miniflare's entry Worker too (with the wrangler dev comparison). */
  viaEntry: boolean;
  pkjwtClients: number;
}

/** (a) to (e), to run interleaved with the peer (runScenarios); (a)'s median req/s is the ceiling. */
export async function workerScenarios(run: RunOptions, worker: RunningWorker, seeded: Seeded, options: WorkerScenarioOptions): Promise<Scenario[]> {
  const { direct, entry } = worker;
  const { accounts, org } = seeded;
  const scenarios: Scenario[] = [];
  let turn = 0;
  const roundRobin = <T>(xs: T[]) => xs[turn++ % xs.length]!;

  scenarios.push({ id: "healthz", label: "(a) GET /healthz (ceiling)", target: direct, request: healthzRequest });
  // The same through Miniflare's entry socket (its entry Worker routes to ours): a layer the production runtime does not have.
  if (options.viaEntry) {
    scenarios.push({ id: "healthz@miniflare-entry", label: "(a) GET /healthz through Miniflare's entry Worker", target: entry, request: healthzRequest });
  }

  if (options.wanted("exchange")) {
    scenarios.push({ id: "exchange", label: "(b) POST /api/auth/access-tokens/jwt", target: direct, request: exchangeRequest(accounts[0]!.token), next: () => exchangeRequest(roundRobin(accounts).token) });
  }

  if (options.wanted("client-basic")) {
    scenarios.push({ id: "client-basic", label: "(c) /oauth/token client_secret_basic", target: direct, request: basicRequest(accounts[0]!), next: () => basicRequest(roundRobin(accounts)) });
  }

  // A fresh pre-signed assertion per request.
  if (options.wanted("private-key-jwt")) {
    const pool = new AssertionPool(accounts.filter((a) => a.key), worker.vars.ISSUER!);
    const next = (): LoadRequest => assertionRequest(pool.next());
    let signing = 0;
    let presigned = 0;
    await pool.fill(1 + run.connections); // the probe and the clients' first requests
    scenarios.push({
      id: "private-key-jwt",
      label: `(d) /oauth/token private_key_jwt (${options.pkjwtClients} clients)`,
      target: direct,
      request: next(),
      next,
      hooks: {
        // Enough for the round at the last round's rate (2,000 req/s before the first) plus 50 %.
        beforeRun: async (seconds, previous) => {
          const n = Math.ceil((previous?.rps ?? 2000) * seconds * 1.5) + 4 * run.connections;
          signing += await pool.fill(n);
          presigned += n;
        },
        notes: () => [`${presigned} assertions pre-signed with jose in ${signing.toFixed(1)} s; ${pool.signedOnDemand} signed on demand because the pool ran dry`],
      },
    });
  }

  if (options.wanted("list-accounts")) {
    scenarios.push({ id: "list-accounts", label: "(e) GET /api/v1/orgs/{org}/service-accounts?limit=20", target: direct, request: listAccountsRequest(org.slug, accounts[0]!.token) });
  }
  return scenarios;
}

/**
 * The exchange with `base` tokens in the store, then with `big` (written straight into D1 + KV):
 * picks uniform over all tokens, and over the first `base` only (the isolate's caches stay warm).
 */
export async function runScaleCheck(run: RunOptions, worker: RunningWorker, seeded: Seeded, template: AccountTemplate, base: number, big: number) {
  const { direct, seederUrl, mf } = worker;
  const results: ScenarioResult[] = [];
  const apiTokens = seeded.accounts.map((a) => a.token);
  const extraBase = Math.max(0, base - apiTokens.length);
  let t = performance.now();
  const small = [...apiTokens, ...(await seedTokensDirect(seederUrl, template, seeded.rootAccountId, extraBase))].slice(0, base);
  run.log(`scale check: ${small.length} tokens in the store (${apiTokens.length} through the API, ${extraBase} accounts with a token written straight to D1 + KV in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
  // Uniform picks over the whole store: every token is as likely as any other.
  const pick = (xs: string[]) => xs[Math.floor(Math.random() * xs.length)]!;
  const smallResult = await runScenario(run, `exchange@${base}`, `(b) exchange, ${base} tokens in store`, direct, exchangeRequest(small[0]!), () => exchangeRequest(pick(small)));
  results.push(smallResult);
  t = performance.now();
  const extra = big - small.length;
  run.log(`scale check: writing ${extra.toLocaleString("en-US")} more accounts with a token straight into D1 + KV`);
  const all = [...small, ...(await seedTokensDirect(seederUrl, template, seeded.rootAccountId, extra, run.log))];
  const seedSeconds = (performance.now() - t) / 1000;
  const d1Count = await (await mf.getD1Database("DB")).prepare("SELECT count(*) AS n FROM access_tokens WHERE status = 'active'").first<{ n: number }>();
  run.log(`scale check: ${all.length.toLocaleString("en-US")} bench tokens in the store (D1 says ${d1Count?.n} active rows, including the root's) after ${seedSeconds.toFixed(1)} s`);
  const label = big >= 1000 ? `${Math.round(big / 1000)}k` : String(big);
  const spread = await runScenario(run, `exchange@${label}`, `(b) exchange, ${label} tokens in store, picks over all`, direct, exchangeRequest(all[0]!), () => exchangeRequest(pick(all)));
  results.push(spread);
  const hot = await runScenario(run, `exchange@${label}-hot`, `(b) exchange, ${label} tokens in store, picks over the ${base}`, direct, exchangeRequest(small[0]!), () => exchangeRequest(pick(small)));
  results.push(hot);
  const scale = {
    seedSeconds,
    d1ActiveRows: d1Count?.n ?? null,
    rpsBase: smallResult.median.rps,
    rpsBigSpread: spread.median.rps,
    rpsBigHot: hot.median.rps,
    ratioSpread: spread.median.rps / smallResult.median.rps,
    ratioHot: hot.median.rps / smallResult.median.rps,
  };
  return { results, scale };
}

/** /healthz through `wrangler dev`'s proxy (its own workerd, started after Miniflare is gone). */
export async function runWranglerDevScenario(run: RunOptions, work: string): Promise<ScenarioResult> {
  const devPersist = path.join(work, "wrangler-dev");
  mkdirSync(devPersist);
  const t = performance.now();
  const dev = await startWranglerDev(devPersist);
  onCleanup(dev.stop);
  run.log(`wrangler dev on ${dev.base} (up in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
  const devTarget: Target = { name: "wrangler-dev", base: dev.base, pids: () => [dev.pid, ...descendants(dev.pid)] };
  const devResult = await runScenario(run, "healthz@wrangler-dev", "(a) GET /healthz through wrangler dev", devTarget, healthzRequest, undefined, {
    notes: () => [`workerd peak RSS ${totalMiB(workerdPids(dev.pid), "VmHWM").toFixed(0)} MiB; all wrangler dev processes: ${totalMiB(devTarget.pids(), "VmRSS").toFixed(0)} MiB RSS`],
  });
  await dev.stop();
  return devResult;
}
