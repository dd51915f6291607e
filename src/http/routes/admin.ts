import { createRoute, z } from "@hono/zod-openapi";
import { withPermission } from "../../domain/access/permissions.ts";
import { listSigningKeys, rotateSigningKeys } from "../../domain/signing/key-admin.ts";
import type { Keyset } from "../../domain/signing/keyset.ts";
import { JOBS, runJobs } from "../../cron/index.ts";
import { ctxOf, errors, iso, jsonBody, jsonResponse, needs, router } from "./common.ts";

const keyInfo = z.object({ kid: z.string(), alg: z.string(), createdAt: z.string(), activatesAt: z.string(), retiredAt: z.string().nullable(), state: z.enum(["next", "active", "retired"]) });
const keysSchema = z.object({ items: z.array(keyInfo) }).openapi("SigningKeys");

function describe(keyset: Keyset, now: number) {
  return {
    items: keyset.keys.map((k) => ({
      kid: k.kid,
      alg: k.alg,
      createdAt: iso(k.createdAt)!,
      activatesAt: iso(k.activatesAt)!,
      retiredAt: iso(k.retiredAt),
      state: (k.activatesAt > now ? "next" : k.retiredAt !== null && k.retiredAt <= now ? "retired" : "active") as "next" | "active" | "retired",
    })),
  };
}

export const rotateBody = z
  .object({ activateInSeconds: z.number().int().min(0).max(86_400).optional().openapi({ description: "Publish now, sign from then on (default JWKS_MAX_AGE_SECONDS, so cached key sets have the new key first)" }) })
  .strict();

/** Platform administration (root only). */
export const adminRoutes = router()
  .openapi(
    createRoute({ method: "get", path: "/signing-keys", tags: ["Platform"], summary: "The JWT signing keys (public facts only)", ...needs(listSigningKeys), responses: { 200: jsonResponse("Keys", keysSchema), ...errors(401, 403) } }),
    async (c) => {
      const ctx = ctxOf(c);
      return c.json(describe(await listSigningKeys(ctx, c.get("principal")), ctx.now()), 200);
    },
  )
  .openapi(
    createRoute({ method: "post", path: "/signing-keys/rotate", tags: ["Platform"], summary: "Rotate the JWT signing key", ...needs(rotateSigningKeys), request: jsonBody(rotateBody, false), responses: { 200: jsonResponse("Keys after the rotation", keysSchema.extend({ kid: z.string() })), ...errors(400, 401, 403) } }),
    async (c) => {
      const ctx = ctxOf(c);
      const { keyset, kid } = await rotateSigningKeys(ctx, c.get("principal"), c.req.valid("json")?.activateInSeconds ?? ctx.config.JWKS_MAX_AGE_SECONDS);
      return c.json({ kid, ...describe(keyset, ctx.now()) }, 200);
    },
  );

export const runJobsBody = z
  .object({ jobs: z.array(z.enum(Object.keys(JOBS) as [string, ...string[]])).optional().openapi({ description: "Default: every job" }) })
  .strict()
  .openapi("RunJobs", { example: { jobs: ["purge"] } });

/** The scheduled jobs, run on demand (the jobs live above the domain, so the operation is defined here). */
const runJobsNow = withPermission("platform.root", async (gate, jobs: string[] | undefined) => {
  gate.authorizePlatform();
  return runJobs(gate.ctx.env, { jobs });
});

const runSummarySchema = z
  .object({
    jobs: z.record(z.string(), z.record(z.string(), z.unknown())),
    durationMs: z.number(),
    items: z.number().int().openapi({ description: "Items handled by all jobs in the run" }),
    itemsPerSecond: z.number().int(),
    stoppedBy: z.enum(["time", "items", "subrequests"]).nullable().openapi({ description: "The bound that ended the run early, if one did (the rest is left to the next run)" }),
  })
  .openapi("JobRunSummary");

adminRoutes.openapi(
  createRoute({ method: "post", path: "/jobs/run", tags: ["Platform"], summary: "Run the scheduled jobs now, within the scheduled run's bounds", ...needs(runJobsNow), request: jsonBody(runJobsBody, false), responses: { 200: jsonResponse("What each job did", runSummarySchema), ...errors(400, 401, 403) } }),
  async (c) => c.json(await runJobsNow(ctxOf(c), c.get("principal"), c.req.valid("json")?.jobs), 200),
);
