import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { expect } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";

/**
 * The console's browser harness: the real dev server, Debian's Chromium driven by playwright-core,
 * sign-in, an axe-core check of a page (serious and critical violations fail) and screenshots
 * into test-results/console/ (not committed).
 */

export const CHROMIUM = "/usr/bin/chromium";
const SHOTS = path.resolve(import.meta.dirname, "..", "..", "test-results", "console");
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export interface ConsoleBrowser {
  server: DevServer;
  browser: Browser;
  page: Page;
  close: () => Promise<void>;
}

/** Starts the dev server and Chromium, and opens a page. */
export async function openConsole(): Promise<ConsoleBrowser> {
  const server = await startDevServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] }).catch(async (err) => {
    await server.stop();
    throw err;
  });
  const page = await (await browser.newContext({ baseURL: server.base })).newPage();
  return {
    server,
    browser,
    page,
    close: async () => {
      await browser.close();
      await server.stop();
    },
  };
}

/** Signs in through the form with a credential; lands on the orgs list. */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.goto("/console/login");
  await page.getByLabel("Access token or JWT").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => url.pathname === "/console");
}

/** The serious and critical axe-core violations of the page as it is. */
export async function axeViolations(page: Page): Promise<{ id: string; impact: string; nodes: string[] }[]> {
  // Evaluated through the DevTools protocol: the page's CSP (no inline script) stays on and untouched.
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const g = globalThis as unknown as { document: unknown; axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } };
    const result = await g.axe.run(g.document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical");
}

/** Fails on any serious or critical axe-core violation of the page. */
export async function expectAccessible(page: Page): Promise<void> {
  expect(await axeViolations(page), page.url()).toEqual([]);
}

/** A full-page screenshot into test-results/console/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
