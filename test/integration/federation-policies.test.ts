import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { auditRows, expectFieldError, expectProblem, newAccount } from "./registry-helpers.ts";
import { createRole, exchangeFor, expectMissing, sa } from "./authz-helpers.ts";
import { policiesForIssuer } from "../../src/domain/credentials/federated-credentials.ts";

/**
 * Trust policies (federated credentials, issue 18): the CRUD routes, their validation, audit,
 * cascade on account delete, isolation and permissions. The grants that use them have their own
 * tests (federation-grant, federation-security). The workers project allows the issuers named
 * in vitest.config.ts (FEDERATION_ALLOWED_ISSUERS).
 */

const GITHUB = "https://token.actions.githubusercontent.com";
const GITLAB = "https://gitlab.com";
const EDIT = "service-accounts.federated-credentials.edit";
const fedPath = (org: string, account: string) => `${sa(org, account)}/federated-credentials`;

const githubPolicy = (extra: Record<string, unknown> = {}) => ({
  name: unique("gh"),
  issuer: GITHUB,
  subject: "repo:acme/deploy-bot:environment:prod",
  claims: { ref: "refs/heads/main", job_workflow_ref: "acme/deploy-bot/.github/workflows/*@refs/heads/main" },
  ...extra,
});

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

/** An org with its admin, and a target account (viewer) to put policies on. */
async function world() {
  const o = await orgWithAdmin(root.token);
  const target = await newAccount(o.adminToken, o.org.id, { roles: [{ role: "viewer" }] });
  return { ...o, target: target.account, targetToken: target.token, path: fedPath(o.org.id, target.account.id) };
}

async function createOk(token: string, path: string, body: Record<string, unknown>) {
  const res = await call("POST", path, { token, body });
  expectStatus(res, 201);
  return res.json;
}

async function rowsOf(accountId: string) {
  const { results } = await env.DB.prepare("select * from federated_credentials where service_account_id = ?").bind(accountId).all();
  return results;
}

describe("federated credentials: the happy path", () => {
  it("creates a policy with defaults (audience = ISSUER, enabled), reads and lists it, and audits the creation", async () => {
    const w = await world();
    const body = githubPolicy({ description: "Deploys from main" });
    const created = await createOk(w.adminToken, w.path, body);
    expect(created.id).toMatch(/^fed_[0-9A-Za-z]{22}$/);
    expect(created).toMatchObject({
      accountId: w.target.id,
      name: body.name,
      description: "Deploys from main",
      issuer: GITHUB,
      audiences: ["http://localhost:8787"],
      subject: body.subject,
      claims: body.claims,
      maxTokenAgeSeconds: null,
      enabled: true,
      singleUse: true,
      createdBy: w.admin.id,
    });
    expect(Date.parse(created.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(created.updatedAt).toBe(created.createdAt);

    const one = await call("GET", `${w.path}/${created.id}`, { token: w.adminToken });
    expectStatus(one, 200);
    expect(one.json).toEqual(created);
    const list = await call("GET", w.path, { token: w.adminToken });
    expectStatus(list, 200);
    expect(list.json).toEqual({ items: [created], nextCursor: null });

    const events = (await auditRows(created.id)).filter((e) => e.action === "federated_credential.created");
    expect(events).toHaveLength(1);
    expect(events[0]!.org_id).toBe(w.org.id);
    expect(events[0]!.actor_id).toBe(w.admin.id);
    expect(events[0]!.target_type).toBe("federated_credential");
    expect(JSON.parse(events[0]!.details)).toMatchObject({ accountId: w.target.id, issuer: GITHUB, claims: ["ref", "job_workflow_ref"], enabled: true, singleUse: true });
    expect((await rowsOf(w.target.id))[0]).toMatchObject({ single_use: 1 });
  });

  it("singleUse: false on create is stored, returned and audited; PATCH turns it back on and off", async () => {
    const w = await world();
    const created = await createOk(w.adminToken, w.path, githubPolicy({ singleUse: false }));
    expect(created.singleUse).toBe(false);
    expect((await call("GET", `${w.path}/${created.id}`, { token: w.adminToken })).json.singleUse).toBe(false);
    const [made] = (await auditRows(created.id)).filter((e) => e.action === "federated_credential.created");
    expect(JSON.parse(made!.details)).toMatchObject({ singleUse: false });

    const on = await call("PATCH", `${w.path}/${created.id}`, { token: w.adminToken, body: { singleUse: true } });
    expectStatus(on, 200);
    expect(on.json.singleUse).toBe(true);
    const off = await call("PATCH", `${w.path}/${created.id}`, { token: w.adminToken, body: { singleUse: false } });
    expectStatus(off, 200);
    expect(off.json).toMatchObject({ singleUse: false, enabled: true, subject: created.subject });
    expect((await call("GET", w.path, { token: w.adminToken })).json.items[0].singleUse).toBe(false);
    expect((await rowsOf(w.target.id))[0]).toMatchObject({ single_use: 0 });
    const updates = (await auditRows(created.id)).filter((e) => e.action === "federated_credential.updated").map((e) => JSON.parse(e.details));
    // Two edits within one millisecond have no order in the log: each names the field and the value it set.
    expect(updates.map((u) => u.changed)).toEqual([["singleUse"], ["singleUse"]]);
    expect(updates.map((u) => u.singleUse).sort()).toEqual([false, true]);
  });

  it("takes claims without subject, given audiences (deduplicated) and maxTokenAgeSeconds", async () => {
    const w = await world();
    const created = await createOk(w.adminToken, w.path, {
      name: "gitlab-main",
      issuer: GITLAB,
      audiences: ["https://keyward.example.com", "https://keyward.example.com", "other"],
      claims: { project_path: "acme/*", ref_protected: "true" },
      maxTokenAgeSeconds: 600,
    });
    expect(created).toMatchObject({ subject: null, audiences: ["https://keyward.example.com", "other"], maxTokenAgeSeconds: 600, claims: { project_path: "acme/*", ref_protected: "true" } });
  });

  it("PATCH edits, disables and re-enables; each change audited with the fields it changed", async () => {
    const w = await world();
    const created = await createOk(w.adminToken, w.path, githubPolicy());
    const one = `${w.path}/${created.id}`;
    const disabled = await call("PATCH", one, { token: w.adminToken, body: { enabled: false } });
    expectStatus(disabled, 200);
    expect(disabled.json.enabled).toBe(false);
    expect(Date.parse(disabled.json.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.updatedAt));
    const edited = await call("PATCH", one, { token: w.adminToken, body: { subject: null, claims: { repository: "acme/deploy-bot" }, description: null, maxTokenAgeSeconds: 300, enabled: true } });
    expectStatus(edited, 200);
    expect(edited.json).toMatchObject({ subject: null, claims: { repository: "acme/deploy-bot" }, description: null, maxTokenAgeSeconds: 300, enabled: true, name: created.name });
    expect((await call("GET", one, { token: w.adminToken })).json).toEqual(edited.json);
    const updates = (await auditRows(created.id)).filter((e) => e.action === "federated_credential.updated").map((e) => JSON.parse(e.details));
    expect(updates).toHaveLength(2);
    expect(updates[0].changed).toEqual(["enabled"]);
    expect([...updates[1].changed].sort()).toEqual(["claims", "description", "enabled", "maxTokenAgeSeconds", "subject"]);
  });

  it("DELETE removes it (204, then 404) and audits the deletion", async () => {
    const w = await world();
    const created = await createOk(w.adminToken, w.path, githubPolicy());
    const one = `${w.path}/${created.id}`;
    expectStatus(await call("DELETE", one, { token: w.adminToken }), 204);
    expectProblem(await call("GET", one, { token: w.adminToken }), 404, "not_found");
    expectProblem(await call("DELETE", one, { token: w.adminToken }), 404, "not_found");
    expect(await rowsOf(w.target.id)).toEqual([]);
    expect((await auditRows(created.id)).map((e) => e.action)).toEqual(["federated_credential.created", "federated_credential.deleted"]);
  });

  it("deleting the account deletes its policies", async () => {
    const w = await world();
    await createOk(w.adminToken, w.path, githubPolicy());
    await createOk(w.adminToken, w.path, githubPolicy({ issuer: GITLAB }));
    expect(await rowsOf(w.target.id)).toHaveLength(2);
    expectStatus(await call("DELETE", sa(w.org.id, w.target.id), { token: w.adminToken }), 204);
    expect(await rowsOf(w.target.id)).toEqual([]);
    expect((await policiesForIssuer(env, GITHUB)).filter((p) => p.serviceAccountId === w.target.id)).toEqual([]);
  });
});

describe("policiesForIssuer (the grant's lookup)", () => {
  it("returns the enabled policies of the issuer, of every account; a disabled one is ignored", async () => {
    const w = await world();
    const other = await newAccount(w.adminToken, w.org.id);
    const a = await createOk(w.adminToken, w.path, githubPolicy());
    const off = await createOk(w.adminToken, w.path, githubPolicy({ enabled: false }));
    const b = await createOk(w.adminToken, fedPath(w.org.id, other.account.id), githubPolicy());
    const gitlab = await createOk(w.adminToken, w.path, githubPolicy({ issuer: GITLAB }));
    const ids = (await policiesForIssuer(env, GITHUB)).map((p) => p.id);
    expect(ids).toContain(a.id);
    expect(ids).toContain(b.id);
    expect(ids).not.toContain(off.id);
    expect(ids).not.toContain(gitlab.id);
    const found = (await policiesForIssuer(env, GITHUB)).find((p) => p.id === a.id)!;
    expect(found).toMatchObject({ serviceAccountId: w.target.id, orgId: w.org.id, audiences: ["http://localhost:8787"], claims: a.claims, enabled: true, maxTokenAgeSeconds: null });
    // Re-enabled, it is found again.
    expectStatus(await call("PATCH", `${w.path}/${off.id}`, { token: w.adminToken, body: { enabled: true } }), 200);
    expect((await policiesForIssuer(env, GITHUB)).map((p) => p.id)).toContain(off.id);
  });

  it("an issuer no longer allowed has no policies, even if rows name it", async () => {
    const w = await world();
    const created = await createOk(w.adminToken, w.path, githubPolicy());
    await env.DB.prepare("update federated_credentials set issuer = ? where id = ?").bind("https://removed.example", created.id).run();
    expect(await policiesForIssuer(env, "https://removed.example")).toEqual([]);
  });
});

describe("federated credentials: validation", () => {
  it("a policy with neither subject nor claims is refused (422 policy_too_broad), on create and by PATCH", async () => {
    const w = await world();
    expectProblem(await call("POST", w.path, { token: w.adminToken, body: { name: "broad", issuer: GITHUB } }), 422, "policy_too_broad");
    expectProblem(await call("POST", w.path, { token: w.adminToken, body: { name: "broad", issuer: GITHUB, claims: {}, subject: null } }), 422, "policy_too_broad");
    const subjectOnly = await createOk(w.adminToken, w.path, { name: "s", issuer: GITHUB, subject: "repo:acme/x:ref:refs/heads/main" });
    expectProblem(await call("PATCH", `${w.path}/${subjectOnly.id}`, { token: w.adminToken, body: { subject: null } }), 422, "policy_too_broad");
    const claimsOnly = await createOk(w.adminToken, w.path, { name: "c", issuer: GITHUB, claims: { repository: "acme/x" } });
    expectProblem(await call("PATCH", `${w.path}/${claimsOnly.id}`, { token: w.adminToken, body: { claims: {} } }), 422, "policy_too_broad");
    // Nothing changed.
    expect((await call("GET", `${w.path}/${subjectOnly.id}`, { token: w.adminToken })).json.subject).toBe("repo:acme/x:ref:refs/heads/main");
    expect((await call("GET", `${w.path}/${claimsOnly.id}`, { token: w.adminToken })).json.claims).toEqual({ repository: "acme/x" });
    expect(await rowsOf(w.target.id)).toHaveLength(2);
  });

  it("an issuer not in FEDERATION_ALLOWED_ISSUERS is refused (422 issuer_not_allowed), on create and PATCH", async () => {
    const w = await world();
    for (const issuer of ["https://evil.example", `${GITHUB}/`, "https://TOKEN.actions.githubusercontent.com", "http://127.0.0.1:9"]) {
      expectProblem(await call("POST", w.path, { token: w.adminToken, body: githubPolicy({ issuer }) }), 422, "issuer_not_allowed");
    }
    const created = await createOk(w.adminToken, w.path, githubPolicy());
    expectProblem(await call("PATCH", `${w.path}/${created.id}`, { token: w.adminToken, body: { issuer: "https://evil.example" } }), 422, "issuer_not_allowed");
    expect(await rowsOf(w.target.id)).toHaveLength(1);
  });

  it("invalid glob patterns and conditions on verified claims are 400s naming the claim", async () => {
    const w = await world();
    expectFieldError(await call("POST", w.path, { token: w.adminToken, body: githubPolicy({ claims: { ref: "refs/***" } }) }), "claims.ref");
    expectFieldError(await call("POST", w.path, { token: w.adminToken, body: githubPolicy({ claims: { ref: "*" } }) }), "claims.ref");
    expectFieldError(await call("POST", w.path, { token: w.adminToken, body: githubPolicy({ claims: { ref: "**" } }) }), "claims.ref");
    for (const claim of ["iss", "aud", "exp", "nbf", "iat", "jti"]) {
      expectFieldError(await call("POST", w.path, { token: w.adminToken, body: githubPolicy({ claims: { [claim]: "x" } }) }), `claims.${claim}`);
    }
    expect(await rowsOf(w.target.id)).toEqual([]);
  });

  it("limits: name <= 64, <= 20 claims, pattern <= 256, 1..10 audiences, maxTokenAgeSeconds 60..86400, no unknown field", async () => {
    const w = await world();
    const post = (extra: Record<string, unknown>) => call("POST", w.path, { token: w.adminToken, body: githubPolicy(extra) });
    expectFieldError(await post({ name: "n".repeat(65) }), "name");
    expectFieldError(await post({ name: "" }), "name");
    expectFieldError(await post({ claims: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`c${i}`, "v"])) }), "claims");
    expectFieldError(await post({ claims: { ref: "r".repeat(257) } }), "claims.ref");
    expectFieldError(await post({ claims: { ref: "" } }), "claims.ref");
    expectFieldError(await post({ audiences: [] }), "audiences");
    expectFieldError(await post({ audiences: Array.from({ length: 11 }, (_, i) => `aud-${i}`) }), "audiences");
    expectFieldError(await post({ maxTokenAgeSeconds: 59 }), "maxTokenAgeSeconds");
    expectFieldError(await post({ maxTokenAgeSeconds: 86_401 }), "maxTokenAgeSeconds");
    expectFieldError(await post({ maxTokenAgeSeconds: 60.5 }), "maxTokenAgeSeconds");
    expectFieldError(await post({ subject: "" }), "subject");
    expectFieldError(await post({ claims: { ref: 5 } }), "claims.ref");
    expect(expectProblem(await post({ serviceAccountId: "sa_x" }), 400, "validation_failed").detail).toContain("serviceAccountId");
    expectProblem(await post({ enabled: "yes" }), 400, "validation_failed");
    expectFieldError(await post({ singleUse: "false" }), "singleUse");
    // A condition is never dropped silently: a JSON key __proto__ (which parsing would lose) and odd names are refused.
    const proto = await call("POST", w.path, { token: w.adminToken, body: `{"name":"p","issuer":"${GITHUB}","subject":"s","claims":{"__proto__":"x"}}` });
    expectProblem(proto, 400, "validation_failed");
    expectFieldError(await post({ claims: { "has space": "x" } }), "claims.has space");
    expectProblem(await post({ claims: { "tab\there": "x" } }), 400, "validation_failed");
    expect(await rowsOf(w.target.id)).toEqual([]);
    // The bounds themselves are fine.
    await createOk(w.adminToken, w.path, githubPolicy({ name: "n".repeat(64), maxTokenAgeSeconds: 60, claims: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`c${i}`, "v".repeat(256)])) }));
    await createOk(w.adminToken, w.path, githubPolicy({ maxTokenAgeSeconds: 86_400, audiences: Array.from({ length: 10 }, (_, i) => `aud-${i}`) }));
  });

  it("names are unique per account (409 name_taken), on create and rename; another account may reuse one", async () => {
    const w = await world();
    const first = await createOk(w.adminToken, w.path, githubPolicy({ name: "deploy" }));
    expectProblem(await call("POST", w.path, { token: w.adminToken, body: githubPolicy({ name: "deploy" }) }), 409, "name_taken");
    const second = await createOk(w.adminToken, w.path, githubPolicy({ name: "other" }));
    expectProblem(await call("PATCH", `${w.path}/${second.id}`, { token: w.adminToken, body: { name: "deploy" } }), 409, "name_taken");
    expectStatus(await call("PATCH", `${w.path}/${first.id}`, { token: w.adminToken, body: { name: "deploy" } }), 200);
    const other = await newAccount(w.adminToken, w.org.id);
    await createOk(w.adminToken, fedPath(w.org.id, other.account.id), githubPolicy({ name: "deploy" }));
  });

  it("an account holds at most 20 policies (409 federated_credential_limit_reached); deleting one frees a place", async () => {
    const w = await world();
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) => createOk(w.adminToken, w.path, githubPolicy({ name: `p${i}` }))));
    expectProblem(await call("POST", w.path, { token: w.adminToken, body: githubPolicy({ name: "p20" }) }), 409, "federated_credential_limit_reached");
    expect(await rowsOf(w.target.id)).toHaveLength(20);
    expectStatus(await call("DELETE", `${w.path}/${made[0].id}`, { token: w.adminToken }), 204);
    await createOk(w.adminToken, w.path, githubPolicy({ name: "p20" }));
  });

  it("concurrent creates never pass the cap (the account's object serializes them)", async () => {
    const w = await world();
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => call("POST", w.path, { token: w.adminToken, body: githubPolicy({ name: `c${i}` }) })));
    expect(results.filter((r) => r.status === 201)).toHaveLength(20);
    for (const r of results.filter((r) => r.status !== 201)) expectProblem(r, 409, "federated_credential_limit_reached");
    expect(await rowsOf(w.target.id)).toHaveLength(20);
  });

  it("unknown ids and malformed JSON are problems, never 500s", async () => {
    const w = await world();
    expectProblem(await call("GET", `${w.path}/fed_nope`, { token: w.adminToken }), 404, "not_found");
    expectProblem(await call("PATCH", `${w.path}/fed_nope`, { token: w.adminToken, body: { enabled: false } }), 404, "not_found");
    expectProblem(await call("GET", fedPath(w.org.id, "sa_nope"), { token: w.adminToken }), 404, "not_found");
    expectProblem(await call("POST", fedPath(w.org.id, "sa_nope"), { token: w.adminToken, body: githubPolicy() }), 404, "not_found");
    expectProblem(await call("POST", w.path, { token: w.adminToken, body: "{" }), 400, "malformed_json");
  });
});

describe("federated credentials: security", () => {
  it("another org's admin sees nothing (404 on every route)", async () => {
    const w = await world();
    const created = await createOk(w.adminToken, w.path, githubPolicy());
    const stranger = await orgWithAdmin(root.token);
    const one = `${w.path}/${created.id}`;
    expectProblem(await call("GET", w.path, { token: stranger.adminToken }), 404, "not_found");
    expectProblem(await call("GET", one, { token: stranger.adminToken }), 404, "not_found");
    expectProblem(await call("POST", w.path, { token: stranger.adminToken, body: githubPolicy() }), 404, "not_found");
    expectProblem(await call("PATCH", one, { token: stranger.adminToken, body: { enabled: false } }), 404, "not_found");
    expectProblem(await call("DELETE", one, { token: stranger.adminToken }), 404, "not_found");
    // Its own org's path with the other org's account: still 404.
    expectProblem(await call("GET", fedPath(stranger.org.id, w.target.id), { token: stranger.adminToken }), 404, "not_found");
    expect((await call("GET", one, { token: w.adminToken })).json).toEqual(created);
  });

  it("a policy is reached only through its own account: another account's path is 404", async () => {
    const w = await world();
    const created = await createOk(w.adminToken, w.path, githubPolicy());
    const other = await newAccount(w.adminToken, w.org.id);
    const wrong = `${fedPath(w.org.id, other.account.id)}/${created.id}`;
    expectProblem(await call("GET", wrong, { token: w.adminToken }), 404, "not_found");
    expectProblem(await call("PATCH", wrong, { token: w.adminToken, body: { enabled: false } }), 404, "not_found");
    expectProblem(await call("DELETE", wrong, { token: w.adminToken }), 404, "not_found");
    expect((await call("GET", `${w.path}/${created.id}`, { token: w.adminToken })).json.enabled).toBe(true);
  });

  it("a viewer reads (service-accounts.read) but cannot create, edit or delete (403 naming the permission)", async () => {
    const w = await world();
    const created = await createOk(w.adminToken, w.path, githubPolicy());
    const viewer = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "viewer" }] });
    expectStatus(await call("GET", w.path, { token: viewer.token }), 200);
    expectStatus(await call("GET", `${w.path}/${created.id}`, { token: viewer.token }), 200);
    expectMissing(await call("POST", w.path, { token: viewer.token, body: githubPolicy() }), [EDIT]);
    expectMissing(await call("PATCH", `${w.path}/${created.id}`, { token: viewer.token, body: { enabled: false } }), [EDIT]);
    expectMissing(await call("DELETE", `${w.path}/${created.id}`, { token: viewer.token }), [EDIT]);
    const plain = await newAccount(w.adminToken, w.org.id, { roles: [{ role: await createRole(w.adminToken, w.org.id, ["orgs.read"]).then((r) => r.id) }] });
    expectMissing(await call("GET", w.path, { token: plain.token }), ["service-accounts.read"]);
    expect(await rowsOf(w.target.id)).toHaveLength(1);
  });

  it("the permission is in the catalogue and held by org-admin and service-account-admin, not viewer", async () => {
    const w = await world();
    const catalogue = await call("GET", "/api/v1/permissions", { token: w.adminToken });
    expectStatus(catalogue, 200);
    expect(JSON.stringify(catalogue.json)).toContain(EDIT);
    const saAdmin = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "service-account-admin" }] });
    const roleless = await newAccount(w.adminToken, w.org.id);
    await createOk(saAdmin.token, fedPath(w.org.id, roleless.account.id), githubPolicy());
    expectMissing(await call("POST", w.path, { token: w.targetToken, body: githubPolicy() }), [EDIT]);
  });

  it("no escalation: a holder of the permission cannot put a policy on an account holding more than itself", async () => {
    const w = await world();
    const role = await createRole(w.adminToken, w.org.id, ["orgs.read", "service-accounts.read", EDIT]);
    const editor = await newAccount(w.adminToken, w.org.id, { roles: [{ role: role.id }] });
    // The org admin holds audit.read, roles.edit, ... which the editor does not: a policy on it would hand them out.
    const adminPath = fedPath(w.org.id, w.admin.id);
    const denied = await call("POST", adminPath, { token: editor.token, body: githubPolicy() });
    expectProblem(denied, 403, "permission_denied");
    expect(denied.json.missing).toContain("audit.read");
    expect(await rowsOf(w.admin.id)).toEqual([]);
    // An account holding no more than the editor (the viewer target holds audit.read: not covered either).
    const weak = await newAccount(w.adminToken, w.org.id, { roles: [{ role: role.id }] });
    await createOk(editor.token, fedPath(w.org.id, weak.account.id), githubPolicy());
    // Editing an admin's policy (one the admin made) is guarded too; deleting it needs incident response.
    const adminPolicy = await createOk(w.adminToken, adminPath, githubPolicy());
    expectProblem(await call("PATCH", `${adminPath}/${adminPolicy.id}`, { token: editor.token, body: { subject: null, claims: { repository_owner: "acme" } } }), 403, "permission_denied");
    expectProblem(await call("DELETE", `${adminPath}/${adminPolicy.id}`, { token: editor.token }), 403, "permission_denied");
    expect((await call("GET", `${adminPath}/${adminPolicy.id}`, { token: w.adminToken })).json).toEqual(adminPolicy);
  });

  it("a JWT narrowed to other operations cannot manage policies, even on its own account", async () => {
    const w = await world();
    const narrow = await exchangeFor(w.adminToken, { scope: "orgs.read service-accounts.read" });
    expectStatus(narrow, 200);
    const jwt = narrow.json.jwt as string;
    expectStatus(await call("GET", w.path, { token: jwt }), 200);
    expectMissing(await call("POST", w.path, { token: jwt, body: githubPolicy() }), [EDIT]);
    expectMissing(await call("POST", fedPath(w.org.id, w.admin.id), { token: jwt, body: githubPolicy() }), [EDIT]);
    const scoped = await exchangeFor(w.adminToken, { scope: `orgs.read service-accounts.read ${EDIT}` });
    expectStatus(scoped, 200);
    // Holding the permission, a narrowed JWT still may not hand its own account a new credential.
    expectProblem(await call("POST", fedPath(w.org.id, w.admin.id), { token: scoped.json.jwt, body: githubPolicy() }), 403, "permission_denied");
    expect(await rowsOf(w.admin.id)).toEqual([]);
  });

  it("unauthenticated calls are 401", async () => {
    const w = await world();
    expectProblem(await call("GET", w.path), 401, "unauthenticated");
    expectProblem(await call("POST", w.path, { body: githubPolicy() }), 401, "unauthenticated");
  });
});
