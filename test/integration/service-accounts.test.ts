import { forgetCredentials } from "../../src/domain/credentials/record-cache.ts";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { tokenKey, type TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import { sha256Hex } from "../../src/lib/crypto.ts";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import {
  auditRows,
  authStatus,
  DAY_MS,
  expectFieldError,
  expectProblem,
  expectUnauthenticated,
  listAll,
  newAccount,
  newOrg,
  sleep,
} from "./registry-helpers.ts";

const EMAIL_DOMAIN = "svc.keyward.dev"; // SERVICE_ACCOUNT_EMAIL_DOMAIN in wrangler.toml

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const sas = (org: string) => `/api/v1/orgs/${org}/service-accounts`;
const near = (iso: string, expected: number, slackMs = 60_000) => Math.abs(Date.parse(iso) - expected) < slackMs;

describe("service accounts: create", () => {
  it("creates an account with every field; the response and a later read agree", async () => {
    const { org, admin, adminToken } = await orgWithAdmin(root.token);
    const name = unique("Deploy-Bot");
    const email = `${unique("Deploy")}@Example.COM`;
    const res = await call("POST", sas(org.id), {
      token: adminToken,
      body: {
        name,
        email,
        displayName: "Deploy bot",
        description: "Ships the web app",
        groups: ["ci", "deploy", "ci"],
        externalId: "ext-42",
        daysValid: 30,
      },
    });
    expectStatus(res, 201);
    const sa = res.json;
    expect(sa.id, res.text).toMatch(/^sa_[0-9A-Za-z]{10,}$/);
    expect(sa).toMatchObject({
      orgId: org.id,
      name,
      email: email.toLowerCase(),
      displayName: "Deploy bot",
      description: "Ships the web app",
      groups: ["ci", "deploy"],
      externalId: "ext-42",
      status: "active",
      createdBy: admin.id,
      lastUsedAt: null,
    });
    expect(near(sa.expiresAt, Date.now() + 30 * DAY_MS), `expiresAt ${sa.expiresAt}`).toBe(true);
    expect(sa, res.text).not.toHaveProperty("token");
    const read = await call("GET", `${sas(org.id)}/${sa.id}`, { token: adminToken });
    expectStatus(read, 200);
    expect(read.json, read.text).toEqual(sa);
    const events = await auditRows(sa.id);
    expect(events.map((e) => e.action), JSON.stringify(events)).toContain("service_account.created");
    expect(events[0]!.actor_id).toBe(admin.id);
  });

  it("generates <name>@<org-slug>.<domain> when no email is given, de-duplicating collisions", async () => {
    const org = await newOrg(root.token);
    const plain = await call("POST", sas(org.id), { token: root.token, body: { name: "builder" } });
    expectStatus(plain, 201);
    expect(plain.json.email, plain.text).toBe(`builder@${org.slug}.${EMAIL_DOMAIN}`);
    const spaced = await call("POST", sas(org.id), { token: root.token, body: { name: "Deploy Bot!" } });
    expectStatus(spaced, 201);
    expect(spaced.json.email, spaced.text).toBe(`deploy-bot@${org.slug}.${EMAIL_DOMAIN}`);
    // "deploy bot" is another name but reduces to the same local part: it gets a suffixed email,
    // and the 201 body must show the email that was actually stored.
    const clash = await call("POST", sas(org.id), { token: root.token, body: { name: "deploy bot" } });
    expectStatus(clash, 201);
    const stored = await call("GET", `${sas(org.id)}/${clash.json.id}`, { token: root.token });
    expect(stored.json.email, stored.text).toMatch(new RegExp(`^deploy-bot-[a-z0-9]+@${org.slug}\\.${EMAIL_DOMAIN.replaceAll(".", "\\.")}$`));
    expect(clash.json.email, `201 body ${clash.text} vs stored ${stored.text}`).toBe(stored.json.email);
    expect(clash.json.email).not.toBe(spaced.json.email);
  });

  it("takes an explicit expiresAt with an offset and returns it in UTC", async () => {
    const org = await newOrg(root.token);
    const at = new Date(Date.now() + 10 * DAY_MS);
    at.setUTCMilliseconds(0);
    // The same instant written in UTC+02:00.
    const withOffset = new Date(at.getTime() + 2 * 3600_000).toISOString().replace("Z", "+02:00");
    const res = await call("POST", sas(org.id), { token: root.token, body: { name: unique("sa"), expiresAt: withOffset } });
    expectStatus(res, 201);
    expect(res.json.expiresAt, res.text).toBe(at.toISOString());
  });

  it("issueToken returns a working sat_ token once, with a hint", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const res = await call("POST", sas(org.id), { token: adminToken, body: { name: unique("sa"), issueToken: { name: "ci", expiresInSeconds: 3600 } } });
    expectStatus(res, 201);
    const token = res.json.token;
    expect(token.token, res.text).toMatch(/^sat_[0-9A-Za-z]{36,}$/);
    expect(token.id).toMatch(/^tok_/);
    expect(token.accountId).toBe(res.json.id);
    expect(token.name).toBe("ci");
    expect(token.status).toBe("active");
    expect(near(token.expiresAt, Date.now() + 3600_000)).toBe(true);
    expect(token.hint.startsWith(token.token.slice(0, 8)), token.hint).toBe(true);
    expect(token.hint.endsWith(token.token.slice(-4)), token.hint).toBe(true);
    expect(token.hint).not.toContain(token.token.slice(8, -4));
    expectStatus(await authStatus(token.token), 200);
    const read = await call("GET", `${sas(org.id)}/${res.json.id}`, { token: adminToken });
    expect(read.text).not.toContain(token.token);
  });

  it("names are unique per org case-insensitively (409 name_taken) but free in another org", async () => {
    const a = await newOrg(root.token);
    const b = await newOrg(root.token);
    const name = unique("Worker");
    expectStatus(await call("POST", sas(a.id), { token: root.token, body: { name } }), 201);
    expectProblem(await call("POST", sas(a.id), { token: root.token, body: { name: name.toUpperCase() } }), 409, "name_taken");
    expectProblem(await call("POST", sas(a.id), { token: root.token, body: { name: `  ${name.toLowerCase()}  ` } }), 409, "name_taken");
    expectStatus(await call("POST", sas(b.id), { token: root.token, body: { name } }), 201);
  });

  it("emails are unique case-insensitively (409 email_taken), across orgs too", async () => {
    const a = await newOrg(root.token);
    const b = await newOrg(root.token);
    const email = `${unique("mail")}@example.test`;
    expectStatus(await call("POST", sas(a.id), { token: root.token, body: { name: unique("sa"), email } }), 201);
    expectProblem(await call("POST", sas(a.id), { token: root.token, body: { name: unique("sa"), email: email.toUpperCase() } }), 409, "email_taken");
    expectProblem(await call("POST", sas(b.id), { token: root.token, body: { name: unique("sa"), email } }), 409, "email_taken");
  });

  it.each([0, 731, 1.5, -1, "5", null])("daysValid %j is 400 naming daysValid", async (daysValid) => {
    const org = await newOrg(root.token);
    expectFieldError(await call("POST", sas(org.id), { token: root.token, body: { name: unique("sa"), daysValid } }), "daysValid");
  });

  it("daysValid 1 and 730 are the accepted bounds", async () => {
    const org = await newOrg(root.token);
    for (const days of [1, 730]) {
      const res = await call("POST", sas(org.id), { token: root.token, body: { name: unique("sa"), daysValid: days } });
      expectStatus(res, 201);
      expect(near(res.json.expiresAt, Date.now() + days * DAY_MS), res.text).toBe(true);
    }
  });

  it("daysValid and expiresAt together, a past expiresAt, one beyond 730 days or without a zone are 400 naming expiresAt", async () => {
    const org = await newOrg(root.token);
    const future = new Date(Date.now() + 5 * DAY_MS).toISOString();
    for (const body of [
      { daysValid: 5, expiresAt: future },
      { expiresAt: new Date(Date.now() - 60_000).toISOString() },
      { expiresAt: new Date(Date.now() + 731 * DAY_MS).toISOString() },
      { expiresAt: future.replace("Z", "") },
      { expiresAt: "tomorrow" },
    ]) {
      const name = unique("sa");
      expectFieldError(await call("POST", sas(org.id), { token: root.token, body: { name, ...body } }), "expiresAt");
      const list = await call("GET", `${sas(org.id)}?q=${name}`, { token: root.token });
      expect(list.json.items, `nothing created for ${JSON.stringify(body)}: ${list.text}`).toEqual([]);
    }
  });

  it.each([
    ["name", { name: "" }],
    ["name", { name: "bad\u0000name" }],
    ["name", { name: "x".repeat(65) }],
    ["email", { email: "not-an-email" }],
    ["groups", { groups: Array.from({ length: 51 }, (_, i) => `g${i}`) }],
    ["0", { groups: ["tab\there"] }],
    ["externalId", { externalId: "" }],
    ["displayName", { displayName: "line\nbreak" }],
    ["body", { platformPermissions: ["platform.root"] }],
    ["body", { orgId: "org_x" }],
  ])("rejects an invalid field (%s)", async (field, body) => {
    const org = await newOrg(root.token);
    expectFieldError(await call("POST", sas(org.id), { token: root.token, body: { name: unique("sa"), ...body } }), field);
  });

  it("grants roles given at creation", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const { account } = await newAccount(adminToken, org.id, { roles: [{ role: "viewer" }] });
    const list = await call("GET", `${sas(org.id)}/${account.id}/role-assignments`, { token: adminToken });
    expectStatus(list, 200);
    expect(list.json.items.map((r: any) => [r.role, r.scope.type, r.scope.id]), list.text).toEqual([["viewer", "org", org.id]]);
  });

  it("a role listed twice at creation is a 4xx (not a 500) and creates nothing", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const name = unique("twice");
    const res = await call("POST", sas(org.id), { token: adminToken, body: { name, roles: [{ role: "viewer" }, { role: "viewer" }] } });
    expect(res.status, res.text).toBeGreaterThanOrEqual(400);
    expect(res.status, res.text).toBeLessThan(500);
    const list = await call("GET", `${sas(org.id)}?q=${name}`, { token: adminToken });
    expect(list.json.items, list.text).toEqual([]);
  });

  it("a create whose token cannot be issued fails as a whole: no account is left behind", async () => {
    const org = await newOrg(root.token, { policy: { maxTokenLifetimeDays: 1 } });
    const name = unique("half");
    const res = await call("POST", sas(org.id), { token: root.token, body: { name, issueToken: { expiresInSeconds: 3 * 86_400 } } });
    expectProblem(res, 400, "token_lifetime_exceeded");
    const list = await call("GET", `${sas(org.id)}?q=${name}`, { token: root.token });
    expect(list.json.items, `the failed create left an account: ${list.text}`).toEqual([]);
    // The same request with an allowed lifetime must then succeed (not 409 name_taken).
    const retry = await call("POST", sas(org.id), { token: root.token, body: { name, issueToken: { expiresInSeconds: 3600 } } });
    expectStatus(retry, 201);
  });
});

describe("service accounts: read and list", () => {
  it("an unknown account is 404", async () => {
    const org = await newOrg(root.token);
    expectProblem(await call("GET", `${sas(org.id)}/sa_doesNotExist0000000000`, { token: root.token }), 404, "not_found");
    expectProblem(await call("GET", `${sas(org.id)}/${unique("x")}`, { token: root.token }), 404, "not_found");
  });

  it("searches with q in name, email and display name, case-insensitively and literally", async () => {
    const org = await newOrg(root.token);
    const tag = unique("zq").replace("-", "");
    const mk = async (body: Record<string, unknown>) =>
      (await newAccount(root.token, org.id, { email: `${unique("m")}@example.test`, issueToken: false, ...body })).account.id as string;
    const alpha = await mk({ name: `${tag}-alpha` });
    const beta = await mk({ name: "beta-x", email: `b-${tag}-mail@example.test` });
    const gamma = await mk({ name: "gamma-y", displayName: `Gamma ${tag.toUpperCase()}` });
    const under = await mk({ name: "under_score" });
    const underDecoy = await mk({ name: "underxscore" });
    const percent = await mk({ name: "per%cent" });
    const percentDecoy = await mk({ name: "perxxcent" });
    const ids = async (q: string) => {
      const res = await call("GET", `${sas(org.id)}?q=${encodeURIComponent(q)}`, { token: root.token });
      expectStatus(res, 200);
      return res.json.items.map((a: { id: string }) => a.id).sort();
    };
    expect(await ids(tag)).toEqual([alpha, beta, gamma].sort());
    expect(await ids(tag.toUpperCase())).toEqual([alpha, beta, gamma].sort());
    expect(await ids("ALPHA")).toEqual([alpha]);
    expect(await ids(`${tag}-mail`)).toEqual([beta]);
    expect(await ids("under_sc")).toEqual([under]);
    expect(await ids("per%cent")).toEqual([percent]);
    expect(await ids("underxsc")).toEqual([underDecoy]);
    expect(await ids("perxx")).toEqual([percentDecoy]);
    expect(await ids("nothing-matches-this")).toEqual([]);
    expectFieldError(await call("GET", `${sas(org.id)}?q=${"q".repeat(129)}`, { token: root.token }), "q");
  });

  it("q does not match the org id (it is not part of a name, email or display name)", async () => {
    const org = await newOrg(root.token);
    await newAccount(root.token, org.id, { name: "plain-one", email: `${unique("p")}@example.test`, issueToken: false });
    await newAccount(root.token, org.id, { name: "plain-two", email: `${unique("p")}@example.test`, issueToken: false });
    const res = await call("GET", `${sas(org.id)}?q=${org.id}`, { token: root.token });
    expectStatus(res, 200);
    expect(res.json.items.map((a: { name: string }) => a.name), `q=${org.id} matched: ${res.text}`).toEqual([]);
    const slash = await call("GET", `${sas(org.id)}?q=%2F`, { token: root.token });
    expect(slash.json.items.map((a: { name: string }) => a.name), `q=/ matched: ${slash.text}`).toEqual([]);
  });

  it("filters by status and externalId", async () => {
    const org = await newOrg(root.token);
    const a = (await newAccount(root.token, org.id, { externalId: "ext-a", issueToken: false })).account;
    const b = (await newAccount(root.token, org.id, { externalId: "ext-b", issueToken: false })).account;
    const c = (await newAccount(root.token, org.id, { issueToken: false })).account;
    expectStatus(await call("PATCH", `${sas(org.id)}/${c.id}`, { token: root.token, body: { status: "disabled" } }), 200);
    const ids = async (query: string) => {
      const res = await call("GET", `${sas(org.id)}?${query}`, { token: root.token });
      expectStatus(res, 200);
      return res.json.items.map((x: { id: string }) => x.id).sort();
    };
    expect(await ids("externalId=ext-b")).toEqual([b.id]);
    expect(await ids("externalId=ext")).toEqual([]);
    expect(await ids("status=disabled")).toEqual([c.id]);
    expect(await ids("status=active")).toEqual([a.id, b.id].sort());
    expect(await ids("status=expired")).toEqual([]);
    expect(await ids("status=active&externalId=ext-a")).toEqual([a.id]);
    expect(await ids("status=disabled&externalId=ext-a")).toEqual([]);
    expectFieldError(await call("GET", `${sas(org.id)}?status=gone`, { token: root.token }), "status");
  });

  it("filters by group (exact membership)", async () => {
    const org = await newOrg(root.token);
    const a = (await newAccount(root.token, org.id, { groups: ["ci", "deploy"], issueToken: false })).account;
    const b = (await newAccount(root.token, org.id, { groups: ["deploy"], issueToken: false })).account;
    await newAccount(root.token, org.id, { groups: [], issueToken: false });
    const ids = async (query: string) => {
      const res = await call("GET", `${sas(org.id)}?${query}`, { token: root.token });
      expectStatus(res, 200);
      return res.json.items.map((x: { id: string }) => x.id).sort();
    };
    expect(await ids("group=deploy")).toEqual([a.id, b.id].sort());
    expect(await ids("group=ci")).toEqual([a.id]);
    expect(await ids("group=dep")).toEqual([]);
    expect(await ids("group=ci&status=active")).toEqual([a.id]);
  });

  it("pages 5 accounts 2 at a time: 2, 2, 1, no duplicates, nextCursor null at the end", async () => {
    const org = await newOrg(root.token);
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await newAccount(root.token, org.id, { issueToken: false })).account.id);
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const res: Awaited<ReturnType<typeof call>> = await call("GET", `${sas(org.id)}?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: root.token });
      expectStatus(res, 200);
      pages.push(res.json.items.map((a: { id: string }) => a.id));
      cursor = res.json.nextCursor;
      expect(pages.length, "too many pages").toBeLessThanOrEqual(3);
    } while (cursor);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    const seen = pages.flat();
    expect(new Set(seen).size, `duplicates in ${JSON.stringify(pages)}`).toBe(5);
    expect([...seen].sort()).toEqual([...made].sort());
    const whole = await call("GET", `${sas(org.id)}?limit=5`, { token: root.token });
    expect(whole.json.items.length, whole.text).toBe(5);
    expect(whole.json.nextCursor, whole.text).toBeNull();
    expect(whole.json.items.map((a: { id: string }) => a.id)).toEqual(seen);
  });

  it.each(["garbage!!", "bm90LWpzb24", btoa(JSON.stringify({ t: "x", id: 1 })), btoa("null"), "x".repeat(513)])(
    "a cursor it never returned (%s) is 400",
    async (cursor) => {
      const org = await newOrg(root.token);
      expectFieldError(await call("GET", `${sas(org.id)}?limit=2&cursor=${encodeURIComponent(cursor)}`, { token: root.token }), "cursor");
    },
  );

  it.each(["0", "201", "-1", "abc", "1.5"])("limit=%s is 400", async (limit) => {
    const org = await newOrg(root.token);
    expectFieldError(await call("GET", `${sas(org.id)}?limit=${limit}`, { token: root.token }), "limit");
  });
});

describe("service accounts: patch", () => {
  it("renames (409 name_taken on a clash, case change of itself allowed) and edits descriptive fields", async () => {
    const org = await newOrg(root.token);
    const one = (await newAccount(root.token, org.id, { name: "first", displayName: "First", externalId: "e1", groups: ["a"], issueToken: false })).account;
    await newAccount(root.token, org.id, { name: "second", issueToken: false });
    const path = `${sas(org.id)}/${one.id}`;
    expectProblem(await call("PATCH", path, { token: root.token, body: { name: "SECOND" } }), 409, "name_taken");
    expect((await call("GET", path, { token: root.token })).json.name).toBe("first");
    const recased = await call("PATCH", path, { token: root.token, body: { name: "First" } });
    expectStatus(recased, 200);
    expect(recased.json.name).toBe("First");
    const edited = await call("PATCH", path, {
      token: root.token,
      body: { name: "renamed", displayName: null, description: "now described", groups: ["x", "y", "x"], externalId: null },
    });
    expectStatus(edited, 200);
    expect(edited.json).toMatchObject({ name: "renamed", displayName: null, description: "now described", groups: ["x", "y"], externalId: null, email: one.email });
    expect(Date.parse(edited.json.updatedAt)).toBeGreaterThanOrEqual(Date.parse(one.updatedAt));
    const read = await call("GET", path, { token: root.token });
    expect(read.json, read.text).toEqual(edited.json);
    // The old name is free again.
    expectStatus(await call("POST", sas(org.id), { token: root.token, body: { name: "first" } }), 201);
    expect((await auditRows(one.id)).map((e) => e.action)).toContain("service_account.updated");
  });

  it("disabling kills the account's token at once; re-enabling brings it back", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const { account, token } = await newAccount(adminToken, org.id, { roles: [{ role: "viewer" }] });
    const path = `${sas(org.id)}/${account.id}`;
    expectStatus(await call("GET", `/api/v1/orgs/${org.id}`, { token }), 200);

    const disabled = await call("PATCH", path, { token: adminToken, body: { status: "disabled" } });
    expectStatus(disabled, 200);
    expect(disabled.json.status).toBe("disabled");
    expectUnauthenticated(await call("GET", `/api/v1/orgs/${org.id}`, { token }));
    expectUnauthenticated(await authStatus(token));
    expect((await call("GET", path, { token: adminToken })).json.status).toBe("disabled");
    expectProblem(await call("POST", `${path}/tokens`, { token: adminToken, body: {} }), 409, "account_not_active");

    const enabled = await call("PATCH", path, { token: adminToken, body: { status: "active" } });
    expectStatus(enabled, 200);
    expect(enabled.json.status).toBe("active");
    expectStatus(await call("GET", `/api/v1/orgs/${org.id}`, { token }), 200);
    const actions = (await auditRows(account.id)).map((e) => e.action);
    expect(actions).toContain("service_account.disabled");
    expect(actions).toContain("service_account.enabled");
  });

  it("sets, replaces and clears the validity", async () => {
    const org = await newOrg(root.token);
    const { account, token } = await newAccount(root.token, org.id);
    const path = `${sas(org.id)}/${account.id}`;
    const days = await call("PATCH", path, { token: root.token, body: { daysValid: 10 } });
    expectStatus(days, 200);
    expect(near(days.json.expiresAt, Date.now() + 10 * DAY_MS), days.text).toBe(true);
    const at = new Date(Date.now() + 3 * DAY_MS).toISOString();
    const explicit = await call("PATCH", path, { token: root.token, body: { expiresAt: at } });
    expectStatus(explicit, 200);
    expect(explicit.json.expiresAt).toBe(at);
    expectStatus(await authStatus(token), 200);
    const cleared = await call("PATCH", path, { token: root.token, body: { expiresAt: null } });
    expectStatus(cleared, 200);
    expect(cleared.json.expiresAt).toBeNull();
    expect((await call("GET", path, { token: root.token })).json.expiresAt).toBeNull();
    expectStatus(await authStatus(token), 200);
  });

  it.each([
    ["expiresAt", { daysValid: 3, expiresAt: new Date(Date.now() + DAY_MS).toISOString() }],
    ["expiresAt", { expiresAt: new Date(Date.now() - DAY_MS).toISOString() }],
    ["daysValid", { daysValid: 731 }],
    ["daysValid", { daysValid: 0 }],
    ["status", { status: "expired" }],
    ["status", { status: "deleted" }],
    ["name", { name: "" }],
    ["body", { email: "new@example.test" }],
    ["body", { orgId: "org_other" }],
  ])("rejects an invalid patch (%s) and leaves the account unchanged", async (field, body) => {
    const org = await newOrg(root.token);
    const { account } = await newAccount(root.token, org.id, { issueToken: false, daysValid: 5 });
    const path = `${sas(org.id)}/${account.id}`;
    expectFieldError(await call("PATCH", path, { token: root.token, body }), field);
    const read = await call("GET", path, { token: root.token });
    expect(read.json, read.text).toEqual(account);
  });
});

describe("service accounts: expiry", () => {
  it("an account past its expiresAt shows as expired and its token is refused", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const res = await call("POST", sas(org.id), {
      token: adminToken,
      body: { name: unique("brief"), expiresAt: new Date(Date.now() + 3000).toISOString(), issueToken: true },
    });
    expectStatus(res, 201);
    const token = res.json.token.token;
    expectStatus(await authStatus(token), 200);
    await sleep(3500);
    expectUnauthenticated(await authStatus(token));
    const read = await call("GET", `${sas(org.id)}/${res.json.id}`, { token: adminToken });
    expect(read.json.status, read.text).toBe("expired");
    const expired = await call("GET", `${sas(org.id)}?status=expired`, { token: adminToken });
    expect(expired.json.items.map((a: { id: string }) => a.id), expired.text).toEqual([res.json.id]);
    expectProblem(await call("POST", `${sas(org.id)}/${res.json.id}/tokens`, { token: adminToken, body: {} }), 409, "account_not_active");
  });

  it("status 'expired' is derived from expires_at, and the KV record's account expiry is enforced on read", async () => {
    const org = await newOrg(root.token);
    const { account, token } = await newAccount(root.token, org.id, { daysValid: 30 });
    const past = Date.now() - 60_000;
    await env.DB.prepare("update service_accounts set expires_at = ? where id = ?").bind(past, account.id).run();
    const read = await call("GET", `${sas(org.id)}/${account.id}`, { token: root.token });
    expect(read.json.status, read.text).toBe("expired");
    expect(read.json.expiresAt).toBe(new Date(past).toISOString());
    const ids = async (status: string) =>
      (await call("GET", `${sas(org.id)}?status=${status}`, { token: root.token })).json.items.map((a: { id: string }) => a.id);
    expect(await ids("expired")).toEqual([account.id]);
    expect(await ids("active")).toEqual([]);

    const key = tokenKey(await sha256Hex(token));
    const record = await env.TOKENS.get<TokenRecord>(key, "json");
    expect(record, "the token's KV record exists").not.toBeNull();
    expect(record!.account.accountId).toBe(account.id);
    expect(record!.account.expiresAt).toBeGreaterThan(Date.now());
    expectStatus(await authStatus(token), 200);
    await env.TOKENS.put(key, JSON.stringify({ ...record, account: { ...record!.account, expiresAt: past } }));
    // A KV write behind the service's back reaches an isolate's token cache only after its TTL; skip that wait.
    forgetCredentials({ accountId: account.id });
    expectUnauthenticated(await authStatus(token));
  });
});

describe("service accounts: delete", () => {
  it("deletes: 204, then 404, its token dead at once, roles and tokens gone, audit event written", async () => {
    const { org, admin, adminToken } = await orgWithAdmin(root.token);
    const { account, token } = await newAccount(adminToken, org.id, { roles: [{ role: "viewer" }] });
    const path = `${sas(org.id)}/${account.id}`;
    expectStatus(await authStatus(token), 200);
    const del = await call("DELETE", path, { token: adminToken });
    expectStatus(del, 204);
    expect(del.text).toBe("");
    expectProblem(await call("GET", path, { token: adminToken }), 404, "not_found");
    expectProblem(await call("DELETE", path, { token: adminToken }), 404, "not_found");
    expectProblem(await call("PATCH", path, { token: adminToken, body: { name: "zombie" } }), 404, "not_found");
    expectUnauthenticated(await authStatus(token));
    const list = await listAll(sas(org.id), adminToken);
    expect(list.map((a) => a.id)).not.toContain(account.id);

    const events = await auditRows(account.id);
    const deleted = events.find((e) => e.action === "service_account.deleted");
    expect(deleted, JSON.stringify(events)).toBeDefined();
    expect(deleted!.org_id).toBe(org.id);
    expect(deleted!.actor_id).toBe(admin.id);
    const left = await env.DB.prepare(
      "select (select count(*) from role_assignments where account_id = ?1) as roles, (select count(*) from access_tokens where account_id = ?1) as tokens",
    )
      .bind(account.id)
      .first<{ roles: number; tokens: number }>();
    expect(left).toEqual({ roles: 0, tokens: 0 });
    expect(await env.TOKENS.get(tokenKey(await sha256Hex(token)))).toBeNull();
  });

  it("an account cannot delete itself", async () => {
    const { org, admin, adminToken } = await orgWithAdmin(root.token);
    expectProblem(await call("DELETE", `${sas(org.id)}/${admin.id}`, { token: adminToken }), 400, "bad_request");
    expectStatus(await call("GET", `${sas(org.id)}/${admin.id}`, { token: adminToken }), 200);
  });
});
