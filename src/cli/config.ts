import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { CliError, EXIT, usageError } from "./errors.ts";

export interface Profile {
  url: string;
  token?: string;
  org?: string;
}

export interface ConfigFile {
  defaultProfile?: string;
  profiles: Record<string, Profile>;
}

export const DEFAULT_PROFILE = "default";
const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** $XDG_CONFIG_HOME/keyward/config.json, ~/.config when XDG_CONFIG_HOME is unset or relative (as the spec says). */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(homedir(), ".config");
  return path.join(base, "keyward", "config.json");
}

export function readConfig(file = configPath()): ConfigFile {
  if (!existsSync(file)) return { profiles: {} };
  if (process.platform !== "win32" && statSync(file).mode & 0o077) {
    process.stderr.write(`keyward: warning: ${file} is readable by others; it holds tokens: chmod 600 it\n`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new CliError(`The config file ${file} is not valid JSON (${(err as Error).message}); fix or remove it`, EXIT.usage);
  }
  if (typeof parsed !== "object" || parsed === null || typeof (parsed as ConfigFile).profiles !== "object") {
    throw new CliError(`The config file ${file} has no "profiles" object; fix or remove it`, EXIT.usage);
  }
  return parsed as ConfigFile;
}

/** Writes the file with mode 0600 (its directory 0700) through a rename, so a reader never sees half of it. */
export function writeConfig(config: ConfigFile, file = configPath()): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

export function checkProfileName(name: string): string {
  if (!PROFILE_NAME.test(name)) throw usageError(`Invalid profile name "${name}": letters, digits, . _ -, up to 64`);
  return name;
}

export interface GlobalOptions {
  url?: string;
  profile?: string;
  org?: string;
}

/** What a command runs with: flags beat the environment, the environment beats the config file. */
export interface Settings {
  profileName: string;
  url: string | undefined;
  token: string | undefined;
  org: string | undefined;
  /** Where the token came from, for messages ("KEYWARD_TOKEN", "profile default"). */
  tokenSource: string;
}

export function resolveSettings(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env, config: ConfigFile = readConfig(configPath(env))): Settings {
  const profileName = checkProfileName(opts.profile ?? env.KEYWARD_PROFILE ?? config.defaultProfile ?? DEFAULT_PROFILE);
  const profile = config.profiles[profileName];
  const envToken = env.KEYWARD_TOKEN || undefined;
  return {
    profileName,
    url: normalizeUrl(opts.url ?? (env.KEYWARD_URL || undefined) ?? profile?.url),
    token: envToken ?? profile?.token,
    org: opts.org ?? (env.KEYWARD_ORG || undefined) ?? profile?.org,
    tokenSource: envToken ? "KEYWARD_TOKEN" : `profile ${profileName}`,
  };
}

export function normalizeUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usageError(`Invalid URL "${url}": give the server's base URL, e.g. https://keyward.example.com`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw usageError(`Invalid URL "${url}": http or https only`);
  return parsed.origin + parsed.pathname.replace(/\/+$/, "");
}
