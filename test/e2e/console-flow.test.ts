import { generateKeyPairSync } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { expectAccessible, launchBrowser, newContext, screenshot, signIn } from "./console-browser.ts";

/** The page's globals, for code that runs in the browser (this project compiles without the DOM library). */
declare const window: any;
declare const document: any;
declare const navigator: { clipboard: { readText(): Promise<string> } };

/**
 * The console in Chromium against the real dev server: the flow of issue 17, the read-only view,
 * a cross-site form post, and axe on every page.
 */

let server: DevServer;
let browser: Browser;
let evil: Server;
let evilBase: string;

/** State the steps hand on, in order. */
const flow = { org: "", accountUrl: "", accountId: "", secret: "", hint: "", viewerSecret: "" };

const api = (path: string, token: string, init: RequestInit = {}) =>
  fetch(server.base + path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });

beforeAll(async () => {
  server = await startDevServer();
  browser = await launchBrowser();
  // Another site (another origin: localhost instead of 127.0.0.1) with a form that posts to the console.
  evil = createServer((_req, res) => {
    res.setHeader("content-type", "text/html");
    res.end(
      `<!DOCTYPE html><html lang="en"><title>evil</title><form method="post" action="${server.base}/console/orgs"><input name="slug" value="evil-org"><input name="name" value="Evil"><button>Win a prize</button></form></html>`,
    );
  });
  await new Promise<void>((resolve) => evil.listen(0, "127.0.0.1", resolve));
  evilBase = `http://localhost:${(evil.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((resolve) => evil?.close(resolve));
});

async function openPage(): Promise<Page> {
  const context = await newContext(browser, server.base);
  return context.newPage();
}

describe("the console in a browser", () => {
  let page: Page;

  it("the sign-in page is accessible; a wrong token says so beside the field", async () => {
    page = await openPage();
    await page.goto("/console/login");
    await expectAccessible(page, "sign-in");
    await screenshot(page, "login");
    await page.getByLabel("Access token or JWT").fill("sat_wrong");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.locator("#f-token-error").textContent()).toContain("invalid, expired or revoked");
    await expectAccessible(page, "sign-in with an error");
  });

  it("signs in with the root token; the cookie is HttpOnly, SameSite=Strict, Path=/console and holds no credential", async () => {
    await signIn(page, server.rootToken);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "kw_session")!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/console" });
    expect(session.value).not.toContain(server.rootToken);
    expect(await page.evaluate(() => document.cookie)).not.toContain("kw_session");
    await expectAccessible(page, "org list");
  });

  it("creates an org, a project and an environment", async () => {
    flow.org = `acme-${Date.now().toString(36)}`;
    const create = page.getByRole("form", { name: "Create an organization" });
    await create.getByLabel("Slug").fill(flow.org);
    await create.getByLabel("Name").fill("Acme Corp");
    await create.getByRole("button", { name: "Create organization" }).click();
    await page.waitForURL(new RegExp(`/console/orgs/${flow.org}$`));
    await expect.poll(() => page.getByRole("status").first().textContent()).toContain("Organization Acme Corp created.");
    await expectAccessible(page, "org overview");
    await screenshot(page, "org-overview");

    await page.getByRole("navigation", { name: "Organization" }).getByRole("link", { name: "Projects" }).click();
    const project = page.getByRole("form", { name: "Create a project" });
    await project.getByLabel("Slug").fill("payments");
    await project.getByLabel("Name").fill("Payments");
    await project.getByRole("button", { name: "Create project" }).click();
    await page.waitForURL(/\/projects\/payments$/);
    const env = page.getByRole("form", { name: "Create an environment" });
    await env.getByLabel("Slug").fill("prod");
    await env.getByLabel("Name").fill("Production");
    await env.getByRole("button", { name: "Create environment" }).click();
    await expect.poll(() => page.locator("table").textContent()).toContain("Production");
    await page.locator("details.confirm summary").first().click();
    await expectAccessible(page, "project with an open confirmation");
    await page.goto(`/console/orgs/${flow.org}/projects`);
    await expectAccessible(page, "projects");
  });

  it("creates a service account with a role at the project", async () => {
    await page.getByRole("navigation", { name: "Organization" }).getByRole("link", { name: "Service accounts" }).click();
    await expectAccessible(page, "service accounts (empty)");
    await page.getByRole("link", { name: "New service account" }).click();
    await expectAccessible(page, "new service account");
    await page.getByLabel("Name", { exact: true }).fill("bad\u200bname");
    await page.getByRole("button", { name: "Create service account" }).click();
    await expect.poll(() => page.locator("#f-name-error").textContent()).toContain("must not contain invisible");
    await expectAccessible(page, "new service account with an inline error");
    await page.getByLabel("Name", { exact: true }).fill("deploy-bot");
    await page.getByLabel("Display name").fill("Deploy bot");
    await page.getByLabel("Description").fill("Deploys the web app from CI");
    await page.getByLabel("Groups").fill("ci, web");
    await page.getByLabel("Days valid").fill("90");
    await page.getByLabel("Role", { exact: true }).selectOption("viewer");
    await page.getByLabel("Role scope").selectOption({ label: "The whole organization" });
    await page.getByRole("button", { name: "Create service account" }).click();
    await page.waitForURL(/\/service-accounts\/sa_[A-Za-z0-9]+$/);
    flow.accountUrl = new URL(page.url()).pathname;
    flow.accountId = flow.accountUrl.split("/").pop()!;
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent()).toBe("Deploy bot");
    await expectAccessible(page, "account page");
  });

  it("issues a token: shown once with a copy button and the warning", async () => {
    const form = page.getByRole("form", { name: "Issue an access token" });
    await form.getByLabel("Name (optional)").fill("ci");
    await form.getByRole("button", { name: "Issue token" }).click();
    await expect.poll(() => page.locator("#new-secret").textContent()).toMatch(/^sat_/);
    flow.secret = (await page.locator("#new-secret").textContent())!.trim();
    expect(await page.getByText("This token will not be shown again.").isVisible()).toBe(true);
    await page.getByRole("button", { name: "Copy" }).click();
    await expect.poll(() => page.locator("#new-secret-status").textContent()).toBe("Copied to the clipboard.");
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(flow.secret);
    await expectAccessible(page, "account page with a new secret");
    await screenshot(page, "token-once");
  });

  it("adds a public key (PEM, algorithm detected) and lists its fingerprint", async () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const form = page.getByRole("form", { name: "Add a public key" });
    await form.getByLabel("Public key (PEM or JWK)").fill(publicKey.export({ type: "spki", format: "pem" }).toString());
    await form.getByLabel("Name (optional)").fill("ci signing key");
    await form.getByRole("button", { name: "Add key" }).click();
    await expect.poll(() => page.getByRole("status").first().textContent()).toMatch(/\(ES256, fingerprint [A-Za-z0-9_-]{43}\)/);
    expect(await page.locator("#keys table").textContent()).toContain("ci signing key");
    await expectAccessible(page, "account page with a key");
  });

  it("after a reload only the hint is left", async () => {
    await page.goto(flow.accountUrl);
    const html = await page.content();
    expect(html).not.toContain(flow.secret);
    expect(await page.locator("#new-secret").count()).toBe(0);
    flow.hint = `${flow.secret.slice(0, 8)}`;
    const hint = (await page.locator("#tokens table code").first().textContent())!;
    expect(hint.startsWith(flow.secret.slice(0, 8))).toBe(true);
    expect(hint.endsWith(flow.secret.slice(-4))).toBe(true);
    expect(hint.length).toBeLessThan(flow.secret.length);
    await screenshot(page, "account");
  });

  it("the token works against the API", async () => {
    const orgs = (await (await api("/api/v1/orgs", flow.secret)).json()) as any;
    const org = orgs.items.find((o: { slug: string }) => o.slug === flow.org);
    expect(org).toBeDefined();
    expect((await api(`/api/v1/orgs/${org.id}/service-accounts/${flow.accountId}`, flow.secret)).status).toBe(200);
  });

  it("revoked in the console, it gets 401", async () => {
    page.once("dialog", (d) => d.accept());
    await page.locator("#tokens").getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => page.getByRole("status").first().textContent()).toContain("revoked.");
    expect((await api("/api/v1/orgs", flow.secret)).status).toBe(401);
    await expectAccessible(page, "account page after revoking");
  });

  it("edit page and the list with filters are accessible", async () => {
    await page.goto(`${flow.accountUrl}/edit`);
    await expectAccessible(page, "edit account");
    await page.goto(`/console/orgs/${flow.org}/service-accounts?q=deploy&status=active`);
    expect(await page.locator("table").textContent()).toContain("Deploy bot");
    await expectAccessible(page, "service accounts (filtered)");
    await screenshot(page, "service-accounts");
    await page.setViewportSize({ width: 375, height: 800 });
    await screenshot(page, "service-accounts-phone");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    expect(overflow).toBe(false);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("issues a second token for the read-only account (viewer), for the next test", async () => {
    await page.goto(flow.accountUrl);
    await page.getByRole("form", { name: "Issue an access token" }).getByRole("button", { name: "Issue token" }).click();
    await expect.poll(() => page.locator("#new-secret").textContent()).toMatch(/^sat_/);
    flow.viewerSecret = (await page.locator("#new-secret").textContent())!.trim();
  });

  it("a read-only account sees no write actions and gets 403 when it posts a form by hand; nothing changed", async () => {
    const viewer = await openPage();
    await signIn(viewer, flow.viewerSecret);
    await viewer.goto(`/console/orgs/${flow.org}/service-accounts`);
    expect(await viewer.getByRole("link", { name: "New service account" }).count()).toBe(0);
    await viewer.goto(flow.accountUrl);
    expect(await viewer.locator("main form[method=post]").count()).toBe(0);
    expect(await viewer.getByRole("button", { name: /Revoke|Issue token|Delete|Disable|Regenerate/ }).count()).toBe(0);
    await expectAccessible(viewer, "account page, read-only");
    await viewer.goto(`/console/orgs/${flow.org}/projects`);
    expect(await viewer.getByRole("form", { name: "Create a project" }).count()).toBe(0);

    // A form built by hand in the page, posted as the browser posts any form.
    const response = viewer.waitForResponse((r) => r.request().method() === "POST");
    await viewer.evaluate((org) => {
      const form = document.createElement("form");
      form.method = "post";
      form.action = `/console/orgs/${org}/projects`;
      for (const [name, value] of [["slug", "sneaky"], ["name", "Sneaky"]]) {
        const input = document.createElement("input");
        input.name = name;
        input.value = value;
        form.append(input);
      }
      document.body.append(form);
      form.submit();
    }, flow.org);
    expect((await response).status()).toBe(403);
    await expect.poll(() => viewer.getByRole("heading", { level: 1 }).textContent()).toBe("Permission denied");
    expect(await viewer.locator("main").textContent()).toContain("permission_denied");
    await expectAccessible(viewer, "403 page");
    await screenshot(viewer, "forbidden");
    const projects = (await (await api(`/api/v1/orgs/${flow.org}/projects`, server.rootToken)).json()) as any;
    expect(projects.items.map((p: { slug: string }) => p.slug)).toEqual(["payments"]);
    await viewer.context().close();
  });

  it("a cross-site form post is refused (403) and changes nothing", async () => {
    // The signed-in root session is in this context; the other site's form posts to the console.
    const response = page.waitForResponse((r) => r.url().startsWith(server.base) && r.request().method() === "POST");
    await page.goto(evilBase);
    await page.getByRole("button", { name: "Win a prize" }).click();
    const res = await response;
    expect(res.status()).toBe(403);
    expect((await api("/api/v1/orgs/evil-org", server.rootToken)).status).toBe(404);
  });

  it("signs out: the page after says sign in, and the old session is dead", async () => {
    await page.goto("/console");
    const cookie = (await page.context().cookies()).find((c) => c.name === "kw_session")!.value;
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/console\/login$/);
    const replay = await fetch(`${server.base}/console`, { headers: { cookie: `kw_session=${cookie}` }, redirect: "manual" });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toContain("/console/login?expired=1");
    await page.goto("/console/login?expired=1");
    expect(await page.getByRole("status").textContent()).toContain("Your session expired, sign in again.");
    await expectAccessible(page, "sign-in after expiry");
  });
});
