import { createRoute, z } from "@hono/zod-openapi";
import { createPlatformAccount, deletePlatformAccount } from "../../domain/registry/platform-accounts.ts";
import { ctxOf, errors, jsonBody, jsonResponse, nameText, needs, router } from "./common.ts";
import { jwksUriField, publicKeyInput } from "./keys.ts";

export const createPlatformAccountBody = z
  .object({
    name: nameText(64).openapi({ example: "billing-gateway" }),
    permissions: z.array(z.string().max(64)).max(32),
    tokenEndpointAuthMethod: z.enum(["client_secret_basic", "private_key_jwt"]),
    publicKey: publicKeyInput.optional(),
    jwksUri: jwksUriField.optional().openapi({ description: "private_key_jwt only: keys fetched from the client's own JWKS (with or instead of publicKey)" }),
  })
  .strict()
  .openapi("CreatePlatformServiceAccount", { example: { name: "billing-gateway", permissions: ["orgs.read"], tokenEndpointAuthMethod: "client_secret_basic" } });

const createdSchema = z
  .object({
    clientId: z.string(),
    clientSecret: z.string().optional().openapi({ description: "Shown once (client_secret_basic only)" }),
    clientIdIssuedAt: z.number().int().openapi({ description: "Epoch seconds" }),
  })
  .openapi("PlatformServiceAccount");

/** `/api/service-accounts`: platform-level OAuth clients (root only). */
export const platformAccountRoutes = router()
  .openapi(
    createRoute({ method: "post", path: "/", tags: ["Platform"], summary: "Create a platform-level service account (an OAuth client)", ...needs(createPlatformAccount), request: jsonBody(createPlatformAccountBody), responses: { 201: jsonResponse("The client", createdSchema), ...errors(400, 401, 403, 409, 422) } }),
    async (c) => {
      const { account, clientSecret } = await createPlatformAccount(ctxOf(c), c.get("principal"), c.req.valid("json"));
      return c.json({ clientId: account.id, ...(clientSecret ? { clientSecret } : {}), clientIdIssuedAt: Math.floor(account.createdAt / 1000) }, 201);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/{clientId}", tags: ["Platform"], summary: "Delete a platform-level service account", ...needs(deletePlatformAccount), request: { params: z.object({ clientId: z.string().max(100) }) }, responses: { 204: { description: "Deleted; every credential is dead" }, ...errors(401, 403, 404) } }),
    async (c) => {
      await deletePlatformAccount(ctxOf(c), c.get("principal"), c.req.valid("param").clientId);
      return c.body(null, 204);
    },
  );
