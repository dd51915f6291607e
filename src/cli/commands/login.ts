import type { Command } from "commander";
import { client, requireUrl } from "../api.ts";
import { checkProfileName, configPath, readConfig, writeConfig } from "../config.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { info, out, printOne } from "../output.ts";
import { readSecret } from "../prompt.ts";
import { verb, withJson } from "../command.ts";

export function loginCommands(program: Command): void {
  verb(program, "login", "Save a server URL and an access token (read from a prompt or stdin, never from the command line) in a profile", async (run) => {
    const url = requireUrl(run.settings.url);
    const token = await readSecret(`Access token for ${url}: `);
    if (/\s/.test(token)) throw usageError("The token has spaces in it: paste the sat_... secret alone");
    const api = client({ url, token, tokenSource: "login" });
    const orgs = await api.request<{ items: { id: string; slug: string }[] }>("GET", "/api/v1/orgs", { query: { limit: 200 } });
    let org: string | undefined = run.opts.org;
    if (org) org = (await api.request<{ id: string }>("GET", `/api/v1/orgs/${encodeURIComponent(org)}`)).id;
    else if (orgs.items.length === 1) org = orgs.items[0]!.id;
    const file = configPath();
    const config = readConfig(file);
    const name = run.settings.profileName;
    config.profiles[name] = { url, token, ...(org ? { org } : {}) };
    config.defaultProfile ??= name;
    writeConfig(config, file);
    info(`Logged in to ${url} (profile "${name}"${org ? `, org ${org}` : ""}; ${orgs.items.length} org(s) visible). Saved in ${file}.`);
  }).option("--org <org>", "the profile's default org (default: the only org the token sees, if one)");

  verb(program, "logout", "Remove the token from a profile (the token stays valid: revoke it to end it)", (run) => {
    const file = configPath();
    const config = readConfig(file);
    const profile = config.profiles[run.settings.profileName];
    if (!profile?.token) throw new CliError(`Profile "${run.settings.profileName}" holds no token`, EXIT.usage);
    delete profile.token;
    writeConfig(config, file);
    info(`Removed the token from profile "${run.settings.profileName}".`);
  });

  const config = program.command("config").description("Show and choose profiles");
  withJson(
    verb(config, "show", "The settings a command would use (the token never printed)", (run) => {
      const s = run.settings;
      printOne({ profile: s.profileName, url: s.url ?? null, org: s.org ?? null, token: s.token ? `set (${s.tokenSource})` : null, configFile: configPath() }, run.opts.json);
    }),
  );
  withJson(
    verb(config, "profiles", "List the saved profiles", (run) => {
      const c = readConfig();
      const rows = Object.entries(c.profiles).map(([name, p]) => ({ name, default: name === (c.defaultProfile ?? "default"), url: p.url, org: p.org ?? null, token: Boolean(p.token) }));
      if (run.opts.json) return out(JSON.stringify({ items: rows }, null, 2));
      for (const r of rows) out(`${r.default ? "*" : " "} ${r.name}  ${r.url}${r.org ? `  org ${r.org}` : ""}${r.token ? "" : "  (no token)"}`);
    }),
  );
  verb(config, "use <profile>", "Make a saved profile the default", (_run, name) => {
    const c = readConfig();
    if (!c.profiles[checkProfileName(name!)]) throw usageError(`No profile "${name}" (see keyward config profiles)`);
    c.defaultProfile = name;
    writeConfig(c);
    info(`Default profile: ${name}`);
  });
  verb(config, "set-org <org>", "Set the current profile's default org", (run, org) => {
    const c = readConfig();
    const profile = c.profiles[run.settings.profileName];
    if (!profile) throw usageError(`No profile "${run.settings.profileName}": run keyward login first`);
    profile.org = org;
    writeConfig(c);
    info(`Profile "${run.settings.profileName}" default org: ${org}`);
  });
}
