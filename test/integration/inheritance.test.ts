import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import {
  answer,
  assign,
  assignmentsOf,
  assignOk,
  builtinOperations,
  createRole,
  exchangeFor,
  expectCode,
  expectMissing,
  inviteTo,
  operationsAt,
  orgTree,
  sa,
  sas,
} from "./authz-helpers.ts";
import { addPublicKey } from "./oauth-helpers.ts";
import { expectFieldError, newAccount, newProject } from "./registry-helpers.ts";

/**
 * Issue 4: roles at org, project and environment level, inherited downward and never sideways;
 * `permissionsFrom: "caller"`; privilege escalation refused.
 */

let root: { id: string; token: string };
let VIEWER: string[];
let ORG_ADMIN: string[];
beforeAll(async () => {
  root = await platformRoot();
  VIEWER = await builtinOperations(root.token, "viewer");
  ORG_ADMIN = await builtinOperations(root.token, "org-admin");
});

const prjPath = (org: string, prj: string) => `/api/v1/orgs/${org}/projects/${prj}`;
const envPath = (org: string, prj: string, env: string) => `${prjPath(org, prj)}/environments/${env}`;

describe("inheritance across org, project and environment", () => {
  it("a role at project A covers A and its environments, and nothing of project B nor of the org", async () => {
    const t = await orgTree(root.token);
    const { account, token } = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "viewer", scope: { type: "project", id: t.prjA.id } }] });

    for (const scope of [t.prjA.id, t.envA1.id, t.envA2.id]) expect(await operationsAt(t.adminToken, t.org.id, account.id, scope), scope).toEqual(VIEWER);
    for (const scope of [t.prjB.id, t.envB1.id, t.envB2.id, "org", t.org.id]) expect(await operationsAt(t.adminToken, t.org.id, account.id, scope), scope).toEqual([]);
    expect(await operationsAt(t.adminToken, t.org.id, account.id), "default scope is the org").toEqual([]);
    const shown = await call("GET", `${sa(t.org.id, account.id)}/permissions?scope=${t.envA1.id}`, { token: t.adminToken });
    expect(shown.json.scope, shown.text).toEqual({ type: "environment", id: t.envA1.id });

    // What the holder can do with its own token follows the same resolver.
    expectStatus(await call("GET", prjPath(t.org.id, t.prjA.id), { token }), 200);
    expectStatus(await call("GET", `${prjPath(t.org.id, t.prjA.id)}/environments`, { token }), 200);
    expectStatus(await call("GET", envPath(t.org.id, t.prjA.id, t.envA2.id), { token }), 200);
    expectMissing(await call("GET", prjPath(t.org.id, t.prjB.id), { token }), ["orgs.read"]);
    expectMissing(await call("GET", `${prjPath(t.org.id, t.prjB.id)}/environments`, { token }), ["orgs.read"]);
    expectMissing(await call("GET", envPath(t.org.id, t.prjB.id, t.envB1.id), { token }), ["orgs.read"]);
    expectMissing(await call("GET", `/api/v1/orgs/${t.org.id}`, { token }), ["orgs.read"]);
    expectMissing(await call("GET", `/api/v1/orgs/${t.org.id}/projects`, { token }), ["orgs.read"]);
    expectMissing(await call("GET", sas(t.org.id), { token }), ["service-accounts.read"]);
  });

  it("an environment B1 of project B is not reachable through project A's path", async () => {
    const t = await orgTree(root.token);
    const { token } = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "viewer", scope: { type: "project", id: t.prjA.id } }] });
    expectStatus(await call("GET", envPath(t.org.id, t.prjA.id, t.envB1.id), { token }), 404);
  });

  it("a role at an environment covers only that environment", async () => {
    const t = await orgTree(root.token);
    const { account, token } = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "viewer", scope: { type: "environment", id: t.envA1.id } }] });
    expect(await operationsAt(t.adminToken, t.org.id, account.id, t.envA1.id)).toEqual(VIEWER);
    for (const scope of [t.envA2.id, t.prjA.id, t.prjB.id, t.envB1.id, "org"]) expect(await operationsAt(t.adminToken, t.org.id, account.id, scope), scope).toEqual([]);
    expectStatus(await call("GET", envPath(t.org.id, t.prjA.id, t.envA1.id), { token }), 200);
    expectMissing(await call("GET", envPath(t.org.id, t.prjA.id, t.envA2.id), { token }), ["orgs.read"]);
    expectMissing(await call("GET", prjPath(t.org.id, t.prjA.id), { token }), ["orgs.read"]);
    expectMissing(await call("GET", `${prjPath(t.org.id, t.prjA.id)}/environments`, { token }), ["orgs.read"]);
  });

  it("an org-level role is inherited by every project and environment", async () => {
    const t = await orgTree(root.token);
    const { account, token } = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "viewer" }] });
    for (const scope of ["org", t.prjA.id, t.prjB.id, t.envA1.id, t.envA2.id, t.envB1.id, t.envB2.id]) {
      expect(await operationsAt(t.adminToken, t.org.id, account.id, scope), scope).toEqual(VIEWER);
    }
    expectStatus(await call("GET", prjPath(t.org.id, t.prjB.id), { token }), 200);
    expectStatus(await call("GET", envPath(t.org.id, t.prjB.id, t.envB2.id), { token }), 200);
    expectStatus(await call("GET", envPath(t.org.id, t.prjA.id, t.envA1.id), { token }), 200);
    expectStatus(await call("GET", `/api/v1/orgs/${t.org.id}`, { token }), 200);
    // A project created later is covered too.
    const later = await newProject(t.adminToken, t.org.id);
    expect(await operationsAt(t.adminToken, t.org.id, account.id, later.id)).toEqual(VIEWER);
  });

  it("grants add up: viewer at the org plus org-admin at project A", async () => {
    const t = await orgTree(root.token);
    const { account, token } = await newAccount(t.adminToken, t.org.id, {
      roles: [{ role: "viewer" }, { role: "org-admin", scope: { type: "project", id: t.prjA.id } }],
    });
    expect(await operationsAt(t.adminToken, t.org.id, account.id, t.prjA.id)).toEqual(ORG_ADMIN);
    expect(await operationsAt(t.adminToken, t.org.id, account.id, t.envA2.id)).toEqual(ORG_ADMIN);
    expect(await operationsAt(t.adminToken, t.org.id, account.id, t.prjB.id)).toEqual(VIEWER);
    expect(await operationsAt(t.adminToken, t.org.id, account.id, "org")).toEqual(VIEWER);

    // orgs.admin at project A: environments of A can be created and deleted, nowhere else.
    const made = await call("POST", `${prjPath(t.org.id, t.prjA.id)}/environments`, { token, body: { slug: unique("e"), name: "E" } });
    expectStatus(made, 201);
    expectStatus(await call("DELETE", envPath(t.org.id, t.prjA.id, made.json.id), { token }), 204);
    expectMissing(await call("POST", `${prjPath(t.org.id, t.prjB.id)}/environments`, { token, body: { slug: unique("e"), name: "E" } }), ["orgs.admin"]);
    expectMissing(await call("DELETE", envPath(t.org.id, t.prjB.id, t.envB1.id), { token }), ["orgs.admin"]);
    expectMissing(await call("POST", `/api/v1/orgs/${t.org.id}/projects`, { token, body: { slug: unique("p"), name: "P" } }), ["orgs.admin"]);
    expectMissing(await call("PATCH", `/api/v1/orgs/${t.org.id}`, { token, body: { name: "taken over" } }), ["orgs.admin"]);
    // Project-level org-admin does not reach the org-level service accounts either.
    expectMissing(await call("POST", sas(t.org.id), { token, body: { name: unique("x") } }), ["service-accounts.edit"]);
  });

  it("a JWT of a project-level holder, whatever scope it asks, does not reach the org or the sibling project", async () => {
    const t = await orgTree(root.token);
    const { token } = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "viewer", scope: { type: "project", id: t.prjA.id } }] });
    const res = await exchangeFor(token, { scope: "orgs.read service-accounts.read" });
    expectStatus(res, 200);
    const jwt = res.json.jwt as string;
    expectStatus(await call("GET", prjPath(t.org.id, t.prjA.id), { token: jwt }), 200);
    expectMissing(await call("GET", prjPath(t.org.id, t.prjB.id), { token: jwt }), ["orgs.read"]);
    expectMissing(await call("GET", sas(t.org.id), { token: jwt }), ["service-accounts.read"]);
    expectMissing(await call("GET", `/api/v1/orgs/${t.org.id}`, { token: jwt }), ["orgs.read"]);
  });

  it("removing an assignment takes effect at once", async () => {
    const t = await orgTree(root.token);
    const { account, token } = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "viewer", scope: { type: "project", id: t.prjA.id } }, { role: "viewer", scope: { type: "project", id: t.prjB.id } }] });
    const [ra] = (await assignmentsOf(t.adminToken, t.org.id, account.id)).filter((r) => r.scope.id === t.prjA.id);
    expect(ra, "the project A assignment").toBeDefined();
    expectStatus(await call("GET", prjPath(t.org.id, t.prjA.id), { token }), 200);
    expectStatus(await call("DELETE", `${sa(t.org.id, account.id)}/role-assignments/${ra.id}`, { token: t.adminToken }), 204);
    expect(await operationsAt(t.adminToken, t.org.id, account.id, t.prjA.id)).toEqual([]);
    expect(await operationsAt(t.adminToken, t.org.id, account.id, t.prjB.id)).toEqual(VIEWER);
    expectMissing(await call("GET", prjPath(t.org.id, t.prjA.id), { token }), ["orgs.read"]);
    expectStatus(await call("GET", prjPath(t.org.id, t.prjB.id), { token }), 200);
  });

  it("GET .../permissions?scope= refuses garbage (400) and scopes of other orgs or unknown ids (404)", async () => {
    const t = await orgTree(root.token);
    const other = await orgTree(root.token);
    const { account } = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "viewer" }] });
    const path = `${sa(t.org.id, account.id)}/permissions`;
    for (const scope of ["garbage", "project", "org_nope", "sa_123", other.org.slug]) {
      expectFieldError(await call("GET", `${path}?scope=${encodeURIComponent(scope)}`, { token: t.adminToken }), "scope");
    }
    for (const scope of [other.prjA.id, other.envA1.id, "prj_doesnotexist", "env_doesnotexist", other.org.id]) {
      const res = await call("GET", `${path}?scope=${scope}`, { token: t.adminToken });
      expect([400, 404], `${scope}: ${res.status} ${res.text}`).toContain(res.status);
      expect(res.json?.operations, `${scope}: nothing shown for another org's scope: ${res.text}`).toBeUndefined();
    }
    for (const scope of [other.prjA.id, other.envA1.id, "prj_doesnotexist", "env_doesnotexist"]) {
      expectStatus(await call("GET", `${path}?scope=${scope}`, { token: t.adminToken }), 404);
    }
  });

  it("assigning at a project or environment of another org is 404, and nothing is granted", async () => {
    const t = await orgTree(root.token);
    const other = await orgTree(root.token);
    const { account } = await newAccount(t.adminToken, t.org.id);
    expectStatus(await assign(t.adminToken, t.org.id, account.id, "viewer", { type: "project", id: other.prjA.id }), 404);
    expectStatus(await assign(t.adminToken, t.org.id, account.id, "viewer", { type: "environment", id: other.envA1.id }), 404);
    expectStatus(await assign(t.adminToken, t.org.id, account.id, "viewer", { type: "org", id: other.org.id }), 404);
    // A project id given as an environment (or the reverse) is not found either.
    expectStatus(await assign(t.adminToken, t.org.id, account.id, "viewer", { type: "environment", id: t.prjA.id }), 404);
    expectStatus(await assign(t.adminToken, t.org.id, account.id, "viewer", { type: "project", id: t.envA1.id }), 404);
    expect(await assignmentsOf(t.adminToken, t.org.id, account.id)).toEqual([]);
  });
});

describe('permissionsFrom: "caller"', () => {
  it("an org-admin creating an account with permissionsFrom caller gives it org-admin too", async () => {
    const t = await orgTree(root.token);
    const res = await call("POST", sas(t.org.id), { token: t.adminToken, body: { name: unique("copy"), permissionsFrom: "caller", issueToken: true } });
    expectStatus(res, 201);
    const ras = await assignmentsOf(t.adminToken, t.org.id, res.json.id);
    expect(ras.map((r) => [r.role, r.scope.type, r.scope.id]), JSON.stringify(ras)).toEqual([["org-admin", "org", t.org.id]]);
    expect(await operationsAt(t.adminToken, t.org.id, res.json.id, "org")).toEqual(ORG_ADMIN);
    const token = res.json.token.token as string;
    expectStatus(await call("POST", `/api/v1/orgs/${t.org.id}/projects`, { token, body: { slug: unique("p"), name: "P" } }), 201);
  });

  it("without it the new account has no roles at all", async () => {
    const t = await orgTree(root.token);
    const res = await call("POST", sas(t.org.id), { token: t.adminToken, body: { name: unique("bare"), issueToken: true } });
    expectStatus(res, 201);
    expect(await assignmentsOf(t.adminToken, t.org.id, res.json.id)).toEqual([]);
    expect(await operationsAt(t.adminToken, t.org.id, res.json.id, "org")).toEqual([]);
    expect(await operationsAt(t.adminToken, t.org.id, res.json.id, t.prjA.id)).toEqual([]);
    const token = res.json.token.token as string;
    expectStatus(await call("GET", sas(t.org.id), { token }), 404);
    expectStatus(await call("GET", prjPath(t.org.id, t.prjA.id), { token }), 404);
  });

  it("copies the caller's assignments at their own scopes (not widened), merged with the roles asked for", async () => {
    const t = await orgTree(root.token);
    const caller = await newAccount(t.adminToken, t.org.id, {
      roles: [{ role: "service-account-admin" }, { role: "viewer", scope: { type: "project", id: t.prjA.id } }],
    });
    const res = await call("POST", sas(t.org.id), {
      token: caller.token,
      body: { name: unique("copy"), permissionsFrom: "caller", roles: [{ role: "service-account-admin" }] },
    });
    expectStatus(res, 201);
    const ras = await assignmentsOf(t.adminToken, t.org.id, res.json.id);
    expect(ras.map((r) => `${r.role}@${r.scope.type}:${r.scope.id}`).sort(), JSON.stringify(ras)).toEqual(
      [`service-account-admin@org:${t.org.id}`, `viewer@project:${t.prjA.id}`].sort(),
    );
    expect(await operationsAt(t.adminToken, t.org.id, res.json.id, t.prjB.id)).toEqual(await builtinOperations(root.token, "service-account-admin"));
  });

  it("copies nothing the caller holds in another org, and a root caller (no assignments) copies nothing", async () => {
    const t = await orgTree(root.token);
    const res0 = await call("POST", sas(t.org.id), { token: root.token, body: { name: unique("rootcopy"), permissionsFrom: "caller" } });
    expectStatus(res0, 201);
    expect(await assignmentsOf(root.token, t.org.id, res0.json.id)).toEqual([]);

    // t's admin also gets viewer in another org (invited, and accepted by t's admin on its own behalf).
    const other = await orgWithAdmin(root.token);
    const inv = await inviteTo(other.adminToken, other.org.id, t.admin.email, "viewer");
    expectStatus(inv, 201);
    expectStatus(await answer(t.adminToken, t.org.id, t.admin.id, inv.json.id, "accepted"), 200);
    expectStatus(await call("GET", sas(other.org.id), { token: t.adminToken }), 200);

    const res = await call("POST", sas(t.org.id), { token: t.adminToken, body: { name: unique("copy"), permissionsFrom: "caller" } });
    expectStatus(res, 201);
    const ras = await assignmentsOf(t.adminToken, t.org.id, res.json.id);
    expect(ras.map((r) => `${r.role}@${r.scope.type}:${r.scope.id}`), JSON.stringify(ras)).toEqual([`org-admin@org:${t.org.id}`]);
  });

  it("a scope-limited JWT cannot copy more than its scope allows (403)", async () => {
    const t = await orgTree(root.token);
    const limited = await exchangeFor(t.adminToken, { scope: "orgs.read service-accounts.read service-accounts.edit" });
    expectStatus(limited, 200);
    const name = unique("copy");
    const res = await call("POST", sas(t.org.id), { token: limited.json.jwt, body: { name, permissionsFrom: "caller" } });
    expectMissing(res, ORG_ADMIN.filter((op) => !["orgs.read", "service-accounts.read", "service-accounts.edit"].includes(op)));
    const list = await call("GET", `${sas(t.org.id)}?q=${name}`, { token: t.adminToken });
    expect(list.json.items, list.text).toEqual([]);
  });
});

describe("escalation attempts are refused", () => {
  /** A service-account-admin, optionally with a custom role adding roles.edit. */
  async function saAdmin(withRolesEdit: boolean) {
    const t = await orgTree(root.token);
    const roles: { role: string }[] = [{ role: "service-account-admin" }];
    if (withRolesEdit) roles.push({ role: (await createRole(t.adminToken, t.org.id, ["roles.edit"])).id });
    const caller = await newAccount(t.adminToken, t.org.id, { roles });
    return { ...t, caller: caller.account, callerToken: caller.token as string };
  }

  it("a service-account-admin cannot assign roles at all without roles.edit", async () => {
    const t = await saAdmin(false);
    const { account } = await newAccount(t.adminToken, t.org.id);
    expectMissing(await assign(t.callerToken, t.org.id, account.id, "org-admin"), ["roles.edit"]);
    expectMissing(await assign(t.callerToken, t.org.id, t.caller.id, "org-admin"), ["roles.edit"]);
    expect(await assignmentsOf(t.adminToken, t.org.id, account.id)).toEqual([]);
  });

  it("with roles.edit it still cannot assign org-admin, to another account or to itself (403 listing what it lacks)", async () => {
    const t = await saAdmin(true);
    const { account } = await newAccount(t.adminToken, t.org.id);
    const lacks = ["orgs.admin", "invitations.edit", "audit.read", "service-accounts.incident-response", "webhooks.read", "webhooks.edit"];
    expectMissing(await assign(t.callerToken, t.org.id, account.id, "org-admin"), lacks);
    expectMissing(await assign(t.callerToken, t.org.id, t.caller.id, "org-admin"), lacks);
    expectMissing(await assign(t.callerToken, t.org.id, account.id, "viewer"), ["audit.read"]);
    expect(await assignmentsOf(t.adminToken, t.org.id, account.id)).toEqual([]);
    expect(await operationsAt(t.adminToken, t.org.id, t.caller.id, "org")).not.toContain("orgs.admin");
    // What it holds itself, it may grant.
    await assignOk(t.callerToken, t.org.id, account.id, "service-account-admin");
  });

  it("a holder of org-admin at project A may grant it at A, but not at project B nor at the org", async () => {
    const t = await orgTree(root.token);
    const roleEditor = await createRole(t.adminToken, t.org.id, ["roles.edit"]);
    const caller = await newAccount(t.adminToken, t.org.id, { roles: [{ role: roleEditor.id }, { role: "org-admin", scope: { type: "project", id: t.prjA.id } }] });
    const { account } = await newAccount(t.adminToken, t.org.id);
    const atB = await assign(caller.token, t.org.id, account.id, "org-admin", { type: "project", id: t.prjB.id });
    expectMissing(atB, ORG_ADMIN.filter((op) => op !== "roles.edit"));
    expectMissing(await assign(caller.token, t.org.id, account.id, "org-admin"), ORG_ADMIN.filter((op) => op !== "roles.edit"));
    await assignOk(caller.token, t.org.id, account.id, "org-admin", { type: "project", id: t.prjA.id });
    await assignOk(caller.token, t.org.id, account.id, "viewer", { type: "environment", id: t.envA1.id });
  });

  it("a service-account-admin cannot create an account with org-admin (403), and nothing is created", async () => {
    const t = await saAdmin(false);
    const name = unique("wannabe");
    const res = await call("POST", sas(t.org.id), { token: t.callerToken, body: { name, roles: [{ role: "org-admin" }], issueToken: true } });
    expectMissing(res, ["orgs.admin", "roles.edit", "invitations.edit", "audit.read", "service-accounts.incident-response", "webhooks.read", "webhooks.edit"]);
    const atProject = await call("POST", sas(t.org.id), { token: t.callerToken, body: { name, roles: [{ role: "org-admin", scope: { type: "project", id: t.prjA.id } }] } });
    expect(atProject.status, atProject.text).toBe(403);
    const list = await call("GET", `${sas(t.org.id)}?q=${name}`, { token: t.adminToken });
    expect(list.json.items, `a refused create leaves nothing: ${list.text}`).toEqual([]);
    // The same caller may create an account with a role it covers.
    expectStatus(await call("POST", sas(t.org.id), { token: t.callerToken, body: { name, roles: [{ role: "service-account-admin" }] } }), 201);
  });

  it("a service-account-admin cannot issue, regenerate, edit, delete or add keys to an org-admin account's credentials", async () => {
    const t = await saAdmin(false);
    const target = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "org-admin" }] });
    const targetTokenId = target.account.token.id as string;
    const lacks = ["orgs.admin", "roles.edit", "invitations.edit", "audit.read", "service-accounts.incident-response", "webhooks.read", "webhooks.edit"];
    // An org-admin account without a token: but for the check, issuing would succeed under the one-token rule.
    const bare = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "org-admin" }], issueToken: false });

    expectMissing(await call("POST", `${sa(t.org.id, bare.account.id)}/tokens`, { token: t.callerToken, body: {} }), lacks);
    expectMissing(await call("POST", `${sa(t.org.id, target.account.id)}/tokens/${targetTokenId}/regenerate`, { token: t.callerToken, body: {} }), lacks);
    expectMissing(await call("PATCH", sa(t.org.id, target.account.id), { token: t.callerToken, body: { status: "disabled" } }), lacks);
    expectMissing(await call("DELETE", sa(t.org.id, target.account.id), { token: t.callerToken }), lacks);
    const { publicKey } = await jose.generateKeyPair("ES256", { extractable: true });
    expectMissing(await addPublicKey(t.callerToken, t.org.id, bare.account.id, { publicKey: await jose.exportSPKI(publicKey) }), lacks);

    // The target is untouched: its token still works and it still has no second token or key.
    expectStatus(await call("GET", sas(t.org.id), { token: target.token }), 200);
    const tokens = await call("GET", `${sa(t.org.id, bare.account.id)}/tokens`, { token: t.adminToken });
    expect(tokens.json.items, tokens.text).toEqual([]);
    const keys = await call("GET", `${sa(t.org.id, bare.account.id)}/keys`, { token: t.adminToken });
    expect(keys.json.items, keys.text).toEqual([]);
  });

  it("the same guard holds for a project-level grant the caller lacks there", async () => {
    const t = await saAdmin(false);
    const target = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "org-admin", scope: { type: "environment", id: t.envB2.id } }], issueToken: false });
    expectMissing(await call("POST", `${sa(t.org.id, target.account.id)}/tokens`, { token: t.callerToken, body: {} }), ["orgs.admin", "roles.edit", "invitations.edit", "audit.read", "service-accounts.incident-response", "webhooks.read", "webhooks.edit"]);
  });

  it("a service-account-admin manages accounts whose roles it covers", async () => {
    const t = await saAdmin(false);
    const peer = await newAccount(t.adminToken, t.org.id, { roles: [{ role: "service-account-admin" }], issueToken: false });
    const plain = await newAccount(t.adminToken, t.org.id, { issueToken: false });
    expectStatus(await call("POST", `${sa(t.org.id, peer.account.id)}/tokens`, { token: t.callerToken, body: {} }), 201);
    expectStatus(await call("POST", `${sa(t.org.id, plain.account.id)}/tokens`, { token: t.callerToken, body: {} }), 201);
    expectStatus(await call("PATCH", sa(t.org.id, plain.account.id), { token: t.callerToken, body: { description: "fine" } }), 200);
  });

  it("a scope-limited JWT of an org-admin cannot assign or create beyond its scope", async () => {
    const t = await orgTree(root.token);
    const limited = await exchangeFor(t.adminToken, { scope: "orgs.read service-accounts.read service-accounts.edit roles.edit" });
    expectStatus(limited, 200);
    const jwt = limited.json.jwt as string;
    const { account } = await newAccount(t.adminToken, t.org.id);
    expectMissing(await assign(jwt, t.org.id, account.id, "org-admin"), ["orgs.admin", "invitations.edit", "audit.read", "service-accounts.access-tokens.edit", "service-accounts.federated-credentials.edit", "service-accounts.incident-response", "webhooks.read", "webhooks.edit"]);
    expectMissing(await call("POST", sas(t.org.id), { token: jwt, body: { name: unique("x"), roles: [{ role: "viewer" }] } }), ["audit.read"]);
    expectMissing(await call("POST", `${sa(t.org.id, account.id)}/tokens`, { token: jwt, body: {} }), ["service-accounts.access-tokens.edit"]);
    expect(await assignmentsOf(t.adminToken, t.org.id, account.id)).toEqual([]);
  });

  it("an unknown role is a 400 and assigning needs the account to be in the org (404 otherwise)", async () => {
    const t = await orgTree(root.token);
    const other = await orgTree(root.token);
    const { account } = await newAccount(t.adminToken, t.org.id);
    expectFieldError(await assign(t.adminToken, t.org.id, account.id, "super-admin"), "role");
    expectCode(await assign(other.adminToken, t.org.id, account.id, "viewer"), 404, "not_found");
    expectCode(await assign(other.adminToken, other.org.id, account.id, "viewer"), 404, "not_found");
    expect(await assignmentsOf(t.adminToken, t.org.id, account.id)).toEqual([]);
  });
});
