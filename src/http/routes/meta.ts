import { createRoute, z } from "@hono/zod-openapi";
import { bootstrap } from "../../domain/registry/bootstrap.ts";
import { noBearerCredential } from "../../domain/credentials/bearer.ts";
import { bearerToken } from "../middleware/auth.ts";
import { BUILTIN_ROLES, OPERATIONS } from "../../domain/access/permissions.ts";
import { ctxOf, errors, jsonResponse, router, security } from "./common.ts";
import { accountSchema, issuedTokenSchema, toAccountDto, toIssuedTokenDto } from "./dto.ts";

const bootstrapSchema = z.object({ account: accountSchema, token: issuedTokenSchema }).openapi("Bootstrap");

/** Routes outside the authenticated management API. */
export const publicRoutes = router()
  .openapi(
    createRoute({ method: "get", path: "/healthz", tags: ["Meta"], summary: "Liveness", responses: { 200: jsonResponse("Alive", z.object({ status: z.literal("ok") })) } }),
    (c) => c.json({ status: "ok" as const }, 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/v1/bootstrap",
      tags: ["Meta"],
      summary: "Create the platform root service account, once",
      description: "Authenticate with `Authorization: Bearer <BOOTSTRAP_SECRET>`. Returns the root token once; 409 afterwards.",
      security,
      responses: { 201: jsonResponse("The root account and its token (shown once)", bootstrapSchema), ...errors(401, 409) },
    }),
    async (c) => {
      const presented = bearerToken(c.req.header("authorization"));
      if (presented === null) throw noBearerCredential();
      const { account, token, secret } = await bootstrap(ctxOf(c, "bootstrap"), presented);
      return c.json({ account: toAccountDto(account), token: toIssuedTokenDto(token, secret) }, 201);
    },
  );

const catalogueSchema = z
  .object({
    operations: z.array(z.object({ name: z.string(), description: z.string() })),
    builtinRoles: z.array(z.object({ id: z.string(), name: z.string(), description: z.string(), operations: z.array(z.string()), assignableToServiceAccounts: z.boolean() })),
  })
  .openapi("PermissionCatalogue");

export const permissionRoutes = router().openapi(
  createRoute({ method: "get", path: "/", tags: ["Roles"], summary: "The catalogue of operations and built-in roles", security, responses: { 200: jsonResponse("The catalogue", catalogueSchema), ...errors(401) } }),
  (c) =>
    c.json(
      {
        operations: Object.entries(OPERATIONS).map(([name, description]) => ({ name, description })),
        builtinRoles: BUILTIN_ROLES.map((r) => ({ ...r, operations: [...r.operations] })),
      },
      200,
    ),
);
