/**
 * The console's browser harness: Debian's Chromium driven by playwright-core (no browser
 * download), against the real dev server. axe-core runs in the page; screenshots go to
 * test-results/console/ (not committed).
 */
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { expect } from "vitest";

/** The page's globals, for code that runs in the browser (this project compiles without the DOM library). */
declare const window: any;
declare const document: any;
type Document = any;

const root = path.resolve(import.meta.dirname, "../..");
export const SCREENSHOTS = path.join(root, "test-results", "console");
const AXE_SOURCE = readFileSync(path.join(root, "node_modules", "axe-core", "axe.min.js"), "utf8");

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}

/** A fresh context (its own cookies) at a desktop size, allowed to use the clipboard. */
export async function newContext(browser: Browser, base: string, viewport = { width: 1280, height: 900 }): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport, baseURL: base });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  return context;
}

/** Signs in through the form and lands on the org list. */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.goto("/console/login");
  await page.getByLabel("Access token or JWT").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/console$/);
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * axe-core's violations of the page at impact serious or critical. The script is evaluated through
 * the DevTools protocol, which the page's CSP (script-src 'self') does not govern.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  const loaded = await page.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe !== "undefined");
  if (!loaded) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical");
}

/** Fails with the violations listed when the page has any serious or critical one. */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  const violations = await axeViolations(page);
  expect(violations, `${what} (${page.url()}): ${JSON.stringify(violations, null, 2)}`).toEqual([]);
}

/** A full-page screenshot into test-results/console/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
