import { Command, InvalidArgumentError, Option } from "commander";
import { client, type ApiClient } from "./api.ts";
import { resolveSettings, type GlobalOptions, type Settings } from "./config.ts";
import { usageError } from "./errors.ts";

/** What an action gets: its flags (with the global ones), the resolved settings and the API. */
export interface Run {
  opts: Record<string, any>;
  settings: Settings;
  api: () => ApiClient;
  /** The org: --org, KEYWARD_ORG or the profile's default; a usage error when none. */
  org: () => string;
}

export function runOf(cmd: Command): Run {
  const opts = cmd.optsWithGlobals();
  const settings = resolveSettings(opts as GlobalOptions);
  return {
    opts,
    settings,
    api: () => client(settings),
    org: () => {
      if (!settings.org) throw usageError("No org: pass --org ORG (id or slug), set KEYWARD_ORG, or log in with --org to set a default");
      return settings.org;
    },
  };
}

/** A verb whose action receives its positional arguments and a Run. */
export function verb(parent: Command, spec: string, description: string, action: (run: Run, ...args: string[]) => Promise<void> | void): Command {
  const cmd = parent.command(spec).description(description);
  cmd.action(async (...a: unknown[]) => {
    const self = a[a.length - 1] as Command;
    await action(runOf(self), ...(self.args.slice(0, self.registeredArguments.length) as string[]));
  });
  return cmd;
}

export const withOrg = (cmd: Command) => cmd.option("--org <org>", "org id or slug (default: KEYWARD_ORG or the profile's org)");
export const withJson = (cmd: Command) => cmd.option("--json", "print JSON for scripts");
export const withPaging = (cmd: Command) =>
  cmd.option("--limit <n>", "page size (1..200)", positiveInt).option("--cursor <cursor>", "continue from a previous page").option("--all", "fetch every page");

export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("expected a positive integer");
  return Number(value);
}

export function nonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("expected a whole number (0 or more)");
  return Number(value);
}

/** Repeatable `--flag a --flag b` (and `--flag a,b`). */
export function list(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").map((s) => s.trim()).filter(Boolean)];
}

export const choice = (flags: string, description: string, choices: string[]) => new Option(flags, description).choices(choices);

/** Drops undefined fields, so a PATCH sends only what was given. */
export function defined<T extends Record<string, unknown>>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}
