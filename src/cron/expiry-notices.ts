import { sql } from "drizzle-orm";
import { auditInsert } from "../domain/audit/audit-log.ts";
import type { Job } from "./types.ts";

const DAY_MS = 86_400_000;
/** The org policy's expiryWarningDays allows at most this many days (src/http/routes/dto.ts). */
export const MAX_WARNING_DAYS = 90;
const DEFAULT_DAYS = "[7,1]";

interface Due {
  id: string;
  org_id: string;
  days: number;
  expires_at: number;
  account_id: string | null;
  hint: string | null;
  name: string | null;
}

/**
 * `access_token.expiring` / `service_account.expiring` (webhook events `token.expiring`,
 * `account.expiring`) N days before expiry, N from the org policy's expiryWarningDays (default 7
 * and 1). Each threshold is written once: a threshold counts as done when an event for the same
 * target with `days` at or below it exists, so a token created 3 days before its expiry gets the
 * 7-day notice once, then the 1-day one.
 */
export const expiryNotices: Job = async (ctx, { batchSize }) => {
  const now = ctx.now();
  const horizon = now + MAX_WARNING_DAYS * DAY_MS;
  const days = (policy: unknown) => sql`json_each(coalesce(json_extract(${policy}, '$.expiryWarningDays'), ${DEFAULT_DAYS}))`;
  const notDone = (action: string, target: unknown) =>
    sql`not exists (select 1 from audit_events a where a.target_id = ${target} and a.action = ${action} and json_extract(a.details, '$.days') <= j.value)`;
  const tokens = await ctx.db.all<Due>(sql`
    select t.id, t.org_id, min(j.value) as days, t.expires_at, t.account_id, t.hint, null as name
    from access_tokens t join orgs o on o.id = t.org_id, ${days(sql`o.policy`)} j
    where t.status = 'active' and t.expires_at > ${now} and t.expires_at <= ${horizon}
      and t.expires_at <= ${now} + j.value * ${DAY_MS} and ${notDone("access_token.expiring", sql`t.id`)}
    group by t.id order by t.expires_at limit ${batchSize}`);
  const accounts = await ctx.db.all<Due>(sql`
    select s.id, s.org_id, min(j.value) as days, s.expires_at, null as account_id, null as hint, s.name
    from service_accounts s join orgs o on o.id = s.org_id, ${days(sql`o.policy`)} j
    where s.status = 'active' and s.expires_at > ${now} and s.expires_at <= ${horizon}
      and s.expires_at <= ${now} + j.value * ${DAY_MS} and ${notDone("service_account.expiring", sql`s.id`)}
    group by s.id order by s.expires_at limit ${batchSize}`);
  const inserts = [
    ...tokens.map((t) =>
      auditInsert(ctx, { action: "access_token.expiring", orgId: t.org_id, targetType: "access_token", targetId: t.id, details: { days: t.days, accountId: t.account_id, hint: t.hint, expiresAt: new Date(t.expires_at).toISOString() } }),
    ),
    ...accounts.map((a) =>
      auditInsert(ctx, { action: "service_account.expiring", orgId: a.org_id, targetType: "service_account", targetId: a.id, details: { days: a.days, name: a.name, expiresAt: new Date(a.expires_at).toISOString() } }),
    ),
  ];
  const [first, ...rest] = inserts;
  if (first) await ctx.db.batch([first, ...rest]);
  return { processed: inserts.length, more: tokens.length === batchSize || accounts.length === batchSize, tokens: tokens.length, accounts: accounts.length };
};
