import type { Ctx } from "./domain/context.ts";
import { getConfig, type Bindings } from "./env.ts";
import { errorResponse } from "./errors.ts";
import { applyResponseHeaders, corsEnabled, requestIdFor } from "./middleware/request.ts";
import { oauthErrorResponse } from "./oauth/errors.ts";
import { tokenEndpoint } from "./oauth/routes.ts";
import { exchangeEndpoint } from "./routes/exchange.ts";
import { requestCtx } from "./routes/common.ts";

interface HotRoute {
  handle: (request: Request, ctx: Ctx) => Promise<Response>;
  /** The route's error rendering, the same as the app's for it. */
  renderError: (err: unknown, requestId: string) => Response;
}

const token: HotRoute = { handle: tokenEndpoint, renderError: oauthErrorResponse };

/** POST only; the app mounts the same handlers at the same paths. */
const HOT_ROUTES = new Map<string, HotRoute>([
  ["/api/auth/access-tokens/jwt", { handle: exchangeEndpoint, renderError: errorResponse }],
  ["/oauth/token", token],
  ["/api/m2m/oauth/token", token],
]);

/**
 * The hot route a request takes, if any. The token exchange and /oauth/token are served straight
 * from the Worker's fetch: Hono's context, router and middleware chain cost about a tenth of these
 * requests (README, "Performance"). Only a POST to the exact path takes it, and only with CORS off;
 * anything else (a query string, CORS) goes through the app, which serves the same handlers.
 */
export function hotRoute(request: Request, env: Bindings): HotRoute | undefined {
  if (request.method !== "POST") return undefined;
  const url = request.url;
  const route = HOT_ROUTES.get(url.slice(url.indexOf("/", url.indexOf("//") + 2)));
  return route && !corsEnabled(getConfig(env)) ? route : undefined;
}

/** Serves a hot route with what the app's middleware adds: the request id and the response headers (the handlers bound the body). */
export async function serveHot(route: HotRoute, request: Request, env: Bindings, executionCtx: ExecutionContext): Promise<Response> {
  const requestId = requestIdFor(request.headers.get("x-request-id"));
  let response: Response;
  try {
    response = await route.handle(request, requestCtx(env, request, requestId, (p) => executionCtx.waitUntil(p)));
  } catch (err) {
    response = route.renderError(err, requestId);
  }
  applyResponseHeaders(response.headers, requestId);
  return response;
}
