import type { Bindings } from "../env.ts";

/**
 * The scheduled handler. The credential-lifecycle jobs (expiry, reconciliation, purges, key
 * rotation) arrive with their own issue; until then a run only logs that it happened.
 */
export async function runScheduled(_env: Bindings, controller: { cron: string; scheduledTime: number }): Promise<{ jobs: Record<string, number> }> {
  const summary = { jobs: {} as Record<string, number> };
  console.log(JSON.stringify({ level: "info", event: "cron", cron: controller.cron, scheduledTime: controller.scheduledTime, ...summary }));
  return summary;
}
