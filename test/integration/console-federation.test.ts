import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { auditRows, newAccount } from "./registry-helpers.ts";
import { consoleGet, consoleLogin, consolePost, expectPage, expectRedirect, flashOf, follow, hasFormTo } from "./console-helpers.ts";

/**
 * The account page's "Federated credentials" section (issue 18 on the console of issue 17): the
 * list, the add form (the REST route's schema and the same error codes inline), enable/disable and
 * remove, over the same domain service as /api/v1/.../federated-credentials. The workers project
 * allows the issuers named in vitest.config.ts (FEDERATION_ALLOWED_ISSUERS).
 */

const GITHUB = "https://token.actions.githubusercontent.com";

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

/** An org with its admin (signed in to the console) and a target account to put policies on. */
async function world() {
  const o = await orgWithAdmin(root.token);
  const target = await newAccount(o.adminToken, o.org.id, { roles: [{ role: "viewer" }] });
  const account = `/console/orgs/${o.org.slug}/service-accounts/${target.account.id}`;
  return {
    ...o,
    target: target.account,
    api: `/api/v1/orgs/${o.org.id}/service-accounts/${target.account.id}/federated-credentials`,
    account,
    section: `${account}/federated-credentials`,
    cookie: await consoleLogin(o.adminToken),
  };
}
type World = Awaited<ReturnType<typeof world>>;

async function apiPolicy(w: World, body: Record<string, unknown> = {}) {
  const res = await call("POST", w.api, { token: w.adminToken, body: { name: unique("gh"), issuer: GITHUB, subject: "repo:acme/deploy-bot:environment:prod", ...body } });
  expectStatus(res, 201);
  return res.json;
}
const policiesOf = async (w: World) => (await call("GET", w.api, { token: w.adminToken })).json.items as any[];
const rowCount = async (accountId: string) => (await env.DB.prepare("select count(*) as n from federated_credentials where service_account_id = ?").bind(accountId).first<{ n: number }>())!.n;

const addForm = (extra: Record<string, string> = {}) => ({
  from: "account",
  name: unique("deploy"),
  issuer: GITHUB,
  subject: "repo:acme/deploy-bot:environment:prod",
  claims: "ref=refs/heads/main\njob_workflow_ref = acme/deploy-bot/.github/workflows/*@refs/heads/main\n",
  audiences: "https://keyward.example.test\nsts.example.test",
  maxTokenAgeSeconds: "600",
  // What a browser sends for the form as shown: the box "accepted once" is ticked by default.
  singleUseOffered: "1",
  singleUse: "on",
  ...extra,
});

/** The add form's "accepted once" checkbox, as rendered. */
const singleUseBox = (html: string) => {
  const box = html.match(/<input id="f-fed-singleUse"[^>]*>/)?.[0];
  expect(box, "the form has the singleUse checkbox").toBeDefined();
  return box!;
};

describe("console federated credentials: the list", () => {
  it("the account page lists each policy (name, issuer, subject, conditions, audiences, max age, status) after the Access section", async () => {
    const w = await world();
    const one = await apiPolicy(w, { claims: { ref: "refs/heads/main", environment: "prod*" }, maxTokenAgeSeconds: 600 });
    const two = await apiPolicy(w, { subject: null, claims: { repository_owner: "acme" }, audiences: ["aud-a", "aud-b"], enabled: false });
    const html = expectPage(await consoleGet(w.account, w.cookie));
    const section = html.slice(html.indexOf('id="federated-heading"'));
    expect(html.indexOf('id="access-heading"')).toBeGreaterThan(0);
    expect(html.indexOf('id="federated-heading"')).toBeGreaterThan(html.indexOf('id="access-heading"'));
    for (const text of [one.name, two.name, GITHUB, "repo:acme/deploy-bot:environment:prod", "ref=refs/heads/main", "environment=prod*", "repository_owner=acme", one.audiences[0], "aud-a", "aud-b", "600 s", "no bound"]) {
      expect(section, text).toContain(text);
    }
    expect(section).toMatch(/<span class="badge active">enabled<\/span>/);
    expect(section).toMatch(/<span class="badge disabled">disabled<\/span>/);
    expect(html).toContain("pending invitations and federated credentials (trust policies) are removed.");
    // Its own page shows the same list.
    expect(expectPage(await consoleGet(w.section, w.cookie))).toContain(two.name);
  });

  it("an account without policies says so; the admin is offered the form with the allowed issuers only", async () => {
    const w = await world();
    const html = expectPage(await consoleGet(w.account, w.cookie));
    expect(html).toContain("No federated credential.");
    expect(hasFormTo(html, w.section)).toBe(true);
    const options = [...html.matchAll(/<select id="f-fed-issuer" name="issuer"[^>]*>([\s\S]*?)<\/select>/g)][0]![1]!;
    const values = [...options.matchAll(/<option value="([^"]*)"/g)].map((m) => m[1]);
    expect(values).toContain(GITHUB);
    expect(values).toContain("https://gitlab.com");
    expect(values.every((v) => v!.startsWith("https://") || v!.startsWith("http://127.0.0.1"))).toBe(true);
    // Its form shares field names with the token and key forms: every element id stays unique.
    const ids = [...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
    expect(ids).toContain("f-fed-name");
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  });
});

describe("console federated credentials: add, toggle, remove", () => {
  it("adds a policy from the form (claims as name=pattern lines, audiences, max age), audited with the admin as actor", async () => {
    const w = await world();
    const form = addForm({ description: "Deploys from main" });
    const res = await consolePost(w.section, w.cookie, form);
    expectRedirect(res, `${w.account}#federated-heading`);
    expect(flashOf(res)).toContain(`Federated credential ${form.name} added.`);
    const [policy] = await policiesOf(w);
    expect(policy).toMatchObject({
      name: form.name,
      description: "Deploys from main",
      issuer: GITHUB,
      subject: "repo:acme/deploy-bot:environment:prod",
      claims: { ref: "refs/heads/main", job_workflow_ref: "acme/deploy-bot/.github/workflows/*@refs/heads/main" },
      audiences: ["https://keyward.example.test", "sts.example.test"],
      maxTokenAgeSeconds: 600,
      enabled: true,
      singleUse: true,
    });
    const events = (await auditRows(policy.id)).filter((e) => e.action === "federated_credential.created");
    expect(events.length).toBe(1);
    expect(events[0]!.actor_id).toBe(w.admin.id);
    const after = expectPage(await follow(res, w.cookie));
    expect(after).toContain(form.name);
    expect(after).toContain("Deploys from main");
  });

  it("a policy with only claims and default audience, posted from its own page, goes back to that page", async () => {
    const w = await world();
    const res = await consolePost(w.section, w.cookie, { name: unique("k8s"), issuer: "https://oidc.cluster.example.test", claims: "kubernetes.io.namespace=ci" });
    expectRedirect(res, w.section);
    const [policy] = await policiesOf(w);
    expect(policy.subject).toBeNull();
    expect(policy.claims).toEqual({ "kubernetes.io.namespace": "ci" });
    expect(policy.maxTokenAgeSeconds).toBeNull();
    expect(policy.audiences.length).toBe(1);
  });

  it("disables and re-enables a policy, each audited; removes it through the confirmation, audited", async () => {
    const w = await world();
    const policy = await apiPolicy(w);
    const at = `${w.section}/${policy.id}`;
    let html = expectPage(await consoleGet(w.account, w.cookie));
    expect(hasFormTo(html, `${at}/disable`)).toBe(true);
    expect(hasFormTo(html, `${at}/enable`)).toBe(false);
    expect(html).toMatch(new RegExp(`<details class="confirm"><summary>Remove</summary>[\\s\\S]*Tokens of ${GITHUB.replaceAll(".", "\\.")} matching ${policy.name} can no longer act as this account`));

    const off = await consolePost(`${at}/disable`, w.cookie, { from: "account" });
    expectRedirect(off, `${w.account}#federated-heading`);
    expect(flashOf(off)).toContain("disabled");
    expect((await policiesOf(w))[0].enabled).toBe(false);
    html = expectPage(await follow(off, w.cookie));
    expect(hasFormTo(html, `${at}/enable`)).toBe(true);

    expectRedirect(await consolePost(`${at}/enable`, w.cookie, { from: "account" }), w.account);
    expect((await policiesOf(w))[0].enabled).toBe(true);
    const updates = (await auditRows(policy.id)).filter((e) => e.action === "federated_credential.updated");
    expect(updates.length).toBe(2);

    const removed = await consolePost(`${at}/remove`, w.cookie, { from: "account" });
    expectRedirect(removed, `${w.account}#federated-heading`);
    expect(flashOf(removed)).toContain("Federated credential removed.");
    expect(await policiesOf(w)).toEqual([]);
    expect((await auditRows(policy.id)).map((e) => e.action)).toEqual(["federated_credential.created", "federated_credential.updated", "federated_credential.updated", "federated_credential.deleted"]);
  });
});

describe("console federated credentials: each token accepted once (singleUse)", () => {
  it("the form offers the box ticked; ticked, the policy is single-use and listed as such", async () => {
    const w = await world();
    const html = expectPage(await consoleGet(w.account, w.cookie));
    expect(html).toContain("Each token is accepted once (uncheck for Kubernetes projected tokens that a pod re-reads)");
    expect(singleUseBox(html)).toMatch(/\schecked(=""|\s|>)/);
    const form = addForm();
    const res = await consolePost(w.section, w.cookie, form);
    expectRedirect(res, `${w.account}#federated-heading`);
    expect((await policiesOf(w))[0].singleUse).toBe(true);
    const after = expectPage(await follow(res, w.cookie));
    const section = after.slice(after.indexOf('id="federated-heading"'));
    expect(section).toContain('<th scope="col">Token accepted</th>');
    expect(section).toContain("<td>once</td>");
  });

  it("unticked, the policy takes a token again while it lives: stored false, audited, listed 'until it expires'", async () => {
    const w = await world();
    const { singleUse: _ticked, ...form } = addForm({ name: unique("k8s"), issuer: "https://oidc.cluster.example.test", subject: "system:serviceaccount:ci:api", claims: "" });
    const res = await consolePost(w.section, w.cookie, form);
    expectRedirect(res, `${w.account}#federated-heading`);
    const [policy] = await policiesOf(w);
    expect(policy.singleUse).toBe(false);
    const [created] = (await auditRows(policy.id)).filter((e) => e.action === "federated_credential.created");
    expect(JSON.parse(created!.details)).toMatchObject({ singleUse: false });
    const section = expectPage(await follow(res, w.cookie));
    expect(section.slice(section.indexOf('id="federated-heading"'))).toContain("<td>until it expires</td>");
  });

  it("a form shown again after an error keeps the box as it was sent (unticked stays unticked)", async () => {
    const w = await world();
    const { singleUse: _ticked, ...unticked } = addForm({ subject: "", claims: "" });
    expect(singleUseBox(expectPage(await consolePost(w.section, w.cookie, unticked), 422))).not.toMatch(/\schecked/);
    expect(singleUseBox(expectPage(await consolePost(w.section, w.cookie, addForm({ subject: "", claims: "" })), 422))).toMatch(/\schecked/);
    expect(await rowCount(w.target.id)).toBe(0);
  });

  it("a post from a form that never offered the box (an older page) keeps the safe default: single-use", async () => {
    const w = await world();
    const { singleUse: _a, singleUseOffered: _b, ...old } = addForm();
    expectRedirect(await consolePost(w.section, w.cookie, old), `${w.account}#federated-heading`);
    expect((await policiesOf(w))[0].singleUse).toBe(true);
  });
});

describe("console federated credentials: inline errors (the API's codes)", () => {
  it("neither subject nor claims: 422 policy_too_broad beside both fields, the form refilled, nothing added", async () => {
    const w = await world();
    const form = addForm({ subject: "", claims: "" });
    const html = expectPage(await consolePost(w.section, w.cookie, form), 422);
    expect(html).toContain("A federated credential needs a subject or at least one claim condition");
    expect(html).toMatch(/id="f-fed-subject-error"/);
    expect(html).toMatch(/id="f-fed-claims-error"/);
    expect(html).toContain(`value="${form.name}"`);
    expect(await rowCount(w.target.id)).toBe(0);
  });

  it("an issuer not allowed (posted by hand): 422 issuer_not_allowed beside the issuer; nothing added", async () => {
    const w = await world();
    const html = expectPage(await consolePost(w.section, w.cookie, addForm({ issuer: "https://evil.example" })), 422);
    expect(html).toMatch(/id="f-fed-issuer-error"[^>]*>[^<]*not in FEDERATION_ALLOWED_ISSUERS/);
    expect(await rowCount(w.target.id)).toBe(0);
  });

  it("bad input from the route's schema or the claim rule: 400 beside the field; a taken name: 409; nothing added", async () => {
    const w = await world();
    const cases: [Record<string, string>, string][] = [
      [{ claims: "ref" }, "claims"],
      [{ claims: "ref=a\nref=b" }, "claims"],
      [{ claims: "iat=123" }, "claims"],
      [{ claims: "ref=" }, "claims"],
      [{ maxTokenAgeSeconds: "10" }, "maxTokenAgeSeconds"],
      [{ maxTokenAgeSeconds: "abc" }, "maxTokenAgeSeconds"],
      [{ name: "" }, "name"],
    ];
    for (const [extra, field] of cases) {
      const html = expectPage(await consolePost(w.section, w.cookie, addForm(extra)), 400);
      expect(html, JSON.stringify(extra)).toMatch(new RegExp(`id="f-fed-${field}-error"`));
    }
    expect(await rowCount(w.target.id)).toBe(0);
    const taken = await apiPolicy(w);
    const dupe = expectPage(await consolePost(w.section, w.cookie, addForm({ name: taken.name })), 409);
    expect(dupe).toMatch(/id="f-fed-name-error"/);
    expect(await rowCount(w.target.id)).toBe(1);
  });
});

describe("console federated credentials: security", () => {
  it("a read-only account sees the list but no forms, and gets 403 posting each by hand with nothing changed", async () => {
    const w = await world();
    const policy = await apiPolicy(w);
    const viewer = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "viewer" }] });
    const ro = await consoleLogin(viewer.token);
    const html = expectPage(await consoleGet(w.account, ro));
    expect(html).toContain(policy.name);
    expect(html).not.toContain("Add a federated credential");
    expect(html).not.toContain(`${w.section}/${policy.id}/`);
    expect(hasFormTo(html, w.section)).toBe(false);
    expectPage(await consolePost(w.section, ro, addForm()), 403);
    expectPage(await consolePost(`${w.section}/${policy.id}/disable`, ro, { from: "account" }), 403);
    expectPage(await consolePost(`${w.section}/${policy.id}/remove`, ro, { from: "account" }), 403);
    const [after] = await policiesOf(w);
    expect(after).toMatchObject({ id: policy.id, enabled: true, updatedAt: policy.updatedAt });
    expect(await rowCount(w.target.id)).toBe(1);
  });

  it("no escalation: a service-account-admin cannot add a policy to an account holding more than it (403 page), nor toggle its policy", async () => {
    const w = await world();
    const strong = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "org-admin" }] });
    const strongApi = `/api/v1/orgs/${w.org.id}/service-accounts/${strong.account.id}/federated-credentials`;
    const existing = await call("POST", strongApi, { token: w.adminToken, body: { name: unique("gh"), issuer: GITHUB, subject: "repo:acme/x:ref:refs/heads/main" } });
    expectStatus(existing, 201);
    const saAdmin = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "service-account-admin" }] });
    const cookie = await consoleLogin(saAdmin.token);
    const strongSection = `/console/orgs/${w.org.slug}/service-accounts/${strong.account.id}/federated-credentials`;
    expectPage(await consolePost(strongSection, cookie, addForm()), 403);
    expectPage(await consolePost(`${strongSection}/${existing.json.id}/disable`, cookie, { from: "account" }), 403);
    expect(await rowCount(strong.account.id)).toBe(1);
    // On an account it covers (one holding nothing), the same principal may add one.
    const weak = await newAccount(w.adminToken, w.org.id);
    const weakSection = `/console/orgs/${w.org.slug}/service-accounts/${weak.account.id}/federated-credentials`;
    expectRedirect(await consolePost(weakSection, cookie, addForm()), `/service-accounts/${weak.account.id}#federated-heading`);
    expect(await rowCount(weak.account.id)).toBe(1);
  });

  it("another org's account is 404 to read, add, toggle and remove; its policy stays", async () => {
    const mine = await world();
    const other = await world();
    const policy = await apiPolicy(other);
    expectPage(await consoleGet(other.section, mine.cookie), 404);
    expectPage(await consoleGet(other.account, mine.cookie), 404);
    expectPage(await consolePost(other.section, mine.cookie, addForm()), 404);
    expectPage(await consolePost(`${other.section}/${policy.id}/disable`, mine.cookie), 404);
    expectPage(await consolePost(`${other.section}/${policy.id}/remove`, mine.cookie), 404);
    // The other org's policy id under my own account is not found either.
    expectPage(await consolePost(`${mine.section}/${policy.id}/remove`, mine.cookie), 404);
    const [after] = await policiesOf(other);
    expect(after).toMatchObject({ id: policy.id, enabled: true });
  });

  it("a cross-site form post is refused (403) and changes nothing", async () => {
    const w = await world();
    const policy = await apiPolicy(w);
    const crossSite = { origin: "https://evil.example", "sec-fetch-site": "cross-site" };
    expectPage(await consolePost(w.section, w.cookie, addForm(), crossSite), 403);
    expectPage(await consolePost(w.section, w.cookie, addForm(), { "sec-fetch-site": "cross-site" }), 403);
    expectPage(await consolePost(`${w.section}/${policy.id}/disable`, w.cookie, {}, crossSite), 403);
    expectPage(await consolePost(`${w.section}/${policy.id}/remove`, w.cookie, {}, { origin: "https://evil.example" }), 403);
    const items = await policiesOf(w);
    expect(items.map((p) => [p.id, p.enabled])).toEqual([[policy.id, true]]);
  });

  it("signed out, the section's page and forms go to sign-in and change nothing", async () => {
    const w = await world();
    const policy = await apiPolicy(w);
    expectRedirect(await consoleGet(w.section, null), "/console/login");
    expectRedirect(await consolePost(`${w.section}/${policy.id}/remove`, null), "/console/login");
    expect(await rowCount(w.target.id)).toBe(1);
  });
});
