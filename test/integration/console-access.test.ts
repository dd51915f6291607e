import { beforeAll, describe, expect, it } from "vitest";
import { ORG_OPERATIONS } from "../../src/domain/access/permissions.ts";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { accountWithRole, auditRows, newAccount, newEnvironment, newProject } from "./registry-helpers.ts";
import { consoleGet, consoleLogin, consolePost, flashOf, follow, type PageRes as Page } from "./console-helpers.ts";

const signIn = consoleLogin;
const getPage = (cookie: string, path: string) => consoleGet(path, cookie);
const postForm = (cookie: string, path: string, fields: Record<string, string | string[]>, headers: Record<string, string> = {}) => consolePost(path, cookie, fields, headers);

/** The console's roles, access (role assignments) and invitations pages: happy paths, errors, permissions, other orgs, CSRF. */

type Org = { id: string; slug: string; name: string };
let root: { id: string; token: string };
let home: { org: Org; adminId: string; admin: string; viewer: string; project: { id: string }; env: { id: string } };
let other: { org: Org; adminToken: string; admin: string; viewer: string };

const consoleOrg = (o: Org) => `/console/orgs/${o.slug}`;
const rolesPath = (o: Org) => `${consoleOrg(o)}/roles`;
const accessPath = (o: Org, sa: string) => `${consoleOrg(o)}/service-accounts/${sa}/access`;
const invitationsPath = (o: Org) => `${consoleOrg(o)}/invitations`;
const answerPath = (o: Org, sa: string, inv: string) => `${consoleOrg(o)}/service-accounts/${sa}/invitations/${inv}/answer`;

function expectPage(res: Page, status: number) {
  expect(res.status, `${res.status}: ${res.text.slice(0, 2000)}`).toBe(status);
  return res.text;
}
/** A 303 to `location` (PRG). */
function expectRedirect(res: Page, location: string) {
  expect(res.status, `${res.status}: ${res.text.slice(0, 2000)}`).toBe(303);
  expect(res.location).toBe(location);
}
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** Whether the page has a form posting to `action`. */
const postsTo = (html: string, action: string) => new RegExp(`<form method="post" action="${escapeRe(action)}"`).test(html);
/** The text of a field's inline error, or undefined. */
const fieldError = (html: string, field: string) => html.match(new RegExp(`id="f-${field}-error"[^>]*>([^<]*)<`))?.[1];

const apiRoles = async (org: Org, token: string) => {
  const res = await call("GET", `/api/v1/orgs/${org.id}/roles`, { token });
  expectStatus(res, 200);
  return res.json.items as { id: string; name: string; operations: string[]; assignableToServiceAccounts: boolean; builtin: boolean }[];
};
const apiAssignments = async (org: Org, sa: string, token: string) => {
  const res = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa}/role-assignments`, { token });
  expectStatus(res, 200);
  return res.json.items as { id: string; roleId: string; scope: { type: string; id: string } }[];
};

beforeAll(async () => {
  root = await platformRoot();
  const h = await orgWithAdmin(root.token);
  const project = await newProject(h.adminToken, h.org.id);
  const env = await newEnvironment(h.adminToken, h.org.id, project.id);
  const viewer = await accountWithRole(h.adminToken, h.org.id, "viewer");
  home = { org: h.org, adminId: h.admin.id, admin: await signIn(h.adminToken), viewer: await signIn(viewer.token), project, env };
  const o = await orgWithAdmin(root.token);
  const otherViewer = await accountWithRole(o.adminToken, o.org.id, "viewer");
  other = { org: o.org, adminToken: o.adminToken, admin: await signIn(o.adminToken), viewer: await signIn(otherViewer.token) };
});

describe("every page of the group", () => {
  it("has no duplicate element ids (several forms share a page)", async () => {
    const { account } = await newAccount(root.token, home.org.id, { roles: [{ role: "viewer" }] });
    const name = unique("ids");
    expect((await postForm(home.admin, rolesPath(home.org), { name, operations: ["orgs.read"] })).status).toBe(303);
    for (const path of [rolesPath(home.org), `${rolesPath(home.org)}/${name}`, accessPath(home.org, account.id), `${consoleOrg(home.org)}/service-accounts/${account.id}`, invitationsPath(home.org), invitationsPath(other.org)]) {
      const html = expectPage(await getPage(path.includes(other.org.slug) ? other.admin : home.admin, path), 200);
      const ids = [...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
      expect(ids.length, path).toBeGreaterThan(3);
      expect(ids.filter((id, i) => ids.indexOf(id) !== i), path).toEqual([]);
    }
  });
});

describe("roles", () => {
  it("lists the built-in roles and offers a create form with every org operation as a checkbox", async () => {
    const html = expectPage(await getPage(home.admin, rolesPath(home.org)), 200);
    for (const name of ["org-owner", "org-admin", "service-account-admin", "viewer"]) expect(html).toContain(name);
    expect(postsTo(html, rolesPath(home.org)), html).toBe(true);
    for (const op of ORG_OPERATIONS) expect(html, op).toContain(`name="operations" value="${op}"`);
    expect(html).not.toContain('value="platform.root"');
  });

  it("creates, edits and deletes a custom role through its forms; the API sees each change and the audit log records it", async () => {
    const name = unique("deployer");
    const created = await postForm(home.admin, rolesPath(home.org), { name, description: "Reads accounts", operations: ["service-accounts.read", "audit.read"], assignable: "on" });
    expectRedirect(created, `${rolesPath(home.org)}/${name}`);
    let role = (await apiRoles(home.org, root.token)).find((r) => r.name === name);
    expect(role?.operations.sort()).toEqual(["audit.read", "service-accounts.read"]);
    expect(role?.assignableToServiceAccounts).toBe(true);

    const detail = expectPage(await getPage(home.admin, created.location!), 200);
    expect(detail).toContain(`Role ${name}`);
    expect(postsTo(detail, `${rolesPath(home.org)}/${role!.id}`), "edit form").toBe(true);
    expect(postsTo(detail, `${rolesPath(home.org)}/${role!.id}/delete`), "delete confirmation").toBe(true);

    expectRedirect(await postForm(home.admin, `${rolesPath(home.org)}/${role!.id}`, { name, operations: ["orgs.read"] }), `${rolesPath(home.org)}/${name}`);
    role = (await apiRoles(home.org, root.token)).find((r) => r.name === name);
    expect(role?.operations).toEqual(["orgs.read"]);
    expect(role?.assignableToServiceAccounts, "an unticked checkbox is false").toBe(false);

    expectRedirect(await postForm(home.admin, `${rolesPath(home.org)}/${role!.id}/delete`, {}), rolesPath(home.org));
    expect((await apiRoles(home.org, root.token)).some((r) => r.name === name)).toBe(false);
    const actions = (await auditRows(role!.id)).map((r) => [r.action, r.actor_id]);
    expect(actions).toEqual([
      ["role.created", home.adminId],
      ["role.updated", home.adminId],
      ["role.deleted", home.adminId],
    ]);
  });

  it("an invalid name, no operation, a reserved or taken name re-render the form with the error beside the field", async () => {
    const before = (await apiRoles(home.org, root.token)).length;
    const invalid = expectPage(await postForm(home.admin, rolesPath(home.org), { name: "Bad Name", operations: [] }), 400);
    expect(fieldError(invalid, "name"), invalid).toBeTruthy();
    expect(fieldError(invalid, "operations"), invalid).toBeTruthy();
    expect(invalid).toContain('value="Bad Name"');

    const reserved = expectPage(await postForm(home.admin, rolesPath(home.org), { name: "viewer", operations: ["orgs.read"] }), 409);
    expect(fieldError(reserved, "name")).toMatch(/reserved/);
    expect(reserved, "the ticked operations stay ticked").toMatch(/value="orgs\.read" checked/);

    const name = unique("dup");
    expect((await postForm(home.admin, rolesPath(home.org), { name, operations: ["orgs.read"] })).status).toBe(303);
    const taken = expectPage(await postForm(home.admin, rolesPath(home.org), { name, operations: ["orgs.read"] }), 409);
    expect(fieldError(taken, "name")).toMatch(/already exists/);
    expect((await apiRoles(home.org, root.token)).length).toBe(before + 1);
  });

  it("a built-in role cannot be deleted: the refusal comes back as a message on the role's page", async () => {
    const res = await postForm(home.admin, `${rolesPath(home.org)}/role_viewer/delete`, {});
    expectRedirect(res, `${rolesPath(home.org)}/role_viewer`);
    expect(flashOf(res)).toMatch(/^error:Built-in roles cannot be changed or deleted/);
    expect(expectPage(await follow(res, home.admin), 200)).toContain("Built-in roles cannot be changed or deleted");
    expect((await apiRoles(home.org, root.token)).some((r) => r.id === "role_viewer")).toBe(true);
  });

  it("a read-only principal sees the roles but no form; its hand-made posts get 403 and change nothing", async () => {
    const name = unique("ro");
    expect((await postForm(home.admin, rolesPath(home.org), { name, operations: ["orgs.read"] })).status).toBe(303);
    const before = await apiRoles(home.org, root.token);
    const role = before.find((r) => r.name === name)!;

    const list = expectPage(await getPage(home.viewer, rolesPath(home.org)), 200);
    expect(list).toContain(name);
    expect(list).not.toContain('method="post" action="/console/orgs');
    expect(list).not.toContain('name="operations"');
    const detail = expectPage(await getPage(home.viewer, `${rolesPath(home.org)}/${name}`), 200);
    expect(detail).not.toContain(`action="${rolesPath(home.org)}/${role.id}`);

    for (const [path, fields] of [
      [rolesPath(home.org), { name: unique("x"), operations: ["orgs.read"] }],
      [`${rolesPath(home.org)}/${role.id}`, { name, operations: ["audit.read"] }],
      [`${rolesPath(home.org)}/${role.id}/delete`, {}],
    ] as const) {
      const res = await postForm(home.viewer, path, fields as Record<string, string | string[]>);
      expect(expectPage(res, 403)).toContain("permission_denied");
    }
    const after = await apiRoles(home.org, root.token);
    expect(after.find((r) => r.id === role.id)?.operations).toEqual(["orgs.read"]);
    expect(after.map((r) => r.id)).toEqual(before.map((r) => r.id));
  });

  it("a role editor can grant only what it holds: other operations are disabled, a hand-made grant of one is 403, a stronger role is not editable", async () => {
    const editorRole = unique("editor");
    expect((await postForm(home.admin, rolesPath(home.org), { name: editorRole, operations: ["orgs.read", "roles.edit"], assignable: "on" })).status).toBe(303);
    const editor = await signIn((await accountWithRole(root.token, home.org.id, editorRole)).token);
    const html = expectPage(await getPage(editor, rolesPath(home.org)), 200);
    expect(html).toMatch(/value="orgs\.read"(?: checked="")? aria-describedby/);
    expect(html, "an operation it does not hold cannot be ticked").toMatch(/value="audit\.read" disabled=""/);
    expect(html).not.toMatch(/value="orgs\.read" disabled=""/);

    const name = unique("sneaky");
    const res = expectPage(await postForm(editor, rolesPath(home.org), { name, operations: ["orgs.read", "audit.read"] }), 403);
    expect(res).toContain("audit.read");
    expect((await apiRoles(home.org, root.token)).some((r) => r.name === name)).toBe(false);

    const strong = (await apiRoles(home.org, root.token)).find((r) => r.name === editorRole)!;
    const stronger = unique("strong");
    expect((await postForm(home.admin, rolesPath(home.org), { name: stronger, operations: ["audit.read"] })).status).toBe(303);
    const strongerId = (await apiRoles(home.org, root.token)).find((r) => r.name === stronger)!.id;
    const page = expectPage(await getPage(editor, `${rolesPath(home.org)}/${stronger}`), 200);
    expect(page).toContain("This role holds operations you do not hold");
    expect(postsTo(page, `${rolesPath(home.org)}/${strongerId}`), "no edit form").toBe(false);
    expect(postsTo(page, `${rolesPath(home.org)}/${strongerId}/delete`), "no delete").toBe(false);
    expectPage(await postForm(editor, `${rolesPath(home.org)}/${strongerId}/delete`, {}), 403);
    expect((await apiRoles(home.org, root.token)).some((r) => r.id === strongerId)).toBe(true);
    expect(postsTo(expectPage(await getPage(editor, `${rolesPath(home.org)}/${strong.id}`), 200), `${rolesPath(home.org)}/${strong.id}`), "its own role it may edit").toBe(true);
  });

  it("another org's roles are 404, read or written", async () => {
    expectPage(await getPage(other.admin, rolesPath(home.org)), 404);
    const name = unique("alien");
    expectPage(await postForm(other.admin, rolesPath(home.org), { name, operations: ["orgs.read"] }), 404);
    expect((await apiRoles(home.org, root.token)).some((r) => r.name === name)).toBe(false);
    // A custom role of the other org, asked for under this org.
    expect((await postForm(other.admin, rolesPath(other.org), { name, operations: ["orgs.read"] })).status).toBe(303);
    const alien = (await apiRoles(other.org, root.token)).find((r) => r.name === name)!;
    expectPage(await getPage(home.admin, `${rolesPath(home.org)}/${alien.id}`), 404);
    expectPage(await postForm(home.admin, `${rolesPath(home.org)}/${alien.id}/delete`, {}), 404);
    expect((await apiRoles(other.org, root.token)).some((r) => r.id === alien.id)).toBe(true);
  });

  it("pages carry Referrer-Policy same-origin, so a browser's form post names its Origin (under no-referrer it sends Origin: null, which is refused)", async () => {
    expect((await getPage(home.admin, rolesPath(home.org))).headers.get("referrer-policy")).toBe("same-origin");
    expect((await call("GET", `/api/v1/orgs/${home.org.id}/roles`, { token: root.token })).headers.get("referrer-policy"), "the API keeps no-referrer").toBe("no-referrer");
    const name = unique("null-origin");
    expectPage(await postForm(home.admin, rolesPath(home.org), { name, operations: ["orgs.read"] }, { origin: "null" }), 403);
    expect((await apiRoles(home.org, root.token)).some((r) => r.name === name)).toBe(false);
  });

  it("a cross-site form post is refused (403) and creates nothing", async () => {
    const name = unique("csrf");
    expectPage(await postForm(home.admin, rolesPath(home.org), { name, operations: ["orgs.read"] }, { origin: "https://evil.example", "sec-fetch-site": "cross-site" }), 403);
    expectPage(await postForm(home.admin, rolesPath(home.org), { name, operations: ["orgs.read"] }, { "sec-fetch-site": "cross-site" }), 403);
    expect((await apiRoles(home.org, root.token)).some((r) => r.name === name)).toBe(false);
  });
});

describe("access: role assignments and effective permissions", () => {
  it("offers the org, its projects and environments as scopes; assigns at a project, shows what that gives where, unassigns", async () => {
    const { account } = await newAccount(root.token, home.org.id);
    const path = accessPath(home.org, account.id);
    const html = expectPage(await getPage(home.admin, path), 200);
    expect(html).toContain("Access");
    for (const v of ["org", `project:${home.project.id}`, `environment:${home.env.id}`]) expect(html, v).toContain(`<option value="${v}"`);
    expect(html).toContain("This account holds no role in this organization.");
    expect(postsTo(html, `${path}/assignments`)).toBe(true);

    expectRedirect(await postForm(home.admin, `${path}/assignments`, { role: "role_viewer", scope: `project:${home.project.id}`, from: "access" }), path);
    const [assignment, ...more] = await apiAssignments(home.org, account.id, root.token);
    expect(more).toEqual([]);
    expect(assignment).toMatchObject({ roleId: "role_viewer", scope: { type: "project", id: home.project.id } });

    const opsAt = async (scope: string) => {
      const page = expectPage(await getPage(home.admin, `${path}?at=${scope}`), 200);
      return [...(page.match(/aria-label="Effective operations">([\s\S]*?)<\/ul>/)?.[1] ?? "").matchAll(/<code>([^<]+)<\/code>/g)].map((m) => m[1]).sort();
    };
    expect(await opsAt(`project:${home.project.id}`)).toEqual(["audit.read", "orgs.read", "service-accounts.read"]);
    expect(await opsAt(`environment:${home.env.id}`), "inherited below the project").toEqual(["audit.read", "orgs.read", "service-accounts.read"]);
    expect(await opsAt("org"), "nothing above it").toEqual([]);

    const page = expectPage(await getPage(home.admin, path), 200);
    expect(postsTo(page, `${path}/assignments/${assignment!.id}/delete`)).toBe(true);
    expectRedirect(await postForm(home.admin, `${path}/assignments/${assignment!.id}/delete`, {}), path);
    expect(await apiAssignments(home.org, account.id, root.token)).toEqual([]);
    expect((await auditRows(account.id)).map((r) => r.action)).toEqual(expect.arrayContaining(["role_assignment.created", "role_assignment.deleted"]));
  });

  it("is the account page's Access section: its forms come back to the account page", async () => {
    const { account } = await newAccount(root.token, home.org.id);
    const accountPage = `${consoleOrg(home.org)}/service-accounts/${account.id}`;
    const html = expectPage(await getPage(home.admin, accountPage), 200);
    expect(html).toContain('id="access-heading"');
    expect(html).toMatch(new RegExp(`action="${escapeRe(accessPath(home.org, account.id))}/assignments"[^>]*>(?:(?!</form>)[\\s\\S])*name="from" value="account"`));
    const res = await postForm(home.admin, `${accessPath(home.org, account.id)}/assignments`, { role: "role_viewer", scope: "org", from: "account" });
    expectRedirect(res, `${accountPage}#access-heading`);
    expect(flashOf(res)).toBe("success:Role assigned.");
    const after = expectPage(await follow(res, home.admin), 200);
    expect(after).toContain("Role assigned.");
    const [assignment] = await apiAssignments(home.org, account.id, root.token);
    expect(after).toContain(`${accessPath(home.org, account.id)}/assignments/${assignment!.id}/delete`);
    const shown = expectPage(await getPage(home.admin, `${accountPage}?at=environment:${home.env.id}`), 200);
    expect(shown).toMatch(/the account holds\s*3 operation/);
    expectRedirect(await postForm(home.admin, `${accessPath(home.org, account.id)}/assignments/${assignment!.id}/delete`, { from: "account" }), `${accountPage}#access-heading`);
    expect(await apiAssignments(home.org, account.id, root.token)).toEqual([]);
  });

  it("the same role twice (409), a role no service account may hold (422), no role (400) show in the form; an unknown or another org's scope is 404", async () => {
    const { account } = await newAccount(root.token, home.org.id);
    const path = accessPath(home.org, account.id);
    expectRedirect(await postForm(home.admin, `${path}/assignments`, { role: "role_viewer", scope: "org" }), path);
    expect(expectPage(await postForm(home.admin, `${path}/assignments`, { role: "role_viewer", scope: "org" }), 409)).toContain("already holds this role");
    expect(expectPage(await postForm(home.admin, `${path}/assignments`, { role: "role_org-owner", scope: "org" }), 422)).toContain("can never be held by a service account");
    expect(expectPage(await postForm(home.admin, `${path}/assignments`, { role: "role_viewer", scope: "bogus" }), 404)).toContain("not_found");
    const alien = await newProject(other.adminToken, other.org.id);
    expect(expectPage(await postForm(home.admin, `${path}/assignments`, { role: "role_viewer", scope: `project:${alien.id}` }), 404)).toContain("Project not found");
    const missing = expectPage(await postForm(home.admin, `${path}/assignments`, { scope: "org" }), 400);
    expect(fieldError(missing, "role"), missing).toBeTruthy();
    expect((await apiAssignments(home.org, account.id, root.token)).length).toBe(1);
  });

  it("a read-only principal sees the assignments and permissions but no assign or unassign; its hand-made posts get 403 and change nothing", async () => {
    const { account } = await newAccount(root.token, home.org.id, { roles: [{ role: "viewer" }] });
    const path = accessPath(home.org, account.id);
    const [assignment] = await apiAssignments(home.org, account.id, root.token);
    const html = expectPage(await getPage(home.viewer, path), 200);
    expect(html).toContain("viewer");
    expect(html).toContain('aria-label="Effective operations"');
    expect(html).not.toContain('method="post" action="/console/orgs');

    expect(expectPage(await postForm(home.viewer, `${path}/assignments`, { role: "role_viewer", scope: `project:${home.project.id}` }), 403)).toContain("permission_denied");
    expect(expectPage(await postForm(home.viewer, `${path}/assignments/${assignment!.id}/delete`, {}), 403)).toContain("permission_denied");
    expect(await apiAssignments(home.org, account.id, root.token)).toEqual([assignment]);
  });

  it("another org's accounts are 404, under their org or under this one", async () => {
    const { account } = await newAccount(root.token, home.org.id);
    expectPage(await getPage(other.admin, accessPath(home.org, account.id)), 404);
    expectPage(await postForm(other.admin, `${accessPath(home.org, account.id)}/assignments`, { role: "role_viewer", scope: "org" }), 404);
    // The other org's admin, naming this org's account under its own org.
    expectPage(await getPage(other.admin, accessPath(other.org, account.id)), 404);
    expectPage(await postForm(other.admin, `${accessPath(other.org, account.id)}/assignments`, { role: "role_viewer", scope: "org" }), 404);
    expect(await apiAssignments(home.org, account.id, root.token)).toEqual([]);
  });
});

describe("invitations", () => {
  const sentItems = async (org: Org, state = "pending") => {
    const res = await call("GET", `/api/v1/orgs/${org.id}/invitations?state=${state}`, { token: root.token });
    expectStatus(res, 200);
    return res.json.items as { id: string; email: string; state: string }[];
  };
  const receivedState = async (sa: string, inv: string) => {
    const res = await call("GET", `/api/v1/orgs/${other.org.id}/service-accounts/${sa}/invitations`, { token: root.token });
    expectStatus(res, 200);
    return (res.json.items as { id: string; state: string }[]).find((i) => i.id === inv)?.state;
  };
  /** An account of the other org, invited by this org's admin through the console. */
  async function invited(role = "role_viewer", scope = "org") {
    const { account } = await newAccount(other.adminToken, other.org.id);
    expectRedirect(await postForm(home.admin, invitationsPath(home.org), { email: account.email, role, scope }), invitationsPath(home.org));
    const inv = (await sentItems(home.org)).find((i) => i.email === account.email)!;
    expect(inv, "the invitation is pending").toBeTruthy();
    return { account, inv };
  }

  it("sends an invitation; the invitee's org sees it received and accepts it on the account's behalf, which grants the role", async () => {
    const form = expectPage(await getPage(home.admin, invitationsPath(home.org)), 200);
    expect(postsTo(form, invitationsPath(home.org))).toBe(true);
    const { account, inv } = await invited("role_viewer", `project:${home.project.id}`);
    const sent = expectPage(await getPage(home.admin, invitationsPath(home.org)), 200);
    expect(sent).toContain(account.email);

    const received = expectPage(await getPage(other.admin, invitationsPath(other.org)), 200);
    expect(received).toContain(account.email);
    expect(postsTo(received, answerPath(other.org, account.id, inv.id)), received).toBe(true);
    expectRedirect(await postForm(other.admin, answerPath(other.org, account.id, inv.id), { state: "accepted" }), invitationsPath(other.org));
    expect(await receivedState(account.id, inv.id)).toBe("accepted");
    const res = await call("GET", `/api/v1/orgs/${other.org.id}/service-accounts/${account.id}/role-assignments`, { token: root.token });
    expect(res.json.items, res.text).toEqual([expect.objectContaining({ roleId: "role_viewer", scope: { type: "project", id: home.project.id } })]);

    const second = await invited();
    expectRedirect(await postForm(other.admin, answerPath(other.org, second.account.id, second.inv.id), { state: "declined" }), invitationsPath(other.org));
    expect(await receivedState(second.account.id, second.inv.id)).toBe("declined");
    const declined = expectPage(await getPage(other.admin, `${invitationsPath(other.org)}?received=declined`), 200);
    expect(declined).toContain(second.account.email);
  });

  it("answering twice, or with no answer, comes back as a message on the invitations page, and changes nothing", async () => {
    const { account, inv } = await invited();
    const path = answerPath(other.org, account.id, inv.id);
    const bogus = await postForm(other.admin, path, { state: "maybe" });
    expectRedirect(bogus, invitationsPath(other.org));
    expect(flashOf(bogus)).toMatch(/^error:.*state/);
    expect(await receivedState(account.id, inv.id)).toBe("pending");
    expectRedirect(await postForm(other.admin, path, { state: "declined" }), invitationsPath(other.org));
    const again = await postForm(other.admin, path, { state: "accepted" });
    expectRedirect(again, invitationsPath(other.org));
    expect(flashOf(again)).toBe("error:The invitation is already declined");
    expect(await receivedState(account.id, inv.id)).toBe("declined");
  });

  it("an account of this org (400), a malformed email (400 beside the field), the same invitation twice (409) show in the form", async () => {
    const { account: own } = await newAccount(root.token, home.org.id);
    expect(expectPage(await postForm(home.admin, invitationsPath(home.org), { email: own.email, role: "role_viewer", scope: "org" }), 400)).toContain("assign it a role instead");
    const bad = expectPage(await postForm(home.admin, invitationsPath(home.org), { email: "not-an-email", role: "role_viewer", scope: "org" }), 400);
    expect(fieldError(bad, "email"), bad).toBeTruthy();
    const { account } = await invited();
    expect(expectPage(await postForm(home.admin, invitationsPath(home.org), { email: account.email, role: "role_viewer", scope: "org" }), 409)).toContain("already pending");
    expect((await sentItems(home.org)).filter((i) => i.email === account.email).length).toBe(1);
  });

  it("read-only principals see the lists but no send, cancel, accept or decline; their hand-made posts get 403 and change nothing", async () => {
    const { account, inv } = await invited();
    const inviting = expectPage(await getPage(home.viewer, invitationsPath(home.org)), 200);
    expect(inviting).toContain(account.email);
    expect(inviting).not.toContain('method="post" action="/console/orgs');
    const receiving = expectPage(await getPage(other.viewer, invitationsPath(other.org)), 200);
    expect(receiving).toContain(account.email);
    expect(receiving).not.toContain('method="post" action="/console/orgs');

    const email = `${unique("x")}@nowhere.test`;
    expectPage(await postForm(home.viewer, invitationsPath(home.org), { email, role: "role_viewer", scope: "org" }), 403);
    expectPage(await postForm(home.viewer, `${invitationsPath(home.org)}/${inv.id}/cancel`, {}), 403);
    expectPage(await postForm(other.viewer, answerPath(other.org, account.id, inv.id), { state: "accepted" }), 403);
    expect(await receivedState(account.id, inv.id)).toBe("pending");
    expect((await sentItems(home.org)).some((i) => i.email === email)).toBe(false);
  });

  it("the inviting org cannot answer for the invitee (404); the invitee's org cannot cancel the inviting org's invitation (404)", async () => {
    const { account, inv } = await invited();
    expectPage(await postForm(home.admin, answerPath(other.org, account.id, inv.id), { state: "accepted" }), 404);
    expectPage(await postForm(home.admin, answerPath(home.org, account.id, inv.id), { state: "accepted" }), 404);
    expectPage(await postForm(other.admin, `${invitationsPath(other.org)}/${inv.id}/cancel`, {}), 404);
    expect(await receivedState(account.id, inv.id)).toBe("pending");
  });

  it("cancels a sent invitation after a confirmation", async () => {
    const { account, inv } = await invited();
    const page = expectPage(await getPage(home.admin, invitationsPath(home.org)), 200);
    expect(postsTo(page, `${invitationsPath(home.org)}/${inv.id}/cancel`)).toBe(true);
    expectRedirect(await postForm(home.admin, `${invitationsPath(home.org)}/${inv.id}/cancel`, {}), invitationsPath(home.org));
    expect(await receivedState(account.id, inv.id)).toBe("cancelled");
  });
});
