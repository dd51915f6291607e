import { sql } from "drizzle-orm";
import type { Ctx } from "../shared/context.ts";

/**
 * From the outbox to the queue. Delivery rows are born in D1 with the change they report (the
 * `webhook_outbox` trigger); this sends them to the WEBHOOKS queue. A row is claimed by one
 * conditional UPDATE (so two senders never both send it) and sent as `{ d: <delivery id> }`; a
 * failed send puts the claim back, and the cron sends what is left (rows that never reached the
 * queue, and rows the queue lost: pending, not leased, and long past their due time).
 */

/** Queue messages carry only the delivery id: the consumer reads the rest from D1. */
export interface DeliveryMessage {
  d: string;
}

export function deliveryIdOf(body: unknown): string | null {
  const d = (body as Partial<DeliveryMessage> | null)?.d;
  return typeof d === "string" && d.startsWith("whd_") && d.length <= 64 ? d : null;
}

/** A pending row not sent again by the cron before this long past its due time (the queue may just be behind). */
export const STALE_AFTER_MS = 60 * 60 * 1000;
const QUEUE_SEND_BATCH = 100;

export interface EnqueueOptions {
  limit: number;
  /** Also re-send pending rows the queue seems to have lost (the cron). */
  includeStale?: boolean;
}

/** Claims up to `limit` unsent rows and sends them to the queue; returns how many were sent. */
export async function enqueuePending(ctx: Ctx, options: EnqueueOptions): Promise<number> {
  const queue = ctx.env.WEBHOOKS;
  if (!queue) return 0;
  const now = ctx.now();
  const stale = options.includeStale
    ? sql`or (state = 'pending' and (lease_until is null or lease_until < ${now}) and coalesce(next_attempt_at, enqueued_at) < ${now - STALE_AFTER_MS})`
    : sql``;
  const claimed = await ctx.db.all<{ id: string }>(sql`
    update webhook_deliveries set enqueued_at = ${now}
    where id in (
      select id from webhook_deliveries where (enqueued_at is null and state = 'pending') ${stale}
      order by created_at limit ${options.limit}
    )
    returning id`);
  let sent = 0;
  for (let i = 0; i < claimed.length; i += QUEUE_SEND_BATCH) {
    const chunk = claimed.slice(i, i + QUEUE_SEND_BATCH);
    try {
      await queue.sendBatch(chunk.map((r) => ({ body: { d: r.id } satisfies DeliveryMessage, contentType: "json" as const })));
      sent += chunk.length;
    } catch (err) {
      const ids = chunk.map((r) => r.id);
      await ctx.db.run(sql`update webhook_deliveries set enqueued_at = null where enqueued_at = ${now} and id in (select value from json_each(${JSON.stringify(ids)}))`);
      console.error(JSON.stringify({ level: "error", event: "webhooks.enqueue_failed", count: ids.length, error: String((err as Error)?.message ?? err) }));
    }
  }
  return sent;
}
