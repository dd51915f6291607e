import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { DAY_MS, setColumns } from "./lifecycle-helpers.ts";
import { accountWithRole, newAccount } from "./registry-helpers.ts";
import { consoleGet, consoleLogin, consolePost, type PageRes as Page } from "./console-helpers.ts";

const signIn = consoleLogin;
const getPage = (cookie: string, path: string) => consoleGet(path, cookie);
const postForm = (cookie: string, path: string, fields: Record<string, string | string[]>, headers: Record<string, string> = {}) => consolePost(path, cookie, fields, headers);

/** The console's review lists and audit log: what each shows, bad filters inline, permissions, other orgs, the platform log. */

type Org = { id: string; slug: string; name: string };
let root: { id: string; token: string; cookie: string };
let o: { org: Org; adminId: string; adminToken: string; admin: string; viewer: string; noAudit: string; noAccounts: string };
let other: { org: Org; admin: string };

const reviewPath = (org: Org, query = "") => `/console/orgs/${org.slug}/review${query}`;
const auditPath = (org: Org, query = "") => `/console/orgs/${org.slug}/audit${query}`;

function expectPage(res: Page, status: number) {
  expect(res.status, `${res.status}: ${res.text.slice(0, 2000)}`).toBe(status);
  return res.text;
}
const fieldError = (html: string, field: string) => html.match(new RegExp(`id="f-${field}-error"[^>]*>([^<]*)<`))?.[1];
/** The event ids a page of the audit log shows, in order. */
const rowsOf = (html: string) =>
  [...html.matchAll(/<td><a href="[^"]*"><code>([^<]+)<\/code><\/a><\/td><td><code>([^<]+)<\/code><\/td><td>[^<]*<a href="[^"]*"><code>([^<]+)<\/code><\/a>/g)].map((m) => ({
    actor: m[1]!,
    action: m[2]!,
    target: m[3]!,
  }));
const actionsOf = (html: string) => rowsOf(html).map(({ action, target }) => ({ action, target }));
const hrefs = (html: string, text: string) => [...html.matchAll(new RegExp(`<a href="([^"]+)"[^>]*>${text}</a>`, "g"))].map((m) => m[1]!.replaceAll("&amp;", "&"));

beforeAll(async () => {
  const r = await platformRoot();
  root = { ...r, cookie: await signIn(r.token) };
  const h = await orgWithAdmin(r.token);
  await call("PATCH", `/api/v1/orgs/${h.org.id}`, { token: h.adminToken, body: { policy: { maxActiveTokensPerAccount: 10 } } });
  const viewer = await accountWithRole(h.adminToken, h.org.id, "viewer");
  const accountAdmin = await accountWithRole(h.adminToken, h.org.id, "service-account-admin");
  const role = await call("POST", `/api/v1/orgs/${h.org.id}/roles`, { token: h.adminToken, body: { name: unique("auditor"), operations: ["orgs.read", "audit.read"] } });
  expectStatus(role, 201);
  const auditor = await accountWithRole(h.adminToken, h.org.id, role.json.name);
  o = { org: h.org, adminId: h.admin.id, adminToken: h.adminToken, admin: await signIn(h.adminToken), viewer: await signIn(viewer.token), noAudit: await signIn(accountAdmin.token), noAccounts: await signIn(auditor.token) };
  const x = await orgWithAdmin(r.token);
  other = { org: x.org, admin: await signIn(x.adminToken) };
});

describe("review", () => {
  const now = Date.now();
  let stale: any, fresh: any, expiring: any, later: any, neverUsed: any, usedLongAgo: any, usedNow: any;
  beforeAll(async () => {
    stale = (await newAccount(o.adminToken, o.org.id, { issueToken: false })).account;
    await setColumns("service_accounts", stale.id, { created_at: now - 100 * DAY_MS, last_used_at: null });
    fresh = (await newAccount(o.adminToken, o.org.id, { issueToken: false })).account;
    const issue = async (body: Record<string, unknown>) => {
      const res = await call("POST", `/api/v1/orgs/${o.org.id}/service-accounts/${fresh.id}/tokens`, { token: o.adminToken, body: { name: unique("t"), ...body } });
      expectStatus(res, 201);
      return res.json;
    };
    expiring = await issue({ expiresInSeconds: 2 * 86_400 });
    later = await issue({ expiresInSeconds: 60 * 86_400 });
    neverUsed = await issue({});
    usedLongAgo = await issue({});
    usedNow = await issue({});
    for (const t of [expiring, later, neverUsed]) await setColumns("access_tokens", t.id, { last_used_at: null });
    await setColumns("access_tokens", usedLongAgo.id, { created_at: now - 50 * DAY_MS, last_used_at: now - 40 * DAY_MS });
    await setColumns("access_tokens", usedNow.id, { last_used_at: now });
  });

  it("stale accounts: active accounts unused for N days (90 by default)", async () => {
    const html = expectPage(await getPage(o.admin, reviewPath(o.org)), 200);
    expect(html).toContain(stale.name);
    expect(html).not.toContain(fresh.name);
    expect(html).toContain('value="90"');
    const longer = expectPage(await getPage(o.admin, reviewPath(o.org, "?view=stale&days=200")), 200);
    expect(longer).not.toContain(stale.name);
  });

  it("expiring tokens: active tokens expiring within N days (14 by default)", async () => {
    const html = expectPage(await getPage(o.admin, reviewPath(o.org, "?view=expiring")), 200);
    expect(html).toContain(expiring.hint);
    expect(html).not.toContain(later.hint);
    expect(html).not.toContain(neverUsed.hint);
    expect(expectPage(await getPage(o.admin, reviewPath(o.org, "?view=expiring&days=1")), 200)).not.toContain(expiring.hint);
    expect(expectPage(await getPage(o.admin, reviewPath(o.org, "?view=expiring&days=90")), 200)).toContain(later.hint);
  });

  it("never used: active tokens that never authenticated", async () => {
    const html = expectPage(await getPage(o.admin, reviewPath(o.org, "?view=never-used")), 200);
    for (const t of [expiring, later, neverUsed]) expect(html, t.name).toContain(t.hint);
    for (const t of [usedLongAgo, usedNow]) expect(html, t.name).not.toContain(t.hint);
  });

  it("unused tokens: active tokens not used for N days (30 by default)", async () => {
    const html = expectPage(await getPage(o.admin, reviewPath(o.org, "?view=unused")), 200);
    expect(html).toContain(usedLongAgo.hint);
    for (const t of [usedNow, neverUsed]) expect(html, t.name).not.toContain(t.hint);
    expect(expectPage(await getPage(o.admin, reviewPath(o.org, "?view=unused&days=45")), 200)).not.toContain(usedLongAgo.hint);
  });

  it("pages through a list with the API's cursor", async () => {
    const pages: string[] = [];
    let next: string | undefined = reviewPath(o.org, "?view=never-used&limit=2");
    while (next && pages.length < 20) {
      const html = expectPage(await getPage(o.admin, next), 200);
      pages.push(html);
      [next] = hrefs(html, "Next page");
      if (next) expect(next).toMatch(/view=never-used&limit=2&cursor=/);
    }
    expect(pages.length, "more than one page").toBeGreaterThan(1);
    for (const t of [expiring, later, neverUsed]) expect(pages.filter((html) => html.includes(t.hint)).length, t.name).toBe(1);
    expect(pages.some((html) => html.includes(usedNow.hint))).toBe(false);
    expect(hrefs(pages[1]!, "First page")).toEqual([reviewPath(o.org, "?view=never-used&limit=2")]);
  });

  it("a bad number of days is shown beside the field (400)", async () => {
    for (const days of ["-1", "abc", "99999"]) {
      const html = expectPage(await getPage(o.admin, reviewPath(o.org, `?view=unused&days=${days}`)), 400);
      expect(fieldError(html, "days"), html).toBeTruthy();
      expect(html).not.toContain(usedLongAgo.hint);
    }
  });

  it("a read-only principal sees the lists and no write control; one without service-accounts.read gets 403; another org 404", async () => {
    const html = expectPage(await getPage(o.viewer, reviewPath(o.org, "?view=stale")), 200);
    expect(html).toContain(stale.name);
    expect(html).not.toContain('method="post" action="/console/orgs');
    expect(expectPage(await getPage(o.noAccounts, reviewPath(o.org)), 403)).toContain("service-accounts.read");
    expectPage(await getPage(other.admin, reviewPath(o.org)), 404);
  });
});

describe("audit log", () => {
  let roles: { id: string; name: string }[];
  beforeAll(async () => {
    roles = [];
    for (let i = 0; i < 3; i++) {
      const res = await call("POST", `/api/v1/orgs/${o.org.id}/roles`, { token: o.adminToken, body: { name: unique("r"), operations: ["orgs.read"] } });
      expectStatus(res, 201);
      roles.push(res.json);
    }
  });

  it("shows the org's events newest first, filtered by action, target and actor", async () => {
    const page = expectPage(await getPage(o.admin, auditPath(o.org)), 200);
    expect(page, "an actor links to the log filtered by it").toContain(`href="${auditPath(o.org, `?actor=${o.adminId}`)}"`);
    expect(page, "a target too").toContain(`href="${auditPath(o.org, `?target=${roles[0]!.id}`)}"`);
    const all = actionsOf(page);
    expect(all.slice(0, 3), "newest first").toEqual([...roles].reverse().map((r) => ({ action: "role.created", target: r.id })));
    const byAction = rowsOf(expectPage(await getPage(o.admin, auditPath(o.org, "?action=role.created")), 200));
    expect(byAction.length).toBeGreaterThanOrEqual(3);
    expect(byAction.every((e) => e.action === "role.created"), JSON.stringify(byAction)).toBe(true);
    const family = rowsOf(expectPage(await getPage(o.admin, auditPath(o.org, "?action=role.*")), 200));
    expect(family.every((e) => e.action.startsWith("role.")), JSON.stringify(family)).toBe(true);
    expect(actionsOf(expectPage(await getPage(o.admin, auditPath(o.org, `?target=${roles[1]!.id}`)), 200))).toEqual([{ action: "role.created", target: roles[1]!.id }]);
    const byAdmin = rowsOf(expectPage(await getPage(o.admin, auditPath(o.org, `?actor=${o.adminId}`)), 200));
    expect(byAdmin.every((e) => e.actor === o.adminId) && byAdmin.some((e) => e.target === roles[0]!.id), JSON.stringify(byAdmin)).toBe(true);
    const byRoot = rowsOf(expectPage(await getPage(o.admin, auditPath(o.org, `?actor=${root.id}`)), 200));
    expect(byRoot.length).toBeGreaterThan(0);
    expect(byRoot.every((e) => e.actor === root.id && e.action !== "role.created"), JSON.stringify(byRoot)).toBe(true);
  });

  it("filters by a time range (UTC)", async () => {
    const past = expectPage(await getPage(o.admin, auditPath(o.org, "?to=2001-01-01T00:00")), 200);
    expect(rowsOf(past)).toEqual([]);
    expect(past).toContain("No event matches.");
    expect(rowsOf(expectPage(await getPage(o.admin, auditPath(o.org, "?from=2099-01-01T00:00")), 200))).toEqual([]);
    const since = new Date(Date.now() - 3_600_000).toISOString().slice(0, 16);
    const html = expectPage(await getPage(o.admin, auditPath(o.org, `?from=${since}&target=${roles[0]!.id}`)), 200);
    expect(actionsOf(html)).toEqual([{ action: "role.created", target: roles[0]!.id }]);
    expect(html, "the filter stays in the form").toContain(`value="${since}"`);
  });

  it("pages with the API's cursor, keeping the filters", async () => {
    const first = expectPage(await getPage(o.admin, auditPath(o.org, "?action=role.created&limit=2")), 200);
    expect(rowsOf(first).map((e) => e.target)).toEqual([roles[2]!.id, roles[1]!.id]);
    const [next] = hrefs(first, "Next page");
    expect(next, first).toMatch(/action=role\.created/);
    const second = expectPage(await getPage(o.admin, next!), 200);
    expect(rowsOf(second).map((e) => e.target)[0]).toBe(roles[0]!.id);
    expect(hrefs(second, "First page")).toEqual([auditPath(o.org, "?action=role.created&limit=2")]);
  });

  it("a bad time or cursor is shown inline (400)", async () => {
    const html = expectPage(await getPage(o.admin, auditPath(o.org, "?from=yesterday")), 400);
    expect(fieldError(html, "from"), html).toBeTruthy();
    expect(rowsOf(html)).toEqual([]);
    expect(expectPage(await getPage(o.admin, auditPath(o.org, "?cursor=not-a-cursor")), 400)).toContain("The cursor is not one this API returned");
  });

  it("audit.read decides: the viewer reads it (no write control), service-account-admin gets 403, another org 404", async () => {
    const html = expectPage(await getPage(o.viewer, auditPath(o.org)), 200);
    expect(rowsOf(html).length).toBeGreaterThan(0);
    expect(html).not.toContain('method="post" action="/console/orgs');
    expect(expectPage(await getPage(o.noAudit, auditPath(o.org)), 403)).toContain("audit.read");
    expectPage(await getPage(other.admin, auditPath(o.org)), 404);
  });

  it("the platform-wide log is the root's: it shows platform events; an org admin gets 403", async () => {
    const html = expectPage(await getPage(root.cookie, "/console/audit"), 200);
    expect(html).toContain("Platform audit log");
    expect(rowsOf(html).some((e) => e.action === "console.session.opened"), html.slice(0, 3000)).toBe(true);
    expect(expectPage(await getPage(o.admin, "/console/audit"), 403)).toContain("permission_denied");
    expect(expectPage(await getPage(o.admin, `/console/orgs/${o.org.slug}`), 200)).not.toContain('href="/console/audit"');
    expect(await getPage(root.cookie, `/console/orgs/${o.org.slug}`).then((p) => p.text)).toContain('href="/console/audit"');
  });

  it("review and audit pages take no posts", async () => {
    expect((await postForm(o.admin, reviewPath(o.org), {})).status).toBe(404);
    expect((await postForm(o.admin, auditPath(o.org), {})).status).toBe(404);
  });
});
