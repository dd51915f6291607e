import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import {
  accountWithRole,
  auditRows,
  expectDenied,
  expectFieldError,
  expectProblem,
  expectUnauthenticated,
  listAll,
  newEnvironment,
  newOrg,
  newProject,
} from "./registry-helpers.ts";

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe("orgs: create", () => {
  it("root creates an org: slug lowercased, default policy, audit event", async () => {
    const slug = unique("Org-MiXed").toUpperCase();
    const res = await call("POST", "/api/v1/orgs", { token: root.token, body: { slug, name: "Mixed Case Inc." } });
    expectStatus(res, 201);
    expect(res.json.id, res.text).toMatch(/^org_[0-9A-Za-z]{10,}$/);
    expect(res.json.slug, res.text).toBe(slug.toLowerCase());
    expect(res.json.name, res.text).toBe("Mixed Case Inc.");
    expect(res.json.policy, res.text).toEqual({ maxActiveTokensPerAccount: 1, maxTokenLifetimeDays: null, maxKeyLifetimeDays: null, unusedTokenRevokeAfterDays: null, scopes: [], jwtQuota: null });
    expect(res.json.createdAt, res.text).toMatch(ISO);
    expect(res.json.updatedAt, res.text).toMatch(ISO);
    expect(res.headers.get("x-request-id"), res.text).toBeTruthy();
    const events = await auditRows(res.json.id);
    expect(events.map((e) => e.action), JSON.stringify(events)).toContain("org.created");
    expect(events.find((e) => e.action === "org.created")?.actor_id).toBe(root.id);
  });

  it("merges a partial policy given at creation with the defaults", async () => {
    const org = await newOrg(root.token, { policy: { maxActiveTokensPerAccount: 3 } });
    expect(org.policy).toEqual({ maxActiveTokensPerAccount: 3, maxTokenLifetimeDays: null, maxKeyLifetimeDays: null, unusedTokenRevokeAfterDays: null, scopes: [], jwtQuota: null });
  });

  it("only root may create orgs: an org-admin and a viewer get 403 naming platform.root", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const byAdmin = await call("POST", "/api/v1/orgs", { token: adminToken, body: { slug: unique("org"), name: "Nope" } });
    expectDenied(byAdmin, ["platform.root"]);
    const viewer = await accountWithRole(adminToken, org.id, "viewer");
    const byViewer = await call("POST", "/api/v1/orgs", { token: viewer.token, body: { slug: unique("org"), name: "Nope" } });
    expectDenied(byViewer, ["platform.root"]);
    expectUnauthenticated(await call("POST", "/api/v1/orgs", { body: { slug: unique("org"), name: "Nope" } }));
  });

  it("a taken slug is 409 slug_taken, case-insensitively", async () => {
    const org = await newOrg(root.token);
    const same = await call("POST", "/api/v1/orgs", { token: root.token, body: { slug: org.slug, name: "Again" } });
    expectProblem(same, 409, "slug_taken");
    const upper = await call("POST", "/api/v1/orgs", { token: root.token, body: { slug: org.slug.toUpperCase(), name: "Again" } });
    expectProblem(upper, 409, "slug_taken");
  });

  it.each([
    ["slug", { slug: "-abc", name: "x" }],
    ["slug", { slug: "abc-", name: "x" }],
    ["slug", { slug: "a b", name: "x" }],
    ["slug", { slug: "a_b", name: "x" }],
    ["slug", { slug: "a".repeat(41), name: "x" }],
    ["slug", { slug: "", name: "x" }],
    ["slug", { name: "x" }],
    ["name", { slug: "ok-slug", name: "" }],
    ["name", { slug: "ok-slug", name: "   " }],
    ["name", { slug: "ok-slug", name: "a\u0007b" }],
    ["name", { slug: "ok-slug", name: "n".repeat(129) }],
    ["maxActiveTokensPerAccount", { slug: "ok-slug", name: "x", policy: { maxActiveTokensPerAccount: 0 } }],
    ["maxActiveTokensPerAccount", { slug: "ok-slug", name: "x", policy: { maxActiveTokensPerAccount: 11 } }],
    ["maxActiveTokensPerAccount", { slug: "ok-slug", name: "x", policy: { maxActiveTokensPerAccount: "2" } }],
    ["policy", { slug: "ok-slug", name: "x", policy: { bogus: 1 } }],
    ["body", { slug: "ok-slug", name: "x", extra: true }],
  ])("rejects an invalid create body naming %s", async (field, body) => {
    const res = await call("POST", "/api/v1/orgs", { token: root.token, body });
    expectFieldError(res, field);
  });

  it("accepts a 40-character slug (the documented maximum)", async () => {
    const slug = `${unique("o")}${"x".repeat(40)}`.slice(0, 40);
    const res = await call("POST", "/api/v1/orgs", { token: root.token, body: { slug, name: "Long" } });
    expectStatus(res, 201);
    expect(res.json.slug).toBe(slug);
  });
});

describe("orgs: read", () => {
  it("reads an org by id, by slug and by the slug in another case", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const byId = await call("GET", `/api/v1/orgs/${org.id}`, { token: adminToken });
    expectStatus(byId, 200);
    expect(byId.json, byId.text).toEqual(org);
    const bySlug = await call("GET", `/api/v1/orgs/${org.slug}`, { token: adminToken });
    expectStatus(bySlug, 200);
    expect(bySlug.json, bySlug.text).toEqual(org);
    const byUpper = await call("GET", `/api/v1/orgs/${org.slug.toUpperCase()}`, { token: adminToken });
    expectStatus(byUpper, 200);
    expect(byUpper.json.id, byUpper.text).toBe(org.id);
  });

  it("an unknown org is 404 not_found; an over-long reference is 400", async () => {
    expectProblem(await call("GET", `/api/v1/orgs/${unique("missing")}`, { token: root.token }), 404, "not_found");
    expectProblem(await call("GET", "/api/v1/orgs/org_doesNotExist000000000", { token: root.token }), 404, "not_found");
    expectFieldError(await call("GET", `/api/v1/orgs/${"x".repeat(101)}`, { token: root.token }), "org");
  });
});

describe("orgs: patch", () => {
  it("an org-admin sets the policy; fields not given are kept; audit event written", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const res = await call("PATCH", `/api/v1/orgs/${org.id}`, { token: adminToken, body: { policy: { maxActiveTokensPerAccount: 4, maxTokenLifetimeDays: 90 } } });
    expectStatus(res, 200);
    expect(res.json.policy, res.text).toEqual({ maxActiveTokensPerAccount: 4, maxTokenLifetimeDays: 90, maxKeyLifetimeDays: null, unusedTokenRevokeAfterDays: null, scopes: [], jwtQuota: null });
    expect(res.json.name, res.text).toBe(org.name);
    expect(Date.parse(res.json.updatedAt)).toBeGreaterThanOrEqual(Date.parse(org.updatedAt));

    const second = await call("PATCH", `/api/v1/orgs/${org.slug}`, { token: adminToken, body: { policy: { unusedTokenRevokeAfterDays: 30, maxTokenLifetimeDays: null } } });
    expectStatus(second, 200);
    expect(second.json.policy, second.text).toEqual({ maxActiveTokensPerAccount: 4, maxTokenLifetimeDays: null, maxKeyLifetimeDays: null, unusedTokenRevokeAfterDays: 30, scopes: [], jwtQuota: null });

    const read = await call("GET", `/api/v1/orgs/${org.id}`, { token: adminToken });
    expect(read.json.policy, read.text).toEqual(second.json.policy);
    const events = await auditRows(org.id);
    expect(events.filter((e) => e.action === "org.updated").length, JSON.stringify(events)).toBe(2);
  });

  it("renames an org", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const res = await call("PATCH", `/api/v1/orgs/${org.id}`, { token: adminToken, body: { name: "Renamed Ltd" } });
    expectStatus(res, 200);
    expect(res.json.name).toBe("Renamed Ltd");
    expect(res.json.slug).toBe(org.slug);
    expect((await call("GET", `/api/v1/orgs/${org.id}`, { token: adminToken })).json.name).toBe("Renamed Ltd");
  });

  it.each([
    ["maxActiveTokensPerAccount", { policy: { maxActiveTokensPerAccount: 0 } }],
    ["maxActiveTokensPerAccount", { policy: { maxActiveTokensPerAccount: 11 } }],
    ["maxActiveTokensPerAccount", { policy: { maxActiveTokensPerAccount: 1.5 } }],
    ["maxActiveTokensPerAccount", { policy: { maxActiveTokensPerAccount: null } }],
    ["maxTokenLifetimeDays", { policy: { maxTokenLifetimeDays: 0 } }],
    ["maxTokenLifetimeDays", { policy: { maxTokenLifetimeDays: 3651 } }],
    ["unusedTokenRevokeAfterDays", { policy: { unusedTokenRevokeAfterDays: -1 } }],
    ["policy", { policy: { maxActiveTokens: 2 } }],
    ["policy", { policy: "strict" }],
    ["name", { name: "" }],
    ["body", { slug: "new-slug" }],
  ])("rejects an invalid policy or field (%s) and leaves the org unchanged", async (field, body) => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    expectFieldError(await call("PATCH", `/api/v1/orgs/${org.id}`, { token: adminToken, body }), field);
    const read = await call("GET", `/api/v1/orgs/${org.id}`, { token: adminToken });
    expect(read.json, read.text).toEqual(org);
  });

  it("a viewer gets 403 naming orgs.admin and the org is unchanged", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const viewer = await accountWithRole(adminToken, org.id, "viewer");
    expectDenied(await call("PATCH", `/api/v1/orgs/${org.id}`, { token: viewer.token, body: { name: "Hijacked" } }), ["orgs.admin"]);
    expect((await call("GET", `/api/v1/orgs/${org.id}`, { token: viewer.token })).json.name).toBe(org.name);
  });
});

describe("orgs: list visibility", () => {
  it("an org-admin sees only its org; root sees both", async () => {
    const a = await orgWithAdmin(root.token);
    const b = await orgWithAdmin(root.token);
    const listA = await call("GET", "/api/v1/orgs", { token: a.adminToken });
    expectStatus(listA, 200);
    expect(listA.json.items.map((o: { id: string }) => o.id), listA.text).toEqual([a.org.id]);
    expect(listA.json.nextCursor, listA.text).toBeNull();
    const listB = await call("GET", "/api/v1/orgs", { token: b.adminToken });
    expect(listB.json.items.map((o: { id: string }) => o.id), listB.text).toEqual([b.org.id]);

    const all = await listAll("/api/v1/orgs", root.token);
    const ids = all.map((o) => o.id);
    expect(ids).toContain(a.org.id);
    expect(ids).toContain(b.org.id);
    expect(new Set(ids).size, "no org listed twice").toBe(ids.length);
  });

  it("root pages through orgs with limit and cursor; a garbage cursor is 400", async () => {
    await newOrg(root.token);
    await newOrg(root.token);
    const first = await call("GET", "/api/v1/orgs?limit=1", { token: root.token });
    expectStatus(first, 200);
    expect(first.json.items.length, first.text).toBe(1);
    expect(first.json.nextCursor, first.text).toBeTypeOf("string");
    const second = await call("GET", `/api/v1/orgs?limit=1&cursor=${first.json.nextCursor}`, { token: root.token });
    expectStatus(second, 200);
    expect(second.json.items[0].id, second.text).not.toBe(first.json.items[0].id);
    expectFieldError(await call("GET", "/api/v1/orgs?cursor=not-a-cursor!!", { token: root.token }), "cursor");
  });
});

describe("projects and environments", () => {
  it("creates, lists, reads (by id and slug) and deletes projects and environments", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const slug = unique("Web");
    const created = await call("POST", `/api/v1/orgs/${org.id}/projects`, { token: adminToken, body: { slug, name: "Web app" } });
    expectStatus(created, 201);
    const project = created.json;
    expect(project.id, created.text).toMatch(/^prj_/);
    expect(project.orgId).toBe(org.id);
    expect(project.slug).toBe(slug.toLowerCase());
    expect(project.name).toBe("Web app");
    expect(project.createdAt).toMatch(ISO);
    expect((await auditRows(project.id)).map((e) => e.action)).toContain("project.created");

    for (const ref of [project.id, project.slug, project.slug.toUpperCase()]) {
      const got = await call("GET", `/api/v1/orgs/${org.slug}/projects/${ref}`, { token: adminToken });
      expectStatus(got, 200);
      expect(got.json, got.text).toEqual(project);
    }
    const list = await call("GET", `/api/v1/orgs/${org.id}/projects`, { token: adminToken });
    expectStatus(list, 200);
    expect(list.json.items, list.text).toEqual([project]);
    expect(list.json.nextCursor).toBeNull();

    const envRes = await call("POST", `/api/v1/orgs/${org.id}/projects/${project.slug}/environments`, { token: adminToken, body: { slug: "Prod", name: "Production" } });
    expectStatus(envRes, 201);
    const environment = envRes.json;
    expect(environment.id, envRes.text).toMatch(/^env_/);
    expect(environment).toMatchObject({ orgId: org.id, projectId: project.id, slug: "prod", name: "Production" });
    for (const ref of [environment.id, "prod", "PROD"]) {
      const got = await call("GET", `/api/v1/orgs/${org.id}/projects/${project.id}/environments/${ref}`, { token: adminToken });
      expectStatus(got, 200);
      expect(got.json, got.text).toEqual(environment);
    }
    const envList = await call("GET", `/api/v1/orgs/${org.id}/projects/${project.id}/environments`, { token: adminToken });
    expect(envList.json.items, envList.text).toEqual([environment]);

    const delEnv = await call("DELETE", `/api/v1/orgs/${org.id}/projects/${project.id}/environments/${environment.id}`, { token: adminToken });
    expectStatus(delEnv, 204);
    expect(delEnv.text).toBe("");
    expectProblem(await call("GET", `/api/v1/orgs/${org.id}/projects/${project.id}/environments/${environment.id}`, { token: adminToken }), 404, "not_found");
    expectProblem(await call("DELETE", `/api/v1/orgs/${org.id}/projects/${project.id}/environments/${environment.id}`, { token: adminToken }), 404, "not_found");
    expect((await auditRows(environment.id)).map((e) => e.action)).toEqual(["environment.created", "environment.deleted"]);

    expectStatus(await call("DELETE", `/api/v1/orgs/${org.id}/projects/${project.slug}`, { token: adminToken }), 204);
    expectProblem(await call("GET", `/api/v1/orgs/${org.id}/projects/${project.id}`, { token: adminToken }), 404, "not_found");
    expectProblem(await call("DELETE", `/api/v1/orgs/${org.id}/projects/${project.id}`, { token: adminToken }), 404, "not_found");
    const after = await call("GET", `/api/v1/orgs/${org.id}/projects`, { token: adminToken });
    expect(after.json.items, after.text).toEqual([]);
  });

  it("deleting a project deletes its environments", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const project = await newProject(adminToken, org.id);
    const environment = await newEnvironment(adminToken, org.id, project.id);
    expectStatus(await call("DELETE", `/api/v1/orgs/${org.id}/projects/${project.id}`, { token: adminToken }), 204);
    expectProblem(await call("GET", `/api/v1/orgs/${org.id}/projects/${project.id}/environments/${environment.id}`, { token: adminToken }), 404, "not_found");
    expectProblem(await call("GET", `/api/v1/orgs/${org.id}/projects/${project.id}/environments`, { token: adminToken }), 404, "not_found");
    // A new project with the same slug starts empty.
    const again = await call("POST", `/api/v1/orgs/${org.id}/projects`, { token: adminToken, body: { slug: project.slug, name: "Again" } });
    expectStatus(again, 201);
    const envs = await call("GET", `/api/v1/orgs/${org.id}/projects/${again.json.id}/environments`, { token: adminToken });
    expect(envs.json.items, envs.text).toEqual([]);
  });

  it("slugs are unique per org (projects) and per project (environments), case-insensitively", async () => {
    const a = await orgWithAdmin(root.token);
    const b = await orgWithAdmin(root.token);
    const project = await newProject(a.adminToken, a.org.id);
    expectProblem(await call("POST", `/api/v1/orgs/${a.org.id}/projects`, { token: a.adminToken, body: { slug: project.slug.toUpperCase(), name: "Dup" } }), 409, "slug_taken");
    expectStatus(await call("POST", `/api/v1/orgs/${b.org.id}/projects`, { token: b.adminToken, body: { slug: project.slug, name: "Same slug elsewhere" } }), 201);

    const sibling = await newProject(a.adminToken, a.org.id);
    const environment = await newEnvironment(a.adminToken, a.org.id, project.id);
    expectProblem(
      await call("POST", `/api/v1/orgs/${a.org.id}/projects/${project.id}/environments`, { token: a.adminToken, body: { slug: environment.slug, name: "Dup" } }),
      409,
      "slug_taken",
    );
    expectStatus(await call("POST", `/api/v1/orgs/${a.org.id}/projects/${sibling.id}/environments`, { token: a.adminToken, body: { slug: environment.slug, name: "Same slug, other project" } }), 201);
    // An environment is only reachable under its own project.
    expectProblem(await call("GET", `/api/v1/orgs/${a.org.id}/projects/${sibling.id}/environments/${environment.id}`, { token: a.adminToken }), 404, "not_found");
  });

  it("unknown projects are 404 for read, list, create-environment and delete; bad bodies are 400", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const base = `/api/v1/orgs/${org.id}/projects/${unique("ghost")}`;
    expectProblem(await call("GET", base, { token: adminToken }), 404, "not_found");
    expectProblem(await call("DELETE", base, { token: adminToken }), 404, "not_found");
    expectProblem(await call("GET", `${base}/environments`, { token: adminToken }), 404, "not_found");
    expectProblem(await call("POST", `${base}/environments`, { token: adminToken, body: { slug: "x", name: "x" } }), 404, "not_found");
    expectFieldError(await call("POST", `/api/v1/orgs/${org.id}/projects`, { token: adminToken, body: { slug: "bad slug", name: "x" } }), "slug");
    expectFieldError(await call("POST", `/api/v1/orgs/${org.id}/projects`, { token: adminToken, body: { slug: "ok", name: "x", orgId: org.id } }), "body");
  });

  it("pages projects with limit and cursor without duplicates", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const made = [];
    for (let i = 0; i < 3; i++) made.push((await newProject(adminToken, org.id)).id);
    const p1 = await call("GET", `/api/v1/orgs/${org.id}/projects?limit=2`, { token: adminToken });
    expect(p1.json.items.length, p1.text).toBe(2);
    expect(p1.json.nextCursor, p1.text).toBeTypeOf("string");
    const p2 = await call("GET", `/api/v1/orgs/${org.id}/projects?limit=2&cursor=${p1.json.nextCursor}`, { token: adminToken });
    expect(p2.json.items.length, p2.text).toBe(1);
    expect(p2.json.nextCursor, p2.text).toBeNull();
    const ids = [...p1.json.items, ...p2.json.items].map((p: { id: string }) => p.id);
    expect(ids.sort()).toEqual([...made].sort());
  });
});

describe("a viewer", () => {
  it("reads the org, projects and environments", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const project = await newProject(adminToken, org.id);
    const environment = await newEnvironment(adminToken, org.id, project.id);
    const viewer = await accountWithRole(adminToken, org.id, "viewer");
    for (const path of [
      `/api/v1/orgs/${org.id}`,
      `/api/v1/orgs/${org.id}/projects`,
      `/api/v1/orgs/${org.id}/projects/${project.id}`,
      `/api/v1/orgs/${org.id}/projects/${project.id}/environments`,
      `/api/v1/orgs/${org.id}/projects/${project.id}/environments/${environment.id}`,
    ]) {
      expectStatus(await call("GET", path, { token: viewer.token }), 200);
    }
    const list = await call("GET", "/api/v1/orgs", { token: viewer.token });
    expect(list.json.items.map((o: { id: string }) => o.id), list.text).toEqual([org.id]);
  });

  it("gets 403 naming the operation on every write, and nothing changes", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const project = await newProject(adminToken, org.id);
    const environment = await newEnvironment(adminToken, org.id, project.id);
    const viewer = await accountWithRole(adminToken, org.id, "viewer");
    const t = viewer.token;
    const base = `/api/v1/orgs/${org.id}`;
    expectDenied(await call("PATCH", base, { token: t, body: { policy: { maxActiveTokensPerAccount: 5 } } }), ["orgs.admin"]);
    expectDenied(await call("POST", `${base}/projects`, { token: t, body: { slug: unique("p"), name: "x" } }), ["orgs.admin"]);
    expectDenied(await call("DELETE", `${base}/projects/${project.id}`, { token: t }), ["orgs.admin"]);
    expectDenied(await call("POST", `${base}/projects/${project.id}/environments`, { token: t, body: { slug: unique("e"), name: "x" } }), ["orgs.admin"]);
    expectDenied(await call("DELETE", `${base}/projects/${project.id}/environments/${environment.id}`, { token: t }), ["orgs.admin"]);
    expectDenied(await call("POST", `${base}/service-accounts`, { token: t, body: { name: unique("sa") } }), ["service-accounts.edit"]);

    expect((await call("GET", base, { token: adminToken })).json.policy.maxActiveTokensPerAccount).toBe(1);
    expectStatus(await call("GET", `${base}/projects/${project.id}/environments/${environment.id}`, { token: adminToken }), 200);
    const projects = await call("GET", `${base}/projects`, { token: adminToken });
    expect(projects.json.items.map((p: { id: string }) => p.id), projects.text).toEqual([project.id]);
  });
});

describe("orgs: the declared downstream scopes (policy.scopes, issue 23)", () => {
  const orgPath = (org: string) => `/api/v1/orgs/${org}`;

  it("an org-admin declares scopes (deduplicated); a viewer or a service-account-admin cannot", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const res = await call("PATCH", orgPath(org.id), { token: adminToken, body: { policy: { scopes: ["billing:read", "billing:read", "deploy/write"] } } });
    expectStatus(res, 200);
    expect(res.json.policy.scopes, res.text).toEqual(["billing:read", "deploy/write"]);
    expect((await call("GET", orgPath(org.id), { token: adminToken })).json.policy.scopes).toEqual(["billing:read", "deploy/write"]);
    for (const role of ["viewer", "service-account-admin"]) {
      const other = await accountWithRole(adminToken, org.id, role);
      expectDenied(await call("PATCH", orgPath(org.id), { token: other.token, body: { policy: { scopes: ["billing:write"] } } }), ["orgs.admin"]);
    }
    expect((await call("GET", orgPath(org.id), { token: adminToken })).json.policy.scopes).toEqual(["billing:read", "deploy/write"]);
    const created = await newOrg(root.token, { policy: { scopes: ["a:b"] } });
    expect(created.policy.scopes).toEqual(["a:b"]);
  });

  it.each([
    ["a space", ["has space"]],
    ["a quote", ['say"hi']],
    ["a backslash", ["back\\slash"]],
    ["a control character", ["tab\there"]],
    ["non-ASCII", ["caf\u00e9"]],
    ["an empty name", [""]],
    ["129 characters", ["x".repeat(129)]],
    ["101 entries", Array.from({ length: 101 }, (_, i) => `s${i}`)],
  ])("a declared scope with %s is 400 naming policy.scopes, and nothing changes", async (_, scopes) => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const res = await call("PATCH", orgPath(org.id), { token: adminToken, body: { policy: { scopes } } });
    expectFieldError(res, scopes.length > 100 ? "policy.scopes" : "policy.scopes.0");
    expect((await call("GET", orgPath(org.id), { token: adminToken })).json.policy.scopes).toEqual([]);
  });

  it("a declared scope may not name a Keyward operation (400 invalid_scope naming it), at creation or by PATCH", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    for (const scopes of [["platform.root"], ["billing:read", "roles.edit"]]) {
      const res = await call("PATCH", orgPath(org.id), { token: adminToken, body: { policy: { scopes } } });
      expectProblem(res, 400, "invalid_scope");
      expect(res.json.detail, res.text).toContain(scopes.at(-1));
      expect(res.json.detail, res.text).toMatch(/roles/);
    }
    expectProblem(await call("POST", "/api/v1/orgs", { token: root.token, body: { slug: unique("o"), name: "O", policy: { scopes: ["orgs.admin"] } } }), 400, "invalid_scope");
    expect((await call("GET", orgPath(org.id), { token: adminToken })).json.policy.scopes).toEqual([]);
  });

  it("a declared scope an account still carries cannot be removed (409), until the account drops it", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    expectStatus(await call("PATCH", orgPath(org.id), { token: adminToken, body: { policy: { scopes: ["billing:read", "billing:write"] } } }), 200);
    const holder = await accountWithRole(adminToken, org.id, "viewer");
    const acct = `${orgPath(org.id)}/service-accounts/${holder.account.id}`;
    expectStatus(await call("PATCH", acct, { token: adminToken, body: { allowedScopes: ["billing:read"] } }), 200);
    const refused = await call("PATCH", orgPath(org.id), { token: adminToken, body: { policy: { scopes: ["billing:write"] } } });
    expectProblem(refused, 409, "conflict");
    expect(refused.json.detail, refused.text).toContain("billing:read");
    expect((await call("GET", orgPath(org.id), { token: adminToken })).json.policy.scopes).toEqual(["billing:read", "billing:write"]);
    // An unused one goes; once the account drops the other, it goes too.
    expectStatus(await call("PATCH", orgPath(org.id), { token: adminToken, body: { policy: { scopes: ["billing:read"] } } }), 200);
    expectStatus(await call("PATCH", acct, { token: adminToken, body: { allowedScopes: [] } }), 200);
    const emptied = await call("PATCH", orgPath(org.id), { token: adminToken, body: { policy: { scopes: [] } } });
    expectStatus(emptied, 200);
    expect(emptied.json.policy.scopes).toEqual([]);
  });
});
