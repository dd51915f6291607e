import { createRoute, z } from "@hono/zod-openapi";
import { exchangeAccessToken } from "../domain/exchange.ts";
import { ctxOf, errors, jsonBody, jsonResponse, router, validJson } from "./common.ts";

export const exchangeBody = z
  .object({
    access_token: z.string().min(1).max(256).openapi({ example: "sat_<your access token>" }),
    duration_seconds: z.number().int().min(1).optional().openapi({ description: "JWT lifetime; default DEFAULT_JWT_TTL_SECONDS (300). Over the token's remaining lifetime or MAX_JWT_TTL_SECONDS: 400" }),
    scope: z.string().max(2048).optional().openapi({ description: "Space-separated scopes, within what the account may request", example: "service-accounts.read" }),
    org: z.string().min(1).max(100).optional().openapi({ description: "Another org where the account holds an accepted role (default: its own)" }),
  })
  .strict()
  .openapi("AccessTokenExchange");

const exchangeRoute = createRoute({
  method: "post",
  path: "/jwt",
  tags: ["JWT"],
  summary: "Exchange an access token for a short-lived JWT",
  request: jsonBody(exchangeBody),
  responses: { 200: jsonResponse("The signed JWT (RFC 9068)", z.object({ jwt: z.string() })), ...errors(400, 401, 403, 415) },
});

const JSON_NO_STORE = { "content-type": "application/json", "cache-control": "no-store" };

/** The token exchange of Witboost's semantics: an access token for a short-lived JWT. The hot path: its body checked once against its schema (validJson), not through the OpenAPI validator's layers. */
export const exchangeRoutes = router();
exchangeRoutes.openAPIRegistry.registerPath(exchangeRoute);
exchangeRoutes.post("/jwt", async (c) => {
  const body = await validJson(c, exchangeBody);
  const { jwt } = await exchangeAccessToken(ctxOf(c), { accessToken: body.access_token, durationSeconds: body.duration_seconds, scope: body.scope, org: body.org });
  // A compact JWS is base64url and dots: nothing to escape, so no JSON.stringify copy of it per request.
  return new Response(`{"jwt":"${jwt}"}`, { status: 200, headers: JSON_NO_STORE });
});
