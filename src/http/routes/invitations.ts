import { createRoute, z } from "@hono/zod-openapi";
import type { Invitation } from "../../db/schema.ts";
import { authorizeForOrg } from "../../domain/issuance/cross-org.ts";
import { answerInvitation, cancelInvitation, invite, listAccountInvitations, listOrgInvitations } from "../../domain/registry/invitations.ts";
import { ctxOf, errors, iso, jsonBody, jsonResponse, needs, pageOf, router } from "./common.ts";
import { assignmentBody } from "./service-accounts.ts";

export const inviteBody = assignmentBody
  .extend({ email: z.email().max(254).openapi({ description: "The invited service account's email; the answer is the same whether an account has it yet or not" }) })
  .strict()
  .openapi("CreateInvitation", { example: { email: "deploy-bot@partner.svc.keyward.dev", role: "viewer" } });
export const answerBody = z.object({ state: z.enum(["accepted", "declined"]) }).strict().openapi("AnswerInvitation", { example: { state: "accepted" } });

/** The inviting org's view: the email it gave, never which account (if any) has it, or its org. */
const invitationSchema = z
  .object({
    id: z.string(),
    orgId: z.string().openapi({ description: "The inviting org" }),
    email: z.string().openapi({ description: "The invitee's email, as the inviting org gave it" }),
    roleId: z.string(),
    scope: z.object({ type: z.enum(["org", "project", "environment"]), id: z.string() }),
    state: z.enum(["pending", "accepted", "declined", "cancelled"]),
    createdAt: z.string(),
    createdBy: z.string(),
    respondedAt: z.string().nullable(),
  })
  .openapi("Invitation");
/** The invitee's home org's view: which of its accounts the invitation is for. */
const receivedSchema = invitationSchema
  .extend({ accountId: z.string(), accountOrgId: z.string().openapi({ description: "The account's home org" }) })
  .openapi("ReceivedInvitation");
const toDto = (i: Invitation) => ({
  id: i.id,
  orgId: i.orgId,
  email: i.email,
  roleId: i.roleId,
  scope: { type: i.scopeType, id: i.scopeId },
  state: i.state,
  createdAt: iso(i.createdAt)!,
  createdBy: i.createdBy,
  respondedAt: iso(i.respondedAt),
});
const toReceivedDto = (i: Invitation) => ({ ...toDto(i), accountId: i.accountId ?? "", accountOrgId: i.accountOrgId ?? "" });

const stateQuery = z.object({ state: z.enum(["pending", "accepted", "declined", "cancelled"]).optional() });
const orgParam = z.object({ org: z.string().max(100) });
const saParam = orgParam.extend({ sa: z.string().max(100) });
const tags = ["Invitations"];

export const invitationRoutes = router()
  .openapi(
    createRoute({ method: "post", path: "/{org}/invitations", tags, summary: "Invite a service account of another org (by email) to a role here", ...needs(invite), request: { params: orgParam, ...jsonBody(inviteBody) }, responses: { 201: jsonResponse("The invitation", invitationSchema), ...errors(400, 401, 403, 404, 409, 422) } }),
    async (c) => c.json(toDto(await invite(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("json"))), 201),
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/invitations", tags, summary: "The invitations this org sent", ...needs(listOrgInvitations), request: { params: orgParam, query: stateQuery }, responses: { 200: jsonResponse("Invitations", pageOf(invitationSchema)), ...errors(401, 403, 404) } }),
    async (c) => c.json({ items: (await listOrgInvitations(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("query").state)).map(toDto), nextCursor: null }, 200),
  )
  .openapi(
    createRoute({ method: "delete", path: "/{org}/invitations/{inv}", tags, summary: "Cancel an invitation (an accepted one loses its role)", ...needs(cancelInvitation), request: { params: orgParam.extend({ inv: z.string().max(100) }) }, responses: { 200: jsonResponse("The invitation", invitationSchema), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, inv } = c.req.valid("param");
      return c.json(toDto(await cancelInvitation(ctxOf(c), c.get("principal"), org, inv)), 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/service-accounts/{sa}/invitations", tags, summary: "Invitations an account of this org received", ...needs(listAccountInvitations), request: { params: saParam, query: stateQuery }, responses: { 200: jsonResponse("Invitations", pageOf(receivedSchema)), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json({ items: (await listAccountInvitations(ctxOf(c), c.get("principal"), org, sa, c.req.valid("query").state)).map(toReceivedDto), nextCursor: null }, 200);
    },
  )
  .openapi(
    createRoute({ method: "patch", path: "/{org}/service-accounts/{sa}/invitations/{inv}", tags, summary: "Accept or decline an invitation on the account's behalf", ...needs(answerInvitation), request: { params: saParam.extend({ inv: z.string().max(100) }), ...jsonBody(answerBody) }, responses: { 200: jsonResponse("The invitation", receivedSchema), ...errors(400, 401, 403, 404, 409) } }),
    async (c) => {
      const { org, sa, inv } = c.req.valid("param");
      return c.json(toReceivedDto(await answerInvitation(ctxOf(c), c.get("principal"), org, sa, inv, c.req.valid("json").state)), 200);
    },
  );

const authorizeSchema = z.object({ jwt: z.string(), orgId: z.string(), expiresAt: z.string(), scope: z.string() }).openapi("OrgAuthorization");

export const authorizeRoutes = router().openapi(
  createRoute({
    method: "post",
    path: "/authorize",
    tags: ["JWT"],
    summary: "A JWT for an org where the caller holds an accepted role (default one day)",
    security: [{ bearer: [] }],
    request: jsonBody(z.object({ org: z.string().min(1).max(100) }).strict().openapi("Authorize", { example: { org: "acme" } })),
    responses: { 200: jsonResponse("The JWT for that org", authorizeSchema), ...errors(400, 401, 403) },
  }),
  async (c) => {
    const { jwt, orgId, expiresAt, scope } = await authorizeForOrg(ctxOf(c), c.get("principal"), c.req.valid("json").org);
    return c.json({ jwt, orgId, expiresAt: iso(expiresAt)!, scope: scope.join(" ") }, 200);
  },
);
