import { buildApp } from "./app.ts";
import { runJobs } from "./cron/index.ts";
import type { Bindings } from "./env.ts";

export { AccountCredentials } from "./durable-objects/account-credentials.ts";
export { SigningKeys } from "./durable-objects/signing-keys.ts";

const app = buildApp();

export default {
  fetch: app.fetch,
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(runJobs(env));
  },
} satisfies ExportedHandler<Bindings>;
