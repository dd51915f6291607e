import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";

/**
 * Secrets never reach the logs: every secret issued during a mixed workload (token creation,
 * regeneration, the exchange, /oauth/token, failed attempts with near-miss secrets, malformed
 * bodies carrying secrets, a rate-limited client) is grepped for in everything the real dev
 * server printed (wrangler's request log and the Worker's console), in every response to a
 * request that did not ask for it, and in the audit log.
 */
describe("secrets in logs, errors and the audit log", () => {
  let server: DevServer;
  const secrets = new Set<string>();
  const responses: { what: string; text: string }[] = [];
  let orgId = "";

  async function call(what: string, method: string, path: string, options: { token?: string; body?: unknown; form?: Record<string, string>; headers?: Record<string, string>; raw?: string } = {}) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined;
    if (options.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(options.form).toString();
    } else if (options.raw !== undefined) {
      headers["content-type"] = "application/json";
      body = options.raw;
    } else if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    const res = await fetch(server.base + path, { method, headers, body });
    const text = await res.text();
    responses.push({ what, text });
    return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
  }

  beforeAll(async () => {
    server = await startDevServer();
    const root = server.rootToken;
    const org = (await call("org", "POST", "/api/v1/orgs", { token: root, body: { slug: `logs-${Date.now().toString(36)}`, name: "Logs" } })).json;
    orgId = org.id;
    const created = await call("account", "POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: root, body: { name: "log-bot", roles: [{ role: "viewer" }], issueToken: true } });
    const sa = created.json;
    const first = sa.token.token as string;
    secrets.add(first);
    const regenerated = await call("regenerate", "POST", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/tokens/${sa.token.id}/regenerate`, { token: root, body: { graceSeconds: 60 } });
    const second = regenerated.json.token as string;
    secrets.add(second);
    const jwt = (await call("exchange", "POST", "/api/auth/access-tokens/jwt", { body: { access_token: second } })).json.jwt as string;
    secrets.add(jwt);
    const basic = `Basic ${btoa(`${sa.id}:${second}`)}`;
    const oauth = await call("oauth", "POST", "/oauth/token", { form: { grant_type: "client_credentials" }, headers: { authorization: basic } });
    secrets.add(oauth.json.access_token);

    // A key pair: the private key must never appear anywhere (only its public half is sent).
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    secrets.add(privatePem.split("\n")[1]!);
    await call("key", "POST", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/keys`, { token: root, body: { publicKey: publicKey.export({ type: "spki", format: "pem" }).toString() } });

    // Failures carrying secrets: near misses, secrets in the wrong place, malformed bodies.
    const nearMiss = second.slice(0, -1) + (second.endsWith("A") ? "B" : "A");
    await call("near miss bearer", "GET", `/api/v1/orgs/${org.id}`, { token: nearMiss });
    await call("near miss exchange", "POST", "/api/auth/access-tokens/jwt", { body: { access_token: nearMiss } });
    await call("secret in a bad field", "POST", "/api/auth/access-tokens/jwt", { body: { access_token: second, duration_seconds: "x", extra: second } });
    await call("secret in broken JSON", "POST", "/api/auth/access-tokens/jwt", { raw: `{"access_token": "${second}"` });
    await call("secret as client_id", "POST", "/oauth/token", { form: { grant_type: "client_credentials", client_id: second, client_secret: second } });
    await call("wrong client", "POST", "/oauth/token", { form: { grant_type: "client_credentials" }, headers: { authorization: `Basic ${btoa(`sa_nobody:${second}`)}` } });
    for (let i = 0; i < 25; i++) {
      await call("rate limited", "POST", "/oauth/token", { form: { grant_type: "client_credentials" }, headers: { authorization: `Basic ${btoa(`${sa.id}:${nearMiss}`)}` } });
    }
    await call("jwt as bearer with a bad audience", "GET", `/api/v1/orgs/${org.id}`, { token: `${jwt}x` });
    const revoked = await call("revoke", "DELETE", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/tokens/${sa.token.id}`, { token: root });
    expect(revoked.status).toBe(204);
    await call("revoked bearer", "GET", `/api/v1/orgs/${org.id}`, { token: second });
    await new Promise((r) => setTimeout(r, 1500)); // let wrangler flush its request log
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("the workload issued what we grep for", () => {
    expect(secrets.size).toBeGreaterThanOrEqual(5);
    for (const s of secrets) expect(s.length).toBeGreaterThan(20);
  });

  it("no secret in anything the dev server printed (wrangler's log and the Worker's console)", () => {
    const output = server.output();
    expect(output).toContain("/oauth/token"); // the request log is captured, so the grep below means something
    for (const secret of secrets) expect(output.includes(secret), `a secret (${secret.slice(0, 8)}…) is in the server output`).toBe(false);
    // The root token is printed once, by design, at bootstrap, and never again.
    expect(output.split(server.rootToken).length - 1).toBe(1);
  });

  it("no secret in any response but the one that issued it", () => {
    const issuing = new Set(["account", "regenerate", "exchange", "oauth"]);
    for (const { what, text } of responses) {
      if (issuing.has(what)) continue;
      for (const secret of secrets) expect(text.includes(secret), `${what} echoes a secret: ${text.slice(0, 200)}`).toBe(false);
    }
  });

  it("no secret in the audit log", async () => {
    const platform = await call("audit", "GET", "/api/v1/audit-events?limit=200", { token: server.rootToken });
    const org = await call("audit", "GET", `/api/v1/orgs/${orgId}/audit-events?limit=200`, { token: server.rootToken });
    expect(platform.status).toBe(200);
    expect(org.status).toBe(200);
    expect(org.json.items.length, "the org's log has the workload's events").toBeGreaterThanOrEqual(5);
    for (const secret of [...secrets, server.rootToken]) expect(platform.text.includes(secret) || org.text.includes(secret)).toBe(false);
  });
});
