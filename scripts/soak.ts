/**
 * `npm run soak`: the Worker under a steady mixed load for minutes, watching for errors, leaks and
 * latency drift (not run in CI).
 *
 * Starts the bundled Worker in workerd exactly as `npm run bench` does (scripts/bench/runtime.ts),
 * with wrangler.toml's failure rate limiters bound too; seeds through the API a few viewer
 * accounts with a token (some with an ES256 key for private_key_jwt), accounts without a token
 * for the writes and accounts whose token gets regenerated; then drives, with one autocannon run,
 * the weighted mix of scripts/soak/mix.ts: the token exchange, client_secret_basic,
 * private_key_jwt (a fresh assertion per request), management reads (list, get), writes (create a
 * token then revoke it, regenerate) and wrong secrets (401, or 429 from the limiter: expected).
 *
 * Every SOAK_SAMPLE_SECONDS [30] prints one line (elapsed, req/s, p50/p99, unexpected errors and
 * statuses, expected rejections, workerd RSS); at the end a summary per kind, the RSS growth and
 * the p99 trend, and writes the same as JSON to bench-results/soak-<timestamp>.json (or
 * SOAK_OUTPUT). Exits 1 unless stable (scripts/soak/report.ts says what that means).
 *
 * Environment: SOAK_MINUTES [10], SOAK_CONNECTIONS [16], SOAK_SAMPLE_SECONDS [30], SOAK_OUTPUT.
 */
import os from "node:os";
import { AssertionPool } from "./bench/assertions.ts";
import { logger, runMain } from "./bench/lifecycle.ts";
import { gitState } from "./bench/report.ts";
import { startWorker } from "./bench/runtime.ts";
import { api, seedThroughApi } from "./bench/seed.ts";
import { SoakMix } from "./soak/mix.ts";
import { soakReport } from "./soak/report.ts";
import { probeMix, runSoak } from "./soak/run.ts";

function setting(name: string, normal: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return normal;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min}, got '${raw}'`);
  return value;
}

const settings = {
  minutes: setting("SOAK_MINUTES", 10, 0.1),
  connections: Math.round(setting("SOAK_CONNECTIONS", 16, 1)),
  sampleSeconds: setting("SOAK_SAMPLE_SECONDS", 30, 1),
};
const SEED = { clients: 8, pkjwtClients: 3, writers: 6, rotators: 4 };

const log = logger("soak");

async function main(): Promise<number> {
  const startedAt = new Date();
  const git = gitState();
  log(`${settings.minutes} min at ${settings.connections} connections, a sample every ${settings.sampleSeconds} s; ${os.cpus().length} CPUs, Node ${process.version}`);

  const worker = await startWorker({ tmpPrefix: "keyward-soak-", signingAlg: null, inspector: true, rateLimits: true, log });
  const base = worker.direct.base;
  const seeded = await seedThroughApi(base, worker.secrets.BOOTSTRAP_SECRET, { accounts: SEED.clients, pkjwtClients: SEED.pkjwtClients });
  const { rootToken, org } = seeded;
  const create = (name: string, issueToken: boolean) =>
    api<{ id: string; token?: { id: string } }>(base, "POST", `/api/v1/orgs/${org.slug}/service-accounts`, rootToken, { name, roles: [{ role: "viewer" }], issueToken }, [201]);
  const writers = await Promise.all(Array.from({ length: SEED.writers }, (_, i) => create(`soak-writer-${i}`, false)));
  const rotators = await Promise.all(Array.from({ length: SEED.rotators }, (_, i) => create(`soak-rotator-${i}`, true)));
  log(`seeded through the API: org '${org.slug}', ${SEED.clients} clients with a token (${SEED.pkjwtClients} with an ES256 key), ${SEED.writers} writer and ${SEED.rotators} rotator accounts`);

  // No pre-signed pool: over minutes assertions would expire; each is signed when its request is built.
  const pool = new AssertionPool(seeded.accounts.filter((a) => a.key), worker.vars.ISSUER!);
  const mix = new SoakMix(
    { org: org.slug, rootToken, clients: seeded.accounts, writers: writers.map((w) => w.id), rotators: rotators.map((r) => ({ id: r.id, tokenId: r.token!.id })) },
    pool,
  );
  await probeMix(worker.direct, mix);

  const run = await runSoak(worker.direct, mix, {
    connections: settings.connections,
    seconds: settings.minutes * 60,
    sampleSeconds: settings.sampleSeconds,
    inspectorPort: worker.inspectorPort,
    log,
  });
  const stable = soakReport({ settings, seeded: SEED, startedAt, git, ...run, output: process.env.SOAK_OUTPUT });
  return stable ? 0 : 1;
}

await runMain("soak", main);
