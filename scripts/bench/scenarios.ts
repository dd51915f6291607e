/**
 * The benchmark's scenarios on the Worker: (a) the /healthz ceiling (and through Miniflare's entry
 * Worker), (b) the token exchange, (c) client_secret_basic, (d) private_key_jwt, (e) a management
 * read, (k) a console page, (h) the federated jwt-bearer grant, (i) client_secret_basic with DPoP, (j) the same grant under a JWT quota, run interleaved with the peer (f and g, in peer.ts); then the scale check (the exchange with few
 * and with many tokens in the store) and /healthz through `wrangler dev`.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { AssertionPool, poolHooks } from "./assertions.ts";
import { onCleanup } from "./lifecycle.ts";
import type { LoadRequest, Target } from "./load.ts";
import { descendants, totalMiB, workerdPids } from "./proc.ts";
import { assertionRequest, basicRequest, consolePageRequest, consoleSession, exchangeRequest, healthzRequest, listAccountsRequest } from "./requests.ts";
import { startWranglerDev, type RunningWorker } from "./runtime.ts";
import { runScenario, runScenarios, type RunOptions, type Scenario, type ScenarioResult } from "./scenario.ts";
import { accountTemplate, seedQuotaAccounts, seedThroughApi, seedTokensDirect, type BenchAccount } from "./seed.ts";
import { presignedPool, trustBenchIssuer, type BenchIssuer } from "./federation.ts";
import { DpopProofs } from "./dpop.ts";
import { openStoreFiles } from "./store-files.ts";
import { runCronCheck, type CronCheck } from "./cron.ts";

export interface Seeded {
  rootToken: string;
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
  /** Concurrency of (k), the console page (BENCH_CONSOLE_CONNECTIONS). */
  consoleConnections: number;
  /** The loopback issuer the Worker trusts (FEDERATION_ALLOWED_ISSUERS), for (h). */
  federationIssuer?: BenchIssuer | undefined;
}

/** (a) to (e) and (k), to run interleaved with the peer (runScenarios); (a)'s median req/s is the ceiling. */
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

  // (i) The same grant with a DPoP proof (a fresh one per request): the JWT is bound to the proof's key.
  if (options.wanted("dpop")) {
    const proofs = new DpopProofs(`${worker.vars.ISSUER!}/oauth/token`);
    const next = (): LoadRequest => {
      const request = basicRequest(roundRobin(accounts));
      return { ...request, headers: { ...request.headers, dpop: proofs.next() } };
    };
    scenarios.push({ id: "dpop", label: "(i) /oauth/token client_secret_basic with a DPoP proof", target: direct, request: next(), next });
  }

  // (j) The same grant for accounts with a JWT quota (never reached): what counting a quota costs an issued JWT.
  if (options.wanted("quota")) {
    const limited = await seedQuotaAccounts(direct.base, seeded.rootToken, org.slug, 4);
    scenarios.push({ id: "quota", label: "(j) /oauth/token client_secret_basic, accounts with a jwtQuota", target: direct, request: basicRequest(limited[0]!), next: () => basicRequest(roundRobin(limited)) });
  }

  // A fresh pre-signed assertion per request.
  if (options.wanted("private-key-jwt")) {
    const pool = new AssertionPool(accounts.filter((a) => a.key), worker.vars.ISSUER!);
    const next = (): LoadRequest => assertionRequest(pool.next());
    await pool.fill(1 + run.connections); // the probe and the clients' first requests
    scenarios.push({
      id: "private-key-jwt",
      label: `(d) /oauth/token private_key_jwt (${options.pkjwtClients} clients)`,
      target: direct,
      request: next(),
      next,
      hooks: poolHooks(pool, run.connections, () => ""),
    });
  }

  // (h) External tokens (pre-signed, without jti) a trust policy takes, the issuer's keys cached after the probe.
  if (options.wanted("federated") && options.federationIssuer) {
    const audience = worker.vars.ISSUER!;
    await trustBenchIssuer(direct.base, seeded.rootToken, org.slug, accounts[0]!.id, options.federationIssuer.issuer, audience);
    const next = await presignedPool(options.federationIssuer, audience, 256);
    scenarios.push({ id: "federated", label: "(h) /oauth/token jwt-bearer, an external token (issuer keys cached)", target: direct, request: next(), next });
  }

  if (options.wanted("list-accounts")) {
    scenarios.push({ id: "list-accounts", label: "(e) GET /api/v1/orgs/{org}/service-accounts?limit=20", target: direct, request: listAccountsRequest(org.slug, accounts[0]!.token) });
  }

  // A viewer signed in to the console: its session cookie on every request, a few connections (people, not clients).
  if (options.wanted("console-page")) {
    const cookie = await consoleSession(direct.base, accounts[0]!.token);
    scenarios.push({
      id: "console-page",
      label: `(k) GET /console/orgs/{org}/service-accounts (page, ${options.consoleConnections} connections)`,
      target: direct,
      request: consolePageRequest(org.slug, cookie),
      connections: options.consoleConnections,
    });
  }
  return scenarios;
}

/**
 * The cron's bounds the check runs under, in turn: wrangler.toml's, and those of a paid plan with
 * the current 10,000-subrequest cap per invocation (docs/performance.md, "A million tokens").
 */
const CRON_PROFILES: Record<string, Record<string, string>> = { default: {}, "paid-plan": { CRON_SUBREQUEST_BUDGET: "9000", CRON_MAX_ITEMS: "5000" } };

/**
 * The exchange on two fresh Workers (the same bundle, seeded the same way through the API), one
 * with `base` tokens in its store, one with `big` (the extra accounts written straight into D1 +
 * KV). Picks over `base` tokens on both, rounds interleaved (as a ratio's two sides should be);
 * then, on the big store, picks uniform over all tokens (cache misses), and the `base` picks once
 * more right after those: the usage writes of the thousands of accounts just used land meanwhile.
 * Last, if asked, the cron over the big store (cron.ts).
 */
export async function runScaleCheck(run: RunOptions, accounts: number, base: number, big: number, start: () => Promise<RunningWorker>, cronCheck: { expiring: number; reconcileRuns: number } | null) {
  const t = performance.now();
  const seed = async (count: number) => {
    const worker = await start();
    const seeded = await seedThroughApi(worker.direct.base, worker.secrets.BOOTSTRAP_SECRET, { accounts: Math.min(accounts, base), pkjwtClients: 0 });
    const template = await accountTemplate(worker.mf, await worker.mf.getKVNamespace("TOKENS"), seeded.accounts[0]!);
    await worker.mf.dispose();
    const store = openStoreFiles(worker.persist, worker.kvIds.TOKENS!);
    const direct = seedTokensDirect(store, template, seeded.rootAccountId, count - seeded.accounts.length, count > base ? run.log : undefined);
    store.close();
    await worker.restart();
    return { worker, rootToken: seeded.rootToken, tokens: [...seeded.accounts.map((a) => a.token), ...direct] };
  };
  const small = await seed(base);
  run.log(`scale check: a Worker with ${base} tokens; another, writing ${(big - base).toLocaleString("en-US")} more accounts with a token straight into its D1 + KV`);
  const large = await seed(big);
  const seedSeconds = (performance.now() - t) / 1000;
  const d1Count = await (await large.worker.mf.getD1Database("DB")).prepare("SELECT count(*) AS n FROM access_tokens WHERE status = 'active'").first<{ n: number }>();
  run.log(`scale check: ${large.tokens.length.toLocaleString("en-US")} bench tokens in the second Worker's store (D1 says ${d1Count?.n} active rows, including the root's) after ${seedSeconds.toFixed(1)} s`);

  const label = big >= 1000 ? `${Math.round(big / 1000)}k` : String(big);
  const pick = (xs: string[]) => () => exchangeRequest(xs[Math.floor(Math.random() * xs.length)]!);
  const exchange = (id: string, text: string, worker: RunningWorker, tokens: string[]): Scenario => ({ id, label: text, target: worker.direct, request: exchangeRequest(tokens[0]!), next: pick(tokens) });
  const hot = large.tokens.slice(0, base);
  const [smallResult, hotResult] = await runScenarios(run, [
    exchange(`exchange@${base}`, `(b) exchange, ${base} tokens in store`, small.worker, small.tokens),
    exchange(`exchange@${label}-hot`, `(b) exchange, ${label} tokens in store, picks over ${base}`, large.worker, hot),
  ]);
  await small.worker.mf.dispose();
  const [spread] = await runScenarios(run, [exchange(`exchange@${label}`, `(b) exchange, ${label} tokens in store, picks over all`, large.worker, large.tokens)]);
  const [after] = await runScenarios(run, [exchange(`exchange@${label}-hot-after`, `(b) exchange, ${label} tokens, picks over ${base}, after "over all"`, large.worker, hot)]);
  const cron: Record<string, CronCheck> = {};
  for (const [profile, vars] of Object.entries(cronCheck ? CRON_PROFILES : {})) {
    if (Object.keys(vars).length > 0) {
      await large.worker.mf.dispose();
      await large.worker.restart(vars);
    }
    run.log(`cron over the big store, ${profile} bounds`);
    cron[profile] = await runCronCheck(large.worker.direct.base, large.rootToken, await large.worker.mf.getD1Database("DB"), { ...cronCheck!, log: run.log });
  }
  await large.worker.mf.dispose();
  const results = [smallResult!, hotResult!, spread!, after!];
  const rps = (r: ScenarioResult) => r.median.rps;
  const scale = {
    seedSeconds,
    d1ActiveRows: d1Count?.n ?? null,
    rpsBase: rps(smallResult!),
    rpsBigHot: rps(hotResult!),
    rpsBigSpread: rps(spread!),
    rpsBigHotAfterSpread: rps(after!),
    ratioHot: rps(hotResult!) / rps(smallResult!),
    ratioSpread: rps(spread!) / rps(smallResult!),
    ratioHotAfterSpread: rps(after!) / rps(smallResult!),
    cron: cronCheck ? cron : null,
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
