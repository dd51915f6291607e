import { createRoute, z } from "@hono/zod-openapi";
import type { PublicKey } from "../../db/schema.ts";
import { addKey, keyStatus, KID_PATTERN, listKeys, listOrgKeys, removeKey, setJwksUri, setKeyStatus } from "../../domain/credentials/public-keys.ts";
import { MAX_JWKS_URI_LENGTH } from "../../domain/credentials/client-jwks.ts";
import { accountSchema, toAccountDto } from "./dto.ts";
import { ctxOf, displayText, errors, iso, jsonBody, jsonResponse, needs, pageOf, pageQuery, router } from "./common.ts";

export const publicKeyInput = z
  .union([z.string().max(8192), z.record(z.string(), z.unknown())])
  .openapi({ description: "PEM SPKI (-----BEGIN PUBLIC KEY-----) or a public JWK", example: "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----" });

export const addKeyBody = z
  .object({
    publicKey: publicKeyInput,
    alg: z.enum(["ES256", "RS256", "EdDSA"]).optional().openapi({ description: "Inferred from the key when absent" }),
    kid: z.string().regex(KID_PATTERN).optional().openapi({ description: "The kid your assertions carry; default: the JWK's kid, else its RFC 7638 thumbprint" }),
    name: displayText(64).optional(),
    expiresAt: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: "When the key stops authenticating. With the org policy's maxKeyLifetimeDays: defaults to it, and a later one is refused (422 key_lifetime_exceeded)" }),
  })
  .strict()
  .openapi("AddPublicKey", { example: { publicKey: "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----", alg: "ES256", kid: "ci-2030-01", name: "CI signing key", expiresAt: "2030-01-31T00:00:00Z" } });

// The bound here only caps the body; the 2048-character rule is the domain's (422 jwks_uri_not_allowed).
export const jwksUriField = z
  .string()
  .min(1)
  .max(4 * MAX_JWKS_URI_LENGTH)
  .openapi({ description: "A public https URL serving a JWKS (RFC 7517): its keys authenticate the account by private_key_jwt, after its registered keys; fetched with a timeout and size limit, cached, refreshed on an unknown kid at most once a minute", example: "https://ci.example.com/.well-known/jwks.json" });

export const putJwksUriBody = z
  .object({ jwksUri: jwksUriField.nullable().openapi({ description: "null removes it" }) })
  .strict()
  .openapi("PutJwksUri", { example: { jwksUri: "https://ci.example.com/.well-known/jwks.json" } });

export const patchKeyBody = z
  .object({ status: z.enum(["active", "disabled"]).openapi({ description: "disabled: the key stops authenticating at once (reversible); active: enable it again (not once expired)" }) })
  .strict()
  .openapi("PatchPublicKey", { example: { status: "disabled" } });

const KEY_STATUSES = ["active", "disabled", "expired"] as const;
export const keySchema = z
  .object({
    id: z.string(),
    accountId: z.string(),
    kid: z.string(),
    alg: z.string(),
    fingerprint: z.string(),
    name: z.string().nullable(),
    jwk: z.record(z.string(), z.unknown()),
    status: z.enum(KEY_STATUSES).openapi({ description: "expired once past expiresAt (even before the cron marks it)" }),
    expiresAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("PublicKey");
export const toKeyDto = (k: PublicKey, now = Date.now()) => ({
  id: k.id,
  accountId: k.accountId,
  kid: k.kid,
  alg: k.alg,
  fingerprint: k.fingerprint,
  name: k.name,
  jwk: k.jwk,
  status: keyStatus(k, now),
  expiresAt: iso(k.expiresAt),
  createdAt: iso(k.createdAt)!,
});

export const keyReviewQuery = pageQuery.extend({
  status: z.enum(KEY_STATUSES).optional(),
  expiringWithinDays: z.coerce.number().int().min(0).max(3650).optional().openapi({ description: "Active keys expiring within N days" }),
});

const saParam = z.object({ org: z.string().max(100), sa: z.string().max(100) });
const keyParam = saParam.extend({ key: z.string().max(100) });
const tags = ["Public keys"];

export const keyRoutes = router()
  .openapi(
    createRoute({ method: "get", path: "/{org}/keys", tags, summary: "Review every public key of the org (expired, disabled, expiring)", ...needs(listOrgKeys), request: { params: z.object({ org: z.string().max(100) }), query: keyReviewQuery }, responses: { 200: jsonResponse("A page of keys", pageOf(keySchema)), ...errors(400, 401, 403, 404) } }),
    async (c) => {
      const page = await listOrgKeys(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("query"));
      return c.json({ items: page.items.map((k) => toKeyDto(k)), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({ method: "post", path: "/{org}/service-accounts/{sa}/keys", tags, summary: "Register a public key for private_key_jwt", ...needs(addKey), request: { params: saParam, ...jsonBody(addKeyBody) }, responses: { 201: jsonResponse("The key", keySchema), ...errors(400, 401, 403, 404, 409, 422) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json(toKeyDto(await addKey(ctxOf(c), c.get("principal"), org, sa, c.req.valid("json"))), 201);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/{org}/service-accounts/{sa}/keys", tags, summary: "List an account's public keys", ...needs(listKeys), request: { params: saParam }, responses: { 200: jsonResponse("Keys", pageOf(keySchema)), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json({ items: (await listKeys(ctxOf(c), c.get("principal"), org, sa)).map((k) => toKeyDto(k)), nextCursor: null }, 200);
    },
  )
  .openapi(
    createRoute({ method: "patch", path: "/{org}/service-accounts/{sa}/keys/{key}", tags, summary: "Disable or re-enable a public key", ...needs(setKeyStatus), request: { params: keyParam, ...jsonBody(patchKeyBody) }, responses: { 200: jsonResponse("The key", keySchema), ...errors(400, 401, 403, 404, 409) } }),
    async (c) => {
      const { org, sa, key } = c.req.valid("param");
      return c.json(toKeyDto(await setKeyStatus(ctxOf(c), c.get("principal"), org, sa, key, c.req.valid("json").status)), 200);
    },
  )
  .openapi(
    createRoute({ method: "put", path: "/{org}/service-accounts/{sa}/jwks-uri", tags, summary: "Set or remove the account's JWKS URL for private_key_jwt", ...needs(setJwksUri), request: { params: saParam, ...jsonBody(putJwksUriBody) }, responses: { 200: jsonResponse("The account", accountSchema), ...errors(400, 401, 403, 404, 422) } }),
    async (c) => {
      const { org, sa } = c.req.valid("param");
      return c.json(toAccountDto(await setJwksUri(ctxOf(c), c.get("principal"), org, sa, c.req.valid("json").jwksUri)), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/{org}/service-accounts/{sa}/keys/{key}", tags, summary: "Remove a public key", ...needs(removeKey), request: { params: keyParam }, responses: { 204: { description: "Removed" }, ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, sa, key } = c.req.valid("param");
      await removeKey(ctxOf(c), c.get("principal"), org, sa, key);
      return c.body(null, 204);
    },
  );
