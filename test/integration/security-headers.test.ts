import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { postForm, type Res } from "./oauth-helpers.ts";
import { freshOrg, issueOk, viewerAccount } from "./token-helpers.ts";

/** The headers every response carries, CORS (off by default, configurable), no-store on credentials. */

let root: { id: string; token: string };
let o: { org: { id: string }; adminToken: string };
let sa: { id: string };
let secret: string;

beforeAll(async () => {
  root = await platformRoot();
  o = await freshOrg(root.token);
  sa = await viewerAccount(o.adminToken, o.org.id);
  secret = (await issueOk(o.adminToken, o.org.id, sa.id)).token;
});

function expectBaseline(res: Res, what: string) {
  expect(res.headers.get("x-content-type-options"), what).toBe("nosniff");
  expect(res.headers.get("referrer-policy"), what).toBe("no-referrer");
  expect(res.headers.get("x-frame-options"), what).toBe("DENY");
  expect(res.headers.get("x-request-id"), what).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
  expect(res.headers.get("access-control-allow-origin"), `${what}: CORS is off by default`).toBeNull();
}

describe("security headers on every kind of response", () => {
  it("success, problem+json, OAuth errors, 404/405, the JWKS, metadata, the OpenAPI document and the docs", async () => {
    const cases: [string, () => Promise<Res>][] = [
      ["healthz", () => call("GET", "/healthz")],
      ["management 200", () => call("GET", `/api/v1/orgs/${o.org.id}`, { token: o.adminToken })],
      ["management 401", () => call("GET", "/api/v1/orgs")],
      ["management 400", () => call("POST", "/api/v1/orgs", { token: root.token, body: { slug: 1 } })],
      ["route 404", () => call("GET", "/nope")],
      ["method 405", () => call("DELETE", "/healthz")],
      ["oauth 200", () => postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [sa.id, secret] })],
      ["oauth 401", () => postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [sa.id, "nope"] })],
      ["oauth 400", () => postForm("/oauth/token", {})],
      ["exchange 200", () => call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: secret } })],
      ["jwks", () => call("GET", "/.well-known/jwks.json")],
      ["status list", () => call("GET", "/statuslists/0")],
      ["status list 404", () => call("GET", "/statuslists/999999")],
      ["metadata", () => call("GET", "/.well-known/oauth-authorization-server")],
      ["openapi", () => call("GET", "/openapi.json")],
      ["docs", () => call("GET", "/docs")],
    ];
    for (const [what, send] of cases) expectBaseline(await send(), what);
  });

  it("credential responses are never cached: token creation, regeneration, the exchange and /oauth/token", async () => {
    const other = await viewerAccount(o.adminToken, o.org.id);
    const created = await call("POST", `/api/v1/orgs/${o.org.id}/service-accounts/${other.id}/tokens`, { token: o.adminToken, body: {} });
    expectStatus(created, 201);
    const regenerated = await call("POST", `/api/v1/orgs/${o.org.id}/service-accounts/${other.id}/tokens/${created.json.id}/regenerate`, { token: o.adminToken, body: {} });
    expectStatus(regenerated, 200);
    const exchanged = await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: secret } });
    const oauth = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [sa.id, secret] });
    for (const [what, res] of [["create", created], ["regenerate", regenerated], ["exchange", exchanged], ["oauth", oauth]] as const) {
      expect(res.headers.get("cache-control"), what).toContain("no-store");
    }
    expect(oauth.headers.get("pragma")).toBe("no-cache");
  });

  it("/docs runs under a strict CSP (no inline script, nothing from elsewhere)", async () => {
    const docs = await call("GET", "/docs");
    const csp = docs.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toMatch(/https?:/);
  });
});

describe("no secrets in the public documents", () => {
  it("the OpenAPI document, the docs page, the metadata and the JWKS hold no token, JWT or private key", async () => {
    for (const path of ["/openapi.json", "/docs", "/.well-known/oauth-authorization-server", "/.well-known/jwks.json"]) {
      const res = await call("GET", path);
      expectStatus(res, 200);
      expect(res.text, `${path}: an access token`).not.toMatch(/sat_[0-9A-Za-z]{38}/);
      expect(res.text, `${path}: a JWT`).not.toMatch(/eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]+/);
      expect(res.text, `${path}: a private key`).not.toMatch(/PRIVATE KEY|"d":"/);
      expect(res.text, `${path}: the bootstrap secret`).not.toContain("test-bootstrap-secret");
    }
  });
});

describe("CORS", () => {
  /** The real Worker with one more variable: the bindings are the same objects. */
  async function withOrigins(origins: string, request: Request) {
    const ctx = createExecutionContext();
    const res = await worker.fetch(request, { ...env, CORS_ALLOWED_ORIGINS: origins }, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  }
  const preflight = (origin: string) =>
    new Request("http://keyward.test/api/v1/orgs", { method: "OPTIONS", headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" } });

  it("off by default: a preflight gets no CORS headers, a cross-origin GET no Access-Control-Allow-Origin", async () => {
    const pre = await call("OPTIONS", "/api/v1/orgs", { headers: { origin: "https://console.example", "access-control-request-method": "GET" } });
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    expect(pre.status).toBeGreaterThanOrEqual(400);
    const get = await call("GET", `/api/v1/orgs/${o.org.id}`, { token: o.adminToken, headers: { origin: "https://console.example" } });
    expectStatus(get, 200);
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("CORS_ALLOWED_ORIGINS lists the origins that get CORS; others get none", async () => {
    const allowed = await withOrigins("https://console.example, https://ops.example", preflight("https://console.example"));
    expect(allowed.status, await allowed.clone().text()).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://console.example");
    expect(allowed.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect(allowed.headers.get("access-control-allow-credentials")).toBeNull();
    const other = await withOrigins("https://console.example", preflight("https://evil.example"));
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const get = await withOrigins(
      "https://console.example",
      new Request(`http://keyward.test/api/v1/orgs/${o.org.id}`, { headers: { origin: "https://console.example", authorization: `Bearer ${o.adminToken}` } }),
    );
    expect(get.status).toBe(200);
    expect(get.headers.get("access-control-allow-origin")).toBe("https://console.example");
    expect(get.headers.get("access-control-expose-headers")).toContain("x-request-id");
    expect(get.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("`*` allows any origin", async () => {
    const res = await withOrigins("*", preflight("https://anything.example"));
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });
});
