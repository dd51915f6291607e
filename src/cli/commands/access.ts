import type { Command } from "commander";
import { listPages, seg } from "../api.ts";
import { choice, defined, list, verb, withJson, withOrg, type Run } from "../command.ts";
import { usageError } from "../errors.ts";
import { info, json, printList, printOne, type Column } from "../output.ts";
import { parseRole } from "./accounts.ts";

interface Role {
  id: string;
  name: string;
  description: string | null;
  operations: string[];
  orgId: string | null;
}
interface Assignment {
  id: string;
  role: string;
  scope: { type: string; id: string };
  createdAt: string;
}
interface Invitation {
  id: string;
  orgId: string;
  email: string;
  roleId: string;
  scope: { type: string; id: string };
  state: string;
  createdAt: string;
}

const roleColumns: Column<Role>[] = [
  ["id", (r) => r.id],
  ["name", (r) => r.name],
  ["kind", (r) => (r.orgId ? "custom" : "built-in")],
  ["operations", (r) => r.operations],
];
const assignmentColumns: Column<Assignment>[] = [
  ["id", (a) => a.id],
  ["role", (a) => a.role],
  ["scope", (a) => `${a.scope.type}:${a.scope.id}`],
  ["created", (a) => a.createdAt],
];
const invitationColumns: Column<Invitation>[] = [
  ["id", (i) => i.id],
  ["org", (i) => i.orgId],
  ["email", (i) => i.email],
  ["role", (i) => i.roleId],
  ["scope", (i) => `${i.scope.type}:${i.scope.id}`],
  ["state", (i) => i.state],
];

const orgPath = (run: Run) => `/api/v1/orgs/${seg(run.org())}`;
const withAccount = (cmd: Command) => cmd.requiredOption("--account <account>", "the service account id");

export function accessCommands(program: Command): void {
  const roles = program.command("roles").description("Roles: list, get, create, edit, delete (custom roles)");
  withJson(
    withOrg(
      verb(roles, "list", "Built-in and custom roles", async (run) => {
        printList(await listPages<Role>(run.api(), `${orgPath(run)}/roles`, {}, false), roleColumns, run.opts.json);
      }),
    ),
  );
  withJson(
    withOrg(
      verb(roles, "get <role>", "Show a role", async (run, role) => {
        printOne(await run.api().request("GET", `${orgPath(run)}/roles/${seg(role!)}`), run.opts.json);
      }),
    ),
  );
  withJson(
    withOrg(
      verb(roles, "create <name>", "Create a custom role (only with operations you hold)", async (run, name) => {
        const o = run.opts;
        const body = defined({ name, description: o.description, operations: o.operation, assignableToServiceAccounts: o.notAssignable ? false : undefined });
        printOne(await run.api().request("POST", `${orgPath(run)}/roles`, { body }), o.json);
      }),
    ),
  )
    .requiredOption("--operation <op>", "an operation it grants, e.g. service-accounts.read (repeatable)", list)
    .option("--description <text>", "what it is for")
    .option("--not-assignable", "may not be granted to service accounts");
  withJson(
    withOrg(
      verb(roles, "edit <role>", "Edit a custom role (its holders' JWT claims follow)", async (run, role) => {
        const o = run.opts;
        const body = defined({ name: o.name, description: o.description, operations: o.operation });
        if (!Object.keys(body).length) throw usageError("Nothing to change: give --name, --description or --operation");
        printOne(await run.api().request("PATCH", `${orgPath(run)}/roles/${seg(role!)}`, { body }), o.json);
      }),
    ),
  )
    .option("--name <name>", "rename it")
    .option("--description <text>", "what it is for")
    .option("--operation <op>", "replace its operations (repeatable)", list);
  withOrg(
    verb(roles, "delete <role>", "Delete a custom role and every assignment of it", async (run, role) => {
      await run.api().request("DELETE", `${orgPath(run)}/roles/${seg(role!)}`);
      info(`Deleted ${role}`);
    }),
  );

  const ra = program.command("role-assignments").description("Roles granted to a service account: list, create, delete");
  const raPath = (run: Run) => `${orgPath(run)}/service-accounts/${seg(run.opts.account)}/role-assignments`;
  withAccount(
    withJson(
      withOrg(
        verb(ra, "list", "An account's role assignments", async (run) => {
          printList(await listPages<Assignment>(run.api(), raPath(run), {}, false), assignmentColumns, run.opts.json);
        }),
      ),
    ),
  );
  withAccount(
    withJson(
      withOrg(
        verb(ra, "create <role>", "Grant a role: ROLE (the org), ROLE@project:ID or ROLE@environment:ID", async (run, role) => {
          printOne(await run.api().request("POST", raPath(run), { body: parseRole(role!) }), run.opts.json);
        }),
      ),
    ),
  );
  withAccount(
    withOrg(
      verb(ra, "delete <assignment>", "Remove a role assignment", async (run, id) => {
        await run.api().request("DELETE", `${raPath(run)}/${seg(id!)}`);
        info(`Deleted ${id}`);
      }),
    ),
  );

  const inv = program.command("invitations").description("Invite service accounts of other orgs to a role: create, list, delete; answer received ones");
  withJson(
    withOrg(
      verb(inv, "create <email>", "Invite a service account of another org (by email) to a role here", async (run, email) => {
        const role = parseRole(run.opts.role);
        printOne(await run.api().request("POST", `${orgPath(run)}/invitations`, { body: { email, ...role } }), run.opts.json);
      }),
    ),
  ).requiredOption("--role <role>", "ROLE, ROLE@project:ID or ROLE@environment:ID");
  withJson(
    withOrg(
      verb(inv, "list", "Invitations this org sent, or with --account the ones an account of this org received", async (run) => {
        const path = run.opts.account ? `${orgPath(run)}/service-accounts/${seg(run.opts.account)}/invitations` : `${orgPath(run)}/invitations`;
        printList(await listPages<Invitation>(run.api(), path, { state: run.opts.state }, false), invitationColumns, run.opts.json);
      }),
    ),
  )
    .option("--account <account>", "the invitations this account received")
    .addOption(choice("--state <state>", "only this state", ["pending", "accepted", "declined", "cancelled"]));
  withOrg(
    verb(inv, "delete <invitation>", "Cancel an invitation (an accepted one loses its role)", async (run, id) => {
      await run.api().request("DELETE", `${orgPath(run)}/invitations/${seg(id!)}`);
      info(`Cancelled ${id}`);
    }),
  );
  for (const [name, state] of [
    ["accept", "accepted"],
    ["decline", "declined"],
  ] as const) {
    withAccount(
      withJson(
        withOrg(
          verb(inv, `${name} <invitation>`, `${name === "accept" ? "Accept" : "Decline"} an invitation on the account's behalf`, async (run, id) => {
            const answered = await run.api().request<Invitation>("PATCH", `${orgPath(run)}/service-accounts/${seg(run.opts.account)}/invitations/${seg(id!)}`, { body: { state } });
            if (run.opts.json) return json(answered);
            info(`${answered.id}: ${answered.state}`);
          }),
        ),
      ),
    );
  }
}
