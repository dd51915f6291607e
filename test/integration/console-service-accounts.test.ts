import * as jose from "jose";
import { describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { consoleGet, consoleLogin, consolePost, expectPage, expectRedirect, follow, hasFormTo } from "./console-helpers.ts";
import { viewerAccount } from "./token-helpers.ts";

const accountsPath = (org: string) => `/console/orgs/${org}/service-accounts`;

/** An org, its admin's console session, and a viewer's session (read-only). */
async function setup() {
  const root = await platformRoot();
  const { org, admin, adminToken } = await orgWithAdmin(root.token);
  const viewer = await viewerAccount(adminToken, org.id, { name: unique("viewer") });
  const issued = await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${viewer.id}/tokens`, { token: adminToken, body: {} });
  expectStatus(issued, 201);
  return { root, org, admin, adminToken, viewer, admin_: await consoleLogin(adminToken), viewer_: await consoleLogin(issued.json.token) };
}

async function apiAccount(adminToken: string, orgId: string, body: Record<string, unknown>) {
  const res = await call("POST", `/api/v1/orgs/${orgId}/service-accounts`, { token: adminToken, body });
  expectStatus(res, 201);
  return res.json;
}

describe("console: service account list", () => {
  it("lists with search, group and status filters and pages with the API's cursor", async () => {
    const { org, adminToken, admin_ } = await setup();
    for (let i = 0; i < 27; i++) await apiAccount(adminToken, org.id, { name: `bulk-${i}`, groups: i % 2 ? ["odd"] : ["even"] });
    const off = await apiAccount(adminToken, org.id, { name: "switched-off", groups: ["odd"] });
    expectStatus(await call("PATCH", `/api/v1/orgs/${org.id}/service-accounts/${off.id}`, { token: adminToken, body: { status: "disabled" } }), 200);

    const first = expectPage(await consoleGet(accountsPath(org.slug), admin_));
    expect(first.match(/<tr><td><a href="\/console\/orgs\/[^"]+\/service-accounts\/sa_/g)?.length).toBe(25);
    const next = /href="([^"]+cursor=[^"]+)"[^>]*>Next page/.exec(first)![1]!.replaceAll("&amp;", "&");
    const second = expectPage(await consoleGet(next, admin_));
    expect(second.match(/service-accounts\/sa_/g)!.length).toBeGreaterThanOrEqual(5);
    expect(second).toContain("First page");

    const searched = expectPage(await consoleGet(`${accountsPath(org.slug)}?q=bulk-2`, admin_));
    expect(searched).toContain("bulk-2<");
    expect(searched).toContain("bulk-21");
    expect(searched).not.toContain("bulk-3<");
    const disabled = expectPage(await consoleGet(`${accountsPath(org.slug)}?status=disabled&group=odd`, admin_));
    expect(disabled).toContain("switched-off");
    expect(disabled).not.toContain("bulk-1<");
    const even = expectPage(await consoleGet(`${accountsPath(org.slug)}?group=even&status=active`, admin_));
    expect(even).toContain("bulk-0<");
    expect(even).not.toContain("bulk-1<");
  });

  it("a bad filter is 400 with the error beside it", async () => {
    const { org, admin_ } = await setup();
    const html = expectPage(await consoleGet(`${accountsPath(org.slug)}?status=sleeping`, admin_), 400);
    expect(html).toContain('id="f-status-error"');
  });

  it("another org's list and accounts are 404", async () => {
    const { root, admin_ } = await setup();
    const { org: other, admin: otherAdmin } = await orgWithAdmin(root.token);
    expectPage(await consoleGet(accountsPath(other.slug), admin_), 404);
    expectPage(await consoleGet(`${accountsPath(other.slug)}/${otherAdmin.id}`, admin_), 404);
    expectPage(await consolePost(`${accountsPath(other.slug)}/${otherAdmin.id}/disable`, admin_), 404);
    expectPage(await consolePost(`${accountsPath(other.slug)}/${otherAdmin.id}/delete`, admin_), 404);
    const still = await call("GET", `/api/v1/orgs/${other.id}/service-accounts/${otherAdmin.id}`, { token: root.token });
    expect(still.json.status).toBe("active");
  });
});

describe("console: create a service account", () => {
  it("creates with every field and a role at a project, then shows its page", async () => {
    const { org, adminToken, admin_ } = await setup();
    const prj = await call("POST", `/api/v1/orgs/${org.id}/projects`, { token: adminToken, body: { slug: "web", name: "Web" } });
    expectStatus(prj, 201);
    const form = expectPage(await consoleGet(`${accountsPath(org.slug)}/new`, admin_));
    expect(form).toContain(`value="project:${prj.json.id}"`);
    const res = await consolePost(accountsPath(org.slug), admin_, {
      name: "deploy-bot",
      displayName: "Deploy bot",
      description: "Deploys the web app",
      groups: "ci, web",
      externalId: "github:acme/web",
      daysValid: "90",
      role: "viewer",
      scope: `project:${prj.json.id}`,
    });
    expect(res.status, res.text.slice(0, 500)).toBe(303);
    const id = /service-accounts\/(sa_[A-Za-z0-9]+)/.exec(res.location!)![1]!;
    const page = expectPage(await follow(res, admin_));
    expect(page).toContain("Service account deploy-bot created.");
    expect(page).toContain("Deploys the web app");
    const api = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${id}`, { token: adminToken });
    expect(api.json).toMatchObject({ name: "deploy-bot", displayName: "Deploy bot", groups: ["ci", "web"], externalId: "github:acme/web" });
    expect(Date.parse(api.json.expiresAt) - Date.now()).toBeGreaterThan(89 * 86_400_000);
    const roles = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${id}/role-assignments`, { token: adminToken });
    expect(roles.json.items.map((r: any) => [r.role, r.scope])).toEqual([["viewer", { type: "project", id: prj.json.id }]]);
  });

  it("issue a first token: the secret is in this response only, with the warning", async () => {
    const { org, adminToken, admin_ } = await setup();
    const res = await consolePost(accountsPath(org.slug), admin_, { name: "with-token", role: "viewer", scope: "org", issueToken: "on" });
    const html = expectPage(res, 201);
    expect(html).toContain("This token will not be shown again.");
    const secret = /<code id="new-secret">(sat_[^<]+)<\/code>/.exec(html)![1]!;
    expect(html).toContain('data-copy="new-secret"');
    const id = /service-accounts\/(sa_[A-Za-z0-9]+)\/edit/.exec(html)![1]!;
    // The token works against the API; a reload of the page shows only its hint.
    expectStatus(await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${id}`, { token: secret }), 200);
    const again = expectPage(await consoleGet(`${accountsPath(org.slug)}/${id}`, admin_));
    expect(again).not.toContain(secret);
    expect(again).not.toContain("new-secret");
    const tokens = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${id}/tokens`, { token: adminToken });
    expect(again).toContain(tokens.json.items[0].hint);
  });

  it("inline errors: a bad name (400), a taken name (409), both validities (400); nothing created", async () => {
    const { org, adminToken, admin_ } = await setup();
    const bad = expectPage(await consolePost(accountsPath(org.slug), admin_, { name: "bad\u200bname" }), 400);
    expect(bad).toMatch(/id="f-name-error"/);
    await apiAccount(adminToken, org.id, { name: "taken" });
    const taken = expectPage(await consolePost(accountsPath(org.slug), admin_, { name: "taken", displayName: "Kept" }), 409);
    expect(taken).toMatch(/id="f-name-error"[^>]*>[^<]*already exists/);
    expect(taken).toContain('value="Kept"');
    const both = expectPage(await consolePost(accountsPath(org.slug), admin_, { name: "both", daysValid: "3", expiresAt: "2031-01-01T00:00" }), 400);
    expect(both).toMatch(/id="f-expiresAt-error"/);
    const days = expectPage(await consolePost(accountsPath(org.slug), admin_, { name: "days", daysValid: "9999" }), 400);
    expect(days).toMatch(/id="f-daysValid-error"/);
    const list = await call("GET", `/api/v1/orgs/${org.id}/service-accounts?q=both`, { token: adminToken });
    expect(list.json.items).toEqual([]);
  });

  it("an unassignable role is refused inline (422) and nothing is created", async () => {
    const { org, adminToken, admin_ } = await setup();
    const res = await consolePost(accountsPath(org.slug), admin_, { name: "owner-wannabe", role: "org-owner" });
    const html = expectPage(res, 422);
    expect(html).toContain("alert error");
    const list = await call("GET", `/api/v1/orgs/${org.id}/service-accounts?q=owner-wannabe`, { token: adminToken });
    expect(list.json.items).toEqual([]);
  });
});

describe("console: an account's page, edit, disable, delete", () => {
  it("edits, disables (its token stops working), enables and deletes after a confirmation naming what is revoked", async () => {
    const { org, adminToken, admin_ } = await setup();
    const made = await apiAccount(adminToken, org.id, { name: "lifecycle", roles: [{ role: "viewer" }], issueToken: true });
    const base = `${accountsPath(org.slug)}/${made.id}`;
    const edit = expectPage(await consoleGet(`${base}/edit`, admin_));
    expect(edit).toContain('value="lifecycle"');
    expectRedirect(await consolePost(`${base}/edit`, admin_, { name: "lifecycle-2", displayName: "Life", description: "", groups: "a,b", externalId: "" }), base);
    const after = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${made.id}`, { token: adminToken });
    expect(after.json).toMatchObject({ name: "lifecycle-2", displayName: "Life", groups: ["a", "b"], description: null });
    const badEdit = expectPage(await consolePost(`${base}/edit`, admin_, { name: "x\u202ey" }), 400);
    expect(badEdit).toContain('id="f-name-error"');

    expectRedirect(await consolePost(`${base}/disable`, admin_), base);
    expect((await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${made.id}`, { token: made.token.token })).status).toBe(401);
    const disabledPage = expectPage(await consoleGet(base, admin_));
    expect(hasFormTo(disabledPage, `${base}/enable`)).toBe(true);
    expectRedirect(await consolePost(`${base}/enable`, admin_), base);
    expectStatus(await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${made.id}`, { token: made.token.token }), 200);

    const page = expectPage(await consoleGet(base, admin_));
    expect(page).toMatch(/<details class="confirm"><summary>Delete<\/summary>[\s\S]*1 active access token\(s\) are revoked/);
    expect(page).toContain("0 public key(s) are removed");
    const del = await consolePost(`${base}/delete`, admin_);
    expectRedirect(del, accountsPath(org.slug));
    expect((await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${made.id}`, { token: adminToken })).status).toBe(404);
    expect((await call("GET", `/api/v1/orgs/${org.id}/service-accounts`, { token: made.token.token })).status).toBe(401);
  });

  it("a read-only account sees no write actions and gets 403 posting by hand; nothing changed", async () => {
    const { org, adminToken, viewer_ } = await setup();
    const target = await apiAccount(adminToken, org.id, { name: "untouchable", roles: [{ role: "viewer" }], issueToken: true });
    const base = `${accountsPath(org.slug)}/${target.id}`;
    const list = expectPage(await consoleGet(accountsPath(org.slug), viewer_));
    expect(list).toContain("untouchable");
    expect(list).not.toContain("New service account");
    const page = expectPage(await consoleGet(base, viewer_));
    expect(page).toContain(target.token.hint);
    for (const action of ["/edit", "/disable", "/delete", "/tokens", "/keys"]) expect(hasFormTo(page, `${base}${action}`), action).toBe(false);
    expect(page).not.toContain('<details class="confirm">');
    expect(page).not.toContain("Regenerate");
    expect(page).not.toContain(">Edit<");

    expectPage(await consoleGet(`${base}/edit`, viewer_), 200); // reading is allowed; saving is not:
    for (const [path, fields] of [
      [accountsPath(org.slug), { name: "sneaky" }],
      [`${base}/edit`, { name: "renamed" }],
      [`${base}/disable`, {}],
      [`${base}/delete`, {}],
      [`${base}/tokens`, {}],
      [`${base}/tokens/${target.token.id}/revoke`, {}],
      [`${base}/tokens/${target.token.id}/regenerate`, { graceSeconds: "0" }],
      [`${base}/keys`, { publicKey: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" }],
    ] as const) {
      const res = await consolePost(path, viewer_, fields);
      expect(res.status, `${path}: ${res.text.slice(0, 300)}`).toBe(403);
      expect(res.text).toContain("permission_denied");
    }
    const still = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${target.id}`, { token: adminToken });
    expect(still.json).toMatchObject({ name: "untouchable", status: "active" });
    expectStatus(await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${target.id}`, { token: target.token.token }), 200);
    const tokens = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${target.id}/tokens`, { token: adminToken });
    expect(tokens.json.items.length).toBe(1);
    expect((await call("GET", `/api/v1/orgs/${org.id}/service-accounts?q=sneaky`, { token: adminToken })).json.items).toEqual([]);
  });

  it("the account page has no duplicate element ids (its forms share field names)", async () => {
    const { org, adminToken, admin_ } = await setup();
    const made = await apiAccount(adminToken, org.id, { name: "ids", issueToken: true });
    const html = expectPage(await consoleGet(`${accountsPath(org.slug)}/${made.id}`, admin_));
    const ids = [...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThan(5);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  });

  it("an account page of an unknown id is 404", async () => {
    const { org, admin_ } = await setup();
    expectPage(await consoleGet(`${accountsPath(org.slug)}/sa_doesnotexist`, admin_), 404);
  });

  it("renders sections other page groups add to the account page", async () => {
    const { addAccountSection } = await import("../../src/console/account-sections.ts");
    const { org, admin, admin_ } = await setup();
    addAccountSection({ id: "test-probe", order: 99, render: ({ account }) => `probe for ${account.name}` });
    const html = expectPage(await consoleGet(`${accountsPath(org.slug)}/${admin.id}`, admin_));
    expect(html).toContain('id="section-test-probe"');
    expect(html).toContain("probe for admin-bot");
    void jose;
  });
});
