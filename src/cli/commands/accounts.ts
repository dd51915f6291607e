import type { Command } from "commander";
import { listPages, seg } from "../api.ts";
import { choice, defined, list, nonNegativeInt, positiveInt, verb, withJson, withOrg, withPaging, type Run } from "../command.ts";
import { usageError } from "../errors.ts";
import { info, json, out, printList, printOne, type Column } from "../output.ts";
import { printIssued } from "./tokens.ts";

interface Account {
  id: string;
  name: string;
  email: string;
  status: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  token?: { token: string };
}

const columns: Column<Account>[] = [
  ["id", (a) => a.id],
  ["name", (a) => a.name],
  ["status", (a) => a.status],
  ["email", (a) => a.email],
  ["expires", (a) => a.expiresAt],
  ["last used", (a) => a.lastUsedAt],
];

/** `ROLE` or `ROLE@TYPE:ID` (TYPE project or environment) into a role assignment body. */
export function parseRole(spec: string): { role: string; scope?: { type: string; id: string } } {
  const m = /^([^@\s]+)(?:@(org|project|environment):(\S+))?$/.exec(spec);
  if (!m) throw usageError(`Invalid role "${spec}": ROLE or ROLE@project:ID or ROLE@environment:ID`);
  return m[2] ? { role: m[1]!, scope: { type: m[2], id: m[3]! } } : { role: m[1]! };
}

const accountPath = (run: Run, sa?: string) => `/api/v1/orgs/${seg(run.org())}/service-accounts${sa ? `/${seg(sa)}` : ""}`;

export function accountCommands(program: Command): void {
  const sa = program.command("service-accounts").alias("sa").description("Service accounts: create, list, get, edit, disable, enable, delete");

  const create = verb(sa, "create <name>", "Create a service account", async (run, name) => {
    const o = run.opts;
    const body = defined({
      name,
      displayName: o.displayName,
      description: o.description,
      email: o.email,
      groups: o.group,
      externalId: o.externalId,
      daysValid: o.daysValid,
      roles: (o.role as string[] | undefined)?.map(parseRole),
      allowedScopes: o.allowedScope,
      allowedCidrs: o.allowedCidr,
      issueToken: o.issueToken ? true : undefined,
    });
    const created = await run.api().request<Account>("POST", accountPath(run), { body });
    if (o.json) return json(created);
    const { token, ...account } = created;
    printOne(account, false, ["id", "name", "email", "status", "expiresAt"]);
    if (token) printIssued(token as never, false, false);
  });
  accountFields(withJson(withOrg(create)))
    .option("--email <email>", "default <name>@<org-slug>.<domain>")
    .option("--role <role>", "grant a role: ROLE or ROLE@project:ID / ROLE@environment:ID (repeatable)", list)
    .option("--issue-token", "also issue its first access token (shown once)");

  withPaging(
    withJson(
      withOrg(
        verb(sa, "list", "List and search service accounts (review: --unused-for-days, --status)", async (run) => {
          const o = run.opts;
          const page = await listPages<Account>(run.api(), accountPath(run), { q: o.search, status: o.status, group: o.group, externalId: o.externalId, unusedForDays: o.unusedForDays, limit: o.limit, cursor: o.cursor }, Boolean(o.all));
          printList(page, columns, o.json);
        }),
      ),
    ),
  )
    .option("--search <text>", "search name, email and display name")
    .addOption(choice("--status <status>", "only this status", ["active", "disabled", "expired"]))
    .option("--group <group>", "only accounts in this group")
    .option("--external-id <id>", "only the account with this external id")
    .option("--unused-for-days <n>", "accounts not used for N days", nonNegativeInt);

  withJson(
    withOrg(
      verb(sa, "get <account>", "Show a service account", async (run, id) => {
        printOne(await run.api().request("GET", accountPath(run, id)), run.opts.json);
      }),
    ),
  );

  const edit = verb(sa, "edit <account>", "Edit a service account (only the fields given change)", async (run, id) => {
    const o = run.opts;
    const body = defined({ name: o.name, displayName: o.displayName, description: o.description, groups: o.group, externalId: o.externalId, daysValid: o.daysValid, allowedScopes: o.allowedScope, allowedCidrs: o.allowedCidr });
    if (!Object.keys(body).length) throw usageError("Nothing to change: give at least one field (see --help)");
    printOne(await run.api().request("PATCH", accountPath(run, id), { body }), o.json, o.json ? undefined : ["id", "name", "status", "expiresAt"]);
  });
  accountFields(withJson(withOrg(edit))).option("--name <name>", "rename it");

  for (const [name, status, what] of [
    ["disable", "disabled", "Disable a service account (its credentials stop working until enabled)"],
    ["enable", "active", "Re-enable a disabled service account"],
  ] as const) {
    withJson(
      withOrg(
        verb(sa, `${name} <account>`, what, async (run, id) => {
          const account = await run.api().request<Account>("PATCH", accountPath(run, id), { body: { status } });
          if (run.opts.json) return json(account);
          info(`${account.id}: ${account.status}`);
        }),
      ),
    );
  }

  withOrg(
    verb(sa, "delete <account>", "Delete a service account and revoke every credential it has", async (run, id) => {
      await run.api().request("DELETE", accountPath(run, id));
      info(`Deleted ${id}`);
    }),
  );

  withJson(
    withOrg(
      verb(sa, "usage <account>", "Last use and JWTs issued in the last 24 h and 30 days", async (run, id) => {
        printOne(await run.api().request("GET", `${accountPath(run, id)}/usage`), run.opts.json);
      }),
    ),
  );

  withJson(
    withOrg(
      verb(sa, "permissions <account>", "The operations an account holds at a scope", async (run, id) => {
        const p = await run.api().request<{ scope: { type: string; id: string }; operations: string[] }>("GET", `${accountPath(run, id)}/permissions`, { query: { scope: run.opts.scope } });
        if (run.opts.json) return json(p);
        out(`${p.scope.type} ${p.scope.id}:`);
        for (const op of p.operations) out(`  ${op}`);
      }),
    ),
  ).option("--scope <scope>", "org (default), a project id or an environment id");
}

function accountFields(cmd: Command): Command {
  return cmd
    .option("--display-name <text>", "display name")
    .option("--description <text>", "description")
    .option("--group <group>", "group (repeatable; replaces the list on edit)", list)
    .option("--external-id <id>", "your own id for it (e.g. github:acme/web)")
    .option("--days-valid <n>", "days it stays valid (1..730)", positiveInt)
    .option("--allowed-scope <scope>", "downstream scope its JWTs may carry (repeatable)", list)
    .option("--allowed-cidr <cidr>", "network its credentials may be used from (repeatable)", list);
}
