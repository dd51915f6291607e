import { createRoute, z } from "@hono/zod-openapi";
import { accountPermissions, assignRole, listAccountAssignments, unassignRole } from "../../domain/access/account-roles.ts";
import { accountUsage, deleteAccount, listAccounts, MAX_VALIDITY_DAYS, patchAccount, readAccount } from "../../domain/registry/accounts.ts";
import { ctxOf, displayText, errors, iso, jsonBody, jsonResponse, nameText, needs, pageOf, pageQuery, router } from "./common.ts";
import { accountSchema, assignmentSchema, issuedTokenSchema, jwtQuotaSchema, scopeName, toAccountDto, toAssignmentDto, toIssuedTokenDto } from "./dto.ts";
import { provisionAccount } from "../../domain/registry/provision.ts";
import { parseCidr } from "../../lib/cidr.ts";
import { jwksUriField, publicKeyInput } from "./keys.ts";
import { issueTokenBody } from "./tokens.ts";

const groups = z.array(displayText(64)).max(50);
const cidrs = z
  .array(z.string().max(64).refine((c) => parseCidr(c) !== null, "Not a CIDR block (e.g. 10.0.0.0/8 or 2001:db8::/32)"))
  .max(50)
  .openapi({ description: "Networks the credentials may be used from (checked against CF-Connecting-IP); empty for anywhere", example: ["10.0.0.0/8", "2001:db8::/32"] });
const externalId = displayText(256);
/** A key a parsed record would drop without a word (assigning `__proto__` sets no property): refused instead. */
const refuseProtoKey = (raw: unknown, ctx: { addIssue: (issue: { code: "custom"; message: string; input: unknown }) => void }) => {
  if (raw !== null && typeof raw === "object" && Object.hasOwn(raw, "__proto__")) ctx.addIssue({ code: "custom", message: 'must not have the key "__proto__"', input: raw });
  return raw;
};
const metadata = z.preprocess(refuseProtoKey, z.record(z.string(), z.string())).openapi({
  description:
    "A small string map the org's custom claims (policy.jwtClaims) may copy into its JWTs: keys `^[a-zA-Z][a-zA-Z0-9_.-]{0,62}$`, at most 20, values of at most 256 characters, at most 2 KiB as JSON (else 422 invalid_metadata)",
  example: { team: "payments", costCenter: "cc-42" },
});
const allowedScopes = z
  .array(scopeName)
  .max(50)
  .openapi({ description: "Downstream scopes its JWTs may carry: names the org declared in policy.scopes, never a Keyward operation (those come from roles)" });
const validity = {
  daysValid: z.number().int().min(1).max(MAX_VALIDITY_DAYS).optional().openapi({ description: "Days the account stays valid (1..730)" }),
  expiresAt: z.iso.datetime({ offset: true }).optional().openapi({ description: "Or an explicit end of validity (within 730 days)" }),
};

export const scopeSchema = z.object({ type: z.enum(["org", "project", "environment"]), id: z.string().max(100) }).strict();
export const assignmentBody = z
  .object({ role: z.string().min(1).max(100).openapi({ example: "viewer" }), scope: scopeSchema.optional().openapi({ description: "Defaults to the org" }) })
  .strict()
  .openapi("CreateRoleAssignment", { example: { role: "viewer", scope: { type: "project", id: "prj_5Qm2Hk8sLw1Zr6Tn0Xc3Vb" } } });

export const createAccountBody = z
  .object({
    name: nameText(64).openapi({ example: "deploy-bot" }),
    email: z.email().max(254).optional().openapi({ description: "Defaults to <name>@<org-slug>.<SERVICE_ACCOUNT_EMAIL_DOMAIN>" }),
    displayName: displayText(128).optional(),
    description: displayText(1024).optional(),
    groups: groups.optional(),
    externalId: externalId.optional(),
    metadata: metadata.optional(),
    ...validity,
    roles: z.array(assignmentBody).max(20).optional().openapi({ description: "Roles to grant; none by default" }),
    permissionsFrom: z.literal("caller").optional().openapi({ description: "Also copy the caller's role assignments in this org" }),
    allowedCidrs: cidrs.optional(),
    allowedScopes: allowedScopes.optional(),
    jwtQuota: jwtQuotaSchema.optional(),
    requireDpop: z.boolean().optional().openapi({ description: "Only DPoP-bound JWTs for this account (docs/dpop.md); default: the org policy's requireDpop" }),
    publicKey: publicKeyInput.optional().openapi({ description: "Register a public key for private_key_jwt at creation (PEM SPKI or JWK)" }),
    jwksUri: jwksUriField.optional(),
    issueToken: z.union([z.boolean(), issueTokenBody]).optional().openapi({ description: "Issue the first access token in the same call" }),
  })
  .strict()
  .openapi("CreateServiceAccount", {
    example: { name: "deploy-bot", displayName: "Deploy bot", description: "Deploys the web app from CI", groups: ["ci"], externalId: "github:acme/web", daysValid: 90, roles: [{ role: "viewer" }], issueToken: true },
  });

export const patchAccountBody = z
  .object({
    name: nameText(64).optional(),
    displayName: displayText(128).nullable().optional(),
    description: displayText(1024).nullable().optional(),
    groups: groups.optional(),
    externalId: externalId.nullable().optional(),
    metadata: metadata.nullable().optional().openapi({ description: "Replaces the whole map; null clears it" }),
    status: z.enum(["active", "disabled"]).optional(),
    allowedCidrs: cidrs.optional(),
    allowedScopes: allowedScopes.optional(),
    jwtQuota: jwtQuotaSchema.nullable().optional(),
    requireDpop: z.boolean().optional(),
    daysValid: validity.daysValid,
    expiresAt: validity.expiresAt.unwrap().nullable().optional(),
  })
  .strict()
  .openapi("PatchServiceAccount", {
    example: { name: "deploy-bot-web", displayName: "Deploy bot (web)", description: "Deploys the web app", groups: ["ci", "web"], externalId: "github:acme/web", allowedScopes: ["billing:read"], status: "disabled" },
  });

export const listQuery = pageQuery.extend({
  q: z.string().max(128).optional().openapi({ description: "Search in name, email and display name" }),
  status: z.enum(["active", "disabled", "expired"]).optional(),
  group: z.string().max(64).optional(),
  externalId: z.string().max(256).optional(),
  unusedForDays: z.coerce.number().int().min(0).max(3650).optional().openapi({ description: "Accounts not used for N days" }),
});

const orgParam = z.object({ org: z.string().max(100) });
export const saParam = orgParam.extend({ sa: z.string().max(100) });
const raParam = saParam.extend({ ra: z.string().max(100) });
const effectiveSchema = z
  .object({ scope: z.object({ type: z.enum(["org", "project", "environment"]), id: z.string() }), operations: z.array(z.string()) })
  .openapi("EffectivePermissions");
const usageSchema = z
  .object({ accountId: z.string(), lastUsedAt: z.string().nullable(), exchanges24h: z.number().int(), exchanges30d: z.number().int() })
  .openapi("ServiceAccountUsage");
const createdSchema = accountSchema.extend({ token: issuedTokenSchema.optional() }).openapi("CreatedServiceAccount");
const tags = ["Service accounts"];

export const serviceAccountRoutes = router()
  .openapi(
    createRoute({ method: "post", path: "/{org}/service-accounts", tags, summary: "Create a service account", ...needs(provisionAccount), request: { params: orgParam, ...jsonBody(createAccountBody) }, responses: { 201: jsonResponse("The account (and its token, shown once, if issueToken was set)", createdSchema), ...errors(400, 401, 403, 404, 409, 422) } }),
    async (c) => {
      const { account, issued } = await provisionAccount(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("json"));
      return c.json({ ...toAccountDto(account), ...(issued ? { token: toIssuedTokenDto(issued.token, issued.secret) } : {}) }, 201);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/service-accounts", tags, summary: "List and search service accounts", ...needs(listAccounts), request: { params: orgParam, query: listQuery }, responses: { 200: jsonResponse("A page of accounts", pageOf(accountSchema)), ...errors(400, 401, 403, 404) } }),
    async (c) => {
      const page = await listAccounts(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("query"));
      return c.json({ items: page.items.map((a) => toAccountDto(a)), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/service-accounts/{sa}", tags, summary: "Read a service account", ...needs(readAccount), request: { params: saParam }, responses: { 200: jsonResponse("The account", accountSchema), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json(toAccountDto(await readAccount(ctxOf(c), c.get("principal"), org, sa)), 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/service-accounts/{sa}/usage", tags, summary: "Recent use: last use and JWTs issued in the last 24 h and 30 days", ...needs(accountUsage), request: { params: saParam }, responses: { 200: jsonResponse("Usage", usageSchema), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      const { account, ...counts } = await accountUsage(ctxOf(c), c.get("principal"), org, sa);
      return c.json({ accountId: account.id, lastUsedAt: iso(account.lastUsedAt), ...counts }, 200);
    },
  )
  .openapi(
    createRoute({ method: "patch", path: "/{org}/service-accounts/{sa}", tags, summary: "Edit, disable or re-enable a service account", ...needs(patchAccount), request: { params: saParam, ...jsonBody(patchAccountBody) }, responses: { 200: jsonResponse("The account", accountSchema), ...errors(400, 401, 403, 404, 409, 422) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json(toAccountDto(await patchAccount(ctxOf(c), c.get("principal"), org, sa, c.req.valid("json"))), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/{org}/service-accounts/{sa}", tags, summary: "Delete a service account and revoke all its credentials", ...needs(deleteAccount), request: { params: saParam }, responses: { 204: { description: "Deleted; every credential is dead" }, ...errors(400, 401, 403, 404) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      await deleteAccount(ctxOf(c), c.get("principal"), org, sa);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({ method: "post", path: "/{org}/service-accounts/{sa}/role-assignments", tags: ["Roles"], summary: "Grant a role at org, project or environment level", ...needs(assignRole), request: { params: saParam, ...jsonBody(assignmentBody) }, responses: { 201: jsonResponse("The assignment", assignmentSchema), ...errors(400, 401, 403, 404, 409, 422) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json(toAssignmentDto(await assignRole(ctxOf(c), c.get("principal"), org, sa, c.req.valid("json"))), 201);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/service-accounts/{sa}/role-assignments", tags: ["Roles"], summary: "List an account's role assignments", ...needs(listAccountAssignments), request: { params: saParam }, responses: { 200: jsonResponse("Assignments", pageOf(assignmentSchema)), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json({ items: (await listAccountAssignments(ctxOf(c), c.get("principal"), org, sa)).map(toAssignmentDto), nextCursor: null }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{org}/service-accounts/{sa}/permissions",
      tags: ["Roles"],
      summary: "The operations an account holds at a scope (inherited ones included)",
      ...needs(accountPermissions),
      request: { params: saParam, query: z.object({ scope: z.string().max(100).optional().openapi({ description: "org (default), a project id or an environment id" }) }) },
      responses: { 200: jsonResponse("Effective operations", effectiveSchema), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json(await accountPermissions(ctxOf(c), c.get("principal"), org, sa, c.req.valid("query").scope), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/{org}/service-accounts/{sa}/role-assignments/{ra}", tags: ["Roles"], summary: "Remove a role assignment", ...needs(unassignRole), request: { params: raParam }, responses: { 204: { description: "Removed" }, ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa, ra } = c.req.valid("param");
      await unassignRole(ctxOf(c), c.get("principal"), org, sa, ra);
      return c.body(null, 204);
    },
  );
