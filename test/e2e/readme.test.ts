import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";

/**
 * The README's walk-through runs as written: every ```sh / ```bash block of README.md, in order, in
 * one bash process (`set -euo pipefail`, so variables carry from block to block and the first
 * failing command stops the run) from the repository root, against a fresh `npm run dev` with PORT
 * and KEYWARD_PERSIST_DIR exported, as a reader's shell would have them. A block whose fence
 * follows the line `<!-- readme-test: skip -->` is not run (installs, the dev server, deploys).
 */

const root = path.resolve(import.meta.dirname, "../..");
const SKIP_MARKER = "<!-- readme-test: skip -->";

interface ShellBlock {
  /** The 1-based line of the block's opening fence in README.md. */
  line: number;
  code: string;
  skipped: boolean;
}

/** The shell blocks of a markdown text, in order; fences of other languages are passed over whole. */
function shellBlocks(markdown: string): ShellBlock[] {
  const lines = markdown.split("\n");
  const blocks: ShellBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(`{3,})\s*([\w-]*)/.exec(lines[i]!);
    if (!fence) continue;
    const close = lines.findIndex((l, j) => j > i && l.trim() === fence[1]);
    if (close < 0) throw new Error(`README.md line ${i + 1}: a code fence that is never closed`);
    if (["sh", "bash", "shell"].includes(fence[2]!)) {
      let prev = i - 1;
      while (prev >= 0 && lines[prev]!.trim() === "") prev--;
      blocks.push({ line: i + 1, code: lines.slice(i + 1, close).join("\n"), skipped: lines[prev]?.trim() === SKIP_MARKER });
    }
    i = close;
  }
  return blocks;
}

/** One bash script of the blocks; the ERR trap names the README line of the block that failed. */
function walkthroughScript(blocks: ShellBlock[]): string {
  return [
    "set -euo pipefail",
    `trap 'echo "README.md block at line $README_LINE failed: $BASH_COMMAND" >&2' ERR`,
    ...blocks.flatMap((b) => [`README_LINE=${b.line}`, b.code]),
    "",
  ].join("\n");
}

interface ShellRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the blocks in one bash process from the repository root, with `env` added to the environment. */
async function runBlocks(blocks: ShellBlock[], env: Record<string, string>, timeoutMs = 90_000): Promise<ShellRun> {
  const dir = mkdtempSync(path.join(tmpdir(), "keyward-readme-"));
  const file = path.join(dir, "walkthrough.sh");
  writeFileSync(file, walkthroughScript(blocks));
  try {
    return await new Promise<ShellRun>((resolve, reject) => {
      const child = spawn("bash", [file], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const readme = readFileSync(path.join(root, "README.md"), "utf8");
const walkthrough = shellBlocks(readme).filter((b) => !b.skipped);
const explain = (run: ShellRun) => `exit ${run.code}\n--- stderr\n${run.stderr}\n--- stdout\n${run.stdout}`;

describe("the README walk-through", () => {
  it("has shell blocks to run, and every curl in them fails on a non-2xx answer", () => {
    expect(walkthrough.length, "no runnable ```sh block found in README.md").toBeGreaterThanOrEqual(5);
    // -f makes curl exit non-zero on a 4xx/5xx; a status that is meant to be an error is compared explicitly.
    const unchecked = walkthrough.flatMap((b) =>
      b.code
        .split("\n")
        .map((text, i) => ({ line: b.line + 1 + i, text }))
        .filter(({ text }) => /(^|[\s|($])curl\s/.test(text) && !/curl -fsS\b/.test(text) && !text.includes("%{http_code}")),
    );
    expect(unchecked, "curl without -fsS (or an explicit %{http_code} check) in README.md").toEqual([]);
  });

  describe("against a fresh dev server", () => {
    let server: DevServer;
    let env: Record<string, string>;

    beforeAll(async () => {
      // "CI without secrets" adds a trust policy naming GitHub Actions' issuer.
      server = await startDevServer({ federationAllowedIssuers: ["https://token.actions.githubusercontent.com"] });
      // `npm run dev` writes the root token it bootstrapped to <KEYWARD_PERSIST_DIR>/root-token (0600),
      // which the walk-through reads.
      env = { PORT: new URL(server.base).port, KEYWARD_PERSIST_DIR: server.persistDir };
    });
    afterAll(async () => {
      await server?.stop();
    });

    it("the root token file holds the token the dev server printed, readable by its owner only", () => {
      const tokenFile = path.join(server.persistDir, "root-token");
      expect(readFileSync(tokenFile, "utf8").trim()).toBe(server.rootToken);
      expect(statSync(tokenFile).mode & 0o077).toBe(0);
    });

    it("runs every block, in order, in one shell", async () => {
      const run = await runBlocks(walkthrough, env);
      expect(run.code, explain(run)).toBe(0);
      expect(run.stderr, explain(run)).not.toMatch(/README\.md block at line/);
    });

    it("fails when a block is broken: a non-2xx curl, or a variable never set", async () => {
      const setup: ShellBlock = { line: 1, code: "API=http://localhost:${PORT:-8787}\ncurl -fsS $API/healthz >/dev/null", skipped: false };
      const brokenCurl = await runBlocks([setup, { line: 2, code: "curl -fsS $API/api/v1/orgs/acme/no-such-route | jq .", skipped: false }], env);
      expect(brokenCurl.code, explain(brokenCurl)).not.toBe(0);
      expect(brokenCurl.stderr).toContain("README.md block at line 2 failed");
      const unsetVariable = await runBlocks([setup, { line: 3, code: "curl -fsS $API/api/v1/orgs/$NEVER_SET", skipped: false }], env);
      expect(unsetVariable.code, explain(unsetVariable)).not.toBe(0);
      expect(unsetVariable.stderr).toMatch(/NEVER_SET: unbound variable/);
    });
  });
});
