/**
 * The Worker as the benchmark and the soak run it: bundled by `wrangler deploy --dry-run`, in local
 * workerd through Miniflare with wrangler.toml's bindings, vars and compatibility settings, fresh
 * secrets and a temporary persistence folder, the D1 migrations applied; and, for comparison only,
 * the same Worker behind `wrangler dev`.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { unstable_readConfig } from "wrangler";
import { freePort } from "../dev-server.ts";
import { onCleanup, sleep, type Log as Logger } from "./lifecycle.ts";
import type { Target } from "./load.ts";
import { gcTracing } from "./gc.ts";
import { workerdPids } from "./proc.ts";

export const root = path.resolve(import.meta.dirname, "..", "..");
const wranglerJs = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");

async function bundle(outdir: string, source: string): Promise<string[]> {
  const res = spawnSync(process.execPath, [wranglerJs, "deploy", "--dry-run", "--outdir", outdir], {
    cwd: source,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
  });
  if (res.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${res.stdout}\n${res.stderr}`);
  const modules = readdirSync(outdir).filter((f) => /\.(m?js)$/.test(f));
  if (!modules.includes("index.js")) throw new Error(`no index.js in the bundle: ${modules.join(", ")}`);
  return ["index.js", ...modules.filter((m) => m !== "index.js")].map((m) => path.join(outdir, m));
}

type RateLimit = { namespace_id: string; simple: { limit: number; period: 10 | 60 } };

interface WorkerConfig {
  compatibilityDate: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
  d1: Record<string, string>;
  kv: Record<string, string>;
  durableObjects: Record<string, { className: string; useSQLite: boolean }>;
  ratelimits: Record<string, RateLimit>;
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
    ratelimits?: ({ name: string } & RateLimit)[];
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
    ratelimits: Object.fromEntries((config.ratelimits ?? []).map((r) => [r.name, { namespace_id: r.namespace_id, simple: r.simple }])),
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

export interface StartOptions {
  /** The temporary folder's name prefix. */
  tmpPrefix: string;
  /** Overrides JWT_SIGNING_ALG. */
  signingAlg: string | null;
  /** Opens workerd's V8 inspector on a free port (BENCH_PROFILE; the soak reads the isolate's heap). */
  inspector: boolean;
  /** Binds wrangler.toml's rate limiters, as deployed (the benchmark measures their cost on the hot path: none while nothing fails). */
  rateLimits: boolean;
  /** The checkout to bundle (default: this one); `npm run bench:compare` bundles another commit's. */
  source?: string;
  /** Traces V8's collections in workerd (BENCH_GC, gc.ts). */
  traceGc?: boolean;
  /** A module put in front of the bundle's index.js as the Worker's entry (bench:loop's loop-entry.ts). */
  entry?: string;
  /** Vars over wrangler.toml's (the federated scenario's FEDERATION_ALLOWED_ISSUERS). */
  vars?: Record<string, string>;
  log: Logger;
}

export interface RunningWorker {
  mf: Miniflare;
  /** The run's temporary folder (removed at exit), and its Miniflare state folder within. */
  work: string;
  persist: string;
  vars: Record<string, string>;
  secrets: { BOOTSTRAP_SECRET: string; SIGNING_KEY_ENCRYPTION_KEY: string };
  /** The Worker's own workerd socket, and the same through Miniflare's entry Worker. */
  direct: Target;
  entry: Target;
  /** KV namespace ids by binding (a namespace's files are named by its id). */
  kvIds: Record<string, string>;
  inspectorPort: number | undefined;
  /** After `mf.dispose()`: workerd again on the same state, secrets and bundle, `overrides` over its vars (this object updated). */
  restart(overrides?: Record<string, string>): Promise<RunningWorker>;
}

/** Bundles the Worker, starts it in workerd through Miniflare and applies the migrations. */
export async function startWorker(options: StartOptions): Promise<RunningWorker> {
  const work = mkdtempSync(path.join(os.tmpdir(), options.tmpPrefix));
  onCleanup(() => rmSync(work, { recursive: true, force: true }));
  const outdir = path.join(work, "bundle");
  const persist = path.join(work, "state");
  mkdirSync(persist);
  const t = performance.now();
  const modules = await bundle(outdir, options.source ?? root);
  const bundled = modules[0]!;
  if (options.entry) {
    writeFileSync(path.join(outdir, "entry.js"), options.entry);
    modules.unshift(path.join(outdir, "entry.js"));
  }
  const config = readWorkerConfig();
  const secrets = { BOOTSTRAP_SECRET: randomBytes(32).toString("base64url"), SIGNING_KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64url") };
  const vars: Record<string, string> = { ...config.vars, ...(options.signingAlg ? { JWT_SIGNING_ALG: options.signingAlg } : {}), BINDING_COUNTS: process.env.BENCH_BINDING_COUNTS ?? "on", ...options.vars };
  /** workerd through Miniflare on the run's state; `migrate` the first time only. */
  const launch = async (migrate: boolean) => {
    const inspectorPort = options.inspector ? await freePort() : undefined;
    const others = new Set(workerdPids(process.pid));
    const gc = options.traceGc ? gcTracing() : null;
    // Miniflare reads workerd's V8 flags from this variable only.
    const flagsBefore = process.env.MINIFLARE_WORKERD_V8_FLAGS;
    if (gc) process.env.MINIFLARE_WORKERD_V8_FLAGS = gc.v8Flags;
    const mf = new Miniflare(
      convertV4MiniflareOptions({
        host: "127.0.0.1",
        // Port 0: workerd binds a free port itself (a port picked beforehand can be taken by a
        // parallel test before workerd binds it).
        port: 0,
        ...(inspectorPort !== undefined ? { inspectorPort } : {}),
        cf: false,
        enableDevRegistry: false,
        resourcePersistencePath: persist,
        log: new Log(LogLevel.WARN),
        ...(gc
          ? {
              unsafeRuntimeEnv: gc.runtimeEnv,
              handleStructuredLogs: ({ level, message, timestamp }: { level: string; message: string; timestamp: number }) => {
                if (!gc.take(message, timestamp)) (level === "error" || level === "warn" ? console.error : console.log)(message);
              },
            }
          : {}),
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
            ...(options.rateLimits ? { ratelimits: config.ratelimits } : {}),
            // The Worker's own socket in workerd: requests reach it without Miniflare's entry Worker.
            unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
          },
        ],
      }),
    );
    onCleanup(() => mf.dispose());
    const entryUrl = await mf.ready;
    if (gc) {
      if (flagsBefore === undefined) delete process.env.MINIFLARE_WORKERD_V8_FLAGS;
      else process.env.MINIFLARE_WORKERD_V8_FLAGS = flagsBefore;
      if (!gc.lineBuffered) options.log("BENCH_GC: no coreutils libstdbuf here; workerd's GC lines arrive in 4 KiB chunks, so a round's figures may include its neighbours'");
    }
    const url = await mf.unsafeGetDirectURL("keyward");
    // This Miniflare's workerd (the scale check runs a second one beside it).
    const ours = workerdPids(process.pid).filter((pid) => !others.has(pid));
    const direct: Target = { name: "direct", base: url.origin, pids: () => ours };
    const entry: Target = { name: "miniflare-entry", base: entryUrl.origin, pids: () => ours };
    if (!migrate) return { mf, direct, entry, inspectorPort };
    const migrations = await applyMigrations(mf);
    options.log(
      `bundled ${path.basename(bundled)} (${Math.round(readFileSync(bundled).length / 1024)} KiB)${options.entry ? " behind bench:loop's entry module" : ""}, workerd: the Worker's own socket ${url.origin}, Miniflare's entry ${entryUrl.origin} (pid ${direct.pids().join(",")}), ${migrations} migrations applied in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    return { mf, direct, entry, inspectorPort };
  };
  const launched = await launch(true);
  const running: RunningWorker = {
    ...launched,
    work,
    persist,
    kvIds: config.kv,
    vars,
    secrets,
    restart: async (overrides = {}) => {
      Object.assign(vars, overrides);
      Object.assign(running, await launch(false));
      return running;
    },
  };
  return running;
}

/** `wrangler dev` on a free port (its own workerd and proxy), once /healthz answers. */
export async function startWranglerDev(persist: string) {
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
