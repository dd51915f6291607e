import { InvalidArgumentError, type Command } from "commander";
import { listPages, seg } from "../api.ts";
import { choice, defined, list, nonNegativeInt, positiveInt, verb, withJson, withOrg, withPaging, type Run } from "../command.ts";
import { usageError } from "../errors.ts";
import { info, json, out, printList, record, type Column } from "../output.ts";

interface Token {
  id: string;
  accountId: string;
  name: string | null;
  hint: string;
  status: string;
  expiresAt: string | null;
  lastUsedAt?: string | null;
  remainingUses?: number | null;
}
interface Issued extends Token {
  token: string;
}

const columns: Column<Token>[] = [
  ["id", (t) => t.id],
  ["account", (t) => t.accountId],
  ["name", (t) => t.name],
  ["hint", (t) => t.hint],
  ["status", (t) => t.status],
  ["expires", (t) => t.expiresAt],
  ["last used", (t) => t.lastUsedAt],
];

/** A duration in seconds: `300`, `90s`, `15m`, `12h`, `30d`. */
export function seconds(value: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(value);
  if (!m) throw new InvalidArgumentError("expected seconds or a duration such as 90s, 15m, 12h, 30d");
  return Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "" | "s" | "m" | "h" | "d"];
}

/** An issued token: the secret shown once. `quiet` prints the secret alone, for `$(...)`. */
export function printIssued(t: Issued, asJson: boolean, quiet: boolean): void {
  if (asJson) return json(t);
  if (quiet) return out(t.token);
  out(record({ ...t }, ["id", "accountId", "name", "expiresAt", "token"]));
  info("Store the token now: it is shown only once.");
}

const tokensPath = (run: Run, account: string) => `/api/v1/orgs/${seg(run.org())}/service-accounts/${seg(account)}/tokens`;

function needAccount(run: Run): string {
  if (!run.opts.account) throw usageError("Give the token's service account: --account SA");
  return run.opts.account;
}

export function tokenCommands(program: Command): void {
  const tokens = program.command("tokens").description("Access tokens (sat_...): issue, list, regenerate, revoke");
  const withAccount = (cmd: Command) => cmd.requiredOption("--account <account>", "the service account id");

  withAccount(
    withJson(
      withOrg(
        verb(tokens, "issue", "Issue an access token (the secret is shown once)", async (run) => {
          const o = run.opts;
          const body = defined({
            name: o.name,
            expiresInSeconds: o.expiresIn,
            expiresAt: o.expiresAt,
            scopes: o.scope,
            allowedCidrs: o.allowedCidr,
            remainingUses: o.uses,
          });
          printIssued(await run.api().request<Issued>("POST", tokensPath(run, needAccount(run)), { body }), Boolean(o.json), Boolean(o.quiet));
        }),
      ),
    ),
  )
    .option("--name <name>", "a name for it")
    .option("--expires-in <duration>", "lifetime: seconds or 90m, 12h, 30d", seconds)
    .option("--expires-at <iso>", "or an end as an ISO 8601 time")
    .option("--scope <scope>", "the token's own scopes (repeatable)", list)
    .option("--allowed-cidr <cidr>", "network it may be used from (repeatable)", list)
    .option("--uses <n>", "uses before it stops working (1: one-time)", positiveInt)
    .option("-q, --quiet", "print only the secret");

  withPaging(
    withJson(
      withOrg(
        verb(tokens, "list", "List tokens (hints only): an account's with --account, else the org's review list", async (run) => {
          const o = run.opts;
          const path = o.account ? tokensPath(run, o.account) : `/api/v1/orgs/${seg(run.org())}/tokens`;
          const query = {
            status: o.status,
            expiringWithinDays: o.expiringWithinDays,
            unusedForDays: o.unusedForDays,
            neverUsed: o.neverUsed ? "true" : undefined,
            nearExhaustion: o.nearExhaustion ? "true" : undefined,
            limit: o.limit,
            cursor: o.cursor,
          };
          printList(await listPages<Token>(run.api(), path, query, Boolean(o.all)), columns, o.json);
        }),
      ),
    ),
  )
    .option("--account <account>", "one service account's tokens")
    .addOption(choice("--status <status>", "only this status", ["active", "revoked", "expired"]))
    .option("--expiring-within-days <n>", "active tokens expiring within N days", nonNegativeInt)
    .option("--unused-for-days <n>", "tokens not used for N days", nonNegativeInt)
    .option("--never-used", "only tokens never used")
    .option("--near-exhaustion", "only tokens with few uses left");

  withAccount(
    withJson(
      withOrg(
        verb(tokens, "regenerate <token>", "A new secret for the same token; the old one dies now or after --grace", async (run, id) => {
          const o = run.opts;
          const issued = await run.api().request<Issued>("POST", `${tokensPath(run, needAccount(run))}/${seg(id!)}/regenerate`, { body: { graceSeconds: o.grace ?? 0 } });
          printIssued(issued, Boolean(o.json), Boolean(o.quiet));
        }),
      ),
    ),
  )
    .option("--grace <duration>", "keep the old secret working this long (up to 24h), e.g. 300 or 5m", seconds)
    .option("-q, --quiet", "print only the new secret");

  withAccount(
    withOrg(
      verb(tokens, "revoke <token>", "Revoke a token (idempotent)", async (run, id) => {
        await run.api().request("DELETE", `${tokensPath(run, needAccount(run))}/${seg(id!)}`);
        info(`Revoked ${id}`);
      }),
    ),
  );
}
