import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { expectAccessible, launchBrowser, newContext, screenshot, signIn } from "./console-browser.ts";

/**
 * The account page's Federated credentials section in Chromium against the real dev server (with
 * two allowed issuers): a trust policy added through the form, a too-broad one refused inline,
 * disabled and removed through the confirmation; axe on each state, screenshots into
 * test-results/console/.
 */

const GITHUB = "https://token.actions.githubusercontent.com";
let server: DevServer;
let browser: Browser;
let page: Page;
const suffix = Math.random().toString(36).slice(2, 8);
let org: { id: string; slug: string };
let bot: { id: string };

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

const policies = async () => (await api("GET", `/api/v1/orgs/${org.id}/service-accounts/${bot.id}/federated-credentials`)).items as any[];
const addForm = () => page.locator('form[aria-label="Add a federated credential"]');
const section = () => page.locator('section[aria-labelledby="federated-heading"]');

beforeAll(async () => {
  server = await startDevServer({ federationAllowedIssuers: [GITHUB, "https://gitlab.com"] });
  browser = await launchBrowser();
  org = await api("POST", "/api/v1/orgs", { slug: `fed-${suffix}`, name: "Federated" });
  bot = await api("POST", `/api/v1/orgs/${org.id}/service-accounts`, { name: "deploy-bot" });
  page = await (await newContext(browser, server.base)).newPage();
  await signIn(page, server.rootToken);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe("the console's federated credentials in Chromium", () => {
  it("adds a trust policy from the account page, refuses a too-broad one inline, disables and removes it", async () => {
    const account = `/console/orgs/${org.slug}/service-accounts/${bot.id}`;
    expect((await page.goto(account))?.status()).toBe(200);
    expect(await section().innerText()).toContain("No federated credential.");
    await expectAccessible(page, "account-federated-empty");

    const form = addForm();
    await form.getByLabel("Name", { exact: true }).fill("deploy-from-main");
    await form.getByLabel("Issuer").selectOption(GITHUB);
    await form.getByLabel(/^Subject/).fill("repo:acme/deploy-bot:environment:prod");
    await form.getByLabel(/^Claim conditions/).fill("ref=refs/heads/main\nrepository_owner=acme");
    await form.getByLabel(/^Max token age/).fill("600");
    await form.getByRole("button", { name: "Add federated credential" }).click();
    await page.waitForURL(`**${account}#federated-heading`);
    expect(await page.locator(".flash").innerText()).toContain("Federated credential deploy-from-main added.");
    expect(await section().innerText()).toContain("refs/heads/main");
    await expectAccessible(page, "account-federated");
    await screenshot(page, "account-federated");
    const [policy] = await policies();
    expect(policy).toMatchObject({ name: "deploy-from-main", issuer: GITHUB, claims: { ref: "refs/heads/main", repository_owner: "acme" }, maxTokenAgeSeconds: 600, enabled: true });

    await addForm().getByLabel("Name", { exact: true }).fill("too-broad");
    await addForm().getByRole("button", { name: "Add federated credential" }).click();
    await page.waitForURL("**/federated-credentials");
    expect(await page.locator("#f-fed-subject-error").innerText()).toContain("subject");
    expect(await page.getByRole("alert").innerText()).toContain("needs a subject or at least one claim condition");
    await expectAccessible(page, "federated-too-broad");
    await screenshot(page, "federated-too-broad");
    expect((await policies()).length).toBe(1);

    await page.goto(account);
    await section().getByRole("button", { name: "Disable deploy-from-main" }).click();
    await page.waitForURL(`**${account}#federated-heading`);
    expect((await policies())[0].enabled).toBe(false);
    expect(await section().getByText("disabled", { exact: true }).count()).toBe(1);

    await section().locator("summary", { hasText: "Remove" }).click();
    await expectAccessible(page, "federated-remove-confirm");
    await section().getByRole("button", { name: "Remove deploy-from-main" }).click();
    await page.waitForURL(`**${account}#federated-heading`);
    expect(await page.locator(".flash").innerText()).toContain("Federated credential removed.");
    expect(await policies()).toEqual([]);
  });
});
