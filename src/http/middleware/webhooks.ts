import type { MiddlewareHandler } from "hono";
import { createCtx } from "../../domain/shared/context.ts";
import { enqueuePending } from "../../domain/webhooks/outbox.ts";
import type { AppEnv } from "../app-env.ts";

const READS = new Set(["GET", "HEAD", "OPTIONS"]);
/**
 * The issuing endpoints write no event per request (what they audit is batched per isolate, or
 * written on refusals); the cron's outbox run sends those, so an issued JWT costs no D1 statement.
 */
const ISSUING = new Set(["/oauth/token", "/api/auth/access-tokens/jwt"]);
/** Rows one request sends at most; the cron sends a larger backlog. */
const PER_REQUEST = 100;

/**
 * After a request that may have changed something, the webhook deliveries its audit events
 * produced (and any other unsent ones) go to the queue, after the response (waitUntil). Reads
 * never write an event, so they skip it.
 */
export const enqueueAfterChanges: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (READS.has(c.req.method) || !c.env.WEBHOOKS || ISSUING.has(c.req.path)) return;
  let executionCtx: { waitUntil(promise: Promise<unknown>): void };
  try {
    executionCtx = c.executionCtx;
  } catch {
    return; // no execution context (app.request in tests): the cron sends them
  }
  const ctx = createCtx(c.env, { actorId: "system", requestId: c.get("requestId") ?? null, ip: null, userAgent: null });
  executionCtx.waitUntil(
    enqueuePending(ctx, { limit: PER_REQUEST }).catch((err) => console.error(JSON.stringify({ level: "error", event: "webhooks.enqueue_failed", error: String((err as Error)?.message ?? err) }))),
  );
};
