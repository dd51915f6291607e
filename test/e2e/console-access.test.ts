import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { expectAccessible, launchBrowser, newContext, screenshot, signIn } from "./console-browser.ts";

/**
 * The roles, access, invitations, review and audit pages in Chromium against the real dev server:
 * each page visited and checked with axe (no serious or critical violation), a custom role made
 * with the operation checkboxes, one role assignment at a project, one invitation sent and
 * accepted on the invitee's behalf, screenshots into test-results/console/.
 */

let server: DevServer;
let browser: Browser;
let page: Page;
const suffix = Math.random().toString(36).slice(2, 8);
let home: { id: string; slug: string };
let partner: { id: string; slug: string };
let project: { id: string; name: string };
let bot: { id: string; name: string };
let invitee: { id: string; email: string };

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(server.base + path, {
    method,
    headers: { authorization: `Bearer ${server.rootToken}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  expect(res.ok, `${method} ${path}: ${res.status} ${text}`).toBe(true);
  return text ? JSON.parse(text) : undefined;
}

/** Visits a page, checks it with axe and takes its screenshot. */
async function visit(path: string, shot: string) {
  const res = await page.goto(path);
  expect(res?.status(), path).toBe(200);
  await expectAccessible(page, shot);
  await screenshot(page, shot);
}

const flash = () => page.locator(".flash").innerText();

beforeAll(async () => {
  server = await startDevServer();
  browser = await launchBrowser();
  home = await api("POST", "/api/v1/orgs", { slug: `acme-${suffix}`, name: "Acme" });
  partner = await api("POST", "/api/v1/orgs", { slug: `partner-${suffix}`, name: "Partner" });
  project = await api("POST", `/api/v1/orgs/${home.id}/projects`, { slug: "payments", name: "Payments" });
  await api("POST", `/api/v1/orgs/${home.id}/projects/${project.id}/environments`, { slug: "prod", name: "Production" });
  bot = await api("POST", `/api/v1/orgs/${home.id}/service-accounts`, { name: "deploy-bot", displayName: "Deploy bot" });
  invitee = await api("POST", `/api/v1/orgs/${partner.id}/service-accounts`, { name: "partner-bot" });
  page = await (await newContext(browser, server.base)).newPage();
  await signIn(page, server.rootToken);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe("the console's access pages in Chromium", () => {
  it("roles: lists the built-in roles and creates a custom role with the operation checkboxes", async () => {
    await visit(`/console/orgs/${home.slug}/roles`, "roles");
    await page.getByLabel("Name", { exact: true }).fill("deployer");
    await page.getByLabel("Description").fill("Reads accounts and rotates their tokens");
    await page.getByRole("checkbox", { name: "service-accounts.read" }).check();
    await page.getByRole("checkbox", { name: "service-accounts.access-tokens.edit" }).check();
    await page.getByRole("button", { name: "Create role" }).click();
    await page.waitForURL(`**/console/orgs/${home.slug}/roles/deployer`);
    expect(await flash()).toContain("Role deployer created.");
    await expectAccessible(page, page.url());
    await screenshot(page, "role");
    const role = await api("GET", `/api/v1/orgs/${home.id}/roles/deployer`);
    expect(role.operations.sort()).toEqual(["service-accounts.access-tokens.edit", "service-accounts.read"]);
  });

  it("access: assigns a role at a project from the account page and shows the account's effective permissions there", async () => {
    await visit(`/console/orgs/${home.slug}/service-accounts/${bot.id}/access`, "access-empty");
    await visit(`/console/orgs/${home.slug}/service-accounts/${bot.id}`, "account-access-empty");
    const assign = page.getByRole("form", { name: "Assign a role" });
    await assign.getByLabel("Role").selectOption({ label: "viewer" });
    await assign.getByLabel("Scope").selectOption({ label: "Project Payments" });
    await assign.getByRole("button", { name: "Assign role" }).click();
    await page.waitForURL(`**/console/orgs/${home.slug}/service-accounts/${bot.id}#access-heading`);
    expect(await flash()).toContain("Role assigned.");
    const assignments = await api("GET", `/api/v1/orgs/${home.id}/service-accounts/${bot.id}/role-assignments`);
    expect(assignments.items).toEqual([expect.objectContaining({ roleId: "role_viewer", scope: { type: "project", id: project.id } })]);
    expect(await page.getByRole("table", { name: "Role assignments" }).innerText()).toContain("Project Payments");

    await page.getByLabel("At scope").selectOption({ label: "Project Payments / environment Production" });
    await page.getByRole("button", { name: "Show", exact: true }).click();
    await page.waitForURL(/at=environment%3Aenv_/);
    const ops = await page.getByRole("list", { name: "Effective operations" }).innerText();
    for (const op of ["orgs.read", "service-accounts.read", "audit.read"]) expect(ops).toContain(op);
    await expectAccessible(page, page.url());
    await screenshot(page, "account-access");
  });

  it("invitations: sends one to an account of another org, whose org accepts it on the account's behalf", async () => {
    await visit(`/console/orgs/${home.slug}/invitations`, "invitations-empty");
    const send = page.getByRole("form", { name: "Invite a service account of another org" });
    await send.getByLabel("The account's email").fill(invitee.email);
    await send.getByLabel("Role").selectOption({ label: "viewer" });
    await send.getByRole("button", { name: "Send invitation" }).click();
    await page.waitForLoadState();
    expect(await flash()).toContain(`Invitation sent to ${invitee.email}.`);
    expect(await page.getByRole("table", { name: "Invitations this organization sent" }).innerText()).toContain("pending");
    await screenshot(page, "invitations-sent");

    await visit(`/console/orgs/${partner.slug}/invitations`, "invitations-received");
    await page.getByRole("button", { name: `Accept the invitation for ${invitee.email}` }).click();
    await page.waitForLoadState();
    expect(await flash()).toContain(`Invitation accepted for ${invitee.email}.`);
    const received = await api("GET", `/api/v1/orgs/${partner.id}/service-accounts/${invitee.id}/invitations`);
    expect(received.items.map((i: { state: string }) => i.state)).toEqual(["accepted"]);
    await expectAccessible(page, page.url());
  });

  it("review: every list, and the audit log with a filter, for the org and the platform", async () => {
    for (const view of ["stale", "expiring", "never-used", "unused"]) await visit(`/console/orgs/${home.slug}/review?view=${view}`, `review-${view}`);
    await visit(`/console/orgs/${home.slug}/audit`, "audit");
    await page.getByLabel("Action").fill("role_assignment.created");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/action=role_assignment\.created/);
    const rows = await page.getByRole("table").innerText();
    expect(rows).toContain("role_assignment.created");
    expect(rows).not.toContain("role.created");
    await expectAccessible(page, page.url());
    await screenshot(page, "audit-filtered");
    await visit("/console/audit", "platform-audit");
  });

  it("at a phone's width the pages stay usable: wide tables scroll in a focusable region", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await visit(`/console/orgs/${home.slug}/roles`, "phone-roles");
    await visit(`/console/orgs/${home.slug}/service-accounts/${bot.id}/access`, "phone-access");
    await visit(`/console/orgs/${home.slug}/audit`, "phone-audit");
    const overflow = await page.evaluate(`document.documentElement.scrollWidth - document.documentElement.clientWidth`);
    expect(overflow, "the page itself does not scroll sideways").toBeLessThanOrEqual(0);
  });
});
