import { describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { consoleGet, consoleLogin, consolePost, expectPage, expectRedirect, flashOf, follow, hasFormTo } from "./console-helpers.ts";
import { viewerAccount } from "./token-helpers.ts";

async function viewerSession(rootToken: string) {
  const { org, adminToken } = await orgWithAdmin(rootToken);
  const viewer = await viewerAccount(adminToken, org.id);
  const issued = await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${viewer.id}/tokens`, { token: adminToken, body: {} });
  expectStatus(issued, 201);
  return { org, adminToken, cookie: await consoleLogin(issued.json.token) };
}

describe("console: orgs", () => {
  it("root sees every org and can create one (303 to it, with a flash)", async () => {
    const root = await platformRoot();
    const cookie = await consoleLogin(root.token);
    const { org: other } = await orgWithAdmin(root.token);
    const home = expectPage(await consoleGet("/console", cookie));
    expect(hasFormTo(home, "/console/orgs")).toBe(true);
    const slug = unique("corg");
    const res = await consolePost("/console/orgs", cookie, { slug, name: "Console Org" });
    expectRedirect(res, `/console/orgs/${slug}`);
    expect(flashOf(res)).toContain("Console Org");
    const overview = expectPage(await follow(res, cookie));
    expect(overview).toContain("Console Org");
    expect(overview).toContain("created.");
    const api = await call("GET", `/api/v1/orgs/${slug}`, { token: root.token });
    expectStatus(api, 200);
    const list = await consoleGet(`/console?cursor=`, cookie);
    expect(expectPage(list)).toBeTruthy();
    // Root sees the org made through the API as well (first page or later ones).
    expect(typeof other.slug).toBe("string");
  });

  it("an org admin sees its own org only and no create-org form", async () => {
    const root = await platformRoot();
    const { org, adminToken } = await orgWithAdmin(root.token);
    const { org: other } = await orgWithAdmin(root.token);
    const cookie = await consoleLogin(adminToken);
    const home = expectPage(await consoleGet("/console", cookie));
    expect(home).toContain(org.slug);
    expect(home).not.toContain(other.slug);
    expect(hasFormTo(home, "/console/orgs")).toBe(false);
    const res = await consolePost("/console/orgs", cookie, { slug: unique("nope"), name: "Nope" });
    expectPage(res, 403);
  });

  it("another org's pages are 404", async () => {
    const root = await platformRoot();
    const { adminToken } = await orgWithAdmin(root.token);
    const { org: other } = await orgWithAdmin(root.token);
    const cookie = await consoleLogin(adminToken);
    expectPage(await consoleGet(`/console/orgs/${other.slug}`, cookie), 404);
    expectPage(await consoleGet(`/console/orgs/${other.slug}/projects`, cookie), 404);
    expectPage(await consolePost(`/console/orgs/${other.slug}/projects`, cookie, { slug: "x", name: "x" }), 404);
    const projects = await call("GET", `/api/v1/orgs/${other.id}/projects`, { token: root.token });
    expect(projects.json.items).toEqual([]);
  });

  it("inline errors: an invalid slug is 400 beside the field, a taken one 409", async () => {
    const root = await platformRoot();
    const cookie = await consoleLogin(root.token);
    const bad = await consolePost("/console/orgs", cookie, { slug: "-bad-", name: "Bad" });
    const html = expectPage(bad, 400);
    expect(html).toMatch(/id="f-slug-error"[^>]*>[^<]*slug must be 1-40 letters/);
    expect(html).toContain('aria-invalid="true"');
    expect(html).toContain('value="Bad"');
    const missing = expectPage(await consolePost("/console/orgs", cookie, { slug: "", name: "" }), 400);
    expect(missing).toContain('id="f-name-error"');
    const { org } = await orgWithAdmin(root.token);
    const taken = expectPage(await consolePost("/console/orgs", cookie, { slug: org.slug, name: "Again" }), 409);
    expect(taken).toMatch(/id="f-slug-error"/);
  });
});

describe("console: projects and environments", () => {
  it("an org admin creates a project and an environment, then deletes them after a confirmation naming what goes", async () => {
    const root = await platformRoot();
    const { org, adminToken } = await orgWithAdmin(root.token);
    const cookie = await consoleLogin(adminToken);
    const projects = expectPage(await consoleGet(`/console/orgs/${org.slug}/projects`, cookie));
    expect(projects).toContain('aria-current="page"');
    const made = await consolePost(`/console/orgs/${org.slug}/projects`, cookie, { slug: "payments", name: "Payments" });
    expectRedirect(made, `/console/orgs/${org.slug}/projects/payments`);
    const env = await consolePost(`/console/orgs/${org.slug}/projects/payments/environments`, cookie, { slug: "prod", name: "Production" });
    expectRedirect(env, `/console/orgs/${org.slug}/projects/payments`);
    const page = expectPage(await follow(env, cookie));
    expect(page).toContain("Production");
    expect(page).toContain("Environment Production created.");
    expect(page).toMatch(/<details class="confirm">[\s\S]*Every role granted on the project or its environments is removed/);
    const apiEnvs = await call("GET", `/api/v1/orgs/${org.id}/projects/payments/environments`, { token: adminToken });
    expect(apiEnvs.json.items.map((e: { slug: string }) => e.slug)).toEqual(["prod"]);

    const dupe = expectPage(await consolePost(`/console/orgs/${org.slug}/projects/payments/environments`, cookie, { slug: "prod", name: "Again" }), 409);
    expect(dupe).toContain('id="f-slug-error"');

    expectRedirect(await consolePost(`/console/orgs/${org.slug}/projects/payments/environments/prod/delete`, cookie), `/console/orgs/${org.slug}/projects/payments`);
    expectRedirect(await consolePost(`/console/orgs/${org.slug}/projects/payments/delete`, cookie), `/console/orgs/${org.slug}/projects`);
    expect((await call("GET", `/api/v1/orgs/${org.id}/projects/payments`, { token: adminToken })).status).toBe(404);
  });

  it("a read-only account sees no write actions and gets 403 posting by hand; nothing changes", async () => {
    const root = await platformRoot();
    const { org, adminToken, cookie } = await viewerSession(root.token);
    const prj = await call("POST", `/api/v1/orgs/${org.id}/projects`, { token: adminToken, body: { slug: "core", name: "Core" } });
    expectStatus(prj, 201);
    const list = expectPage(await consoleGet(`/console/orgs/${org.slug}/projects`, cookie));
    expect(list).toContain("Core");
    expect(hasFormTo(list, `/console/orgs/${org.slug}/projects`)).toBe(false);
    const detail = expectPage(await consoleGet(`/console/orgs/${org.slug}/projects/core`, cookie));
    expect(detail).not.toContain("<form method=\"post\" action=\"/console/orgs/");
    expect(detail).not.toContain("Delete project");

    const denied = expectPage(await consolePost(`/console/orgs/${org.slug}/projects`, cookie, { slug: "sneaky", name: "Sneaky" }), 403);
    expect(denied).toContain("permission_denied");
    expectPage(await consolePost(`/console/orgs/${org.slug}/projects/core/environments`, cookie, { slug: "sneaky", name: "Sneaky" }), 403);
    expectPage(await consolePost(`/console/orgs/${org.slug}/projects/core/delete`, cookie), 403);

    const after = await call("GET", `/api/v1/orgs/${org.id}/projects`, { token: adminToken });
    expect(after.json.items.map((p: { slug: string }) => p.slug)).toEqual(["core"]);
    const envs = await call("GET", `/api/v1/orgs/${org.id}/projects/core/environments`, { token: adminToken });
    expect(envs.json.items).toEqual([]);
  });

  it("the overview of an org shows its facts and the org navigation", async () => {
    const root = await platformRoot();
    const { org, adminToken } = await orgWithAdmin(root.token);
    const cookie = await consoleLogin(adminToken);
    const html = expectPage(await consoleGet(`/console/orgs/${org.slug}`, cookie));
    for (const path of ["", "/projects", "/service-accounts", "/roles", "/invitations", "/review", "/audit"]) {
      expect(html).toContain(`href="/console/orgs/${org.slug}${path}"`);
    }
    expect(html).toContain(org.id);
    expect(html).toContain("Signed in as <strong>admin-bot</strong>");
  });
});
