import { createRoute, z } from "@hono/zod-openapi";
import { DomainError } from "../../domain/shared/errors.ts";
import { renderStatusList } from "../../domain/signing/status-list-token.ts";
import { statusListUri } from "../../domain/signing/status-list.ts";
import { ctxOf, errors, router } from "./common.ts";

const CONTENT_TYPE = "application/statuslist+jwt";
const listParam = z.object({
  n: z
    .string()
    .regex(/^(0|[1-9][0-9]{0,8})$/)
    .openapi({ description: "The list number, as a JWT's `status.status_list.uri` names it", example: "0" }),
});

/** A cached copy's remaining freshness in seconds (its Last-Modified is its iat), or 0 when it is stale. */
function remainingSeconds(cached: Response, ttl: number, nowMs: number): number {
  const issued = Date.parse(cached.headers.get("last-modified") ?? "");
  return Number.isNaN(issued) ? 0 : Math.floor((issued + ttl * 1000 - nowMs) / 1000);
}

const listResponse = (body: string | ReadableStream | null, lastModified: string, maxAge: number) =>
  new Response(body, { headers: { "content-type": CONTENT_TYPE, "cache-control": `public, max-age=${maxAge}`, "last-modified": lastModified } });

/**
 * Token status lists (draft-ietf-oauth-status-list; docs/status-list.md), public like the JWKS.
 * Each list is rendered from D1 at most once per STATUS_LIST_TTL_SECONDS per location: the Cache
 * API keeps it under its canonical URI (never the request's, so a query string cannot skip it).
 * A copy served from the cache is only fresh for the rest of its life (max-age counts down), so a
 * change reaches every verifier that follows max-age or the token's `ttl` within the TTL.
 */
export const statusListRoutes = router().openapi(
  createRoute({
    method: "get",
    path: "/{n}",
    tags: ["Meta"],
    summary: "A token status list (draft-ietf-oauth-status-list)",
    description:
      "The signed status list token (`typ: statuslist+jwt`; 1 bit per credential, set when every JWT minted from the credential is revoked). Verify it against /.well-known/jwks.json. Cached for STATUS_LIST_TTL_SECONDS.",
    request: { params: listParam },
    responses: {
      200: { description: "The status list token", content: { [CONTENT_TYPE]: { schema: z.string() } } },
      ...errors(400, 404),
    },
  }),
  async (c) => {
    const ctx = ctxOf(c);
    const n = Number(c.req.valid("param").n);
    const ttl = ctx.config.STATUS_LIST_TTL_SECONDS;
    const key = new Request(statusListUri(ctx.config.ISSUER, n));
    const cached = await caches.default.match(key);
    if (cached) {
      const left = remainingSeconds(cached, ttl, ctx.now());
      if (left > 0) return listResponse(cached.body, cached.headers.get("last-modified")!, left);
    }
    const list = await renderStatusList(ctx, n);
    if (!list) throw new DomainError("status_list_not_found", `No status list ${n}: the lists end earlier`);
    const lastModified = new Date(list.iat * 1000).toUTCString();
    await caches.default.put(key, listResponse(list.jwt, lastModified, list.ttl));
    return listResponse(list.jwt, lastModified, list.ttl);
  },
);
