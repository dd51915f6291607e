import { buildApp } from "./app.ts";
import { runJobs } from "./cron/index.ts";
import type { Bindings } from "./env.ts";
import { hotRoute, serveHot } from "./hot-path.ts";
import { countedEnv, counts, resetCounts } from "./lib/binding-counts.ts";
import { consumeWebhooks } from "./queue/webhooks.ts";

export { AccountCredentials } from "./durable-objects/account-credentials.ts";
export { SigningKeys } from "./durable-objects/signing-keys.ts";

const app = buildApp();

/** GET /__binding-counts[?reset=1]: this isolate's totals (BINDING_COUNTS=on only; not in OpenAPI). */
function serveCounts(request: Request): Response {
  const url = new URL(request.url);
  const body = url.searchParams.get("reset") === "1" ? resetCounts() : { ...counts };
  return Response.json(body, { headers: { "cache-control": "no-store" } });
}

export default {
  fetch(request: Request, rawEnv: Bindings, executionCtx: ExecutionContext) {
    const env = countedEnv(rawEnv);
    if (env !== rawEnv && request.method === "GET" && new URL(request.url).pathname === "/__binding-counts") return serveCounts(request);
    const hot = hotRoute(request, env);
    return hot ? serveHot(hot, request, env, executionCtx) : app.fetch(request, env, executionCtx);
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(runJobs(countedEnv(env)));
  },
  async queue(batch, env) {
    await consumeWebhooks(batch, countedEnv(env));
  },
} satisfies ExportedHandler<Bindings>;
