import { buildApp } from "./app.ts";
import { runJobs } from "./cron/index.ts";
import type { Bindings } from "./env.ts";
import { hotRoute, serveHot } from "./hot-path.ts";
import { consumeWebhooks } from "./queue/webhooks.ts";

export { AccountCredentials } from "./durable-objects/account-credentials.ts";
export { SigningKeys } from "./durable-objects/signing-keys.ts";

const app = buildApp();

export default {
  fetch(request: Request, env: Bindings, executionCtx: ExecutionContext) {
    const hot = hotRoute(request, env);
    return hot ? serveHot(hot, request, env, executionCtx) : app.fetch(request, env, executionCtx);
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(runJobs(env));
  },
  async queue(batch, env) {
    await consumeWebhooks(batch, env);
  },
} satisfies ExportedHandler<Bindings>;
