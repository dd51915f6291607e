import { createRoute, z } from "@hono/zod-openapi";
import {
  createFederatedCredential,
  deleteFederatedCredential,
  listFederatedCredentials,
  CLAIM_NAME,
  POLICY_LIMITS as L,
  readFederatedCredential,
  updateFederatedCredential,
  type TrustPolicy,
} from "../../domain/credentials/federated-credentials.ts";
import { ctxOf, displayText, errors, iso, jsonBody, jsonResponse, matching, nameText, needs, pageOf, router } from "./common.ts";

/** Trust policies (docs/federation.md): which external OIDC tokens may act as the account. */

const issuer = z.string().min(1).max(512).openapi({ description: "The external issuer, exactly as its tokens' `iss`; one of FEDERATION_ALLOWED_ISSUERS", example: "https://token.actions.githubusercontent.com" });
const audiences = z
  .array(z.string().min(1).max(L.audience))
  .min(1)
  .max(L.audiences)
  .openapi({ description: "The `aud` values accepted (any one); default: this Keyward's ISSUER", example: ["https://keyward.example.com"] });
const subject = z.string().min(1).max(L.subject).nullable().openapi({ description: "The exact `sub` the token must carry (no glob); null for none", example: "repo:acme/deploy-bot:environment:prod" });
/** Parsing drops a JSON key `__proto__` (zod records skip it), which would silently lose its condition: refused instead. */
const noProtoKey = (value: unknown, ctx: { addIssue: (issue: { code: "custom"; message: string }) => void }) => {
  if (value !== null && typeof value === "object" && Object.hasOwn(value, "__proto__")) ctx.addIssue({ code: "custom", message: "__proto__ is not a claim name" });
  return value;
};
const claims = z
  .preprocess(
    noProtoKey,
    z
      .record(matching(z.string().min(1).max(L.claimName), CLAIM_NAME, "must be printable ASCII without spaces"), z.string().min(1).max(256))
      .refine((c) => Object.keys(c).length <= L.claims, `At most ${L.claims} claim conditions`),
  )
  .openapi({
    description:
      "Claim name (top-level, or a dotted path such as `kubernetes.io.namespace`) -> pattern: exact, or a glob where `*` matches within one `:` segment and `**` matches anything. A string claim must match; an array claim needs one matching element. Every condition must hold.",
    example: { repository_owner: "acme", ref: "refs/heads/main", job_workflow_ref: "acme/deploy-bot/.github/workflows/*@refs/heads/main" },
  });
const singleUse = z.boolean().openapi({
  description:
    "Default true: a token's `jti` is accepted once. False: the same token may be exchanged again while it lives (and within maxTokenAgeSeconds), for Kubernetes projected tokens a pod re-reads from its file",
});
const maxTokenAgeSeconds = z.number().int().min(L.minTokenAgeSeconds).max(L.maxTokenAgeSeconds).nullable().openapi({ description: "Refuse tokens issued (`iat`) longer ago; null for no bound beyond `exp`" });

export const createFederatedCredentialBody = z
  .object({
    name: nameText(L.name),
    description: displayText(L.description).nullable().optional(),
    issuer,
    audiences: audiences.optional(),
    subject: subject.optional(),
    claims: claims.optional(),
    maxTokenAgeSeconds: maxTokenAgeSeconds.optional(),
    enabled: z.boolean().optional().openapi({ description: "Default true; a disabled policy matches nothing" }),
    singleUse: singleUse.optional(),
  })
  .strict()
  .openapi("CreateFederatedCredential", {
    description: "At least one of `subject` or `claims` is required (422 policy_too_broad otherwise).",
    example: { name: "deploy-from-main", description: "Deploys from main, environment prod", issuer: "https://token.actions.githubusercontent.com", subject: "repo:acme/deploy-bot:environment:prod", claims: { ref: "refs/heads/main" }, maxTokenAgeSeconds: 600 },
  });

export const patchFederatedCredentialBody = z
  .object({
    name: nameText(L.name).optional(),
    description: displayText(L.description).nullable().optional(),
    issuer: issuer.optional(),
    audiences: audiences.optional(),
    subject: subject.optional(),
    claims: claims.optional().openapi({ description: "Replaces every claim condition" }),
    maxTokenAgeSeconds: maxTokenAgeSeconds.optional(),
    enabled: z.boolean().optional(),
    singleUse: singleUse.optional(),
  })
  .strict()
  .openapi("PatchFederatedCredential", { example: { name: "deploy-from-main", description: "Paused while the repository moves", enabled: false } });

export const federatedCredentialSchema = z
  .object({
    id: z.string().openapi({ example: "fed_3yQm0bE0mUq1hXv3r3aZ9c" }),
    accountId: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    issuer: z.string(),
    audiences: z.array(z.string()),
    subject: z.string().nullable(),
    claims: z.record(z.string(), z.string()),
    maxTokenAgeSeconds: z.number().int().nullable(),
    enabled: z.boolean(),
    singleUse: z.boolean(),
    createdAt: z.string(),
    createdBy: z.string(),
    updatedAt: z.string(),
  })
  .openapi("FederatedCredential");

export const toFederatedCredentialDto = (p: TrustPolicy) => ({
  id: p.id,
  accountId: p.serviceAccountId,
  name: p.name,
  description: p.description,
  issuer: p.issuer,
  audiences: p.audiences,
  subject: p.subject,
  claims: p.claims,
  maxTokenAgeSeconds: p.maxTokenAgeSeconds,
  enabled: p.enabled,
  singleUse: p.singleUse,
  createdAt: iso(p.createdAt)!,
  createdBy: p.createdBy,
  updatedAt: iso(p.updatedAt)!,
});

const saParam = z.object({ org: z.string().max(100), sa: z.string().max(100) });
const policyParam = saParam.extend({ fed: z.string().max(100) });
const tags = ["Federated credentials"];
const path = "/{org}/service-accounts/{sa}/federated-credentials";

export const federatedCredentialRoutes = router()
  .openapi(
    createRoute({
      method: "post",
      path,
      tags,
      summary: "Add a trust policy: tokens of an external OIDC issuer that may act as the account",
      ...needs(createFederatedCredential),
      request: { params: saParam, ...jsonBody(createFederatedCredentialBody) },
      responses: { 201: jsonResponse("The federated credential", federatedCredentialSchema), ...errors(400, 401, 403, 404, 409, 422) },
    }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json(toFederatedCredentialDto(await createFederatedCredential(ctxOf(c), c.get("principal"), org, sa, c.req.valid("json"))), 201);
    },
  )
  .openapi(
    createRoute({ method: "get", path, tags, summary: "List an account's federated credentials", ...needs(listFederatedCredentials), request: { params: saParam }, responses: { 200: jsonResponse("Federated credentials", pageOf(federatedCredentialSchema)), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json({ items: (await listFederatedCredentials(ctxOf(c), c.get("principal"), org, sa)).map(toFederatedCredentialDto), nextCursor: null }, 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: `${path}/{fed}`, tags, summary: "Read a federated credential", ...needs(readFederatedCredential), request: { params: policyParam }, responses: { 200: jsonResponse("The federated credential", federatedCredentialSchema), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa, fed } = c.req.valid("param");
      return c.json(toFederatedCredentialDto(await readFederatedCredential(ctxOf(c), c.get("principal"), org, sa, fed)), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: `${path}/{fed}`,
      tags,
      summary: "Edit, disable or re-enable a federated credential",
      ...needs(updateFederatedCredential),
      request: { params: policyParam, ...jsonBody(patchFederatedCredentialBody) },
      responses: { 200: jsonResponse("The federated credential", federatedCredentialSchema), ...errors(400, 401, 403, 404, 409, 422) },
    }),
    async (c) => {
      const { org, sa, fed } = c.req.valid("param");
      return c.json(toFederatedCredentialDto(await updateFederatedCredential(ctxOf(c), c.get("principal"), org, sa, fed, c.req.valid("json"))), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: `${path}/{fed}`, tags, summary: "Delete a federated credential", ...needs(deleteFederatedCredential), request: { params: policyParam }, responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa, fed } = c.req.valid("param");
      await deleteFederatedCredential(ctxOf(c), c.get("principal"), org, sa, fed);
      return c.body(null, 204);
    },
  );
