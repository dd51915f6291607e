/**
 * Black-box smoke walk over HTTP: bootstrap -> org -> service account -> token -> authenticated
 * call -> revoke -> 401. With no arguments it starts the real dev server on a fresh database; with
 * `--base URL` it walks an already running (or deployed) Keyward, as the platform root whose token
 * is in KEYWARD_ROOT_TOKEN or on standard input:
 *
 *   KEYWARD_ROOT_TOKEN=sat_... npm run smoke -- --base http://localhost:8787
 *   npm run smoke -- --base https://keyward.example < root-token.txt
 *
 * Never as an argument: npm prints its command line, and every user of the machine sees the
 * arguments of a running process (ps, /proc/<pid>/cmdline).
 */
import { startDevServer } from "./dev-server.ts";

type Step = { name: string; status: number; ok: boolean };

export async function smokeWalk(base: string, rootToken: string): Promise<Step[]> {
  const steps: Step[] = [];
  const call = async (name: string, expected: number, method: string, path: string, token?: string, body?: unknown) => {
    const res = await fetch(base + path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    steps.push({ name, status: res.status, ok: res.status === expected });
    if (res.status !== expected) throw new Error(`${name}: expected ${expected}, got ${res.status}: ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const slug = `smoke-${Date.now().toString(36)}`;
  const org = await call("create org", 201, "POST", "/api/v1/orgs", rootToken, { slug, name: "Smoke test org" });
  const sa = await call("create service account", 201, "POST", `/api/v1/orgs/${org.id}/service-accounts`, rootToken, {
    name: "smoke-bot",
    roles: [{ role: "viewer" }],
  });
  const issued = await call("issue token", 201, "POST", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/tokens`, rootToken, {});
  await call("authenticated call", 200, "GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}`, issued.token);
  await call("revoke token", 204, "DELETE", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/tokens/${issued.id}`, rootToken);
  await call("revoked token refused", 401, "GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}`, issued.token);
  return steps;
}

export const TOKEN_VARIABLE = "KEYWARD_ROOT_TOKEN";

const TOKEN_ARGUMENT_REFUSED = [
  "smoke: --token is refused: a token given as an argument shows in npm's command echo, in the",
  "shell history and in the process list of every user of the machine (ps).",
  `Put the root token in ${TOKEN_VARIABLE} or on standard input instead:`,
  `  ${TOKEN_VARIABLE}=sat_... npm run smoke -- --base URL`,
  "  npm run smoke -- --base URL < root-token.txt",
].join("\n");

/** Thrown for a command line or an environment the script cannot work with (exit code 2). */
class UsageError extends Error {}

/** The root token of the Keyward at `--base`: KEYWARD_ROOT_TOKEN, else the first line of a piped standard input. */
async function rootTokenFromEnvOrStdin(): Promise<string> {
  const fromEnv = process.env[TOKEN_VARIABLE]?.trim();
  if (fromEnv) return fromEnv;
  if (!process.stdin.isTTY) {
    let text = "";
    for await (const chunk of process.stdin) text += chunk;
    const line = text.split(/\r?\n/, 1)[0]!.trim();
    if (line) return line;
  }
  throw new UsageError(`smoke: --base needs the root token in ${TOKEN_VARIABLE} or on standard input`);
}

async function main(argv: string[]): Promise<number> {
  if (argv.some((a) => a === "--token" || a.startsWith("--token="))) throw new UsageError(TOKEN_ARGUMENT_REFUSED);
  const i = argv.indexOf("--base");
  const base = i >= 0 ? argv[i + 1] : undefined;
  if (i >= 0 && !base) throw new UsageError("smoke: --base needs a URL");
  const token = base ? await rootTokenFromEnvOrStdin() : undefined;
  const server = base ? undefined : await startDevServer();
  try {
    const steps = await smokeWalk(base ?? server!.base, token ?? server!.rootToken);
    for (const s of steps) console.log(`ok   ${s.status}  ${s.name}`);
    console.log(`${steps.length} passed, 0 failed`);
    return 0;
  } catch (err) {
    console.error(`FAIL ${(err as Error).message}`);
    return 1;
  } finally {
    await server?.stop();
  }
}

if (import.meta.main) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(err.message);
    process.exitCode = 2;
  }
}
