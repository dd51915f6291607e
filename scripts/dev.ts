/**
 * `npm run dev`: the local service in one command.
 *  1. creates `.dev.vars` with random secrets if missing;
 *  2. applies the D1 migrations to the local database;
 *  3. starts `wrangler dev` on PORT (default 8787) with local persistence;
 *  4. bootstraps the platform root account if that was never done, printing its token once.
 * Re-running keeps the data (and does not bootstrap again).
 * The root token is also written to <state dir>/root-token (mode 0600) for scripts.
 * Environment: PORT, KEYWARD_PERSIST_DIR (where local state lives), KEYWARD_ISSUER (overrides ISSUER),
 * KEYWARD_FEDERATION_ALLOWED_ISSUERS (overrides FEDERATION_ALLOWED_ISSUERS, docs/federation.md),
 * KEYWARD_STATUS_LIST_TTL_SECONDS (overrides STATUS_LIST_TTL_SECONDS: the SDK's e2e test sees a revocation sooner).
 * ISSUER is `http://localhost:<PORT>` unless KEYWARD_ISSUER is set, so that the RFC 8414 metadata,
 * the JWTs' `iss` and the audience of client assertions name the URL the server answers on (the
 * one printed at the end; OAuth clients such as Authlib accept plain http for localhost only).
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const port = Number(process.env.PORT ?? 8787);
const persistTo = process.env.KEYWARD_PERSIST_DIR;
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const devVars = path.join(root, ".dev.vars");
const base = `http://127.0.0.1:${port}`;

function ensureDevVars(): Record<string, string> {
  if (!existsSync(devVars)) {
    const secret = (n: number) => randomBytes(n).toString("base64url");
    writeFileSync(devVars, [`BOOTSTRAP_SECRET=${secret(32)}`, `SIGNING_KEY_ENCRYPTION_KEY=${secret(32)}`, ""].join("\n"), { mode: 0o600 });
    console.log("[dev] created .dev.vars with random secrets");
  }
  return Object.fromEntries(
    readFileSync(devVars, "utf8")
      .split("\n")
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1).trim()]),
  );
}

const persistArgs = persistTo ? ["--persist-to", persistTo] : [];
const shown = `http://localhost:${port}`;
const issuer = process.env.KEYWARD_ISSUER || shown;
const federationIssuers = process.env.KEYWARD_FEDERATION_ALLOWED_ISSUERS;
// Local development may point webhooks at a receiver on loopback (docs/webhooks.md); a deployment never does.
const statusListTtl = process.env.KEYWARD_STATUS_LIST_TTL_SECONDS;
const varArgs = [
  "--var",
  `ISSUER:${issuer}`,
  "--var",
  "WEBHOOK_ALLOW_LOOPBACK:true",
  ...(federationIssuers ? ["--var", `FEDERATION_ALLOWED_ISSUERS:${federationIssuers}`] : []),
  ...(statusListTtl ? ["--var", `STATUS_LIST_TTL_SECONDS:${statusListTtl}`] : []),
];

function migrate() {
  const result = spawnSync(wrangler, ["d1", "migrations", "apply", "DB", "--local", ...persistArgs], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, CI: "true" },
  });
  if (result.status !== 0) throw new Error("applying the local D1 migrations failed");
}

async function waitForHealth(timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the service did not answer on ${base}/healthz`);
}

async function bootstrap(secret: string | undefined) {
  if (!secret) return console.log("[dev] BOOTSTRAP_SECRET is not set in .dev.vars; skipping bootstrap");
  const res = await fetch(`${base}/api/v1/bootstrap`, { method: "POST", headers: { authorization: `Bearer ${secret}` } });
  if (res.status === 409) return console.log("[dev] already bootstrapped; use the root token printed the first time");
  if (res.status !== 201) throw new Error(`bootstrap failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { account: { id: string }; token: { token: string } };
  // Scripts (and the README's walk-through) read the token from a file only this user can read.
  const stateDir = persistTo ?? path.join(root, ".wrangler", "state");
  mkdirSync(stateDir, { recursive: true });
  const tokenFile = path.join(stateDir, "root-token");
  writeFileSync(tokenFile, `${body.token.token}\n`, { mode: 0o600 });
  console.log(
    [
      "",
      "  Keyward is bootstrapped. The platform root token, shown ONCE (store it now):",
      "",
      `  KEYWARD_ROOT_TOKEN=${body.token.token}`,
      "",
      `  root account: ${body.account.id}`,
      `  also written to ${tokenFile} (mode 0600)`,
      "",
    ].join("\n"),
  );
}

const vars = ensureDevVars();
migrate();
const child = spawn(wrangler, ["dev", "--port", String(port), "--ip", "127.0.0.1", "--show-interactive-dev-session=false", ...persistArgs, ...varArgs], {
  cwd: root,
  stdio: ["ignore", "inherit", "inherit"],
  env: { WRANGLER_SEND_METRICS: "false", ...process.env },
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 0));

try {
  await waitForHealth();
  await bootstrap(vars.BOOTSTRAP_SECRET);
  console.log(`[dev] Keyward is listening on ${shown}  (API reference: ${shown}/docs, OpenAPI: ${shown}/openapi.json)`);
  if (issuer !== shown) console.log(`[dev] ISSUER is ${issuer} (KEYWARD_ISSUER)`);
} catch (err) {
  console.error(`[dev] ${(err as Error).message}`);
  child.kill("SIGTERM");
  process.exitCode = 1;
}
