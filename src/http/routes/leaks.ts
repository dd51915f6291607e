import { createRoute, z } from "@hono/zod-openapi";
import { assertReportAllowed, handleScannedSecrets, reportLeakedToken } from "../../domain/credentials/leaks.ts";
import { revokeSelf } from "../../domain/credentials/inspection.ts";
import { verifyScannerSignature } from "../../domain/credentials/scanner-signature.ts";
import { noBearerCredential } from "../../domain/credentials/bearer.ts";
import { bearerToken } from "../middleware/auth.ts";
import { jsonText } from "../middleware/request.ts";
import { ctxOf, errors, jsonBody, jsonResponse, router, security, validJson } from "./common.ts";

/** Leaked-token response (docs/leaked-tokens.md): the secret scanning endpoint, the public report route, self-revocation. */

const tags = ["Leaked tokens"];

export const MAX_SCANNED_ITEMS = 1000;

export const secretScanningBody = z
  .array(
    z.object({
      token: z.string().min(1).max(1024),
      type: z.string().max(256),
      url: z.string().max(4096).nullish(),
      source: z.string().max(256).nullish(),
    }),
  )
  .max(MAX_SCANNED_ITEMS)
  .openapi("SecretScanningReport", {
    example: [{ token: "sat_<a token found in public>", type: "keyward_access_token", url: "https://github.com/octo/repo/blob/abc/config.yml", source: "content" }],
  });

const labelSchema = z
  .array(z.object({ token_raw: z.string(), token_type: z.string(), label: z.enum(["true_positive", "false_positive"]) }))
  .openapi("SecretScanningLabels");

export const leakReportBody = z
  .object({
    token: z.string().min(1).max(4096).openapi({ description: "The access token (sat_...) or JWT found in public" }),
    url: z.string().max(4096).optional().openapi({ description: "Where it was found" }),
  })
  .strict()
  .openapi("LeakedTokenReport", { example: { token: "sat_<a token found in public>", url: "https://paste.example/abc" } });

const receivedSchema = z.object({ received: z.literal(true) }).openapi("LeakedTokenReceived");

const headerSchema = z.object({
  "github-public-key-identifier": z.string().openapi({ description: "The key (of SECRET_SCANNING_KEYS) that signed the body" }),
  "github-public-key-signature": z.string().openapi({ description: "Base64 DER ECDSA P-256 SHA-256 signature of the raw body" }),
});

/** Routes outside bearer authentication: each authenticates (a signature) or needs nothing, as it says. */
export const leakReportRoutes = router();

leakReportRoutes.openAPIRegistry.registerPath(
  createRoute({
    method: "post",
    path: "/api/v1/secret-scanning",
    tags,
    summary: "GitHub secret scanning partner endpoint: revoke reported tokens, label each",
    description:
      "Signed by GitHub (ECDSA P-256 over the raw body, keys from SECRET_SCANNING_KEYS); checked before the body is read. A token we issued is a `true_positive` (revoked now if it still worked, with a `token.leaked` event); anything else, a `false_positive`. 503 while SECRET_SCANNING_KEYS is unset.",
    request: { headers: headerSchema, ...jsonBody(secretScanningBody) },
    responses: { 200: jsonResponse("One label per reported token, in order", labelSchema), ...errors(400, 401, 413, 415, 503) },
  }),
);
leakReportRoutes.post("/api/v1/secret-scanning", async (c) => {
  const ctx = ctxOf(c, "github-secret-scanning");
  const raw = await c.req.raw.arrayBuffer();
  await verifyScannerSignature(ctx, raw, c.req.header("github-public-key-identifier"), c.req.header("github-public-key-signature"));
  const items = validJson(jsonText(raw), secretScanningBody);
  const labels = await handleScannedSecrets(
    ctx,
    items.map((i) => ({ token: i.token, source: i.source ?? null, url: i.url ?? null })),
    "github",
  );
  return c.json(
    items.map((item, i) => ({ token_raw: item.token, token_type: item.type, label: labels[i]! })),
    200,
  );
});

leakReportRoutes.openAPIRegistry.registerPath(
  createRoute({
    method: "post",
    path: "/api/v1/leaked-tokens",
    tags,
    summary: "Report a leaked token (no authentication): it is revoked if it works",
    description:
      "Anyone may report a token found in public. The answer is the same 202 whether the token was valid, unknown or garbage, and says nothing about its account. Limited per IP (LEAK_REPORTS binding): 429 over the limit.",
    request: jsonBody(leakReportBody),
    responses: { 202: jsonResponse("Received", receivedSchema), ...errors(400, 413, 415, 429) },
  }),
);
leakReportRoutes.post("/api/v1/leaked-tokens", async (c) => {
  const ctx = ctxOf(c, "leak-report");
  await assertReportAllowed(ctx);
  const body = validJson(jsonText(await c.req.raw.arrayBuffer()), leakReportBody);
  await reportLeakedToken(ctx, body.token, body.url ?? null);
  return c.json({ received: true as const }, 202);
});

/** DELETE /api/v1/tokens/current: the bearer credential revokes itself (mounted behind bearer authentication). */
export const currentTokenRoutes = router().openapi(
  createRoute({
    method: "delete",
    path: "/current",
    tags,
    summary: "Revoke the credential this request presents (self-revocation)",
    description:
      "An access token is revoked (and every JWT minted from it dies); a JWT is revoked by its jti (and the JWTs exchanged from it). No permission needed: a credential may always end itself.",
    security,
    responses: { 204: { description: "Revoked" }, ...errors(401) },
  }),
  async (c) => {
    const presented = bearerToken(c.req.header("authorization"));
    if (presented === null) throw noBearerCredential();
    await revokeSelf(ctxOf(c), presented);
    return c.body(null, 204);
  },
);
