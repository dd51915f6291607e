import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import { BASE, call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { expectFieldError, expectProblem, expectUnauthenticated, newAccount, type Res } from "./registry-helpers.ts";

let root: { id: string; token: string };
let fixture: Awaited<ReturnType<typeof orgWithAdmin>> & { sa: { account: any; token: string } };
beforeAll(async () => {
  root = await platformRoot();
  const base = await orgWithAdmin(root.token);
  fixture = { ...base, sa: await newAccount(base.adminToken, base.org.id, {}) };
});

/** Any response: never a 500; an error is a well-formed problem. */
function expectNoServerError(res: Res, what: string) {
  expect(res.status, `${what} -> ${res.status}: ${res.text.slice(0, 500)}`).toBeLessThan(500);
  if (res.status >= 400) expectProblem(res, res.status);
}

describe("routing errors", () => {
  it("an unknown route is 404 route_not_found as problem+json with a request id", async () => {
    for (const [path, token] of [
      ["/nope", undefined],
      ["/api/v1/nope", root.token],
      ["/api/v1/orgs/x/y/z/w/v", root.token],
    ] as const) {
      const res = await call("GET", path, { token });
      const body = expectProblem(res, 404, "route_not_found");
      expect(body.requestId, res.text).toMatch(/^[A-Za-z0-9._:-]{8,}$/);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });

  it("a known path with the wrong method is 405 with an Allow header", async () => {
    const cases: [string, string, string[]][] = [
      ["DELETE", "/healthz", ["GET"]],
      ["PUT", "/api/v1/orgs", ["GET", "POST"]],
      ["DELETE", `/api/v1/orgs/${fixture.org.id}`, ["GET", "PATCH"]],
      ["PUT", `/api/v1/orgs/${fixture.org.id}/service-accounts/${fixture.sa.account.id}`, ["GET", "PATCH", "DELETE"]],
    ];
    for (const [method, path, allowed] of cases) {
      const res = await call(method, path, { token: root.token });
      expectProblem(res, 405, "method_not_allowed");
      const allow = (res.headers.get("allow") ?? "").split(",").map((m) => m.trim()).filter(Boolean);
      expect(allow.sort(), `${method} ${path}: ${res.text}`).toEqual([...allowed].sort());
    }
  });

  it("every response carries x-request-id; a sane incoming one is kept, an unsafe one replaced", async () => {
    const ok = await call("GET", "/healthz");
    expect(ok.headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
    const kept = await call("GET", "/nope", { headers: { "x-request-id": "trace-12345678" } });
    expect(kept.headers.get("x-request-id")).toBe("trace-12345678");
    expect(kept.json.requestId).toBe("trace-12345678");
    for (const bad of ["short", "has spaces in it", "<script>alert(1)</script>", "x".repeat(129)]) {
      const res = await call("GET", "/nope", { headers: { "x-request-id": bad } });
      expect(res.headers.get("x-request-id"), bad).not.toBe(bad);
      expect(res.json.requestId).toBe(res.headers.get("x-request-id"));
    }
  });
});

describe("body errors", () => {
  it("a body over 64 KiB is 413 payload_too_large, before authentication and validation", async () => {
    const big = { slug: "big-org", name: "n".repeat(70_000) };
    expectProblem(await call("POST", "/api/v1/orgs", { token: root.token, body: big }), 413, "payload_too_large");
    expectProblem(await call("POST", "/api/v1/orgs", { body: big }), 413, "payload_too_large");
    expectProblem(await call("PATCH", `/api/v1/orgs/${fixture.org.id}`, { token: fixture.adminToken, body: { name: "x".repeat(66_000) } }), 413, "payload_too_large");
    // Just under the limit it is an ordinary validation error.
    expectFieldError(await call("POST", "/api/v1/orgs", { token: root.token, body: { slug: "ok", name: "n".repeat(60_000) } }), "name");
  });

  it("a body that is not JSON is 415 unsupported_media_type", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"]) {
      const res = await call("POST", "/api/v1/orgs", { token: root.token, body: "slug=a&name=b", headers: { "content-type": type } });
      expectProblem(res, 415, "unsupported_media_type");
    }
    expectProblem(
      await call("PATCH", `/api/v1/orgs/${fixture.org.id}`, { token: fixture.adminToken, body: '{"name":"x"}', headers: { "content-type": "text/plain" } }),
      415,
      "unsupported_media_type",
    );
    // JSON with parameters or a +json suffix is fine.
    const ok = await call("PATCH", `/api/v1/orgs/${fixture.org.id}`, { token: fixture.adminToken, body: { name: fixture.org.name }, headers: { "content-type": "application/json; charset=utf-8" } });
    expectStatus(ok, 200);
  });

  it.each(['{"slug":', "{'slug':'a','name':'b'}", '{"slug":"a","name":"b",}', "not json", "", "{}}"])(
    "malformed JSON %j is 400 malformed_json",
    async (text) => {
      expectProblem(await call("POST", "/api/v1/orgs", { token: root.token, body: text, headers: { "content-type": "application/json" } }), 400, "malformed_json");
    },
  );

  it("validation errors list every offending field in errors[].path", async () => {
    const res = await call("POST", `/api/v1/orgs/${fixture.org.id}/service-accounts`, {
      token: fixture.adminToken,
      body: { name: "", email: "nope", daysValid: 0, groups: "ci" },
    });
    const body = expectProblem(res, 400, "validation_failed");
    const paths = body.errors.map((e: { path: string }) => e.path);
    for (const field of ["name", "email", "daysValid", "groups"]) {
      expect(paths.some((p: string) => p.endsWith(`.${field}`)), `${field} in ${JSON.stringify(paths)}`).toBe(true);
    }
    const query = await call("GET", `/api/v1/orgs/${fixture.org.id}/service-accounts?limit=0&status=nope`, { token: fixture.adminToken });
    const qBody = expectProblem(query, 400, "validation_failed");
    expect(qBody.errors.map((e: { path: string }) => e.path).sort()).toEqual(["query.limit", "query.status"]);
  });

  it("schemas are strict: an unknown field is 400 naming it", async () => {
    const cases: [string, string, string, Record<string, unknown>, string][] = [
      ["POST", "/api/v1/orgs", root.token, { slug: unique("o"), name: "x", owner: "me" }, "owner"],
      ["PATCH", `/api/v1/orgs/${fixture.org.id}`, fixture.adminToken, { name: "x", slug: "renamed" }, "slug"],
      ["POST", `/api/v1/orgs/${fixture.org.id}/projects`, fixture.adminToken, { slug: unique("p"), name: "x", color: "red" }, "color"],
      ["POST", `/api/v1/orgs/${fixture.org.id}/service-accounts`, fixture.adminToken, { name: unique("s"), status: "active" }, "status"],
      ["PATCH", `/api/v1/orgs/${fixture.org.id}/service-accounts/${fixture.sa.account.id}`, fixture.adminToken, { id: "sa_other" }, "id"],
      ["POST", `/api/v1/orgs/${fixture.org.id}/service-accounts/${fixture.sa.account.id}/role-assignments`, fixture.adminToken, { role: "viewer", orgId: "x" }, "orgId"],
      ["POST", `/api/v1/orgs/${fixture.org.id}/service-accounts/${fixture.sa.account.id}/tokens`, fixture.adminToken, { secret: "sat_mine" }, "secret"],
    ];
    for (const [method, path, token, body, unknownKey] of cases) {
      const res = await call(method, path, { token, body });
      const problem = expectProblem(res, 400, "validation_failed");
      expect(JSON.stringify(problem.errors), `${method} ${path} should name '${unknownKey}': ${res.text}`).toContain(unknownKey);
    }
  });
});

describe("authentication errors", () => {
  it("missing, garbage and Bearer-less credentials are 401 with WWW-Authenticate: Bearer", async () => {
    const valid = fixture.adminToken;
    const flipped = valid.slice(0, 10) + (valid[10] === "A" ? "B" : "A") + valid.slice(11);
    const headers: (string | undefined)[] = [
      undefined,
      "",
      "Bearer",
      "Bearer ",
      "Bearer garbage",
      `Basic ${btoa("user:pass")}`,
      valid,
      `Token ${valid}`,
      `Bearer ${flipped}`,
      `Bearer ${generateAccessToken()}`,
      `Bearer ${valid}x`,
      `Bearer ${valid} ${valid}`,
      `Bearer ${"a".repeat(10_000)}`,
      "Bearer sat_",
      "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ];
    for (const authorization of headers) {
      const res = await call("GET", "/api/v1/orgs", { headers: authorization === undefined ? {} : { authorization } });
      expectUnauthenticated(res);
      expect(res.text, "the body never echoes the credential").not.toContain(valid);
    }
    // The scheme is case-insensitive (RFC 7235).
    expectStatus(await call("GET", "/api/v1/orgs", { headers: { authorization: `bearer ${valid}` } }), 200);
  });

  it("every management route refuses an anonymous caller with 401", async () => {
    const o = fixture.org.id;
    const s = fixture.sa.account.id;
    for (const [method, path] of [
      ["GET", "/api/v1/permissions"],
      ["GET", "/api/v1/orgs"],
      ["POST", "/api/v1/orgs"],
      ["GET", `/api/v1/orgs/${o}`],
      ["PATCH", `/api/v1/orgs/${o}`],
      ["GET", `/api/v1/orgs/${o}/projects`],
      ["POST", `/api/v1/orgs/${o}/projects`],
      ["GET", `/api/v1/orgs/${o}/service-accounts`],
      ["POST", `/api/v1/orgs/${o}/service-accounts`],
      ["GET", `/api/v1/orgs/${o}/service-accounts/${s}`],
      ["PATCH", `/api/v1/orgs/${o}/service-accounts/${s}`],
      ["DELETE", `/api/v1/orgs/${o}/service-accounts/${s}`],
      ["GET", `/api/v1/orgs/${o}/service-accounts/${s}/tokens`],
      ["POST", `/api/v1/orgs/${o}/service-accounts/${s}/tokens`],
      ["GET", `/api/v1/orgs/${o}/service-accounts/${s}/role-assignments`],
      ["POST", `/api/v1/orgs/${o}/service-accounts/${s}/role-assignments`],
    ]) {
      const res = await call(method!, path!, { body: method === "GET" || method === "DELETE" ? undefined : {} });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(401);
      expectUnauthenticated(res);
    }
    expectStatus(await call("GET", `/api/v1/orgs/${o}/service-accounts/${s}`, { token: fixture.adminToken }), 200);
  });
});

describe("no input produces a 500", () => {
  const deepArray = "[".repeat(5_000) + "]".repeat(5_000);
  const deepObject = '{"a":'.repeat(5_000) + "1" + "}".repeat(5_000);
  const weirdBodies: [string, string][] = [
    ["array", "[]"],
    ["array of objects", '[{"name":"x"}]'],
    ["null", "null"],
    ["number", "0"],
    ["string", '"name"'],
    ["boolean", "true"],
    ["empty object", "{}"],
    ["deep array", deepArray],
    ["deep object", deepObject],
    ["deep array in a field", `{"name":${deepArray}}`],
    ["deep object in a field", `{"name":"x","slug":${deepObject}}`],
    ["huge string", JSON.stringify({ name: "h".repeat(60_000), slug: "s" })],
    ["control characters", JSON.stringify({ name: "a\u0000b\u0001c\u001f\u007f", slug: "a\u0000", description: "\u0007", groups: ["\u0000"] })],
    ["bidi and zero-width", JSON.stringify({ name: "\u202etxt.exe\u200b", displayName: "\ufeff" })],
    ["emoji and astral", JSON.stringify({ name: "bot-🤖-𝔘𝔫𝔦", description: "🔑".repeat(500) })],
    ["numbers for strings", '{"name":123,"slug":1e309,"email":-0,"role":NaN}'],
    ["huge numbers", '{"name":"n","daysValid":1e309,"expiresInSeconds":-1e309,"graceSeconds":1e400}'],
    ["objects for strings", '{"name":{"$ne":null},"slug":["a"],"email":{"toString":"x"},"role":{}}'],
    ["prototype keys", '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}},"name":"p"}'],
    ["duplicate keys", '{"name":"a","name":"b","slug":"c","slug":"d"}'],
    ["sql-ish strings", JSON.stringify({ name: "x'); drop table orgs;--", slug: "a' or '1'='1", q: "%' or 1=1--" })],
    ["dates in odd formats", JSON.stringify({ name: "d", expiresAt: "9999-12-31T23:59:59Z", daysValid: undefined })],
    ["negative zero and floats", '{"name":"z","daysValid":-0,"expiresInSeconds":60.5}'],
    ["scope oddities", JSON.stringify({ role: "viewer", scope: { type: "project", id: "\u0000" } })],
    ["role oddities", JSON.stringify({ role: "__proto__" })],
    ["role constructor", JSON.stringify({ role: "constructor" })],
    ["role toString", JSON.stringify({ role: "toString" })],
  ];

  it.each(weirdBodies)("%s", async (_label, text) => {
    const o = fixture.org.id;
    const s = fixture.sa.account.id;
    const t = fixture.adminToken;
    const targets: [string, string, string][] = [
      ["POST", "/api/v1/orgs", root.token],
      ["PATCH", `/api/v1/orgs/${o}`, t],
      ["POST", `/api/v1/orgs/${o}/projects`, t],
      ["POST", `/api/v1/orgs/${o}/service-accounts`, t],
      ["PATCH", `/api/v1/orgs/${o}/service-accounts/${s}`, t],
      ["POST", `/api/v1/orgs/${o}/service-accounts/${s}/role-assignments`, t],
      ["POST", `/api/v1/orgs/${o}/service-accounts/${s}/tokens`, t],
      ["POST", `/api/v1/orgs/${o}/service-accounts/${s}/tokens/${fixture.sa.account.token.id}/regenerate`, t],
      ["POST", "/api/v1/bootstrap", "not-the-bootstrap-secret"],
    ];
    for (const [method, path, token] of targets) {
      const res = await call(method, path, { token, body: text, headers: { "content-type": "application/json" } });
      expectNoServerError(res, `${method} ${path} with ${text.slice(0, 80)}`);
    }
    // The fixture account's token may have been regenerated; everything else still answers.
    expectStatus(await call("GET", `/api/v1/orgs/${o}`, { token: t }), 200);
  });

  it("odd path parameters and query strings never 500", async () => {
    const t = fixture.adminToken;
    const o = fixture.org.id;
    const paths = [
      "/api/v1/orgs/%00",
      "/api/v1/orgs/%E0%A4%A",
      "/api/v1/orgs/%ZZ/projects",
      "/api/v1/orgs/..%2F..%2Fetc",
      `/api/v1/orgs/${"x".repeat(101)}`,
      "/api/v1/orgs/%F0%9F%A4%96",
      `/api/v1/orgs/${o}/projects/%00/environments/%00`,
      `/api/v1/orgs/${o}/service-accounts/${"s".repeat(5000)}`,
      `/api/v1/orgs/${o}/service-accounts/sa_%27%20or%201%3D1`,
      `/api/v1/orgs/${o}/service-accounts?limit=1e9`,
      `/api/v1/orgs/${o}/service-accounts?limit=`,
      `/api/v1/orgs/${o}/service-accounts?limit=2&limit=3`,
      `/api/v1/orgs/${o}/service-accounts?cursor=%F0%9F%A4%96`,
      `/api/v1/orgs/${o}/service-accounts?cursor=${btoa(JSON.stringify({ t: 1e308, id: "\u0000" }))}`,
      `/api/v1/orgs/${o}/service-accounts?cursor=${btoa(JSON.stringify({ t: -1, id: "" }))}`,
      `/api/v1/orgs/${o}/service-accounts?q=%25%5F%5C`,
      `/api/v1/orgs/${o}/service-accounts?q=%00`,
      `/api/v1/orgs/${o}/service-accounts?externalId=%00`,
      `/api/v1/orgs/${o}/service-accounts?status=ACTIVE`,
      "/api/v1/orgs?limit=-5&cursor=",
    ];
    for (const path of paths) {
      expectNoServerError(await call("GET", path, { token: t }), `GET ${path}`);
    }
  });

  it("a lone UTF-16 surrogate is rejected, or stored and returned exactly as accepted", async () => {
    const res = await call("POST", `/api/v1/orgs/${fixture.org.id}/service-accounts`, {
      token: fixture.adminToken,
      body: '{"name":"lone-\\ud800-surrogate","displayName":"\\udfff"}',
    });
    expectNoServerError(res, "lone surrogate");
    if (res.status === 201) {
      const read = await call("GET", `/api/v1/orgs/${fixture.org.id}/service-accounts/${res.json.id}`, { token: fixture.adminToken });
      // Compared as JSON (lone surrogates escaped) so the runner can serialize a failure.
      const safe = (v: unknown) => JSON.stringify(v);
      expect(safe(read.json.name), `created ${safe(res.text)}\nread back ${safe(read.text)}`).toBe(safe(res.json.name));
      expect(safe(read.json.displayName), `created ${safe(res.text)}\nread back ${safe(read.text)}`).toBe(safe(res.json.displayName));
    } else {
      expectProblem(res, 400, "validation_failed");
    }
  });
});

describe("public documents", () => {
  it("GET /healthz is 200 without authentication", async () => {
    const res = await call("GET", "/healthz");
    expectStatus(res, 200);
    expect(res.json).toEqual({ status: "ok" });
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("GET /openapi.json is an OpenAPI 3.1 document listing the registry routes", async () => {
    const res = await call("GET", "/openapi.json");
    expectStatus(res, 200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const doc = res.json;
    expect(doc.openapi, res.text.slice(0, 200)).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toBeTruthy();
    const expected: [string, string][] = [
      ["/healthz", "get"],
      ["/api/v1/bootstrap", "post"],
      ["/api/v1/permissions", "get"],
      ["/api/v1/orgs", "post"],
      ["/api/v1/orgs", "get"],
      ["/api/v1/orgs/{org}", "get"],
      ["/api/v1/orgs/{org}", "patch"],
      ["/api/v1/orgs/{org}/projects", "post"],
      ["/api/v1/orgs/{org}/projects/{prj}", "delete"],
      ["/api/v1/orgs/{org}/projects/{prj}/environments", "post"],
      ["/api/v1/orgs/{org}/projects/{prj}/environments/{env}", "get"],
      ["/api/v1/orgs/{org}/service-accounts", "post"],
      ["/api/v1/orgs/{org}/service-accounts", "get"],
      ["/api/v1/orgs/{org}/service-accounts/{sa}", "get"],
      ["/api/v1/orgs/{org}/service-accounts/{sa}", "patch"],
      ["/api/v1/orgs/{org}/service-accounts/{sa}", "delete"],
      ["/api/v1/orgs/{org}/service-accounts/{sa}/role-assignments", "post"],
      ["/api/v1/orgs/{org}/service-accounts/{sa}/role-assignments/{ra}", "delete"],
      ["/api/v1/orgs/{org}/service-accounts/{sa}/tokens", "post"],
      ["/api/auth/access-tokens/jwt", "post"],
    ];
    for (const [path, method] of expected) {
      expect(doc.paths?.[path]?.[method], `${method.toUpperCase()} ${path} in the document`).toBeDefined();
    }
    // The exchange is documented from the schema that validates it.
    const exchange = doc.paths["/api/auth/access-tokens/jwt"].post;
    expect(Object.keys(exchange.requestBody.content["application/json"].schema.properties ?? doc.components.schemas.AccessTokenExchange.properties)).toContain("access_token");
    expect(doc.components?.securitySchemes?.bearer?.scheme).toBe("bearer");
    const create = doc.paths["/api/v1/orgs/{org}/service-accounts"].post;
    expect(create["x-required-permission"]).toBe("service-accounts.edit");
    expect(create.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(["201", "400", "401", "403", "404", "409"]));
    expect(Object.keys(create.responses["400"].content)).toEqual(["application/problem+json"]);
  });

  it("GET /docs is HTML under a strict content-security-policy", async () => {
    const res = await exports.default.fetch(new Request(`${BASE}/docs`));
    const html = await res.text();
    expect(res.status, html.slice(0, 300)).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(html).toMatch(/<!doctype html>/i);
    expect(html).toContain("/api/v1/orgs/{org}/service-accounts");
    expect(html).not.toMatch(/<script/i);
  });
});
