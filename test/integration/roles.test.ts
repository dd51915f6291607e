import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import {
  assign,
  assignmentsOf,
  assignOk,
  claimsOf,
  createRole,
  exchangeFor,
  expectCode,
  expectMissing,
  rolesPath,
  sa,
  sas,
} from "./authz-helpers.ts";
import { auditRows, expectFieldError, expectUnauthenticated, newAccount } from "./registry-helpers.ts";

/** Issue 4: the catalogue of operations, built-in and custom roles, and no privilege escalation through roles. */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const ORG_OPERATIONS = [
  "audit.read",
  "invitations.edit",
  "orgs.admin",
  "orgs.read",
  "roles.edit",
  "service-accounts.access-tokens.edit",
  "service-accounts.edit",
  "service-accounts.federated-credentials.edit",
  "service-accounts.incident-response",
  "service-accounts.read",
  "webhooks.edit",
  "webhooks.read",
];

describe("GET /api/v1/permissions: the catalogue", () => {
  it("lists every operation with a description, platform.root and invitations.edit included", async () => {
    const { adminToken } = await orgWithAdmin(root.token);
    const res = await call("GET", "/api/v1/permissions", { token: adminToken });
    expectStatus(res, 200);
    const names = res.json.operations.map((o: { name: string }) => o.name).sort();
    expect(names, res.text).toEqual([...ORG_OPERATIONS, "platform.root"].sort());
    for (const op of res.json.operations) {
      expect(op.description, res.text).toBeTypeOf("string");
      expect(op.description.length, res.text).toBeGreaterThan(0);
    }
  });

  it("lists the built-in roles; org-owner is not assignable to service accounts and no role carries platform.root", async () => {
    const { adminToken } = await orgWithAdmin(root.token);
    const res = await call("GET", "/api/v1/permissions", { token: adminToken });
    expectStatus(res, 200);
    const byName = new Map<string, any>(res.json.builtinRoles.map((r: { name: string }) => [r.name, r]));
    for (const name of ["org-owner", "org-admin", "service-account-admin", "viewer"]) expect(byName.has(name), `${name} in ${res.text}`).toBe(true);
    expect(byName.get("org-owner").assignableToServiceAccounts, res.text).toBe(false);
    for (const name of ["org-admin", "service-account-admin", "viewer"]) expect(byName.get(name).assignableToServiceAccounts, `${name}: ${res.text}`).toBe(true);
    expect([...byName.get("org-admin").operations].sort(), res.text).toEqual(ORG_OPERATIONS);
    expect(byName.get("viewer").operations, res.text).not.toContain("service-accounts.edit");
    expect(byName.get("service-account-admin").operations, res.text).not.toContain("roles.edit");
    for (const r of res.json.builtinRoles) expect(r.operations, res.text).not.toContain("platform.root");
  });

  it("needs a credential", async () => {
    expectUnauthenticated(await call("GET", "/api/v1/permissions"));
  });
});

describe("custom roles: create, read, list, edit, delete", () => {
  it("creates a role with operations; it reads back by id and by name and is listed after the built-ins", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const name = unique("deployer");
    const res = await call("POST", rolesPath(org.id), {
      token: adminToken,
      body: { name, description: "Ships things", operations: ["service-accounts.read", "service-accounts.access-tokens.edit", "service-accounts.read"] },
    });
    expectStatus(res, 201);
    expect(res.json.id, res.text).toMatch(/^role_[0-9A-Za-z]+$/);
    expect(res.json, res.text).toMatchObject({ orgId: org.id, name, description: "Ships things", assignableToServiceAccounts: true, builtin: false });
    expect([...res.json.operations].sort(), res.text).toEqual(["service-accounts.access-tokens.edit", "service-accounts.read"]);

    for (const ref of [res.json.id, name]) {
      const got = await call("GET", `${rolesPath(org.id)}/${ref}`, { token: adminToken });
      expectStatus(got, 200);
      expect(got.json, got.text).toEqual(res.json);
    }
    const list = await call("GET", rolesPath(org.id), { token: adminToken });
    expectStatus(list, 200);
    const names = list.json.items.map((r: { name: string }) => r.name);
    expect(names.slice(0, 4), list.text).toEqual(expect.arrayContaining(["org-owner", "org-admin", "service-account-admin", "viewer"]));
    expect(names, list.text).toContain(name);
    expect(list.json.items.find((r: { name: string }) => r.name === name), list.text).toEqual(res.json);

    const audit = await auditRows(res.json.id);
    expect(audit.map((r) => r.action), JSON.stringify(audit)).toContain("role.created");
  });

  it("a duplicate name is 409 name_taken; so is a built-in role's name", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const role = await createRole(adminToken, org.id, ["orgs.read"]);
    expectCode(await call("POST", rolesPath(org.id), { token: adminToken, body: { name: role.name, operations: ["audit.read"] } }), 409, "name_taken");
    for (const builtin of ["viewer", "org-owner", "org-admin", "service-account-admin"]) {
      expectCode(await call("POST", rolesPath(org.id), { token: adminToken, body: { name: builtin, operations: ["orgs.read"] } }), 409, "name_taken");
    }
  });

  it("the same name in two orgs is two roles; one org's role is invisible and unusable in the other", async () => {
    const x = await orgWithAdmin(root.token);
    const y = await orgWithAdmin(root.token);
    const name = unique("shared");
    const inX = await call("POST", rolesPath(x.org.id), { token: x.adminToken, body: { name, operations: ["orgs.read"] } });
    expectStatus(inX, 201);
    const inY = await call("POST", rolesPath(y.org.id), { token: y.adminToken, body: { name, operations: ["audit.read"] } });
    expectStatus(inY, 201);
    expect(inY.json.id, inY.text).not.toBe(inX.json.id);

    expectStatus(await call("GET", `${rolesPath(y.org.id)}/${inX.json.id}`, { token: y.adminToken }), 404);
    expectStatus(await call("GET", `${rolesPath(x.org.id)}/${inX.json.id}`, { token: y.adminToken }), 404);
    const { account } = await newAccount(y.adminToken, y.org.id);
    expectFieldError(await assign(y.adminToken, y.org.id, account.id, inX.json.id), "role");
    // By name, Y's own role is the one that is found.
    const ra = await assignOk(y.adminToken, y.org.id, account.id, name);
    expect(ra.roleId, JSON.stringify(ra)).toBe(inY.json.id);
  });

  it("an unknown operation, platform.root or no operation at all is a 400 naming operations", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    for (const operations of [["service-accounts.read", "service-accounts.fly"], ["platform.root"], ["orgs.read", "platform.root"], []]) {
      const res = await call("POST", rolesPath(org.id), { token: adminToken, body: { name: unique("bad"), operations } });
      expectFieldError(res, "operations");
    }
    // Root holds platform.root itself and still cannot put it in an org's role.
    const res = await call("POST", rolesPath(org.id), { token: root.token, body: { name: unique("bad"), operations: ["platform.root"] } });
    expectFieldError(res, "operations");
    const list = await call("GET", rolesPath(org.id), { token: adminToken });
    expect(list.json.items.filter((r: { builtin: boolean }) => !r.builtin), list.text).toEqual([]);
  });

  it("PATCH edits name, description, operations and assignability; the change reads back", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const role = await createRole(adminToken, org.id, ["orgs.read"]);
    const name = unique("renamed");
    const res = await call("PATCH", `${rolesPath(org.id)}/${role.id}`, {
      token: adminToken,
      body: { name, description: "now more", operations: ["orgs.read", "audit.read"], assignableToServiceAccounts: false },
    });
    expectStatus(res, 200);
    expect(res.json, res.text).toMatchObject({ id: role.id, name, description: "now more", assignableToServiceAccounts: false, builtin: false });
    expect([...res.json.operations].sort(), res.text).toEqual(["audit.read", "orgs.read"]);
    const got = await call("GET", `${rolesPath(org.id)}/${name}`, { token: adminToken });
    expectStatus(got, 200);
    expect(got.json, got.text).toMatchObject({ id: role.id, name, assignableToServiceAccounts: false });
    expect([...got.json.operations].sort(), got.text).toEqual(["audit.read", "orgs.read"]);
    expectStatus(await call("GET", `${rolesPath(org.id)}/${role.name}`, { token: adminToken }), 404);
  });

  it("PATCH to a taken or built-in name is 409; PATCH with an unknown operation is 400 and changes nothing", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const a = await createRole(adminToken, org.id, ["orgs.read"]);
    const b = await createRole(adminToken, org.id, ["orgs.read"]);
    expectCode(await call("PATCH", `${rolesPath(org.id)}/${b.id}`, { token: adminToken, body: { name: a.name } }), 409, "name_taken");
    expectCode(await call("PATCH", `${rolesPath(org.id)}/${b.id}`, { token: adminToken, body: { name: "viewer" } }), 409, "name_taken");
    expectFieldError(await call("PATCH", `${rolesPath(org.id)}/${b.id}`, { token: adminToken, body: { operations: ["platform.root"] } }), "operations");
    const got = await call("GET", `${rolesPath(org.id)}/${b.id}`, { token: adminToken });
    expect(got.json, got.text).toMatchObject({ name: b.name, operations: ["orgs.read"] });
  });

  it("built-in roles cannot be edited or deleted (400)", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    expectCode(await call("PATCH", `${rolesPath(org.id)}/viewer`, { token: adminToken, body: { operations: ["orgs.read", "service-accounts.edit"] } }), 400, "bad_request");
    expectCode(await call("DELETE", `${rolesPath(org.id)}/org-admin`, { token: adminToken }), 400, "bad_request");
    expectCode(await call("DELETE", `${rolesPath(org.id)}/role_viewer`, { token: root.token }), 400, "bad_request");
    const got = await call("GET", `${rolesPath(org.id)}/viewer`, { token: adminToken });
    expectStatus(got, 200);
    expect(got.json.operations, got.text).not.toContain("service-accounts.edit");
  });

  it("DELETE removes the role (204, then 404) and writes an audit event", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const role = await createRole(adminToken, org.id, ["orgs.read"]);
    expectStatus(await call("DELETE", `${rolesPath(org.id)}/${role.id}`, { token: adminToken }), 204);
    expectStatus(await call("GET", `${rolesPath(org.id)}/${role.id}`, { token: adminToken }), 404);
    expectStatus(await call("DELETE", `${rolesPath(org.id)}/${role.id}`, { token: adminToken }), 404);
    const audit = await auditRows(role.id);
    expect(audit.map((r) => r.action), JSON.stringify(audit)).toContain("role.deleted");
  });

  it("a viewer reads roles but cannot create, edit or delete them (403 roles.edit)", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const role = await createRole(adminToken, org.id, ["orgs.read"]);
    const { token } = await newAccount(adminToken, org.id, { roles: [{ role: "viewer" }] });
    expectStatus(await call("GET", rolesPath(org.id), { token }), 200);
    expectStatus(await call("GET", `${rolesPath(org.id)}/${role.id}`, { token }), 200);
    expectMissing(await call("POST", rolesPath(org.id), { token, body: { name: unique("v"), operations: ["orgs.read"] } }), ["roles.edit"]);
    expectMissing(await call("PATCH", `${rolesPath(org.id)}/${role.id}`, { token, body: { description: "x" } }), ["roles.edit"]);
    expectMissing(await call("DELETE", `${rolesPath(org.id)}/${role.id}`, { token }), ["roles.edit"]);
  });

  it("another org's admin sees none of this org's roles (404)", async () => {
    const a = await orgWithAdmin(root.token);
    const b = await orgWithAdmin(root.token);
    const role = await createRole(a.adminToken, a.org.id, ["orgs.read"]);
    expectStatus(await call("GET", rolesPath(a.org.id), { token: b.adminToken }), 404);
    expectStatus(await call("POST", rolesPath(a.org.id), { token: b.adminToken, body: { name: unique("x"), operations: ["orgs.read"] } }), 404);
    expectStatus(await call("PATCH", `${rolesPath(a.org.id)}/${role.id}`, { token: b.adminToken, body: { operations: ["orgs.admin"] } }), 404);
    expectStatus(await call("DELETE", `${rolesPath(a.org.id)}/${role.id}`, { token: b.adminToken }), 404);
    expectStatus(await call("GET", `${rolesPath(a.org.id)}/${role.id}`, { token: a.adminToken }), 200);
  });

  // Built-in roles are found by id (role_viewer) or name before custom ones; a custom role whose
  // name is a built-in role's id would be shadowed: unreadable, uneditable and unassignable by name.
  it("a custom role named like a built-in role's id is refused, or else addressable by its name", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const res = await call("POST", rolesPath(org.id), { token: adminToken, body: { name: "role_viewer", operations: ["orgs.read"] } });
    if (res.status === 409) return;
    expectStatus(res, 201);
    const got = await call("GET", `${rolesPath(org.id)}/role_viewer`, { token: adminToken });
    expectStatus(got, 200);
    expect(got.json, `GET by name returns the custom role: ${got.text}`).toMatchObject({ id: res.json.id, builtin: false });
  });
});

/** A 403 permission_denied whose `missing`, as a set, is `missing`. */
function expectMissingSet(res: Awaited<ReturnType<typeof call>>, missing: string[]) {
  expect(res.status, `${res.status}: ${res.text}`).toBe(403);
  expect(res.json?.code, res.text).toBe("permission_denied");
  expect([...new Set<string>(res.json?.missing ?? [])].sort(), res.text).toEqual([...missing].sort());
}

describe("no escalation through roles", () => {
  /** A caller holding service-account-admin plus a custom role that adds only roles.edit. */
  async function roleEditor() {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const editorRole = await createRole(adminToken, org.id, ["roles.edit"]);
    const caller = await newAccount(adminToken, org.id, { roles: [{ role: "service-account-admin" }, { role: editorRole.id }] });
    return { org, adminToken, editorRole, caller: caller.account, callerToken: caller.token };
  }

  it("a caller cannot create a role with operations it lacks (403 listing them); within its own it can", async () => {
    const { org, adminToken, callerToken } = await roleEditor();
    expectMissing(await call("POST", rolesPath(org.id), { token: callerToken, body: { name: unique("esc"), operations: ["audit.read"] } }), ["audit.read"]);
    expectMissing(
      await call("POST", rolesPath(org.id), { token: callerToken, body: { name: unique("esc"), operations: ["service-accounts.edit", "orgs.admin", "invitations.edit"] } }),
      ["orgs.admin", "invitations.edit"],
    );
    const list = await call("GET", rolesPath(org.id), { token: adminToken });
    expect(list.json.items.filter((r: { name: string }) => r.name.startsWith("esc-")), list.text).toEqual([]);

    const ok = await call("POST", rolesPath(org.id), { token: callerToken, body: { name: unique("ok"), operations: ["service-accounts.edit", "roles.edit", "orgs.read"] } });
    expectStatus(ok, 201);
  });

  it("a caller cannot widen a role past what it holds, nor edit or delete a role holding more than it does", async () => {
    const { org, adminToken, editorRole, callerToken } = await roleEditor();
    const small = await createRole(adminToken, org.id, ["orgs.read"]);
    const big = await createRole(adminToken, org.id, ["orgs.read", "audit.read"]);

    // (Compared as sets here; the exact list, each operation once, has its own test below.)
    expectMissingSet(await call("PATCH", `${rolesPath(org.id)}/${small.id}`, { token: callerToken, body: { operations: ["orgs.read", "audit.read"] } }), ["audit.read"]);
    expectMissingSet(await call("PATCH", `${rolesPath(org.id)}/${big.id}`, { token: callerToken, body: { description: "harmless?" } }), ["audit.read"]);
    expectMissingSet(await call("PATCH", `${rolesPath(org.id)}/${big.id}`, { token: callerToken, body: { operations: ["orgs.read"] } }), ["audit.read"]);
    expectMissingSet(await call("DELETE", `${rolesPath(org.id)}/${big.id}`, { token: callerToken }), ["audit.read"]);
    // Its own role cannot be used to lift itself either.
    expectMissingSet(await call("PATCH", `${rolesPath(org.id)}/${editorRole.id}`, { token: callerToken, body: { operations: ["roles.edit", "orgs.admin"] } }), ["orgs.admin"]);

    for (const [role, ops] of [[small, ["orgs.read"]], [big, ["audit.read", "orgs.read"]], [editorRole, ["roles.edit"]]] as const) {
      const got = await call("GET", `${rolesPath(org.id)}/${role.id}`, { token: adminToken });
      expectStatus(got, 200);
      expect([...got.json.operations].sort(), got.text).toEqual(ops);
      expect(got.json.description, got.text).toBeNull();
    }
    // Within what it holds, editing works.
    expectStatus(await call("PATCH", `${rolesPath(org.id)}/${small.id}`, { token: callerToken, body: { operations: ["orgs.read", "service-accounts.read"] } }), 200);
  });

  it("the 403 of a refused role edit lists each missing operation once", async () => {
    const { org, adminToken, callerToken } = await roleEditor();
    const big = await createRole(adminToken, org.id, ["orgs.read", "audit.read"]);
    // The role already has audit.read and the edit keeps it: it is missing once, not twice.
    expectMissing(await call("PATCH", `${rolesPath(org.id)}/${big.id}`, { token: callerToken, body: { operations: ["orgs.read", "audit.read"] } }), ["audit.read"]);
  });

  it("a caller cannot assign a custom role holding operations it lacks", async () => {
    const { org, adminToken, callerToken } = await roleEditor();
    const big = await createRole(adminToken, org.id, ["service-accounts.read", "audit.read"]);
    const { account } = await newAccount(adminToken, org.id);
    expectMissing(await assign(callerToken, org.id, account.id, big.id), ["audit.read"]);
    expect(await assignmentsOf(adminToken, org.id, account.id)).toEqual([]);
  });
});

describe("custom roles in effect", () => {
  /** A holder with `viewer` (so the org stays visible to it) plus a custom role. */
  async function holderOf(operations: string[]) {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const role = await createRole(adminToken, org.id, operations);
    const holder = await newAccount(adminToken, org.id, { roles: [{ role: "viewer" }, { role: role.name }] });
    return { org, adminToken, role, holder: holder.account, token: holder.token };
  }

  it("the holder can do what the role allows, and gets 403 naming the operation otherwise", async () => {
    const { org, role, holder, token } = await holderOf(["service-accounts.edit"]);
    const created = await call("POST", sas(org.id), { token, body: { name: unique("made") } });
    expectStatus(created, 201);
    expectMissing(await call("PATCH", `/api/v1/orgs/${org.id}`, { token, body: { name: "renamed" } }), ["orgs.admin"]);
    expectMissing(await call("POST", `${sa(org.id, created.json.id)}/tokens`, { token, body: {} }), ["service-accounts.access-tokens.edit"]);
    const ras = await assignmentsOf(token, org.id, holder.id);
    expect(ras.map((r) => r.role).sort(), JSON.stringify(ras)).toEqual([role.name, "viewer"].sort());
    // Its JWTs carry the role's name and may request its operations.
    const jwt = await exchangeFor(token, { scope: "service-accounts.edit" });
    expectStatus(jwt, 200);
    const claims = claimsOf(jwt.json.jwt);
    expect(claims.roles?.slice().sort(), jwt.text).toEqual([role.name, "viewer"].sort());
    expect(claims.scope, jwt.text).toBe("service-accounts.edit");
  });

  it("PATCH of the operations changes what holders can do at once, and the scopes their JWTs may request", async () => {
    const { org, adminToken, role, token } = await holderOf(["orgs.read"]);
    expectMissing(await call("POST", sas(org.id), { token, body: { name: unique("before") } }), ["service-accounts.edit"]);
    expectCode(await exchangeFor(token, { scope: "service-accounts.edit" }), 400, "invalid_scope");
    const oldJwt = (await exchangeFor(token)).json.jwt as string;

    expectStatus(await call("PATCH", `${rolesPath(org.id)}/${role.id}`, { token: adminToken, body: { operations: ["orgs.read", "service-accounts.edit"] } }), 200);
    expectStatus(await call("POST", sas(org.id), { token, body: { name: unique("after") } }), 201);
    const widened = await exchangeFor(token, { scope: "service-accounts.edit" });
    expectStatus(widened, 200);
    expect(claimsOf(widened.json.jwt).scope, widened.text).toBe("service-accounts.edit");
    // A JWT minted before the change keeps its own (smaller) scope.
    expectMissing(await call("POST", sas(org.id), { token: oldJwt, body: { name: unique("old-jwt") } }), ["service-accounts.edit"]);

    // Narrowing takes effect at once too, for the access token and for JWTs already issued.
    const wideJwt = (await exchangeFor(token)).json.jwt as string;
    expect(claimsOf(wideJwt).scope?.split(" "), wideJwt).toContain("service-accounts.edit");
    expectStatus(await call("PATCH", `${rolesPath(org.id)}/${role.id}`, { token: adminToken, body: { operations: ["orgs.read"] } }), 200);
    expectMissing(await call("POST", sas(org.id), { token, body: { name: unique("narrowed") } }), ["service-accounts.edit"]);
    expectMissing(await call("POST", sas(org.id), { token: wideJwt, body: { name: unique("narrowed-jwt") } }), ["service-accounts.edit"]);
    expectCode(await exchangeFor(token, { scope: "service-accounts.edit" }), 400, "invalid_scope");
  });

  it("renaming a role renames it in its holders' JWTs", async () => {
    const { org, adminToken, role, token } = await holderOf(["orgs.read"]);
    const name = unique("renamed");
    expectStatus(await call("PATCH", `${rolesPath(org.id)}/${role.id}`, { token: adminToken, body: { name } }), 200);
    const res = await exchangeFor(token);
    expectStatus(res, 200);
    const roles = claimsOf(res.json.jwt).roles ?? [];
    expect(roles, res.text).toContain(name);
    expect(roles, res.text).not.toContain(role.name);
  });

  it("DELETE of the role removes its assignments: holders lose its operations and its scopes", async () => {
    const { org, adminToken, role, holder, token } = await holderOf(["service-accounts.edit"]);
    expectStatus(await call("POST", sas(org.id), { token, body: { name: unique("before") } }), 201);
    expectStatus(await call("DELETE", `${rolesPath(org.id)}/${role.id}`, { token: adminToken }), 204);

    const ras = await assignmentsOf(adminToken, org.id, holder.id);
    expect(ras.map((r) => r.role), JSON.stringify(ras)).toEqual(["viewer"]);
    expectMissing(await call("POST", sas(org.id), { token, body: { name: unique("after") } }), ["service-accounts.edit"]);
    expectCode(await exchangeFor(token, { scope: "service-accounts.edit" }), 400, "invalid_scope");
    const jwt = await exchangeFor(token);
    expectStatus(jwt, 200);
    expect(claimsOf(jwt.json.jwt).roles, jwt.text).toEqual(["viewer"]);
    // A new role with the same name is a new role: nobody holds it.
    const again = await createRole(adminToken, org.id, ["service-accounts.edit"], { name: role.name });
    expect(again.id).not.toBe(role.id);
    expectMissing(await call("POST", sas(org.id), { token, body: { name: unique("again") } }), ["service-accounts.edit"]);
  });

  it("assigning the same role twice at the same scope is 409 already_assigned", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const role = await createRole(adminToken, org.id, ["orgs.read"]);
    const { account } = await newAccount(adminToken, org.id);
    await assignOk(adminToken, org.id, account.id, role.name);
    expectCode(await assign(adminToken, org.id, account.id, role.id), 409, "already_assigned");
    expect((await assignmentsOf(adminToken, org.id, account.id)).length).toBe(1);
  });
});

describe("roles not assignable to service accounts", () => {
  it("a custom role marked assignableToServiceAccounts:false cannot be assigned (422 role_not_assignable)", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const role = await createRole(adminToken, org.id, ["orgs.read"], { assignableToServiceAccounts: false });
    expect(role.assignableToServiceAccounts).toBe(false);
    const { account } = await newAccount(adminToken, org.id);
    for (const ref of [role.id, role.name]) {
      expectCode(await assign(adminToken, org.id, account.id, ref), 422, "role_not_assignable");
      expectCode(await assign(root.token, org.id, account.id, ref), 422, "role_not_assignable");
    }
    expect(await assignmentsOf(adminToken, org.id, account.id)).toEqual([]);
    const name = unique("never");
    expectCode(await call("POST", sas(org.id), { token: adminToken, body: { name, roles: [{ role: role.name }] } }), 422, "role_not_assignable");
    const list = await call("GET", `${sas(org.id)}?q=${name}`, { token: adminToken });
    expect(list.json.items, `a refused create leaves nothing: ${list.text}`).toEqual([]);
  });

  it("making a role not assignable, then assignable again, is reflected in assignments", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const role = await createRole(adminToken, org.id, ["orgs.read"]);
    const { account } = await newAccount(adminToken, org.id);
    expectStatus(await call("PATCH", `${rolesPath(org.id)}/${role.id}`, { token: adminToken, body: { assignableToServiceAccounts: false } }), 200);
    expectCode(await assign(adminToken, org.id, account.id, role.id), 422, "role_not_assignable");
    expectStatus(await call("PATCH", `${rolesPath(org.id)}/${role.id}`, { token: adminToken, body: { assignableToServiceAccounts: true } }), 200);
    await assignOk(adminToken, org.id, account.id, role.id);
  });

  it("the built-in org-owner is never assignable, not even by root, by name or id, at any scope or at creation", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const { account } = await newAccount(adminToken, org.id);
    for (const token of [adminToken, root.token]) {
      for (const ref of ["org-owner", "role_org-owner"]) {
        const res = expectCode(await assign(token, org.id, account.id, ref), 422, "role_not_assignable");
        expect(res.detail, JSON.stringify(res)).toMatch(/org-owner/);
      }
    }
    const prj = await call("POST", `/api/v1/orgs/${org.id}/projects`, { token: adminToken, body: { slug: unique("p"), name: "P" } });
    expectStatus(prj, 201);
    expectCode(await assign(root.token, org.id, account.id, "org-owner", { type: "project", id: prj.json.id }), 422, "role_not_assignable");
    expect(await assignmentsOf(adminToken, org.id, account.id)).toEqual([]);

    for (const token of [adminToken, root.token]) {
      const name = unique("owner");
      expectCode(await call("POST", sas(org.id), { token, body: { name, roles: [{ role: "org-owner" }], issueToken: true } }), 422, "role_not_assignable");
      expectCode(await call("POST", sas(org.id), { token, body: { name, roles: [{ role: "viewer" }, { role: "role_org-owner" }] } }), 422, "role_not_assignable");
      const list = await call("GET", `${sas(org.id)}?q=${name}`, { token: adminToken });
      expect(list.json.items, `a refused create leaves nothing: ${list.text}`).toEqual([]);
    }
  });
});
