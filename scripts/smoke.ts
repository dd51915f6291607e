/**
 * Black-box smoke walk over HTTP: bootstrap -> org -> service account -> token -> authenticated
 * call -> revoke -> 401. With no arguments it starts the real dev server on a fresh database; with
 * `--base URL --token ROOT_TOKEN` it walks an already running (or deployed) Keyward.
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

if (import.meta.main) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const base = arg("--base");
  const server = base ? undefined : await startDevServer();
  try {
    const steps = await smokeWalk(base ?? server!.base, arg("--token") ?? server!.rootToken);
    for (const s of steps) console.log(`ok   ${s.status}  ${s.name}`);
    console.log(`${steps.length} passed, 0 failed`);
  } catch (err) {
    console.error(`FAIL ${(err as Error).message}`);
    process.exitCode = 1;
  } finally {
    await server?.stop();
  }
}
