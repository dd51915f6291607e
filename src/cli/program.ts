import { Command } from "commander";
import { accessCommands } from "./commands/access.ts";
import { accountCommands } from "./commands/accounts.ts";
import { auditCommands } from "./commands/audit.ts";
import { federationCommands } from "./commands/federation.ts";
import { jwtCommand } from "./commands/jwt.ts";
import { keyCommands } from "./commands/keys.ts";
import { loginCommands } from "./commands/login.ts";
import { orgCommands } from "./commands/orgs.ts";
import { tokenCommands } from "./commands/tokens.ts";
import { completionCommand } from "./completion.ts";

export const VERSION = "0.1.0";

/** The whole command tree (`keyward <resource> <verb> [flags]`); main.ts runs it, completion.ts walks it. */
export function buildProgram(): Command {
  const program = new Command("keyward")
    .description("Keyward's command line: service accounts, access tokens and JWTs")
    .version(VERSION)
    .option("--url <url>", "server base URL (default: KEYWARD_URL, else the profile's)")
    .option("--profile <name>", "config profile (default: KEYWARD_PROFILE, else the default profile)")
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addHelpText(
      "after",
      `
Examples:
  keyward login --url https://keyward.example.com
  keyward service-accounts list --org acme --json
  export KEYWARD_TOKEN=sat_...; curl -H "authorization: Bearer $(keyward jwt)" ...

Exit codes: 0 ok, 2 usage, 3 auth (401/403), 4 other client errors (404, 409, 422...), 5 server or network.`,
    );
  loginCommands(program);
  orgCommands(program);
  accountCommands(program);
  tokenCommands(program);
  keyCommands(program);
  federationCommands(program);
  accessCommands(program);
  auditCommands(program);
  jwtCommand(program);
  completionCommand(program);
  return program;
}
