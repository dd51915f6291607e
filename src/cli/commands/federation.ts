import type { Command } from "commander";
import { listPages, seg } from "../api.ts";
import { defined, list, positiveInt, verb, withJson, withOrg, type Run } from "../command.ts";
import { usageError } from "../errors.ts";
import { info, printList, printOne, type Column } from "../output.ts";

interface Policy {
  id: string;
  name: string;
  issuer: string;
  subject: string | null;
  enabled: boolean;
}
const columns: Column<Policy>[] = [
  ["id", (p) => p.id],
  ["name", (p) => p.name],
  ["issuer", (p) => p.issuer],
  ["subject", (p) => p.subject],
  ["enabled", (p) => p.enabled],
];

/** `--claim key=value` (repeatable) into the claims object. */
function claims(specs: string[] | undefined): Record<string, string> | undefined {
  if (!specs) return undefined;
  const out: Record<string, string> = {};
  for (const s of specs) {
    const i = s.indexOf("=");
    if (i < 1) throw usageError(`Invalid --claim "${s}": NAME=VALUE`);
    out[s.slice(0, i)] = s.slice(i + 1);
  }
  return out;
}

const fedPath = (run: Run) => `/api/v1/orgs/${seg(run.org())}/service-accounts/${seg(run.opts.account)}/federated-credentials`;
const withAccount = (cmd: Command) => cmd.requiredOption("--account <account>", "the service account id");
const policyFields = (cmd: Command) =>
  cmd
    .option("--subject <sub>", "the external token's sub, exactly")
    .option("--claim <name=value>", "a claim condition (repeatable)", (v: string, prev: string[] = []) => [...prev, v])
    .option("--audience <aud>", "accepted aud values (repeatable; default: Keyward's issuer)", list)
    .option("--max-token-age <seconds>", "refuse tokens issued longer ago", positiveInt)
    .option("--description <text>", "what it is for");

function body(run: Run, extra: Record<string, unknown>) {
  const o = run.opts;
  return defined({ ...extra, description: o.description, subject: o.subject, claims: claims(o.claim), audiences: o.audience, maxTokenAgeSeconds: o.maxTokenAge });
}

export function federationCommands(program: Command): void {
  const fed = program.command("federated-credentials").description("Trust policies: let an external issuer's tokens (GitHub Actions, Kubernetes...) act as an account");
  policyFields(
    withAccount(
      withJson(
        withOrg(
          verb(fed, "create <name>", "Trust tokens from an issuer whose subject or claims match", async (run, name) => {
            printOne(await run.api().request("POST", fedPath(run), { body: body(run, { name, issuer: run.opts.issuer, ...(run.opts.reusable ? { singleUse: false } : {}) }) }), run.opts.json);
          }),
        ),
      ),
    ),
  )
    .requiredOption("--issuer <url>", "the issuer (one of FEDERATION_ALLOWED_ISSUERS)")
    .option("--reusable", "accept the same token more than once while it lives (Kubernetes projected tokens)");
  withAccount(
    withJson(
      withOrg(
        verb(fed, "list", "An account's federated credentials", async (run) => {
          printList(await listPages<Policy>(run.api(), fedPath(run), {}, false), columns, run.opts.json);
        }),
      ),
    ),
  );
  withAccount(
    withJson(
      withOrg(
        verb(fed, "get <credential>", "Show a federated credential", async (run, id) => {
          printOne(await run.api().request("GET", `${fedPath(run)}/${seg(id!)}`), run.opts.json);
        }),
      ),
    ),
  );
  policyFields(
    withAccount(
      withJson(
        withOrg(
          verb(fed, "edit <credential>", "Change a federated credential (--disable / --enable to pause it)", async (run, id) => {
            const o = run.opts;
            const patch = body(run, { name: o.name, issuer: o.issuer, enabled: o.disable ? false : o.enable ? true : undefined });
            if (!Object.keys(patch).length) throw usageError("Nothing to change (see --help)");
            printOne(await run.api().request("PATCH", `${fedPath(run)}/${seg(id!)}`, { body: patch }), o.json);
          }),
        ),
      ),
    ),
  )
    .option("--name <name>", "rename it")
    .option("--issuer <url>", "another issuer")
    .option("--disable", "match nothing until enabled")
    .option("--enable", "match again");
  withAccount(
    withOrg(
      verb(fed, "delete <credential>", "Delete a federated credential", async (run, id) => {
        await run.api().request("DELETE", `${fedPath(run)}/${seg(id!)}`);
        info(`Deleted ${id}`);
      }),
    ),
  );
}
