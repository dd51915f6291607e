/**
 * `npm run bench:compare -- <git ref>`: this checkout against another commit, in one run.
 *
 * Bundles the commit (in a temporary git worktree) and this checkout, starts both in their own
 * workerd through Miniflare, seeds both the same way, and drives /healthz, the token exchange and
 * client_secret_basic on each with their rounds interleaved (A then B for each scenario, round
 * after round). Prints each scenario's median req/s and p99/p50 for both, the ratio of the medians
 * (B / A) and the ratio of each pair of rounds: a change is measured only when its pairs agree
 * beyond the spread /healthz shows, whose code is the same in both. A script, not a test.
 *
 * Environment: COMPARE_ROUNDS [8], COMPARE_DURATION seconds per round [3], BENCH_WARMUP [2],
 * BENCH_CONNECTIONS [32].
 */
import { envNumber, logger, runMain } from "./bench/lifecycle.ts";
import { basicRequest, exchangeRequest, healthzRequest } from "./bench/requests.ts";
import { root, startWorker } from "./bench/runtime.ts";
import { worktree } from "./bench/worktree.ts";
import { median, runScenarios, type RunOptions, type Scenario } from "./bench/scenario.ts";
import { seedThroughApi } from "./bench/seed.ts";
import { table } from "./bench/report.ts";

const log = logger("compare");

async function main(): Promise<number> {
  const ref = process.argv[2];
  if (!ref) {
    console.error("usage: npm run bench:compare -- <git ref>   (compares this checkout, B, with the ref, A)");
    return 2;
  }
  const run: RunOptions = { connections: envNumber("BENCH_CONNECTIONS", 32), warmupSeconds: envNumber("BENCH_WARMUP", 2), durationSeconds: envNumber("COMPARE_DURATION", 3), rounds: envNumber("COMPARE_ROUNDS", 8), log };
  const sides = [] as { name: "A" | "B"; scenarios: Scenario[] }[];
  for (const [name, source] of [["A", worktree(ref)], ["B", root]] as const) {
    const worker = await startWorker({ tmpPrefix: `keyward-compare-${name}-`, signingAlg: null, inspector: false, rateLimits: true, log, source });
    const { accounts } = await seedThroughApi(worker.direct.base, worker.secrets.BOOTSTRAP_SECRET, { accounts: 20, pkjwtClients: 1 });
    let turn = 0;
    const pick = () => accounts[turn++ % accounts.length]!;
    sides.push({
      name,
      scenarios: [
        { id: `healthz ${name}`, label: "GET /healthz", target: worker.direct, request: healthzRequest },
        { id: `exchange ${name}`, label: "POST /api/auth/access-tokens/jwt", target: worker.direct, request: exchangeRequest(accounts[0]!.token), next: () => exchangeRequest(pick().token) },
        { id: `client-basic ${name}`, label: "/oauth/token client_secret_basic", target: worker.direct, request: basicRequest(accounts[0]!), next: () => basicRequest(pick()) },
      ],
    });
  }
  const [a, b] = sides as [(typeof sides)[number], (typeof sides)[number]];
  const results = await runScenarios(run, a.scenarios.flatMap((s, i) => [s, b.scenarios[i]!]));
  const rows = a.scenarios.map((s, i) => {
    const [ra, rb] = [results[2 * i]!, results[2 * i + 1]!];
    const pairs = ra.rounds.map((r, k) => rb.rounds[k]!.rps / r.rps);
    return [s.label, Math.round(ra.median.rps).toString(), Math.round(rb.median.rps).toString(), (rb.median.rps / ra.median.rps).toFixed(3), median(pairs).toFixed(3), pairs.map((p) => p.toFixed(2)).join(" "), (ra.median.p99 / ra.median.p50).toFixed(1), (rb.median.p99 / rb.median.p50).toFixed(1)];
  });
  console.log(`\nA = ${ref}, B = this checkout; ${run.rounds} interleaved rounds of ${run.durationSeconds} s, ${run.connections} connections\n`);
  console.log(table(["scenario", "A req/s", "B req/s", "B/A", "pairs median", "pairs", "A p99/p50", "B p99/p50"], rows));
  return 0;
}

await runMain("compare", main);
