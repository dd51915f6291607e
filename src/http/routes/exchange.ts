import { createRoute, z } from "@hono/zod-openapi";
import { exchangeAccessToken } from "../../domain/issuance/exchange.ts";
import type { Ctx } from "../../domain/shared/context.ts";
import { withSecurityHeaders } from "../../lib/http.ts";
import { ctxOf, errors, jsonBody, jsonResponse, router, validJson } from "./common.ts";
import { jsonText } from "../middleware/request.ts";
import { verifyDpopProof } from "../../domain/credentials/dpop.ts";

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

type ExchangeBody = z.infer<typeof exchangeBody>;
const EXCHANGE_FIELDS = new Set(["access_token", "duration_seconds", "scope", "org"]);
const optionalText = (v: unknown, min: number, max: number) => v === undefined || (typeof v === "string" && v.length >= min && v.length <= max);

/** What `exchangeBody` accepts, checked by hand (validJson's `plain`; tested against the schema), else undefined. */
export function plainExchangeBody(raw: unknown): ExchangeBody | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  for (const key in raw) if (!EXCHANGE_FIELDS.has(key)) return undefined;
  const { access_token, duration_seconds, scope, org } = raw as Record<string, unknown>;
  if (typeof access_token !== "string" || !optionalText(access_token, 1, 256) || !optionalText(scope, 0, 2048) || !optionalText(org, 1, 100)) return undefined;
  if (duration_seconds !== undefined && !(Number.isSafeInteger(duration_seconds) && (duration_seconds as number) >= 1)) return undefined;
  return raw as ExchangeBody;
}

const exchangeRoute = createRoute({
  method: "post",
  path: "/jwt",
  tags: ["JWT"],
  summary: "Exchange an access token for a short-lived JWT",
  description: "With a `DPoP` proof header (RFC 9449) the JWT is bound to the proof's key (`cnf.jkt`; docs/dpop.md).",
  request: jsonBody(exchangeBody),
  responses: { 200: jsonResponse("The signed JWT (RFC 9068)", z.object({ jwt: z.string() })), ...errors(400, 401, 403, 415) },
});

/** The token exchange endpoint: an access token for a short-lived JWT. Served by the hot path (src/hot-path.ts), and by the app with CORS on. */
export async function exchangeEndpoint(request: Request, ctx: Ctx, requestId: string): Promise<Response> {
  const body = validJson(jsonText(await request.arrayBuffer()), exchangeBody, plainExchangeBody);
  // RFC 9449: a DPoP proof binds the JWT to its key (cnf.jkt), as at /oauth/token.
  const dpop = request.headers.get("dpop");
  const jkt = dpop === null ? undefined : (await verifyDpopProof(ctx, dpop, { method: request.method, url: request.url })).jkt;
  const { jws } = await exchangeAccessToken(ctx, { accessToken: body.access_token, durationSeconds: body.duration_seconds, scope: body.scope, org: body.org, jkt });
  return new Response(JSON.stringify({ jwt: jws }), { status: 200, headers: withSecurityHeaders(requestId, { "content-type": "application/json", "cache-control": "no-store" }) });
}

export const exchangeRoutes = router();
exchangeRoutes.openAPIRegistry.registerPath(exchangeRoute);
exchangeRoutes.post("/jwt", (c) => exchangeEndpoint(c.req.raw, ctxOf(c), c.get("requestId")));
