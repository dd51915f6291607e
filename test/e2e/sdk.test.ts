import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { renderClientSchema, SCHEMA_FILE } from "../../scripts/sdk-schema.ts";
import { createKeywardClient, tokenSource } from "../../src/client/index.ts";
import { createKeywardVerifier, KeywardJwtError, verifyKeywardJwt } from "../../src/verify/index.ts";

/**
 * keyward/client and keyward/verify (issue 21) against the real dev server over the network, as
 * a service uses them: the typed client manages, tokenSource gets JWTs, the verifier checks them
 * with the served JWKS and status lists. Status lists are cached 2 s here (STATUS_LIST_TTL_SECONDS),
 * so a revocation shows within the test. And the drift check: the checked-in generated types are
 * what the served document renders to.
 */

const LIST_TTL_SECONDS = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SRC = path.resolve(import.meta.dirname, "..", "..", "src");

/** Relative imports of every .ts/.tsx file under `dir`, as [file, resolved target]. */
function importsUnder(dir: string): [string, string][] {
  const out: [string, string][] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/\.tsx?$/.test(entry.name)) continue;
    const file = path.join(entry.parentPath, entry.name);
    for (const m of readFileSync(file, "utf8").matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) out.push([file, path.resolve(path.dirname(file), m[1]!)]);
  }
  return out;
}

describe("the SDK stays out of the Worker", () => {
  it("src/client and src/verify import nothing else from src/, and nothing else in src/ imports them", () => {
    const sdk = [path.join(SRC, "client"), path.join(SRC, "verify")];
    const inSdk = (p: string) => sdk.some((d) => p === d || p.startsWith(d + path.sep));
    const all = importsUnder(SRC);
    expect(all.length).toBeGreaterThan(100);
    const leaks = all.filter(([file, target]) => inSdk(file) !== inSdk(target));
    expect(leaks.map(([f, t]) => `${path.relative(SRC, f)} -> ${path.relative(SRC, t)}`)).toEqual([]);
  });
});

describe("the SDK against the dev server", () => {
  let server: DevServer;
  beforeAll(async () => {
    server = await startDevServer({ statusListTtlSeconds: LIST_TTL_SECONDS });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("src/client/schema.d.ts is what /openapi.json renders to (run `npm run sdk:generate` after changing the API)", async () => {
    const res = await fetch(`${server.base}/openapi.json`);
    expect(res.status).toBe(200);
    const rendered = await renderClientSchema((await res.json()) as Record<string, unknown>);
    const checkedIn = readFileSync(path.resolve(import.meta.dirname, "..", "..", SCHEMA_FILE), "utf8");
    expect(rendered === checkedIn, `${SCHEMA_FILE} is out of date: run \`npm run sdk:generate\``).toBe(true);
  });

  it("typed client -> account and token; tokenSource: 10 callers, 1 request; the verifier accepts the JWT, then refuses it once the token is revoked", async () => {
    const api = createKeywardClient({ baseUrl: server.base, token: server.rootToken });
    const slug = `sdk-${Date.now().toString(36)}`;
    const org = await api.POST("/api/v1/orgs", { body: { slug, name: "SDK" } });
    expect(org.response.status, JSON.stringify(org.error)).toBe(201);
    const sa = await api.POST("/api/v1/orgs/{org}/service-accounts", { params: { path: { org: org.data!.id } }, body: { name: "sdk-e2e", issueToken: true, roles: [{ role: "viewer" }] } });
    expect(sa.response.status, JSON.stringify(sa.error)).toBe(201);
    const secret = sa.data!.token!.token;

    let requests = 0;
    const counting: typeof fetch = (input, init) => {
      requests++;
      return fetch(input, init);
    };
    const source = tokenSource({ baseUrl: server.base, grant: { type: "access_token", accessToken: secret, scope: "service-accounts.read" }, fetch: counting });
    const jwts = await Promise.all(Array.from({ length: 10 }, () => source.getToken()));
    expect(new Set(jwts).size).toBe(1);
    expect(requests).toBe(1);
    expect(await source.getToken()).toBe(jwts[0]);
    expect(requests).toBe(1);
    const jwt = jwts[0]!;

    const options = { issuer: server.base, audience: server.base, requiredScopes: ["service-accounts.read"] };
    const verifier = createKeywardVerifier(options);
    const claims = await verifier.verify(jwt);
    expect(claims.sub).toBe(sa.data!.id);
    expect((await verifyKeywardJwt(jwt, options)).jti).toBe(claims.jti);
    await expect(createKeywardVerifier({ ...options, audience: "https://someone-else.test" }).verify(jwt)).rejects.toMatchObject({ code: "wrong_audience" });

    // The client_credentials grant too (the access token is the client secret).
    const cc = tokenSource({ baseUrl: server.base, grant: { type: "client_credentials", clientId: sa.data!.id, clientSecret: secret } });
    await verifier.verify(await cc.getToken());

    const revoked = await api.DELETE("/api/v1/orgs/{org}/service-accounts/{sa}/tokens/{tok}", { params: { path: { org: org.data!.id, sa: sa.data!.id, tok: sa.data!.token!.id } } });
    expect(revoked.response.status).toBe(204);
    await sleep(LIST_TTL_SECONDS * 1000 + 1500);
    const err = await verifier.verify(jwt).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeywardJwtError);
    expect((err as KeywardJwtError).code).toBe("revoked");
    expect((err as KeywardJwtError).message).not.toContain(jwt);
  });
});
