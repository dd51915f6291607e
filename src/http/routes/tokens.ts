import { createRoute, z } from "@hono/zod-openapi";
import { issueToken, listOrgTokens, listTokens, MAX_GRACE_SECONDS, regenerateToken, revokeToken } from "../../domain/credentials/tokens.ts";
import { ctxOf, displayText, errors, jsonBody, jsonResponse, needs, pageOf, pageQuery, router } from "./common.ts";
import { issuedTokenSchema, scopeName, toIssuedTokenDto, toTokenDto, tokenSchema } from "./dto.ts";
import { parseCidr } from "../../lib/cidr.ts";

const tokenCidrs = z
  .array(z.string().max(64).refine((c) => parseCidr(c) !== null, "Not a CIDR block (e.g. 10.0.0.0/8 or 2001:db8::/32)"))
  .min(1)
  .max(50)
  .openapi({ description: "Networks the token may be used from, each within one of the account's when it has any (both apply)", example: ["10.1.0.0/16"] });

const MAX_USES = 1_000_000_000;
const refill = z
  .object({
    amount: z.number().int().min(1).max(MAX_USES),
    interval: z.enum(["minute", "hour", "day"]).optional(),
    intervalSeconds: z.number().int().min(1).max(366 * 86_400).optional(),
  })
  .strict()
  .refine((r) => (r.interval === undefined) !== (r.intervalSeconds === undefined), "Give interval or intervalSeconds, one of them")
  .openapi({ description: "Every interval the remaining uses are set back to amount (needs remainingUses)", example: { amount: 100, interval: "day" } });

export const issueTokenBody = z
  .object({
    name: displayText(64).optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
    expiresInSeconds: z.number().int().min(60).max(3650 * 86_400).optional(),
    scopes: z.array(scopeName).min(1).max(100).optional().openapi({ description: "The token's own scopes, a subset of what the account may request (422 otherwise); at use, the intersection with the account's current scopes" }),
    allowedCidrs: tokenCidrs.optional(),
    remainingUses: z.number().int().min(1).max(MAX_USES).optional().openapi({ description: "Uses before the token stops working (1: a one-time token); each accepted exchange, grant or API call spends one" }),
    refill: refill.optional(),
  })
  .strict()
  .refine((b) => b.refill === undefined || b.remainingUses !== undefined, { message: "refill needs remainingUses", path: ["refill"] })
  .openapi("IssueAccessToken", { example: { name: "ci", expiresInSeconds: 2_592_000 } });

export const regenerateBody = z
  .object({
    graceSeconds: z.number().int().min(0).max(MAX_GRACE_SECONDS).default(0).openapi({ description: "Keep the old secret working this long (zero-downtime rotation, up to 24 h)" }),
  })
  .strict()
  .openapi("RegenerateAccessToken", { example: { graceSeconds: 300 } });

export const reviewQuery = pageQuery.extend({
  status: z.enum(["active", "revoked", "expired"]).optional(),
  expiringWithinDays: z.coerce.number().int().min(0).max(3650).optional().openapi({ description: "Active tokens expiring within N days" }),
  unusedForDays: z.coerce.number().int().min(0).max(3650).optional().openapi({ description: "Tokens not used for N days (never used: counted from creation)" }),
  neverUsed: z.stringbool().optional().openapi({ description: "true: only tokens that have never been used" }),
  nearExhaustion: z.stringbool().optional().openapi({ description: "true: only live tokens with a use limit and at most 1 use (or 10 % of their uses) left" }),
});

const saParam = z.object({ org: z.string().max(100), sa: z.string().max(100) });
const tokParam = saParam.extend({ tok: z.string().max(100) });
const tags = ["Access tokens"];

export const tokenRoutes = router()
  .openapi(
    createRoute({ method: "get", path: "/{org}/tokens", tags, summary: "Review every token of the org (hints only)", ...needs(listOrgTokens), request: { params: z.object({ org: z.string().max(100) }), query: reviewQuery }, responses: { 200: jsonResponse("A page of tokens", pageOf(tokenSchema)), ...errors(400, 401, 403, 404) } }),
    async (c) => {
      const page = await listOrgTokens(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("query"));
      return c.json({ items: page.items.map((t) => toTokenDto(t)), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({ method: "post", path: "/{org}/service-accounts/{sa}/tokens", tags, summary: "Issue an access token (shown once, never outliving its account)", ...needs(issueToken), request: { params: saParam, ...jsonBody(issueTokenBody) }, responses: { 201: jsonResponse("The token with its secret", issuedTokenSchema), ...errors(400, 401, 403, 404, 409) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      const { token, secret } = await issueToken(ctxOf(c), c.get("principal"), org, sa, c.req.valid("json"));
      return c.json(toIssuedTokenDto(token, secret), 201);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/service-accounts/{sa}/tokens", tags, summary: "List an account's tokens (hints only), with review filters", ...needs(listTokens), request: { params: saParam, query: reviewQuery }, responses: { 200: jsonResponse("A page of tokens", pageOf(tokenSchema)), ...errors(400, 401, 403, 404) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      const page = await listTokens(ctxOf(c), c.get("principal"), org, sa, c.req.valid("query"));
      return c.json({ items: page.items.map((t) => toTokenDto(t)), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/{org}/service-accounts/{sa}/tokens/{tok}", tags, summary: "Revoke a token (idempotent)", ...needs(revokeToken), request: { params: tokParam }, responses: { 204: { description: "Revoked (or already dead)" }, ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa, tok } = c.req.valid("param");
      await revokeToken(ctxOf(c), c.get("principal"), org, sa, tok);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({ method: "post", path: "/{org}/service-accounts/{sa}/tokens/{tok}/regenerate", tags, summary: "New secret, same token and expiry; the old secret dies now or after graceSeconds", ...needs(regenerateToken), request: { params: tokParam, ...jsonBody(regenerateBody, false) }, responses: { 200: jsonResponse("The token with its new secret", issuedTokenSchema), ...errors(400, 401, 403, 404, 409) } }),
    async (c) => {
      const { org, sa, tok } = c.req.valid("param");
      const { token, secret } = await regenerateToken(ctxOf(c), c.get("principal"), org, sa, tok, c.req.valid("json")?.graceSeconds ?? 0);
      return c.json(toIssuedTokenDto(token, secret), 200);
    },
  );
