import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it, vi } from "vitest";
import { httpError } from "../../src/cli/api.ts";
import { configPath, normalizeUrl, readConfig, resolveSettings, writeConfig, type ConfigFile } from "../../src/cli/config.ts";
import { exitForStatus } from "../../src/cli/errors.ts";
import { parseRole } from "../../src/cli/commands/accounts.ts";
import { seconds } from "../../src/cli/commands/tokens.ts";
import { table } from "../../src/cli/output.ts";

/** The CLI's pure parts, in Node (no server): precedence, error rendering, flag parsing, and its place outside the Worker. */
const ROOT = path.resolve(import.meta.dirname, "..", "..");

const config: ConfigFile = {
  defaultProfile: "main",
  profiles: { main: { url: "https://main.example", token: "sat_main", org: "org_main" }, other: { url: "https://other.example", token: "sat_other" } },
};

describe("settings precedence", () => {
  it("flags, then the environment, then the profile", () => {
    expect(resolveSettings({}, {}, config)).toMatchObject({ profileName: "main", url: "https://main.example", token: "sat_main", org: "org_main", tokenSource: "profile main" });
    expect(resolveSettings({}, { KEYWARD_PROFILE: "other" }, config)).toMatchObject({ url: "https://other.example", token: "sat_other", org: undefined });
    expect(resolveSettings({ profile: "main" }, { KEYWARD_PROFILE: "other" }, config).token).toBe("sat_main");
    const env = { KEYWARD_URL: "https://env.example/", KEYWARD_TOKEN: "sat_env", KEYWARD_ORG: "org_env" };
    expect(resolveSettings({}, env, config)).toMatchObject({ url: "https://env.example", token: "sat_env", org: "org_env", tokenSource: "KEYWARD_TOKEN" });
    expect(resolveSettings({ url: "https://flag.example", org: "org_flag" }, env, config)).toMatchObject({ url: "https://flag.example", org: "org_flag", token: "sat_env" });
    expect(resolveSettings({}, { KEYWARD_TOKEN: "" }, config).token).toBe("sat_main");
    expect(resolveSettings({}, {}, { profiles: {} })).toMatchObject({ profileName: "default", url: undefined, token: undefined });
  });

  it("refuses bad profile names and URLs", () => {
    expect(() => resolveSettings({ profile: "../etc" }, {}, config)).toThrow(/Invalid profile name/);
    expect(() => normalizeUrl("ftp://x")).toThrow(/http or https/);
    expect(() => normalizeUrl("not a url")).toThrow(/Invalid URL/);
    expect(normalizeUrl("https://k.example/base/")).toBe("https://k.example/base");
  });
});

describe("the config file", () => {
  it("under XDG_CONFIG_HOME (absolute only), written 0600 in a 0700 directory; a readable one is warned about", () => {
    expect(configPath({ XDG_CONFIG_HOME: "/x/y" })).toBe("/x/y/keyward/config.json");
    expect(configPath({ XDG_CONFIG_HOME: "relative" })).toMatch(/\/\.config\/keyward\/config\.json$/);
    const dir = mkdtempSync(path.join(tmpdir(), "keyward-config-"));
    try {
      const file = path.join(dir, "keyward", "config.json");
      writeConfig(config, file);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
      const warn = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
      try {
        expect(readConfig(file)).toEqual(config);
        expect(warn).not.toHaveBeenCalled();
        chmodSync(file, 0o644);
        readConfig(file);
        expect(String(warn.mock.calls[0]?.[0])).toContain("readable by others");
      } finally {
        warn.mockRestore();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("errors", () => {
  it("exit codes by status", () => {
    expect([401, 403, 400, 404, 409, 422, 429, 500, 503].map(exitForStatus)).toEqual([3, 3, 4, 4, 4, 4, 4, 5, 5]);
  });

  it("problem details and OAuth errors print readably", () => {
    const problem = httpError("POST", "/x", 400, JSON.stringify({ title: "Invalid request", status: 400, code: "validation_failed", detail: "1 field", requestId: "req_1", errors: [{ path: "name", message: "Too long" }], missing: ["a.b"] }));
    expect(problem.message).toBe("Invalid request (400 validation_failed): 1 field");
    expect(problem.details).toEqual(["  name: Too long", "  missing permissions: a.b", "  request id: req_1"]);
    expect(problem.exitCode).toBe(4);
    const oauth = httpError("POST", "/oauth/token", 401, JSON.stringify({ error: "invalid_client", error_description: "no" }));
    expect(oauth.message).toBe("invalid_client (401): no");
    expect(oauth.exitCode).toBe(3);
    const html = httpError("GET", "/y", 502, "<html>bad gateway</html>");
    expect(html.message).toBe("GET /y failed with HTTP 502");
    expect(html.exitCode).toBe(5);
  });
});

describe("flag values", () => {
  it("roles with scopes", () => {
    expect(parseRole("viewer")).toEqual({ role: "viewer" });
    expect(parseRole("reader@project:prj_1")).toEqual({ role: "reader", scope: { type: "project", id: "prj_1" } });
    expect(() => parseRole("reader@galaxy:x")).toThrow(/Invalid role/);
    expect(() => parseRole("a b")).toThrow(/Invalid role/);
  });

  it("durations", () => {
    expect(["300", "90s", "15m", "12h", "30d"].map(seconds)).toEqual([300, 90, 900, 43_200, 2_592_000]);
    expect(() => seconds("5 minutes")).toThrow();
    expect(() => seconds("-5")).toThrow();
  });

  it("tables: padded columns, dashes for nothing, no line breaks from the data", () => {
    expect(table([{ a: "x", b: null }, { a: "longer\nline", b: ["p", "q"] }], [["a", (r) => r.a], ["b", (r) => r.b]])).toBe("A            B\nx            -\nlonger line  p,q");
  });
});

describe("the CLI stays out of the Worker", () => {
  const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  const imports = (file: string) =>
    [...readFileSync(file, "utf8").matchAll(/\b(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']|\bimport\s*\(?\s*["']([^"']+)["']/g)].map((m) => m[1] ?? m[2]!);

  it("the import scan sees what it checks", () => {
    const specs = imports(path.join(ROOT, "src", "cli", "commands", "jwt.ts"));
    expect(specs).toEqual(expect.arrayContaining(["node:crypto", "jose", "commander", "../api.ts"]));
    expect(imports(path.join(ROOT, "src", "cli", "keyward.js"))).toEqual(expect.arrayContaining(["node:fs", "./main.ts"]));
  });

  it("src/cli imports only node:, commander, jose and itself", () => {
    const cliDir = path.join(ROOT, "src", "cli");
    const bad = files(cliDir)
      .filter((f) => /\.(ts|js)$/.test(f))
      .flatMap((f) => imports(f).map((spec) => ({ f: path.relative(ROOT, f), spec })))
      .filter(({ f, spec }) => !(spec.startsWith("node:") || spec === "commander" || spec === "jose" || (spec.startsWith(".") && path.resolve(path.dirname(path.join(ROOT, f)), spec).startsWith(cliDir))));
    expect(bad).toEqual([]);
  });

  it("nothing else in src imports src/cli", () => {
    const bad = files(path.join(ROOT, "src"))
      .filter((f) => !f.startsWith(path.join(ROOT, "src", "cli")) && /\.(ts|tsx)$/.test(f))
      .filter((f) => imports(f).some((spec) => spec.startsWith(".") && path.resolve(path.dirname(f), spec).startsWith(path.join(ROOT, "src", "cli"))));
    expect(bad).toEqual([]);
  });
});

describe("the installed form", () => {
  it("npm run build:cli bundles the CLI into dist/cli.js, which runs on its own", () => {
    const build = spawnSync("npm", ["run", "build:cli"], { cwd: ROOT, encoding: "utf8" });
    expect(build.status, build.stderr).toBe(0);
    const bundle = readFileSync(path.join(ROOT, "dist", "cli.js"), "utf8");
    expect(bundle).not.toMatch(/from ["']\.\.?\//);
    const run = spawnSync(process.execPath, [path.join(ROOT, "dist", "cli.js"), "tokens", "--help"], { encoding: "utf8" });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("regenerate");
    const bad = spawnSync(process.execPath, [path.join(ROOT, "dist", "cli.js"), "nope"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
  });
});
