import { createRoute, z } from "@hono/zod-openapi";
import { exchangeAccessToken } from "../domain/exchange.ts";
import { ctxOf, errors, jsonBody, jsonResponse, router } from "./common.ts";

export const exchangeBody = z
  .object({
    access_token: z.string().min(1).max(256).openapi({ example: "sat_<your access token>" }),
    duration_seconds: z
      .number()
      .int()
      .min(1)
      .optional()
      .openapi({ description: "JWT lifetime; default DEFAULT_JWT_TTL_SECONDS (300). Over the token's remaining lifetime or MAX_JWT_TTL_SECONDS: 400 invalid_duration (rejected, never clipped)" }),
    scope: z
      .string()
      .max(2048)
      .optional()
      .openapi({ description: "Space-separated scopes, within what the account may request. Omit it for every allowed scope; an empty scope is 400 invalid_scope", example: "service-accounts.read" }),
    org: z.string().min(1).max(100).optional().openapi({ description: "Another org where the account holds an accepted role (default: its own)" }),
  })
  .strict()
  .openapi("AccessTokenExchange", { example: { access_token: "sat_<your access token>", duration_seconds: 300, scope: "service-accounts.read" } });

const exchangeRoute = createRoute({
  method: "post",
  path: "/jwt",
  tags: ["JWT"],
  summary: "Exchange an access token for a short-lived JWT",
  request: jsonBody(exchangeBody),
  responses: { 200: jsonResponse("The signed JWT (RFC 9068)", z.object({ jwt: z.string() })), ...errors(400, 401, 403, 415) },
});

export const exchangeRoutes = router();

/** The token exchange endpoint: an access token for a short-lived JWT. */
exchangeRoutes.openapi(exchangeRoute, async (c) => {
  const body = c.req.valid("json");
  const { jws } = await exchangeAccessToken(ctxOf(c), { accessToken: body.access_token, durationSeconds: body.duration_seconds, scope: body.scope, org: body.org });
  return c.json({ jwt: jws }, 200, { "cache-control": "no-store" });
});
