import { createRoute, z } from "@hono/zod-openapi";
import { createRole, deleteRole, getRole, listRoles, patchRole, type RoleDef } from "../../domain/access/roles.ts";
import { ctxOf, displayText, errors, jsonBody, jsonResponse, needs, pageOf, router } from "./common.ts";

export const roleBody = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "lowercase letters, digits, . _ -, up to 63").openapi({ example: "deployer" }),
    description: displayText(512).nullable().optional(),
    operations: z.array(z.string().max(64)).min(1).max(32).openapi({ example: ["service-accounts.read", "service-accounts.access-tokens.edit"] }),
    assignableToServiceAccounts: z.boolean().optional().openapi({ description: "Default true" }),
  })
  .strict()
  .openapi("CreateRole", { example: { name: "deployer", description: "Reads accounts and rotates their tokens", operations: ["service-accounts.read", "service-accounts.access-tokens.edit"] } });

export const roleSchema = z
  .object({ id: z.string(), orgId: z.string().nullable(), name: z.string(), description: z.string().nullable(), operations: z.array(z.string()), assignableToServiceAccounts: z.boolean(), builtin: z.boolean() })
  .openapi("Role");
const toRoleDto = (r: RoleDef) => ({ ...r, operations: [...r.operations] });

const orgParam = z.object({ org: z.string().max(100) });
const roleParam = orgParam.extend({ role: z.string().max(100).openapi({ description: "Role id or name" }) });
const tags = ["Roles"];

export const roleRoutes = router()
  .openapi(
    createRoute({ method: "post", path: "/{org}/roles", tags, summary: "Create a custom role (only with operations you hold)", ...needs(createRole), request: { params: orgParam, ...jsonBody(roleBody) }, responses: { 201: jsonResponse("The role", roleSchema), ...errors(400, 401, 403, 404, 409) } }),
    async (c) => c.json(toRoleDto(await createRole(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("json"))), 201),
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/roles", tags, summary: "List built-in and custom roles", ...needs(listRoles), request: { params: orgParam }, responses: { 200: jsonResponse("Roles", pageOf(roleSchema)), ...errors(401, 403, 404) } }),
    async (c) => c.json({ items: (await listRoles(ctxOf(c), c.get("principal"), c.req.valid("param").org)).map(toRoleDto), nextCursor: null }, 200),
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/roles/{role}", tags, summary: "Read a role", ...needs(getRole), request: { params: roleParam }, responses: { 200: jsonResponse("The role", roleSchema), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, role } = c.req.valid("param");
      return c.json(toRoleDto(await getRole(ctxOf(c), c.get("principal"), org, role)), 200);
    },
  )
  .openapi(
    createRoute({ method: "patch", path: "/{org}/roles/{role}", tags, summary: "Edit a custom role (its holders' JWT claims follow)", ...needs(patchRole), request: { params: roleParam, ...jsonBody(roleBody.partial().strict().openapi({ example: { description: "Reads accounts", operations: ["service-accounts.read"] } })) }, responses: { 200: jsonResponse("The role", roleSchema), ...errors(400, 401, 403, 404, 409) } }),
    async (c) => {
      const { org, role } = c.req.valid("param");
      return c.json(toRoleDto(await patchRole(ctxOf(c), c.get("principal"), org, role, c.req.valid("json"))), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/{org}/roles/{role}", tags, summary: "Delete a custom role and every assignment of it", ...needs(deleteRole), request: { params: roleParam }, responses: { 204: { description: "Deleted" }, ...errors(400, 401, 403, 404) } }),
    async (c) => {
      const { org, role } = c.req.valid("param");
      await deleteRole(ctxOf(c), c.get("principal"), org, role);
      return c.body(null, 204);
    },
  );
