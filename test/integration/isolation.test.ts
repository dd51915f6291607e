import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import {
  accountWithRole,
  authStatus,
  expectDenied,
  expectFieldError,
  expectProblem,
  newAccount,
  newEnvironment,
  newProject,
  type Res,
} from "./registry-helpers.ts";

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

/** Two orgs; B holds a project, an environment and an account with a token. */
async function twoOrgs() {
  const a = await orgWithAdmin(root.token);
  const b = await orgWithAdmin(root.token);
  const bProject = await newProject(b.adminToken, b.org.id);
  const bEnv = await newEnvironment(b.adminToken, b.org.id, bProject.id);
  const bSa = await newAccount(b.adminToken, b.org.id, { roles: [{ role: "viewer" }] });
  const aSa = await newAccount(a.adminToken, a.org.id, {});
  return { a, b, bProject, bEnv, bSa, aSa, bTokenId: bSa.account.token.id as string };
}

/** A 404 that says no more than the 404 of something that does not exist at all. */
function expectHidden(res: Res, like: Res) {
  const body = expectProblem(res, 404, "not_found");
  expect(body.detail, `hidden: ${res.text} vs missing: ${like.text}`).toBe(like.json.detail);
  expect(body.title).toBe(like.json.title);
  expect(body.type).toBe(like.json.type);
}

describe("cross-org isolation", () => {
  it("A's admin gets 404 (never 403) on org B itself, exactly like an org that does not exist", async () => {
    const { a, b } = await twoOrgs();
    const missing = await call("GET", `/api/v1/orgs/${unique("nope")}`, { token: a.adminToken });
    for (const ref of [b.org.id, b.org.slug]) {
      expectHidden(await call("GET", `/api/v1/orgs/${ref}`, { token: a.adminToken }), missing);
      expectHidden(await call("PATCH", `/api/v1/orgs/${ref}`, { token: a.adminToken, body: { name: "pwned" } }), missing);
      expectHidden(await call("GET", `/api/v1/orgs/${ref}/projects`, { token: a.adminToken }), missing);
      expectHidden(await call("GET", `/api/v1/orgs/${ref}/service-accounts`, { token: a.adminToken }), missing);
    }
    // There is no DELETE of an org: B answers exactly as a missing org does (no hint either way).
    const delB = await call("DELETE", `/api/v1/orgs/${b.org.id}`, { token: a.adminToken });
    const delMissing = await call("DELETE", `/api/v1/orgs/${unique("nope")}`, { token: a.adminToken });
    expect(delB.status, delB.text).toBe(delMissing.status);
    expect(delB.json.code, delB.text).toBe(delMissing.json.code);
    expect(delB.status, delB.text).not.toBe(403);
    expect(delB.status, delB.text).not.toBe(200);
    expect(delB.status, delB.text).not.toBe(204);
    // B is untouched and its listing never shows up for A.
    expect((await call("GET", `/api/v1/orgs/${b.org.id}`, { token: b.adminToken })).json.name).toBe(b.org.name);
    const listA = await call("GET", "/api/v1/orgs", { token: a.adminToken });
    expect(listA.json.items.map((o: { id: string }) => o.id), listA.text).toEqual([a.org.id]);
  });

  it("A's admin gets 404 on B's accounts, tokens, role assignments, projects and environments", async () => {
    const { a, b, bProject, bEnv, bSa, bTokenId } = await twoOrgs();
    const t = a.adminToken;
    const missing = await call("GET", `/api/v1/orgs/${unique("nope")}`, { token: t });
    const sa = `/api/v1/orgs/${b.org.id}/service-accounts/${bSa.account.id}`;
    const prj = `/api/v1/orgs/${b.org.id}/projects/${bProject.id}`;
    const requests: [string, string, unknown?][] = [
      ["GET", sa],
      ["PATCH", sa, { status: "disabled" }],
      ["DELETE", sa],
      ["GET", `${sa}/tokens`],
      ["POST", `${sa}/tokens`, {}],
      ["DELETE", `${sa}/tokens/${bTokenId}`],
      ["POST", `${sa}/tokens/${bTokenId}/regenerate`, {}],
      ["GET", `${sa}/role-assignments`],
      ["POST", `${sa}/role-assignments`, { role: "viewer" }],
      ["POST", `/api/v1/orgs/${b.org.id}/service-accounts`, { name: unique("intruder") }],
      ["GET", prj],
      ["DELETE", prj],
      ["POST", `/api/v1/orgs/${b.org.id}/projects`, { slug: unique("p"), name: "x" }],
      ["GET", `${prj}/environments`],
      ["POST", `${prj}/environments`, { slug: unique("e"), name: "x" }],
      ["GET", `${prj}/environments/${bEnv.id}`],
      ["DELETE", `${prj}/environments/${bEnv.id}`],
    ];
    for (const [method, path, body] of requests) {
      const res = await call(method, path, { token: t, body });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(404);
      expectHidden(res, missing);
    }
    // Nothing of B changed: the account, its token, the project and the environment are intact.
    const read = await call("GET", sa, { token: b.adminToken });
    expect(read.json.status, read.text).toBe("active");
    expectStatus(await authStatus(bSa.token), 200);
    expectStatus(await call("GET", `${prj}/environments/${bEnv.id}`, { token: b.adminToken }), 200);
    const accounts = await call("GET", `/api/v1/orgs/${b.org.id}/service-accounts`, { token: b.adminToken });
    expect(accounts.json.items.length, accounts.text).toBe(2);
  });

  it("B's ids used under A's path are 404 and leave B intact", async () => {
    const { a, b, bProject, bEnv, bSa, bTokenId, aSa } = await twoOrgs();
    const t = a.adminToken;
    const bUnderA = `/api/v1/orgs/${a.org.id}/service-accounts/${bSa.account.id}`;
    const missingSa = await call("GET", `/api/v1/orgs/${a.org.id}/service-accounts/sa_doesNotExist000000000`, { token: t });
    expectProblem(missingSa, 404, "not_found");
    for (const [method, path, body] of [
      ["GET", bUnderA],
      ["PATCH", bUnderA, { name: "stolen" }],
      ["DELETE", bUnderA],
      ["GET", `${bUnderA}/tokens`],
      ["POST", `${bUnderA}/tokens`, {}],
      ["DELETE", `${bUnderA}/tokens/${bTokenId}`],
      ["GET", `${bUnderA}/role-assignments`],
      ["POST", `${bUnderA}/role-assignments`, { role: "viewer" }],
    ] as [string, string, unknown?][]) {
      const res = await call(method, path, { token: t, body });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(404);
      expectHidden(res, missingSa);
    }
    // B's token id under A's own account, and B's project and environment ids under A.
    const aPath = `/api/v1/orgs/${a.org.id}/service-accounts/${aSa.account.id}`;
    expectProblem(await call("DELETE", `${aPath}/tokens/${bTokenId}`, { token: t }), 404, "not_found");
    expectProblem(await call("POST", `${aPath}/tokens/${bTokenId}/regenerate`, { token: t, body: {} }), 404, "not_found");
    expectProblem(await call("GET", `/api/v1/orgs/${a.org.id}/projects/${bProject.id}`, { token: t }), 404, "not_found");
    expectProblem(await call("DELETE", `/api/v1/orgs/${a.org.id}/projects/${bProject.id}`, { token: t }), 404, "not_found");
    const aProject = await newProject(t, a.org.id);
    expectProblem(await call("GET", `/api/v1/orgs/${a.org.id}/projects/${aProject.id}/environments/${bEnv.id}`, { token: t }), 404, "not_found");
    // Scopes of B cannot be granted in A.
    for (const scope of [
      { type: "org", id: b.org.id },
      { type: "project", id: bProject.id },
      { type: "environment", id: bEnv.id },
    ]) {
      const res = await call("POST", `${aPath}/role-assignments`, { token: t, body: { role: "viewer", scope } });
      expectProblem(res, 404, "not_found");
    }
    const aRoles = await call("GET", `${aPath}/role-assignments`, { token: t });
    expect(aRoles.json.items, aRoles.text).toEqual([]);

    expectStatus(await authStatus(bSa.token), 200);
    const bRead = await call("GET", `/api/v1/orgs/${b.org.id}/service-accounts/${bSa.account.id}`, { token: b.adminToken });
    expect(bRead.json.name, bRead.text).toBe(bSa.account.name);
    const bTokens = await call("GET", `/api/v1/orgs/${b.org.id}/service-accounts/${bSa.account.id}/tokens`, { token: b.adminToken });
    expect(bTokens.json.items.map((x: { status: string }) => x.status), bTokens.text).toEqual(["active"]);
    expectStatus(await call("GET", `/api/v1/orgs/${b.org.id}/projects/${bProject.id}`, { token: b.adminToken }), 200);
  });

  it("a viewer of A sees nothing of B either", async () => {
    const { a, b, bSa } = await twoOrgs();
    const viewer = await accountWithRole(a.adminToken, a.org.id, "viewer");
    const missing = await call("GET", `/api/v1/orgs/${unique("nope")}`, { token: viewer.token });
    expectHidden(await call("GET", `/api/v1/orgs/${b.org.id}`, { token: viewer.token }), missing);
    expectHidden(await call("GET", `/api/v1/orgs/${b.org.id}/service-accounts/${bSa.account.id}`, { token: viewer.token }), missing);
  });
});

describe("viewer permissions", () => {
  it("a viewer reads accounts, tokens and roles but every write is 403 naming the operation", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const target = await newAccount(adminToken, org.id, { roles: [{ role: "viewer" }] });
    const viewer = await accountWithRole(adminToken, org.id, "viewer");
    const t = viewer.token;
    const sa = `/api/v1/orgs/${org.id}/service-accounts/${target.account.id}`;
    expectStatus(await call("GET", `/api/v1/orgs/${org.id}/service-accounts`, { token: t }), 200);
    expectStatus(await call("GET", sa, { token: t }), 200);
    const tokens = await call("GET", `${sa}/tokens`, { token: t });
    expectStatus(tokens, 200);
    expect(tokens.text).not.toContain(target.token);
    const roles = await call("GET", `${sa}/role-assignments`, { token: t });
    expectStatus(roles, 200);
    const raId = roles.json.items[0].id;

    expectDenied(await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: t, body: { name: unique("x") } }), ["service-accounts.edit"]);
    expectDenied(await call("PATCH", sa, { token: t, body: { status: "disabled" } }), ["service-accounts.edit"]);
    expectDenied(await call("DELETE", sa, { token: t }), ["service-accounts.edit"]);
    expectDenied(await call("POST", `${sa}/tokens`, { token: t, body: {} }), ["service-accounts.access-tokens.edit"]);
    expectDenied(await call("DELETE", `${sa}/tokens/${target.account.token.id}`, { token: t }), ["service-accounts.access-tokens.edit"]);
    expectDenied(await call("POST", `${sa}/tokens/${target.account.token.id}/regenerate`, { token: t, body: {} }), ["service-accounts.access-tokens.edit"]);
    expectDenied(await call("POST", `${sa}/role-assignments`, { token: t, body: { role: "viewer", scope: { type: "org", id: org.id } } }), ["roles.edit"]);
    expectDenied(await call("DELETE", `${sa}/role-assignments/${raId}`, { token: t }), ["roles.edit"]);
    // A viewer cannot raise its own role either.
    expectDenied(await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${viewer.account.id}/role-assignments`, { token: t, body: { role: "org-admin" } }), ["roles.edit"]);

    expect((await call("GET", sa, { token: adminToken })).json.status).toBe("active");
    expectStatus(await authStatus(target.token), 200);
    const after = await call("GET", `${sa}/role-assignments`, { token: adminToken });
    expect(after.json.items.map((r: { id: string }) => r.id), after.text).toEqual([raId]);
  });
});

describe("role assignments", () => {
  it("grants at org, project and environment scope, lists them, refuses duplicates and deletes", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const project = await newProject(adminToken, org.id);
    const environment = await newEnvironment(adminToken, org.id, project.id);
    const { account } = await newAccount(adminToken, org.id, { issueToken: false });
    const base = `/api/v1/orgs/${org.id}/service-accounts/${account.id}/role-assignments`;

    const byDefault = await call("POST", base, { token: adminToken, body: { role: "viewer" } });
    expectStatus(byDefault, 201);
    expect(byDefault.json.id, byDefault.text).toMatch(/^ra_/);
    expect(byDefault.json).toMatchObject({ accountId: account.id, role: "viewer", scope: { type: "org", id: org.id } });
    const onProject = await call("POST", base, { token: adminToken, body: { role: "service-account-admin", scope: { type: "project", id: project.id } } });
    expectStatus(onProject, 201);
    expect(onProject.json.scope, onProject.text).toEqual({ type: "project", id: project.id });
    const onEnv = await call("POST", base, { token: adminToken, body: { role: "org-admin", scope: { type: "environment", id: environment.id } } });
    expectStatus(onEnv, 201);
    expect(onEnv.json.scope, onEnv.text).toEqual({ type: "environment", id: environment.id });
    // The org scope named by slug is the same scope as by id: a duplicate.
    expectProblem(await call("POST", base, { token: adminToken, body: { role: "viewer", scope: { type: "org", id: org.slug } } }), 409, "already_assigned");
    expectProblem(await call("POST", base, { token: adminToken, body: { role: "org-admin", scope: { type: "environment", id: environment.id } } }), 409, "already_assigned");

    const list = await call("GET", base, { token: adminToken });
    expectStatus(list, 200);
    expect(list.json.items.map((r: { id: string }) => r.id).sort(), list.text).toEqual([byDefault.json.id, onProject.json.id, onEnv.json.id].sort());
    expect(list.json.nextCursor).toBeNull();

    const del = await call("DELETE", `${base}/${onProject.json.id}`, { token: adminToken });
    expectStatus(del, 204);
    expectProblem(await call("DELETE", `${base}/${onProject.json.id}`, { token: adminToken }), 404, "not_found");
    const after = await call("GET", base, { token: adminToken });
    expect(after.json.items.map((r: { id: string }) => r.id).sort(), after.text).toEqual([byDefault.json.id, onEnv.json.id].sort());
  });

  it("org-owner is never assignable (422); unknown roles and bad scopes are rejected", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const { account } = await newAccount(adminToken, org.id, { issueToken: false });
    const base = `/api/v1/orgs/${org.id}/service-accounts/${account.id}/role-assignments`;
    expectProblem(await call("POST", base, { token: adminToken, body: { role: "org-owner" } }), 422, "role_not_assignable");
    expectProblem(await call("POST", base, { token: root.token, body: { role: "org-owner" } }), 422, "role_not_assignable");
    expectProblem(await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: root.token, body: { name: unique("owner"), roles: [{ role: "org-owner" }] } }), 422, "role_not_assignable");
    expectFieldError(await call("POST", base, { token: adminToken, body: { role: "superuser" } }), "role");
    expectFieldError(await call("POST", base, { token: adminToken, body: { role: "viewer", scope: { type: "galaxy", id: "x" } } }), "type");
    expectFieldError(await call("POST", base, { token: adminToken, body: { role: "viewer", scope: { type: "org", id: org.id, extra: 1 } } }), "scope");
    expectProblem(await call("POST", base, { token: adminToken, body: { role: "viewer", scope: { type: "project", id: "prj_doesNotExist00000000" } } }), 404, "not_found");
    const list = await call("GET", base, { token: adminToken });
    expect(list.json.items, list.text).toEqual([]);
  });

  it("no privilege escalation: a service-account-admin cannot grant what it does not hold", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const saAdmin = await accountWithRole(adminToken, org.id, "service-account-admin");
    const { account } = await newAccount(adminToken, org.id, { issueToken: false });
    const t = saAdmin.token;
    // Granting needs roles.edit, which a service-account-admin lacks.
    expectDenied(await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${account.id}/role-assignments`, { token: t, body: { role: "org-admin" } }), ["roles.edit"]);
    expectDenied(await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${saAdmin.account.id}/role-assignments`, { token: t, body: { role: "org-admin" } }), ["roles.edit"]);
    // Creating an account with roles checks each role against what the caller holds.
    const name = unique("escalate");
    expectDenied(
      await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: t, body: { name, roles: [{ role: "org-admin" }] } }),
      ["orgs.admin", "roles.edit", "invitations.edit", "audit.read", "service-accounts.incident-response", "webhooks.read", "webhooks.edit"],
    );
    expectDenied(await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: t, body: { name, roles: [{ role: "viewer" }] } }), ["audit.read"]);
    const list = await call("GET", `/api/v1/orgs/${org.id}/service-accounts?q=${name}`, { token: t });
    expect(list.json.items, `a refused create left an account: ${list.text}`).toEqual([]);
    // A role whose operations it holds is fine.
    const peer = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: t, body: { name, roles: [{ role: "service-account-admin" }] } });
    expectStatus(peer, 201);
    const roles = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${saAdmin.account.id}/role-assignments`, { token: adminToken });
    expect(roles.json.items.map((r: { role: string }) => r.role), roles.text).toEqual(["service-account-admin"]);
  });

  it("no privilege escalation through credentials: a service-account-admin cannot take over an org-admin's token", async () => {
    const { org, admin, adminToken } = await orgWithAdmin(root.token);
    const saAdmin = await accountWithRole(adminToken, org.id, "service-account-admin");
    const tokens = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${admin.id}/tokens`, { token: saAdmin.token });
    expectStatus(tokens, 200);
    const [adminTok] = tokens.json.items;
    // Regenerating hands back a new secret of the org-admin account: the caller would hold org-admin.
    const res = await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${admin.id}/tokens/${adminTok.id}/regenerate`, { token: saAdmin.token, body: {} });
    expectProblem(res, 403, "permission_denied");
    expectStatus(await authStatus(adminToken), 200);
  });

  it("a project-level role gives nothing on a sibling project nor at org level; it is inherited by the project's environments", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const p1 = await newProject(adminToken, org.id);
    const p2 = await newProject(adminToken, org.id);
    const e1 = await newEnvironment(adminToken, org.id, p1.id);
    const e2 = await newEnvironment(adminToken, org.id, p2.id);
    const reader = await accountWithRole(adminToken, org.id, "viewer", { type: "project", id: p1.id });
    const t = reader.token;
    const base = `/api/v1/orgs/${org.id}`;
    expectStatus(await call("GET", `${base}/projects/${p1.id}`, { token: t }), 200);
    expectStatus(await call("GET", `${base}/projects/${p1.id}/environments`, { token: t }), 200);
    expectStatus(await call("GET", `${base}/projects/${p1.id}/environments/${e1.id}`, { token: t }), 200);
    expectDenied(await call("GET", `${base}/projects/${p2.id}`, { token: t }), ["orgs.read"]);
    expectDenied(await call("GET", `${base}/projects/${p2.id}/environments`, { token: t }), ["orgs.read"]);
    expectDenied(await call("GET", `${base}/projects/${p2.id}/environments/${e2.id}`, { token: t }), ["orgs.read"]);
    expectDenied(await call("GET", base, { token: t }), ["orgs.read"]);
    expectDenied(await call("GET", `${base}/projects`, { token: t }), ["orgs.read"]);
    expectDenied(await call("GET", `${base}/service-accounts`, { token: t }), ["service-accounts.read"]);

    const projectAdmin = await accountWithRole(adminToken, org.id, "org-admin", { type: "project", id: p1.id });
    expectStatus(await call("POST", `${base}/projects/${p1.id}/environments`, { token: projectAdmin.token, body: { slug: unique("e"), name: "ok" } }), 201);
    expectDenied(await call("POST", `${base}/projects/${p2.id}/environments`, { token: projectAdmin.token, body: { slug: unique("e"), name: "no" } }), ["orgs.admin"]);
    expectDenied(await call("DELETE", `${base}/projects/${p2.id}`, { token: projectAdmin.token }), ["orgs.admin"]);
    expectDenied(await call("POST", `${base}/projects`, { token: projectAdmin.token, body: { slug: unique("p"), name: "no" } }), ["orgs.admin"]);
    expectStatus(await call("GET", `${base}/projects/${p2.id}`, { token: adminToken }), 200);
  });

  it("an environment-level role covers that environment only", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const p1 = await newProject(adminToken, org.id);
    const e1 = await newEnvironment(adminToken, org.id, p1.id);
    const e2 = await newEnvironment(adminToken, org.id, p1.id);
    const reader = await accountWithRole(adminToken, org.id, "viewer", { type: "environment", id: e1.id });
    const base = `/api/v1/orgs/${org.id}/projects/${p1.id}`;
    expectStatus(await call("GET", `${base}/environments/${e1.id}`, { token: reader.token }), 200);
    expectDenied(await call("GET", `${base}/environments/${e2.id}`, { token: reader.token }), ["orgs.read"]);
    expectDenied(await call("GET", base, { token: reader.token }), ["orgs.read"]);
  });

  it("deleting the only assignment removes access (the org becomes invisible: 404)", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const viewer = await accountWithRole(adminToken, org.id, "viewer");
    const base = `/api/v1/orgs/${org.id}/service-accounts/${viewer.account.id}/role-assignments`;
    expectStatus(await call("GET", `/api/v1/orgs/${org.id}`, { token: viewer.token }), 200);
    const [ra] = (await call("GET", base, { token: adminToken })).json.items;
    expectStatus(await call("DELETE", `${base}/${ra.id}`, { token: adminToken }), 204);
    expectProblem(await call("GET", `/api/v1/orgs/${org.id}`, { token: viewer.token }), 404, "not_found");
    // The assignment of one account cannot be deleted through another account's path.
    const other = await accountWithRole(adminToken, org.id, "viewer");
    const [otherRa] = (await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${other.account.id}/role-assignments`, { token: adminToken })).json.items;
    expectProblem(await call("DELETE", `${base}/${otherRa.id}`, { token: adminToken }), 404, "not_found");
    expectStatus(await call("GET", `/api/v1/orgs/${org.id}`, { token: other.token }), 200);
  });

  it("deleting a project removes the roles granted on it and on its environments", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const project = await newProject(adminToken, org.id);
    const environment = await newEnvironment(adminToken, org.id, project.id);
    const holder = await newAccount(adminToken, org.id, {
      roles: [{ role: "viewer" }, { role: "org-admin", scope: { type: "project", id: project.id } }, { role: "org-admin", scope: { type: "environment", id: environment.id } }],
    });
    const base = `/api/v1/orgs/${org.id}/service-accounts/${holder.account.id}/role-assignments`;
    expect((await call("GET", base, { token: adminToken })).json.items.length).toBe(3);
    expectStatus(await call("DELETE", `/api/v1/orgs/${org.id}/projects/${project.id}`, { token: adminToken }), 204);
    const left = await call("GET", base, { token: adminToken });
    expect(left.json.items.map((r: any) => [r.role, r.scope.type]), left.text).toEqual([["viewer", "org"]]);
  });
});
