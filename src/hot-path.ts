import type { Ctx } from "./domain/shared/context.ts";
import { getConfig, type Bindings } from "./env.ts";
import { errorResponse } from "./http/problem.ts";
import { requestIdFor } from "./lib/http.ts";
import { assertDeclaredLength, assertJsonBody, corsEnabled } from "./http/middleware/request.ts";
import { requestCtx } from "./http/routes/common.ts";
import { exchangeEndpoint } from "./http/routes/exchange.ts";

interface HotRoute {
  /** The checks the app's middleware makes of the route's body type (its length is checked here). */
  assertBodyType: (contentType: string | null, length: string) => void;
  handle: (request: Request, ctx: Ctx, requestId: string) => Promise<Response>;
  /** The route's error rendering, the same as the app's for it. */
  renderError: (err: unknown, requestId: string) => Response;
}

/**
 * POST only; the app mounts the same endpoint at the same path. Only the token exchange: the
 * token endpoints measured no gain from this path and go through the app (docs/performance.md,
 * "Hand-rolled code: measured").
 */
const HOT_ROUTES = new Map<string, HotRoute>([
  ["/api/auth/access-tokens/jwt", { assertBodyType: (type, length) => assertJsonBody(type, length !== "0"), handle: exchangeEndpoint, renderError: errorResponse }],
]);

/**
 * The hot route a request takes, if any: a POST to the exact path of the token exchange, with a
 * declared Content-Length, and CORS off. Anything else (a query string, a chunked
 * body, CORS) goes through the app, which serves the same endpoints with the same answers.
 */
export function hotRoute(request: Request, env: Bindings): HotRoute | undefined {
  if (request.method !== "POST") return undefined;
  const url = request.url;
  const route = HOT_ROUTES.get(url.slice(url.indexOf("/", url.indexOf("//") + 2)));
  if (!route || corsEnabled(getConfig(env))) return undefined;
  const headers = request.headers;
  return headers.has("content-length") && !headers.has("transfer-encoding") ? route : undefined;
}

/**
 * Serves a hot route straight from the Worker's fetch, with what the app's middleware does for it:
 * the request id, the body's type and length, the error rendering and the response headers (the
 * endpoint builds its response with them). The exchange's body is parsed once and checked by
 * `plainExchangeBody` instead of the app's UTF-8 body copy and zod-openapi's validator, which
 * `bench:compare` measured as the exchange's largest cost (docs/performance.md, "Hand-rolled code:
 * measured").
 */
export function serveHot(route: HotRoute, request: Request, env: Bindings, executionCtx: ExecutionContext): Response | Promise<Response> {
  const headers = request.headers;
  const requestId = requestIdFor(headers.get("x-request-id"));
  const failed = (err: unknown) => route.renderError(err, requestId);
  try {
    route.assertBodyType(headers.get("content-type"), headers.get("content-length")!);
    assertDeclaredLength(headers.get("content-length")!, getConfig(env).MAX_BODY_BYTES);
    return route.handle(request, requestCtx(env, headers, requestId, (p) => executionCtx.waitUntil(p)), requestId).catch(failed);
  } catch (err) {
    return failed(err);
  }
}
