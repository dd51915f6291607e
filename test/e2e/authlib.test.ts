import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";

/**
 * The dev server as `npm run dev` starts it (ISSUER derived from PORT, issue 16), driven by the
 * most common Python OAuth client: Authlib (metadata validation, client_secret_basic and
 * private_key_jwt with its defaults) and PyJWT (the JWT verified against the JWKS). Debian's
 * python3-authlib and python3-jwt, for /usr/bin/python3; .ci/run installs them.
 */

const PYTHON = "/usr/bin/python3";
const SCRIPT = path.join(import.meta.dirname, "authlib-client.py");
const probe = spawnSync(PYTHON, ["-c", "import authlib, jwt, requests"], { encoding: "utf8" });
const hasAuthlib = probe.status === 0;
if (!hasAuthlib && process.env.CI) throw new Error(`CI must have Authlib and PyJWT for ${PYTHON} (.ci/run installs them): ${probe.stderr ?? probe.error}`);

interface Step {
  step: string;
  ok: boolean;
  error?: string;
  trace?: string;
  [key: string]: unknown;
}

let server: DevServer;
let metadata: Record<string, unknown>;

beforeAll(async () => {
  server = await startDevServer({ issuer: "from-port" });
  metadata = (await (await fetch(`${server.base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
});
afterAll(async () => {
  await server?.stop();
});

describe("npm run dev on another PORT", () => {
  it("names that port in the RFC 8414 metadata (ISSUER follows PORT, on localhost as it prints)", () => {
    expect(server.port).not.toBe(8787);
    const issuer = `http://localhost:${server.port}`;
    expect(metadata.issuer, JSON.stringify(metadata)).toBe(issuer);
    expect(metadata.token_endpoint).toBe(`${issuer}/oauth/token`);
    expect(metadata.jwks_uri).toBe(`${issuer}/.well-known/jwks.json`);
    expect(server.output()).toContain(`[dev] Keyward is listening on ${issuer}`);
  });
});

describe.skipIf(!hasAuthlib)("Authlib and PyJWT against the dev server", () => {
  let steps: Map<string, Step>;

  beforeAll(async () => {
    const api = async (method: string, route: string, body?: unknown) => {
      const res = await fetch(server.base + route, {
        method,
        headers: { authorization: `Bearer ${server.rootToken}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
      return JSON.parse(text);
    };
    const org = await api("POST", "/api/v1/orgs", { slug: "e2e-authlib", name: "Authlib" });
    const basic = await api("POST", `/api/v1/orgs/${org.id}/service-accounts`, { name: "authlib-basic", roles: [{ role: "viewer" }], issueToken: true });
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const keyed = await api("POST", `/api/v1/orgs/${org.id}/service-accounts`, {
      name: "authlib-key",
      roles: [{ role: "viewer" }],
      publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(),
    });
    const input = JSON.stringify({
      base: server.base,
      clientId: basic.id,
      secret: basic.token.token,
      keyClientId: keyed.id,
      privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    });
    const run = spawnSync(PYTHON, [SCRIPT], { input, encoding: "utf8", timeout: 60_000, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    steps = new Map(
      run.stdout
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Step)
        .map((s) => [s.step, s]),
    );
  });

  const step = (name: string) => {
    const s = steps.get(name);
    expect(s, `step ${name} ran`).toBeDefined();
    expect(s!.ok, `${name}: ${s!.error}\n${s!.trace ?? ""}`).toBe(true);
    return s!;
  };

  it("AuthorizationServerMetadata(...).validate() accepts the metadata", () => {
    const s = step("metadata");
    expect(s.issuer).toBe(`http://localhost:${server.port}`);
  });

  it("client_credentials with OAuth2Session and client_secret_basic; PyJWT verifies the JWT against the JWKS", () => {
    const s = step("client_secret_basic");
    expect(s.token_type).toBe("Bearer");
    expect(s.typ).toBe("at+jwt");
    expect(s.scope).toBe("service-accounts.read");
    expect(String(s.sub)).toMatch(/^sa_/);
  });

  // Authlib signs private_key_jwt assertions valid for 3600 s by default: within
  // MAX_CLIENT_ASSERTION_LIFETIME_SECONDS' default, so the most common Python client works as it comes.
  it("client_credentials with Authlib's PrivateKeyJWT and its default assertion lifetime", () => {
    const s = step("private_key_jwt");
    expect(String(s.sub)).toMatch(/^sa_/);
  });
});
