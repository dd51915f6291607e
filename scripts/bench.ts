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
 *    BENCH_ROUNDS rounds, and reports the median round:
 *      (a) GET /healthz, the runtime ceiling
 *      (b) POST /api/auth/access-tokens/jwt, the token exchange
 *      (c) POST /oauth/token client_credentials, client_secret_basic
 *      (d) POST /oauth/token client_credentials, private_key_jwt (a fresh assertion per request)
 *      (e) GET /api/v1/orgs/{org}/service-accounts?limit=20, an authenticated management read
 *      (f) the peer: oidc-provider (scripts/bench-peer.ts) on Node 22, client_credentials with
 *          client_secret_basic and ES256 JWT access tokens
 *    and the scale check: the exchange with 100 and with BENCH_SCALE_TOKENS tokens in the store.
 * 4. Prints one table and writes the same as JSON to bench-results/bench-<timestamp>.json.
 *
 * Environment (defaults in brackets): BENCH_DURATION seconds per round [10], BENCH_WARMUP seconds
 * [2], BENCH_CONNECTIONS [32], BENCH_ROUNDS [3], BENCH_ACCOUNTS [20], BENCH_PKJWT_CLIENTS [4],
 * BENCH_SCALE_BASE [100], BENCH_SCALE_TOKENS [100000] (0 skips the scale check),
 * BENCH_WRANGLER_DEV [1] (0 skips the wrangler dev comparison), BENCH_PROFILE=1 (one extra profiled
 * round per direct scenario through the inspector: a .cpuprofile and the top functions), BENCH_SCENARIOS (a comma list of
 * scenario ids to run: healthz, exchange, client-basic, private-key-jwt, list-accounts, peer; the
 * ceiling always runs, the scale check with exchange), BENCH_SIGNING_ALG
 * (overrides JWT_SIGNING_ALG: ES256, RS256 or EdDSA), BENCH_OUTPUT (the JSON file to write).
 *
 * `BENCH_SMOKE=1` or `--smoke`: one round of tiny durations on a small seed, no wrangler dev and no
 * big scale seed; exits non-zero if any scenario saw an error or a non-2xx response (CI runs this).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, createPrivateKey, randomBytes, randomUUID, sign as nodeSign, type KeyObject } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { freePort } from "./dev-server.ts";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey as JoseKey, type JWK } from "jose";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { unstable_readConfig } from "wrangler";
import { generateAccessToken, tokenHint } from "../src/domain/access-token.ts";
import { tokenKey, type AccountClaims, type TokenRecord } from "../src/domain/kv-records.ts";
import { newId } from "../src/lib/ids.ts";
import { profileWhile } from "./bench-profile.ts";

const root = path.resolve(import.meta.dirname, "..");
const wranglerJs = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
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
  scaleBase: Math.max(1, Math.round(setting("BENCH_SCALE_BASE", 100, 100))),
  scaleTokens: Math.round(setting("BENCH_SCALE_TOKENS", 100_000, 500)),
  wranglerDev: setting("BENCH_WRANGLER_DEV", 1, 0) !== 0,
  signingAlg: process.env.BENCH_SIGNING_ALG || null,
  only: (process.env.BENCH_SCENARIOS ?? "").split(",").map((s) => s.trim()).filter(Boolean),
  profile: process.env.BENCH_PROFILE === "1",
};
settings.pkjwtClients = Math.min(settings.pkjwtClients, settings.accounts);

const log = (msg: string) => console.log(`[bench] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Processes: ports, descendants, CPU time and memory from /proc
// ---------------------------------------------------------------------------------------------

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim()) || 100;

function procStat(pid: number): { ppid: number; comm: string; cpuSeconds: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { ppid: Number(fields[1]), comm, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLK_TCK };
  } catch {
    return null;
  }
}

/** Every live descendant of `pid` (not `pid` itself). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const next = queue.shift()!;
    out.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return out;
}

const workerdPids = (parent: number) => descendants(parent).filter((p) => procStat(p)?.comm.startsWith("workerd"));

/** A /proc/<pid>/status field in MiB (VmRSS, VmHWM), or 0 when the process is gone. */
function memoryMiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

const cpuSeconds = (pids: number[]) => pids.reduce((sum, pid) => sum + (procStat(pid)?.cpuSeconds ?? 0), 0);

/** CPU seconds the whole machine has spent busy (every core; /proc/stat minus idle and iowait). */
function machineBusySeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

interface LoadRequest {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body?: string;
}

interface Target {
  name: "direct" | "miniflare-entry" | "peer" | "wrangler-dev";
  base: string;
  /** The processes that serve it (their CPU time and memory are reported). */
  pids: () => number[];
}

interface RoundStats {
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
  /** The first non-2xx response of the round (status and the start of its body), for diagnosis. */
  firstFailure: string | null;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/**
 * One autocannon run. `next` (if given) builds each request (autocannon's setupRequest), else the
 * same request repeats. Latencies come from autocannon's per-response timings (sub-millisecond;
 * its own histogram rounds to whole milliseconds).
 */
async function load(target: Target, request: LoadRequest, seconds: number, next?: () => LoadRequest): Promise<RoundStats> {
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  const pids = target.pids();
  const cpu0 = cpuSeconds(pids);
  const gen0 = process.cpuUsage();
  const busy0 = machineBusySeconds();
  let peakRss = pids.reduce((s, p) => s + memoryMiB(p, "VmRSS"), 0);
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, pids.reduce((s, p) => s + memoryMiB(p, "VmRSS"), 0));
  }, 250);
  const start = performance.now();
  let firstFailure: string | null = null;
  const base: autocannon.Request = {
    method: request.method,
    path: request.path,
    headers: request.headers,
    ...(request.body !== undefined ? { body: request.body } : {}),
    onResponse: (status, body) => {
      if ((status < 200 || status > 299) && firstFailure === null) firstFailure = `${status} ${String(body).slice(0, 300)}`;
    },
  };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.base,
        connections: settings.connections,
        duration: seconds,
        sampleInt: 100,
        timeout: 10,
        requests: [
          next
            ? {
                ...base,
                setupRequest: (req) => {
                  const r = next();
                  return { ...req, method: r.method, path: r.path, headers: r.headers, ...(r.body !== undefined ? { body: r.body } : {}) };
                },
              }
            : base,
        ],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      latencies.push(responseTime);
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
    });
  });
  const elapsed = (performance.now() - start) / 1000;
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
    firstFailure,
  };
}

/** One request outside the load, to fail fast (with the body) when a scenario is misconfigured. */
async function probe(target: Target, r: LoadRequest, label: string): Promise<void> {
  const res = await fetch(target.base + r.path, { method: r.method, headers: r.headers, ...(r.body !== undefined ? { body: r.body } : {}) });
  const text = await res.text();
  if (res.status < 200 || res.status > 299) throw new Error(`${label}: the probe request got ${res.status}: ${text.slice(0, 500)}`);
}

// ---------------------------------------------------------------------------------------------
// The Worker in workerd, through Miniflare
// ---------------------------------------------------------------------------------------------

/**
 * A helper Worker in the same workerd, bound to the same D1 database and KV namespace, that writes
 * a batch of rows and records per request, on its own socket. (KV has no bulk put; one
 * getKVNamespace() put per record from Node is ~3x slower, and Miniflare's binding proxy failed an
 * internal assertion after ~30,000 bulk writes.)
 */
const SEEDER_SCRIPT = `export default {
  async fetch(request, env) {
    const { sql = [], kv = [] } = await request.json();
    await Promise.all([
      sql.length ? env.DB.batch(sql.map((s) => env.DB.prepare(s))) : null,
      ...kv.map(([key, value]) => env.TOKENS.put(key, value)),
    ]);
    return Response.json({ statements: sql.length, records: kv.length });
  },
};`;

async function bundle(outdir: string): Promise<string[]> {
  const res = spawnSync(process.execPath, [wranglerJs, "deploy", "--dry-run", "--outdir", outdir], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
  });
  if (res.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${res.stdout}\n${res.stderr}`);
  const modules = readdirSync(outdir).filter((f) => /\.(m?js)$/.test(f));
  if (!modules.includes("index.js")) throw new Error(`no index.js in the bundle: ${modules.join(", ")}`);
  return ["index.js", ...modules.filter((m) => m !== "index.js")].map((m) => path.join(outdir, m));
}

interface WorkerConfig {
  compatibilityDate: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
  d1: Record<string, string>;
  kv: Record<string, string>;
  durableObjects: Record<string, { className: string; useSQLite: boolean }>;
}

function readWorkerConfig(): WorkerConfig {
  const config = unstable_readConfig({ config: path.join(root, "wrangler.toml") }) as unknown as {
    compatibility_date?: string;
    compatibility_flags: string[];
    vars: Record<string, unknown>;
    d1_databases: { binding: string; database_id?: string; database_name?: string }[];
    kv_namespaces: { binding: string; id?: string }[];
    durable_objects: { bindings: { name: string; class_name: string }[] };
    migrations: { new_sqlite_classes?: string[] }[];
  };
  if (!config.compatibility_date) throw new Error("wrangler.toml has no compatibility_date");
  const sqliteClasses = new Set(config.migrations.flatMap((m) => m.new_sqlite_classes ?? []));
  return {
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    vars: Object.fromEntries(Object.entries(config.vars).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])),
    d1: Object.fromEntries(config.d1_databases.map((d) => [d.binding, d.database_id ?? d.database_name ?? d.binding])),
    kv: Object.fromEntries(config.kv_namespaces.map((k) => [k.binding, k.id ?? k.binding])),
    durableObjects: Object.fromEntries(
      config.durable_objects.bindings.map((b) => [b.name, { className: b.class_name, useSQLite: sqliteClasses.has(b.class_name) }]),
    ),
  };
}

async function applyMigrations(mf: Miniflare): Promise<number> {
  const db = await mf.getD1Database("DB");
  const dir = path.join(root, "migrations");
  const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
  for (const file of files) {
    const statements = readFileSync(path.join(dir, file), "utf8")
      .split("--> statement-breakpoint")
      .map((s) => s.trim())
      .filter(Boolean);
    await db.batch(statements.map((s) => db.prepare(s)));
  }
  return files.length;
}

// ---------------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------------

interface BenchAccount {
  id: string;
  token: string;
  tokenId: string;
  /** For private_key_jwt clients. */
  key?: { kid: string; privateKey: JoseKey; nodeKey: KeyObject };
}

async function api<T>(base: string, method: string, pathname: string, token: string, body?: unknown, expected = [200, 201]): Promise<T> {
  const res = await fetch(base + pathname, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!expected.includes(res.status)) throw new Error(`${method} ${pathname}: ${res.status} ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : null) as T;
}

async function seedThroughApi(base: string, bootstrapSecret: string) {
  const boot = await api<{ account: { id: string }; token: { token: string } }>(base, "POST", "/api/v1/bootstrap", bootstrapSecret, undefined, [201]);
  const rootToken = boot.token.token;
  const org = await api<{ id: string; slug: string }>(base, "POST", "/api/v1/orgs", rootToken, { slug: "bench", name: "Bench" }, [201]);
  const accounts: BenchAccount[] = [];
  let next = 0;
  const createOne = async () => {
    while (next < settings.accounts) {
      const i = next++;
      let key: BenchAccount["key"];
      let publicKey: JWK | undefined;
      if (i < settings.pkjwtClients) {
        const pair = await generateKeyPair("ES256", { extractable: true });
        const kid = `bench-key-${i}`;
        const privateJwk = await exportJWK(pair.privateKey);
        publicKey = { ...(await exportJWK(pair.publicKey)), kid, alg: "ES256" };
        key = { kid, privateKey: pair.privateKey, nodeKey: createPrivateKey({ key: privateJwk as never, format: "jwk" }) };
      }
      const created = await api<{ id: string; token: { id: string; token: string } }>(
        base,
        "POST",
        `/api/v1/orgs/${org.slug}/service-accounts`,
        rootToken,
        { name: `bench-bot-${i}`, roles: [{ role: "viewer" }], issueToken: true, ...(publicKey ? { publicKey } : {}) },
        [201],
      );
      accounts[i] = { id: created.id, token: created.token.token, tokenId: created.token.id, ...(key ? { key } : {}) };
    }
  };
  await Promise.all(Array.from({ length: 4 }, createOne));
  return { rootToken, rootAccountId: boot.account.id, org, accounts };
}

const sha256Hex = (s: string) => createHash("sha256").update(s).digest("hex");
const sqlValue = (v: string | number | null) => (v === null ? "NULL" : typeof v === "number" ? String(v) : `'${v.replace(/'/g, "''")}'`);

/** A bench account's D1 rows and KV claims, cloned for every account the scale check writes. */
interface AccountTemplate {
  account: Record<string, string | number | null>;
  assignments: Record<string, string | number | null>[];
  claims: AccountClaims;
}

async function accountTemplate(mf: Miniflare, kv: { get(key: string): Promise<unknown> }, account: BenchAccount): Promise<AccountTemplate> {
  const db = await mf.getD1Database("DB");
  const row = await db.prepare("SELECT * FROM service_accounts WHERE id = ?").bind(account.id).first<Record<string, string | number | null>>();
  const assignments = await db.prepare("SELECT * FROM role_assignments WHERE account_id = ?").bind(account.id).all<Record<string, string | number | null>>();
  const stored = await kv.get(tokenKey(sha256Hex(account.token)));
  if (!row || typeof stored !== "string") throw new Error(`no D1 row or KV record for ${account.id}`);
  return { account: row, assignments: assignments.results, claims: (JSON.parse(stored) as TokenRecord).account };
}

const insert = (table: string, rows: Record<string, string | number | null>[]) =>
  `INSERT INTO ${table} (${Object.keys(rows[0]!).join(", ")}) VALUES ${rows.map((r) => `(${Object.values(r).map(sqlValue).join(",")})`).join(",")}`;

let seededAccounts = 0;

/**
 * Writes `count` more accounts, each with one active token (the one-active-token rule holds),
 * cloned from a bench account, straight into D1 (service_accounts, role_assignments, access_tokens
 * rows) and KV (tok:<sha256> records, exactly what an account's Durable Object writes for a live
 * token), through the seeder Worker. Returns the tokens' secrets.
 */
async function seedTokensDirect(seederUrl: string, template: AccountTemplate, createdBy: string, count: number, progress: boolean): Promise<string[]> {
  const secrets: string[] = [];
  const BATCH = 1000;
  const ROWS_PER_INSERT = 100;
  const started = Date.now();
  const orgId = template.claims.orgId;
  for (let done = 0; done < count; ) {
    const n = Math.min(BATCH, count - done);
    const now = Date.now();
    const accounts: Record<string, string | number | null>[] = [];
    const assignments: Record<string, string | number | null>[] = [];
    const tokens: Record<string, string | number | null>[] = [];
    const kv: [string, string][] = [];
    for (let i = 0; i < n; i++) {
      const accountId = newId("account");
      const name = `bench-seed-${++seededAccounts}`;
      accounts.push({ ...template.account, id: accountId, name, name_key: `${orgId ?? ""}/${name}`, email: `${name}@seed.bench.invalid`, created_at: now, updated_at: now, last_used_at: null });
      for (const a of template.assignments) assignments.push({ ...a, id: newId("roleAssignment"), account_id: accountId, created_at: now });
      const secret = generateAccessToken();
      const hash = sha256Hex(secret);
      const tokenId = newId("token");
      secrets.push(secret);
      tokens.push({
        id: tokenId,
        account_id: accountId,
        org_id: orgId,
        name: "bench-seed",
        secret_hash: hash,
        hint: tokenHint(secret),
        status: "active",
        expires_at: null,
        previous_secret_hash: null,
        previous_secret_expires_at: null,
        created_at: now,
        created_by: createdBy,
        regenerated_at: null,
        revoked_at: null,
        revoked_by: null,
        last_used_at: null,
      });
      const record: TokenRecord = { tokenId, expiresAt: null, tokenExpiresAt: null, account: { ...template.claims, accountId } };
      kv.push([tokenKey(hash), JSON.stringify(record)]);
    }
    const sql: string[] = [];
    for (const [table, rows] of [["service_accounts", accounts], ["role_assignments", assignments], ["access_tokens", tokens]] as const) {
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) sql.push(insert(table, rows.slice(i, i + ROWS_PER_INSERT)));
    }
    const res = await fetch(seederUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql, kv }) });
    const text = await res.text();
    if (!res.ok) throw new Error(`seeding D1 + KV failed: ${res.status} ${text.slice(0, 500)}`);
    done += n;
    if (progress && (done % 10_000 === 0 || done === count)) {
      const rate = done / ((Date.now() - started) / 1000);
      log(`  seeded ${done.toLocaleString("en-US")} / ${count.toLocaleString("en-US")} accounts with a token (${Math.round(rate)}/s)`);
    }
  }
  return secrets;
}

// ---------------------------------------------------------------------------------------------
// private_key_jwt assertions: pre-signed with jose, one per request (a jti is accepted once)
// ---------------------------------------------------------------------------------------------

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const b64url = (s: string | Buffer) => Buffer.from(s).toString("base64url");

class AssertionPool {
  private pool: string[] = [];
  private turn = 0;
  /** Assertions signed on the spot because the pre-signed pool ran dry (reported). */
  signedOnDemand = 0;
  private readonly clients: BenchAccount[];
  private readonly audience: string;

  constructor(clients: BenchAccount[], audience: string) {
    this.clients = clients;
    this.audience = audience;
  }

  /** Pre-signs `n` assertions with jose (round robin over the clients), replacing the pool. */
  async fill(n: number): Promise<number> {
    const started = performance.now();
    const pool: string[] = [];
    const exp = Math.floor(Date.now() / 1000) + 280;
    for (let i = 0; i < n; i += 500) {
      const chunk = Array.from({ length: Math.min(500, n - i) }, (_, j) => {
        const client = this.clients[(i + j) % this.clients.length]!;
        return new SignJWT({})
          .setProtectedHeader({ alg: "ES256", kid: client.key!.kid })
          .setIssuer(client.id)
          .setSubject(client.id)
          .setAudience(this.audience)
          .setIssuedAt()
          .setExpirationTime(exp)
          .setJti(randomUUID())
          .sign(client.key!.privateKey);
      });
      pool.push(...(await Promise.all(chunk)));
    }
    this.pool = pool;
    return (performance.now() - started) / 1000;
  }

  get remaining(): number {
    return this.pool.length;
  }

  next(): string {
    const pre = this.pool.pop();
    if (pre) return pre;
    // Ran dry: sign synchronously (setupRequest cannot wait); same claims, node:crypto.
    this.signedOnDemand++;
    const client = this.clients[this.turn++ % this.clients.length]!;
    const now = Math.floor(Date.now() / 1000);
    const input = `${b64url(JSON.stringify({ alg: "ES256", kid: client.key!.kid }))}.${b64url(JSON.stringify({ iss: client.id, sub: client.id, aud: this.audience, iat: now, exp: now + 280, jti: randomUUID() }))}`;
    return `${input}.${b64url(nodeSign("sha256", Buffer.from(input), { key: client.key!.nodeKey, dsaEncoding: "ieee-p1363" }))}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Children: the peer and wrangler dev
// ---------------------------------------------------------------------------------------------

async function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number, output: () => string): Promise<RegExpExecArray> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const m = pattern.exec(output());
    if (m) return m;
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`a child process did not come up (${pattern}):\n${output().slice(-3000)}`);
}

async function startPeer(clientId: string, clientSecret: string) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(root, "scripts", "bench-peer.ts"), String(port), clientId, clientSecret], {
    cwd: root,
    env: { ...process.env, NODE_ENV: "production" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  await waitForLine(child, /PEER_READY (\{.*\})/, 30_000, () => output);
  return {
    base: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r)).catch(() => {});
      }
    },
  };
}

async function startWranglerDev(persist: string) {
  const port = await freePort();
  const inspectorPort = await freePort();
  const child = spawn(
    process.execPath,
    [wranglerJs, "dev", "--port", String(port), "--ip", "127.0.0.1", "--inspector-port", String(inspectorPort), "--show-interactive-dev-session=false", "--persist-to", persist],
    { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const base = `http://127.0.0.1:${port}`;
  const until = Date.now() + 90_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > until) throw new Error(`wrangler dev did not come up:\n${output.slice(-3000)}`);
    await sleep(250);
  }
  return {
    base,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null) {
        try {
          process.kill(-child.pid!, "SIGTERM");
        } catch {
          // gone
        }
        await Promise.race([new Promise((r) => child.once("exit", r)), sleep(5000)]);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios and the report
// ---------------------------------------------------------------------------------------------

interface ScenarioResult {
  id: string;
  label: string;
  target: Target["name"];
  warmup: RoundStats | null;
  rounds: RoundStats[];
  median: { rps: number; p50: number; p99: number; serverCpuPct: number; generatorCpuPct: number; otherCpuPct: number };
  totals: { requests: number; non2xx: number; errors: number; timeouts: number; statusCodes: Record<string, number> };
  serverPeakRssMiB: number;
  notes: string[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Set with BENCH_PROFILE=1: each direct scenario gets one extra, profiled round (not reported). */
let profiling: { port: number } | undefined;

async function runScenario(
  id: string,
  label: string,
  target: Target,
  request: LoadRequest,
  next?: () => LoadRequest,
  hooks: { beforeRun?: (seconds: number, previous: RoundStats | null) => Promise<void>; notes?: () => string[] } = {},
): Promise<ScenarioResult> {
  await probe(target, next ? next() : request, label);
  let warmup: RoundStats | null = null;
  if (settings.warmupSeconds > 0) {
    await hooks.beforeRun?.(settings.warmupSeconds, null);
    warmup = await load(target, request, settings.warmupSeconds, next);
  }
  const rounds: RoundStats[] = [];
  for (let r = 0; r < settings.rounds; r++) {
    await hooks.beforeRun?.(settings.durationSeconds, rounds.at(-1) ?? warmup);
    rounds.push(await load(target, request, settings.durationSeconds, next));
  }
  if (settings.profile && target.name === "direct" && profiling) {
    const file = path.join(root, "bench-results", `profile-${id}.cpuprofile`);
    mkdirSync(path.dirname(file), { recursive: true });
    await profileWhile(profiling.port, "keyward", file, () => load(target, request, settings.durationSeconds, next), log);
  }
  const statusCodes: Record<string, number> = {};
  for (const round of rounds) for (const [code, n] of Object.entries(round.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
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
    notes: hooks.notes?.() ?? [],
  };
  const m = result.median;
  log(
    `${id.padEnd(16)} ${Math.round(m.rps).toString().padStart(6)} req/s  p50 ${m.p50.toFixed(2)} ms  p99 ${m.p99.toFixed(2)} ms  non-2xx ${result.totals.non2xx}  errors ${result.totals.errors}  server CPU ${Math.round(m.serverCpuPct)}%  generator CPU ${Math.round(m.generatorCpuPct)}%  other CPU ${Math.round(m.otherCpuPct)}%`,
  );
  return result;
}

function gitState() {
  const git = (...args: string[]) => spawnSync("git", ["-C", root, ...args], { encoding: "utf8" }).stdout?.trim() ?? "";
  return { commit: git("rev-parse", "HEAD") || null, dirty: git("status", "--porcelain", "--untracked-files=no") !== "" };
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

const fmt = (n: number | null | undefined, digits = 2) => (n === null || n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits));

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

const cleanups: (() => Promise<void> | void)[] = [];
async function cleanup() {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch (err) {
      console.error(`[bench] cleanup: ${(err as Error).message}`);
    }
  }
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const git = gitState(); // what gets bundled
  const wanted = (id: string) => id === "healthz" || settings.only.length === 0 || settings.only.includes(id);
  log(
    `${smoke ? "SMOKE: " : ""}${settings.rounds} round(s) x ${settings.durationSeconds} s after a ${settings.warmupSeconds} s warm-up, ${settings.connections} connections; ${os.cpus().length} CPUs, Node ${process.version}`,
  );

  // 1. Bundle, start workerd through Miniflare, migrate.
  const work = mkdtempSync(path.join(os.tmpdir(), "keyward-bench-"));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const outdir = path.join(work, "bundle");
  const persist = path.join(work, "state");
  mkdirSync(persist);
  let t = performance.now();
  const modules = await bundle(outdir);
  const config = readWorkerConfig();
  const secrets = { BOOTSTRAP_SECRET: randomBytes(32).toString("base64url"), SIGNING_KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64url") };
  const vars: Record<string, string> = { ...config.vars, ...(settings.signingAlg ? { JWT_SIGNING_ALG: settings.signingAlg } : {}) };
  const port = await freePort();
  if (settings.profile) profiling = { port: await freePort() };
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port,
      ...(profiling ? { inspectorPort: profiling.port } : {}),
      cf: false,
      enableDevRegistry: false,
      resourcePersistencePath: persist,
      log: new Log(LogLevel.WARN),
      workers: [
        {
          name: "keyward",
          modules: modules.map((m) => ({ type: "ESModule" as const, path: m })),
          modulesRoot: outdir,
          compatibilityDate: config.compatibilityDate,
          compatibilityFlags: config.compatibilityFlags,
          bindings: { ...vars, ...secrets },
          d1Databases: config.d1,
          kvNamespaces: config.kv,
          durableObjects: config.durableObjects,
          // The Worker's own socket in workerd: requests reach it without Miniflare's entry Worker.
          unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
        },
        {
          name: "bench-seeder",
          modules: true,
          script: SEEDER_SCRIPT,
          compatibilityDate: config.compatibilityDate,
          d1Databases: config.d1,
          kvNamespaces: config.kv,
          unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
        },
      ],
    }),
  );
  cleanups.push(() => mf.dispose());
  const entryUrl = await mf.ready;
  const url = await mf.unsafeGetDirectURL("keyward");
  const seederUrl = (await mf.unsafeGetDirectURL("bench-seeder")).href;
  const direct: Target = { name: "direct", base: url.origin, pids: () => workerdPids(process.pid) };
  const entry: Target = { name: "miniflare-entry", base: entryUrl.origin, pids: () => workerdPids(process.pid) };
  const migrations = await applyMigrations(mf);
  log(`bundled ${path.basename(modules[0]!)} (${Math.round(readFileSync(modules[0]!).length / 1024)} KiB), workerd: the Worker's own socket ${url.origin}, Miniflare's entry ${entryUrl.origin} (pid ${direct.pids().join(",")}), ${migrations} migrations applied in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // 2. Seed through the API.
  t = performance.now();
  const seeded = await seedThroughApi(direct.base, secrets.BOOTSTRAP_SECRET);
  const { accounts, org } = seeded;
  const template = await accountTemplate(mf, await mf.getKVNamespace("TOKENS"), accounts[0]!);
  log(`seeded through the API: bootstrap, org '${org.slug}', ${accounts.length} service accounts with a token (${settings.pkjwtClients} with an ES256 key) in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const issuer = vars.ISSUER!;
  const results: ScenarioResult[] = [];
  const json = (obj: unknown) => JSON.stringify(obj);
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  let turn = 0;
  const roundRobin = <T>(xs: T[]) => xs[turn++ % xs.length]!;

  // (a) the ceiling
  results.push(await runScenario("healthz", "(a) GET /healthz (ceiling)", direct, { method: "GET", path: "/healthz", headers: {} }));
  const ceiling = results[0]!.median.rps;
  // The same through Miniflare's entry socket (its entry Worker routes to ours): a layer the production runtime does not have.
  if (settings.wranglerDev) {
    results.push(await runScenario("healthz@miniflare-entry", "(a) GET /healthz through Miniflare's entry Worker", entry, { method: "GET", path: "/healthz", headers: {} }));
  }

  // (b) token exchange, round robin over the accounts' tokens
  const exchangeRequest = (token: string): LoadRequest => ({ method: "POST", path: "/api/auth/access-tokens/jwt", headers: { "content-type": "application/json" }, body: json({ access_token: token }) });
  if (wanted("exchange")) {
    results.push(await runScenario("exchange", "(b) POST /api/auth/access-tokens/jwt", direct, exchangeRequest(accounts[0]!.token), () => exchangeRequest(roundRobin(accounts).token)));
  }

  // (c) client_credentials, client_secret_basic
  const basicRequest = (a: BenchAccount): LoadRequest => ({
    method: "POST",
    path: "/oauth/token",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${a.id}:${a.token}`).toString("base64")}` },
    body: form({ grant_type: "client_credentials" }),
  });
  if (wanted("client-basic")) {
    results.push(await runScenario("client-basic", "(c) /oauth/token client_secret_basic", direct, basicRequest(accounts[0]!), () => basicRequest(roundRobin(accounts))));
  }

  // (d) client_credentials, private_key_jwt: a fresh pre-signed assertion per request
  if (wanted("private-key-jwt")) {
    const pool = new AssertionPool(accounts.filter((a) => a.key), issuer);
    const assertionRequest = (): LoadRequest => ({
      method: "POST",
      path: "/oauth/token",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form({ grant_type: "client_credentials", client_assertion_type: ASSERTION_TYPE, client_assertion: pool.next() }),
    });
    let signing = 0;
    let presigned = 0;
    await pool.fill(1 + settings.connections); // the probe and the clients' first requests
    results.push(
      await runScenario("private-key-jwt", `(d) /oauth/token private_key_jwt (${settings.pkjwtClients} clients)`, direct, assertionRequest(), assertionRequest, {
        // Enough for the run at the last run's rate (the ceiling's before the first) plus 50 %.
        beforeRun: async (seconds, previous) => {
          const n = Math.ceil((previous?.rps ?? ceiling) * seconds * 1.5) + 4 * settings.connections;
          signing += await pool.fill(n);
          presigned += n;
        },
        notes: () => [`${presigned} assertions pre-signed with jose in ${signing.toFixed(1)} s; ${pool.signedOnDemand} signed on demand because the pool ran dry`],
      }),
    );
  }

  // (e) authenticated management read
  if (wanted("list-accounts")) {
    results.push(
      await runScenario("list-accounts", "(e) GET /api/v1/orgs/{org}/service-accounts?limit=20", direct, {
        method: "GET",
        path: `/api/v1/orgs/${org.slug}/service-accounts?limit=20`,
        headers: { authorization: `Bearer ${accounts[0]!.token}` },
      }),
    );
  }

  // (f) the peer: oidc-provider on this Node, client_credentials + client_secret_basic, ES256 JWT access tokens
  if (wanted("peer")) {
    const peerSecret = randomBytes(24).toString("base64url");
    const peer = await startPeer("bench-client", peerSecret);
    cleanups.push(peer.stop);
    const peerTarget: Target = { name: "peer", base: peer.base, pids: () => [peer.pid] };
    const peerRequest: LoadRequest = {
      method: "POST",
      path: "/token",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`bench-client:${peerSecret}`).toString("base64")}` },
      body: form({ grant_type: "client_credentials" }),
    };
    const check = await fetch(peer.base + peerRequest.path, { method: "POST", headers: peerRequest.headers, body: peerRequest.body! });
    const issued = (await check.json()) as { access_token?: string };
    const header = issued.access_token ? JSON.parse(Buffer.from(issued.access_token.split(".")[0]!, "base64url").toString()) : null;
    if (header?.alg !== "ES256") throw new Error(`the peer did not issue an ES256 JWT: ${JSON.stringify(issued)}`);
    const result = await runScenario("peer", "(f) peer: oidc-provider client_secret_basic", peerTarget, peerRequest, undefined, {
      notes: () => [`oidc-provider ${JSON.parse(readFileSync(path.join(root, "node_modules", "oidc-provider", "package.json"), "utf8")).version}, JWT header ${JSON.stringify(header)}, peak RSS ${memoryMiB(peer.pid, "VmHWM").toFixed(0)} MiB`],
    });
    result.serverPeakRssMiB = Math.max(result.serverPeakRssMiB, memoryMiB(peer.pid, "VmHWM"));
    results.push(result);
    await peer.stop();
  }

  // Scale check: the exchange with scaleBase tokens in the store, then with scaleTokens.
  const scale: Record<string, unknown> = { base: settings.scaleBase, big: settings.scaleTokens };
  if (settings.scaleTokens > settings.scaleBase && wanted("exchange")) {
    const apiTokens = accounts.map((a) => a.token);
    const extraBase = Math.max(0, settings.scaleBase - apiTokens.length);
    t = performance.now();
    const small = [...apiTokens, ...(await seedTokensDirect(seederUrl, template, seeded.rootAccountId, extraBase, false))].slice(0, settings.scaleBase);
    log(`scale check: ${small.length} tokens in the store (${apiTokens.length} through the API, ${extraBase} accounts with a token written straight to D1 + KV in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
    // Uniform picks over the whole store: every token is as likely as any other.
    const pick = (xs: string[]) => xs[Math.floor(Math.random() * xs.length)]!;
    const smallResult = await runScenario(`exchange@${settings.scaleBase}`, `(b) exchange, ${settings.scaleBase} tokens in store`, direct, exchangeRequest(small[0]!), () => exchangeRequest(pick(small)));
    results.push(smallResult);
    t = performance.now();
    const extra = settings.scaleTokens - small.length;
    log(`scale check: writing ${extra.toLocaleString("en-US")} more accounts with a token straight into D1 + KV`);
    const big = [...small, ...(await seedTokensDirect(seederUrl, template, seeded.rootAccountId, extra, true))];
    const seedSeconds = (performance.now() - t) / 1000;
    const d1Count = await (await mf.getD1Database("DB")).prepare("SELECT count(*) AS n FROM access_tokens WHERE status = 'active'").first<{ n: number }>();
    log(`scale check: ${big.length.toLocaleString("en-US")} bench tokens in the store (D1 says ${d1Count?.n} active rows, including the root's) after ${seedSeconds.toFixed(1)} s`);
    const label = settings.scaleTokens >= 1000 ? `${Math.round(settings.scaleTokens / 1000)}k` : String(settings.scaleTokens);
    const spread = await runScenario(`exchange@${label}`, `(b) exchange, ${label} tokens in store, picks over all`, direct, exchangeRequest(big[0]!), () => exchangeRequest(pick(big)));
    results.push(spread);
    const hot = await runScenario(`exchange@${label}-hot`, `(b) exchange, ${label} tokens in store, picks over the ${settings.scaleBase}`, direct, exchangeRequest(small[0]!), () => exchangeRequest(pick(small)));
    results.push(hot);
    Object.assign(scale, {
      seedSeconds,
      d1ActiveRows: d1Count?.n ?? null,
      rpsBase: smallResult.median.rps,
      rpsBigSpread: spread.median.rps,
      rpsBigHot: hot.median.rps,
      ratioSpread: spread.median.rps / smallResult.median.rps,
      ratioHot: hot.median.rps / smallResult.median.rps,
    });
  } else {
    Object.assign(scale, { skipped: true });
  }

  const directHwm = direct.pids().reduce((s, p) => s + memoryMiB(p, "VmHWM"), 0);
  await mf.dispose();

  // The same /healthz through wrangler dev's proxy.
  if (settings.wranglerDev) {
    const devPersist = path.join(work, "wrangler-dev");
    mkdirSync(devPersist);
    t = performance.now();
    const dev = await startWranglerDev(devPersist);
    cleanups.push(dev.stop);
    log(`wrangler dev on ${dev.base} (up in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
    const devTarget: Target = { name: "wrangler-dev", base: dev.base, pids: () => [dev.pid, ...descendants(dev.pid)] };
    const devResult = await runScenario("healthz@wrangler-dev", "(a) GET /healthz through wrangler dev", devTarget, { method: "GET", path: "/healthz", headers: {} }, undefined, {
      notes: () => [`workerd peak RSS ${workerdPids(dev.pid).reduce((s, p) => s + memoryMiB(p, "VmHWM"), 0).toFixed(0)} MiB; all wrangler dev processes: ${devTarget.pids().reduce((s, p) => s + memoryMiB(p, "VmRSS"), 0).toFixed(0)} MiB RSS`],
    });
    results.push(devResult);
    await dev.stop();
  }

  // Report.
  const byId = new Map(results.map((r) => [r.id, r]));
  const peerRps = byId.get("peer")?.median.rps ?? null;
  const rows = results.map((r) => {
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
    };
  });
  const printed = table(
    ["scenario", "target", "req/s", "p50 ms", "p99 ms", "p99/p50", "non-2xx", "errors", "x ceiling", "x peer", "srv CPU%", "gen CPU%", "other CPU%", "srv RSS MiB"],
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
    ]),
  );

  const exchange = byId.get("exchange");
  const basic = byId.get("client-basic");
  const dev = byId.get("healthz@wrangler-dev");
  const viaEntry = byId.get("healthz@miniflare-entry");
  const measured = rows.filter((r) => r.target === "direct" || r.target === "peer");
  const targets = [
    { name: "token exchange >= 0.45 x ceiling", value: exchange ? exchange.median.rps / ceiling : null, pass: exchange ? exchange.median.rps / ceiling >= 0.45 : null },
    { name: "client_credentials (basic) >= 1.2 x peer", value: basic && peerRps ? basic.median.rps / peerRps : null, pass: basic && peerRps ? basic.median.rps / peerRps >= 1.2 : null },
    // The proxy comparisons (miniflare-entry, wrangler-dev) are not Keyward's scenarios.
    { name: "p99 <= 4 x p50 in every scenario (direct and peer)", value: Math.max(...measured.map((r) => r.p99OverP50 ?? 0)), pass: measured.every((r) => r.p99OverP50 !== null && r.p99OverP50 <= 4) },
    { name: "no errors or non-2xx under load", value: rows.reduce((s, r) => s + r.non2xx + r.errors, 0), pass: rows.every((r) => r.non2xx === 0 && r.errors === 0) },
    {
      name: `scale: exchange with ${settings.scaleTokens} / with ${settings.scaleBase} tokens >= 0.9 (picks over all)`,
      value: (scale.ratioSpread as number | undefined) ?? null,
      pass: scale.ratioSpread === undefined ? null : (scale.ratioSpread as number) >= 0.9,
    },
  ];
  const contended = results.filter((r) => [...r.rounds, ...(r.warmup ? [r.warmup] : [])].some((x) => x.otherCpuPct >= 15)).map((r) => r.id);
  const verdict = (p: boolean | null) => (p === null ? "n/a " : p ? "PASS" : "FAIL");

  const lines = [
    "",
    `Keyward benchmark${smoke ? " (SMOKE: numbers meaningless)" : ""}: median of ${settings.rounds} round(s) of ${settings.durationSeconds} s, ${settings.connections} connections, after a ${settings.warmupSeconds} s warm-up (autocannon ${JSON.parse(readFileSync(path.join(root, "node_modules", "autocannon", "package.json"), "utf8")).version}, ${os.cpus().length} CPUs)`,
    "direct = the bundled Worker in local workerd (started by Miniflare), load on the Worker's own workerd socket; miniflare-entry = the same through Miniflare's entry Worker; wrangler-dev = through `wrangler dev`; peer = oidc-provider on Node " +
      process.version,
    "",
    printed,
    "",
    `workerd (direct) peak RSS over the whole run: ${directHwm.toFixed(0)} MiB${settings.signingAlg ? `; JWT_SIGNING_ALG=${settings.signingAlg}` : `; JWT_SIGNING_ALG=${vars.JWT_SIGNING_ALG}`}`,
    dev
      ? `wrangler dev caps /healthz at ${Math.round(dev.median.rps)} req/s = ${fmt(dev.median.rps / ceiling)} x the runtime reached directly (${Math.round(ceiling)} req/s)${viaEntry ? `; Miniflare's entry Worker alone at ${Math.round(viaEntry.median.rps)} req/s = ${fmt(viaEntry.median.rps / ceiling)} x` : ""}: measure on the Worker's own socket, never through wrangler dev.`
      : "wrangler dev comparison: skipped",
    scale.skipped
      ? "scale check: skipped"
      : `scale check: exchange with ${settings.scaleTokens.toLocaleString("en-US")} tokens / with ${settings.scaleBase}: ${fmt(scale.ratioSpread as number)} (picks uniform over all tokens), ${fmt(scale.ratioHot as number)} (picks over the same ${settings.scaleBase})`,
    ...results.flatMap((r) => r.notes.map((n) => `note (${r.id}): ${n}`)),
    ...(contended.length > 0
      ? [`WARNING: other processes used >= 15 % of a core during ${contended.join(", ")} (column "other CPU%"); on ${os.cpus().length} CPUs that skews the numbers: run again on a quiet machine.`]
      : []),
    "",
    "targets:",
    ...targets.map((g) => `  ${verdict(g.pass)}  ${g.name}: ${typeof g.value === "number" ? fmt(g.value) : "-"}`),
  ];
  console.log(lines.join("\n"));

  const finishedAt = new Date();
  const output = process.env.BENCH_OUTPUT || path.join(root, "bench-results", `bench-${startedAt.toISOString().replace(/[:.]/g, "-")}${smoke ? "-smoke" : ""}.json`);
  mkdirSync(path.dirname(output), { recursive: true });
  writeFileSync(
    output,
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        settings,
        environment: { loadAverageAtEnd: os.loadavg(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, platform: `${os.platform()} ${os.release()}`, git, jwtSigningAlg: vars.JWT_SIGNING_ALG },
        ceilingRps: ceiling,
        table: rows,
        targets,
        scale,
        workerdPeakRssMiB: directHwm,
        scenarios: results,
        printed: lines.join("\n"),
      },
      null,
      2,
    ),
  );
  console.log(`\n[bench] wrote ${output.startsWith(root + path.sep) ? path.relative(root, output) : output}`);

  const bad = rows.filter((r) => r.non2xx > 0 || r.errors > 0);
  if (smoke && bad.length > 0) {
    console.error(`[bench] SMOKE FAILED: errors or non-2xx in ${bad.map((r) => `${r.id} (${JSON.stringify(byId.get(r.id)!.totals.statusCodes)}, ${r.errors} errors; first: ${byId.get(r.id)!.rounds.map((x) => x.firstFailure).find(Boolean) ?? byId.get(r.id)!.warmup?.firstFailure ?? "-"})`).join(", ")}`);
    return 1;
  }
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(`[bench] ${(err as Error).stack ?? err}`);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
