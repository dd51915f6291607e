/**
 * `npm run bench`: the hot paths under load, side by side, in one run.
 *
 * 1. Bundles the Worker (`wrangler deploy --dry-run --outdir`) and runs the bundle in local workerd
 *    through Miniflare, with its real bindings (D1 DB, KV TOKENS, the SQLite Durable Objects),
 *    wrangler.toml's vars and compatibility settings, secrets generated for the run and a fresh
 *    temporary persistence directory; the D1 migrations are applied first. Load goes to the
 *    Worker's own workerd socket ("direct"). For comparison `/healthz` is also measured through
 *    Miniflare's entry socket (its entry Worker routes every request to ours) and through
 *    `wrangler dev` (a proxy on top of that): both cap throughput far below the runtime's.
 * 2. Seeds through the API: bootstrap, an org, BENCH_ACCOUNTS service accounts (viewer role, one
 *    token each), BENCH_PKJWT_CLIENTS of them with an ES256 public key for private_key_jwt. The
 *    scale check writes its extra accounts, each with one token, straight into D1
 *    (service_accounts, role_assignments, access_tokens rows) and KV (tok:<sha256> records) through
 *    a helper Worker bound to the same database and namespace.
 * 3. Drives each scenario with autocannon at fixed concurrency and duration after a warm-up, for
 *    BENCH_ROUNDS rounds interleaved across (a)-(f) (round 1 of each, then round 2 of each, ...: a
 *    ratio's two sides are measured close together), and reports the median round:
 *      (a) GET /healthz, the runtime ceiling
 *      (b) POST /api/auth/access-tokens/jwt, the token exchange
 *      (c) POST /oauth/token client_credentials, client_secret_basic
 *      (d) POST /oauth/token client_credentials, private_key_jwt (a fresh assertion per request)
 *      (e) GET /api/v1/orgs/{org}/service-accounts?limit=20, an authenticated management read
 *      (k) GET /console/orgs/{org}/service-accounts, a console page with a session cookie, at
 *          BENCH_CONSOLE_CONNECTIONS [4] connections
 *      (h) POST /oauth/token jwt-bearer: an external token (GitHub Actions' shape, a loopback issuer,
 *          its keys cached) that a trust policy takes (scripts/bench/federation.ts)
 *      (i) POST /oauth/token client_credentials, client_secret_basic with a DPoP proof (a fresh
 *          one per request, scripts/bench/dpop.ts), reported against (c)
 *      (f) the peer: oidc-provider (scripts/bench/peer-server.ts) on Node 22, client_credentials with
 *          client_secret_basic and ES256 JWT access tokens
 *      (g) the same peer, client_credentials with private_key_jwt (ES256 assertions, a fresh one per
 *          request, oidc-provider's own jti replay check), reported against (d)
 *    and the scale check: the exchange on two more Workers, one with BENCH_SCALE_BASE tokens in its
 *    store and one with BENCH_SCALE_TOKENS, picks over the same BENCH_SCALE_BASE (rounds
 *    interleaved), then picks over all tokens, then the same picks again; then the cron over the
 *    big store: expiry of a slice of its tokens, and reconcile runs (scripts/bench/cron.ts).
 * 4. Prints one table and writes the same as JSON to bench-results/bench-<timestamp>.json.
 *
 * Environment (defaults in brackets): BENCH_DURATION seconds per round [10], BENCH_WARMUP seconds
 * [2], BENCH_CONNECTIONS [32], BENCH_ROUNDS [3], BENCH_ACCOUNTS [20], BENCH_PKJWT_CLIENTS [4],
 * BENCH_SCALE_BASE [100], BENCH_SCALE_TOKENS [100000] (0 skips the scale check; 1000000 is the
 * million-token check), BENCH_CRON_EXPIRING [10000] tokens the cron expires (0 skips the cron),
 * BENCH_CRON_RECONCILE_RUNS [20],
 * BENCH_WRANGLER_DEV [1] (0 skips the wrangler dev comparison), BENCH_PROFILE=1 (one extra
 * profiled round per direct scenario through the inspector: a .cpuprofile and the top functions),
 * BENCH_SCENARIOS (a comma list of scenario ids to run: healthz, exchange, client-basic,
 * private-key-jwt, list-accounts, console-page, federated, dpop, peer, peer-private-key-jwt; the ceiling always runs, the scale check with exchange),
 * BENCH_SIGNING_ALG (overrides JWT_SIGNING_ALG: ES256, RS256 or EdDSA), BENCH_OUTPUT (the JSON
 * file to write), BENCH_GC=1 (V8's collections in workerd per round: scripts/bench/gc.ts).
 *
 * `BENCH_SMOKE=1` or `--smoke`: one round of tiny durations on a small seed, no wrangler dev and no
 * big scale seed; exits non-zero if any scenario saw an error or a non-2xx response (CI runs this).
 *
 * The parts live in scripts/bench/ (the soak, scripts/soak.ts, shares them): runtime.ts (bundle,
 * Miniflare, migrations, wrangler dev), seed.ts, requests.ts and assertions.ts (what is sent),
 * load.ts (one autocannon round), scenario.ts (rounds and median), scenarios.ts (a-e and the scale
 * check), peer.ts and peer-server.ts (f), profile.ts (BENCH_PROFILE), report.ts (table, targets,
 * JSON), proc.ts (/proc CPU and memory), lifecycle.ts (logging, cleanup, exit).
 */
import os from "node:os";
import { startBenchIssuer } from "./bench/federation.ts";
import { logger, onCleanup, runMain } from "./bench/lifecycle.ts";
import { peerScenarios } from "./bench/peer.ts";
import { totalMiB } from "./bench/proc.ts";
import { gitState, report, smokeFailure } from "./bench/report.ts";
import { startWorker } from "./bench/runtime.ts";
import { runScenarios, type RunOptions } from "./bench/scenario.ts";
import { runScaleCheck, runWranglerDevScenario, workerScenarios } from "./bench/scenarios.ts";
import { seedThroughApi } from "./bench/seed.ts";

const smoke = process.env.BENCH_SMOKE === "1" || process.argv.includes("--smoke");

function setting(name: string, normal: number, smokeValue: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return smoke ? smokeValue : normal;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got '${raw}'`);
  return value;
}

const settings = {
  smoke,
  durationSeconds: setting("BENCH_DURATION", 10, 0.15),
  warmupSeconds: setting("BENCH_WARMUP", 2, 0.1),
  connections: Math.max(1, Math.round(setting("BENCH_CONNECTIONS", 32, 8))),
  rounds: Math.max(1, Math.round(setting("BENCH_ROUNDS", 3, 1))),
  accounts: Math.max(1, Math.round(setting("BENCH_ACCOUNTS", 20, 3))),
  pkjwtClients: Math.max(1, Math.round(setting("BENCH_PKJWT_CLIENTS", 4, 1))),
  consoleConnections: Math.max(1, Math.round(setting("BENCH_CONSOLE_CONNECTIONS", 4, 2))),
  scaleBase: Math.max(1, Math.round(setting("BENCH_SCALE_BASE", 100, 100))),
  scaleTokens: Math.round(setting("BENCH_SCALE_TOKENS", 100_000, 2000)),
  cronExpiring: Math.round(setting("BENCH_CRON_EXPIRING", 10_000, 600)),
  cronReconcileRuns: Math.round(setting("BENCH_CRON_RECONCILE_RUNS", 20, 2)),
  wranglerDev: setting("BENCH_WRANGLER_DEV", 1, 0) !== 0,
  signingAlg: process.env.BENCH_SIGNING_ALG || null,
  only: (process.env.BENCH_SCENARIOS ?? "").split(",").map((s) => s.trim()).filter(Boolean),
  profile: process.env.BENCH_PROFILE === "1",
  traceGc: process.env.BENCH_GC === "1",
};
settings.pkjwtClients = Math.min(settings.pkjwtClients, settings.accounts);

const log = logger("bench");

async function main(): Promise<number> {
  const startedAt = new Date();
  const git = gitState(); // what gets bundled
  const wanted = (id: string) => id === "healthz" || settings.only.length === 0 || settings.only.includes(id);
  log(
    `${smoke ? "SMOKE: " : ""}${settings.rounds} round(s) x ${settings.durationSeconds} s after a ${settings.warmupSeconds} s warm-up, ${settings.connections} connections; ${os.cpus().length} CPUs, Node ${process.version}`,
  );

  // 1. Bundle, start workerd through Miniflare, migrate.
  // (h)'s issuer runs before the Worker: FEDERATION_ALLOWED_ISSUERS names it.
  const federationIssuer = wanted("federated") ? await startBenchIssuer() : undefined;
  if (federationIssuer) onCleanup(federationIssuer.stop);
  const vars: Record<string, string> = federationIssuer ? { FEDERATION_ALLOWED_ISSUERS: federationIssuer.issuer } : {};
  const start = (inspector: boolean) => startWorker({ tmpPrefix: "keyward-bench-", signingAlg: settings.signingAlg, inspector, rateLimits: true, traceGc: settings.traceGc, vars, log });
  const worker = await start(settings.profile);
  const { mf, direct } = worker;
  const { connections, warmupSeconds, durationSeconds, rounds } = settings;
  const run: RunOptions = { connections, warmupSeconds, durationSeconds, rounds, profilePort: worker.inspectorPort, log };

  // 2. Seed through the API.
  const t = performance.now();
  const seeded = await seedThroughApi(direct.base, worker.secrets.BOOTSTRAP_SECRET, settings);
  log(`seeded through the API: bootstrap, org '${seeded.org.slug}', ${seeded.accounts.length} service accounts with a token (${settings.pkjwtClients} with an ES256 key) in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // 3. The scenarios and the peer (rounds interleaved), the scale check; then /healthz through wrangler dev.
  const scenarios = await workerScenarios(run, worker, seeded, { wanted, viaEntry: settings.wranglerDev, pkjwtClients: settings.pkjwtClients, consoleConnections: settings.consoleConnections, federationIssuer });
  const peer = wanted("peer") || wanted("peer-private-key-jwt") ? await peerScenarios(run, wanted) : null;
  const results = await runScenarios(run, [...scenarios, ...(peer?.scenarios ?? [])]);
  await peer?.stop();
  const ceiling = results[0]!.median.rps;
  const scale: Record<string, unknown> = { base: settings.scaleBase, big: settings.scaleTokens };
  if (settings.scaleTokens > settings.scaleBase && wanted("exchange")) {
    const check = await runScaleCheck(run, settings.accounts, settings.scaleBase, settings.scaleTokens, () => start(false), settings.cronExpiring > 0 ? { expiring: settings.cronExpiring, reconcileRuns: settings.cronReconcileRuns } : null);
    results.push(...check.results);
    Object.assign(scale, check.scale);
  } else {
    Object.assign(scale, { skipped: true });
  }
  const directHwm = totalMiB(direct.pids(), "VmHWM");
  await mf.dispose();
  if (settings.wranglerDev) results.push(await runWranglerDevScenario(run, worker.work));

  // 4. Report.
  const { rows, byId } = report({ settings, startedAt, git, jwtSigningAlg: worker.vars.JWT_SIGNING_ALG, ceiling, results, scale, directHwm, output: process.env.BENCH_OUTPUT });
  const failure = smoke ? smokeFailure(rows, byId) : null;
  if (failure) {
    console.error(`[bench] ${failure}`);
    return 1;
  }
  return 0;
}

await runMain("bench", main);
