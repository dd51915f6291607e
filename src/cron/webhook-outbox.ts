import { enqueuePending } from "../domain/webhooks/outbox.ts";
import type { Job } from "./types.ts";

/**
 * Sends the webhook deliveries that never reached the queue (a request's waitUntil that did not
 * run, an audit event written off the request path) and those the queue lost. Idempotent: a row is
 * claimed before it is sent, and the consumer never sends a delivered row again.
 */
export const webhookOutbox: Job = async (ctx, { batchSize }) => {
  const sent = await enqueuePending(ctx, { limit: batchSize, includeStale: true });
  return { processed: sent, more: sent === batchSize };
};
