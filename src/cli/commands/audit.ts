import type { Command } from "commander";
import { listPages, seg, type ApiClient } from "../api.ts";
import { positiveInt, verb, withJson, withOrg, withPaging } from "../command.ts";
import { out, printList, type Column } from "../output.ts";

interface AuditEvent {
  id: string;
  actorId: string;
  action: string;
  target: { type: string; id: string };
  createdAt: string;
}
const columns: Column<AuditEvent>[] = [
  ["time", (e) => e.createdAt],
  ["action", (e) => e.action],
  ["actor", (e) => e.actorId],
  ["target", (e) => `${e.target.type}:${e.target.id}`],
  ["id", (e) => e.id],
];
const line = (e: AuditEvent) => columns.map(([, f]) => String(f(e))).join("  ");

export function auditCommands(program: Command): void {
  const audit = program.command("audit-events").alias("audit").description("The audit log: list, or follow new events");
  withPaging(
    withJson(
      withOrg(
        verb(audit, "list", "Events, newest first (--follow: print new ones as they come, oldest first)", async (run) => {
          const o = run.opts;
          const path = o.platform ? "/api/v1/audit-events" : `/api/v1/orgs/${seg(run.org())}/audit-events`;
          const filters = { actor: o.actor, action: o.action, target: o.target, since: o.since, until: o.until };
          if (!o.follow) return printList(await listPages<AuditEvent>(run.api(), path, { ...filters, limit: o.limit, cursor: o.cursor }, Boolean(o.all)), columns, o.json);
          await follow(run.api(), path, filters, o.limit ?? 20, o.interval ?? 5, Boolean(o.json));
        }),
      ),
    ),
  )
    .option("--actor <id>", "only this actor")
    .option("--action <action>", "an action, or a family such as access_token.*")
    .option("--target <id>", "only this target")
    .option("--since <iso>", "from this time")
    .option("--until <iso>", "up to this time")
    .option("--platform", "platform-level events (no org)")
    .option("-f, --follow", "print the latest --limit (20) events, then new ones as they come (Ctrl-C to stop)")
    .option("--interval <seconds>", "--follow: seconds between polls (default 5)", positiveInt);
}

/**
 * Prints the latest `first` events, then polls for newer ones (from the last time seen, deduplicated
 * by id since events of one instant may straddle two polls), each once, oldest first, one per line.
 */
async function follow(api: ApiClient, path: string, filters: Record<string, string | undefined>, first: number, interval: number, asJson: boolean): Promise<never> {
  const seen = new Set<string>();
  let since = filters.since;
  for (let poll = 0; ; poll++) {
    const page = await listPages<AuditEvent>(api, path, { ...filters, since, limit: poll === 0 ? first : 200 }, poll > 0 || since !== undefined);
    const fresh = page.items.filter((e) => !seen.has(e.id)).reverse();
    for (const e of fresh) {
      seen.add(e.id);
      out(asJson ? JSON.stringify(e) : line(e));
      if (!since || e.createdAt > since) since = e.createdAt;
    }
    await new Promise((r) => setTimeout(r, interval * 1000));
  }
}
