import { createCtx } from "../domain/shared/context.ts";
import { deliver, type DeliverOptions } from "../domain/webhooks/delivery.ts";
import { deliveryIdOf } from "../domain/webhooks/outbox.ts";
import type { Bindings } from "../env.ts";

/** Deliveries one consumer invocation makes at once (each is mostly waiting on the receiver). */
const CONCURRENCY = 10;
/** When D1 itself failed: try the message again soon (it counts against the queue's max_retries; the cron is the backstop). */
const STORAGE_RETRY_SECONDS = 10;

export interface ConsumeOptions extends DeliverOptions {
  /** Called after each message is acked or retried (the crash tests throw from it, as a dying isolate would stop there). */
  afterMessage?: (handled: number) => void;
}

/**
 * The WEBHOOKS queue's consumer. Each message is acked (or retried with its delay) as soon as its
 * attempt is recorded, never per batch: when the invocation dies halfway, the queue redelivers only
 * the messages not yet acked, and a redelivered message whose row is already delivered is acked
 * without a send.
 */
export async function consumeWebhooks(batch: MessageBatch<unknown>, env: Bindings, options: ConsumeOptions = {}): Promise<void> {
  const ctx = createCtx(env, { actorId: "system", requestId: null, ip: null, userAgent: null });
  const messages = batch.messages;
  let next = 0;
  let handled = 0;
  let crashed: { error: unknown } | undefined;
  const worker = async () => {
    while (!crashed && next < messages.length) {
      const message = messages[next++]!;
      const id = deliveryIdOf(message.body);
      if (!id) {
        message.ack();
      } else {
        try {
          const outcome = await deliver(ctx, id, options);
          if (outcome.kind === "retry") message.retry({ delaySeconds: outcome.delaySeconds });
          else message.ack();
        } catch (err) {
          console.error(JSON.stringify({ level: "error", event: "webhooks.delivery_error", deliveryId: id, error: String((err as Error)?.message ?? err) }));
          message.retry({ delaySeconds: STORAGE_RETRY_SECONDS });
        }
      }
      try {
        options.afterMessage?.(++handled);
      } catch (error) {
        crashed = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, messages.length) }, worker));
  if (crashed) throw crashed.error;
}
