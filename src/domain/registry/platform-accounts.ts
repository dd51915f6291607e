import { and, eq, isNull } from "drizzle-orm";
import { serviceAccounts, type ServiceAccount, type TokenEndpointAuthMethod } from "../../db/schema.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { randomBase62 } from "../../lib/crypto.ts";
import { newId } from "../../lib/ids.ts";
import { accountObject, unwrap } from "../credentials/account-object.ts";
import { insertAccount, nameKey } from "./accounts.ts";
import type { Ctx } from "../shared/context.ts";
import { OPERATIONS, withPermission } from "../access/permissions.ts";
import { addKeyTo, parsePublicKey } from "../credentials/public-keys.ts";
import { assertJwksUri } from "../credentials/client-jwks.ts";
import { issueFor } from "../credentials/tokens.ts";

/** Platform-level service accounts: OAuth clients with platform-wide permissions, managed by the root. */

export interface PlatformAccountInput {
  name: string;
  email: string;
  permissions: string[];
  createdBy: string;
  displayName?: string | null;
  description?: string | null;
  tokenEndpointAuthMethod?: TokenEndpointAuthMethod | null;
  jwksUri?: string | null;
}

/** The row of a platform-level account (no org): the bootstrap root, platform clients. */
export function platformAccount(ctx: Pick<Ctx, "now">, input: PlatformAccountInput): ServiceAccount {
  const now = ctx.now();
  return {
    id: newId("account"),
    orgId: null,
    name: input.name,
    nameKey: nameKey(null, input.name),
    email: input.email,
    displayName: input.displayName ?? null,
    description: input.description ?? null,
    groups: [],
    allowedScopes: [],
    allowedCidrs: [],
    tokenEndpointAuthMethod: input.tokenEndpointAuthMethod ?? null,
    jwksUri: input.jwksUri ?? null,
    requireDpop: false,
    externalId: null,
    metadata: {},
    status: "active",
    expiresAt: null,
    platformPermissions: [...new Set(input.permissions)],
    jwtQuota: null,
    createdAt: now,
    createdBy: input.createdBy,
    updatedAt: now,
    lastUsedAt: null,
  };
}

export interface CreatePlatformAccountInput {
  name: string;
  permissions: string[];
  tokenEndpointAuthMethod: Extract<TokenEndpointAuthMethod, "client_secret_basic" | "private_key_jwt">;
  publicKey?: string | Record<string, unknown> | undefined;
  jwksUri?: string | undefined;
}

export const createPlatformAccount = withPermission("platform.root", async (gate, input: CreatePlatformAccountInput) => {
  gate.authorizePlatform();
  const { ctx, principal } = gate;
  const unknown = input.permissions.filter((p) => !(p in OPERATIONS));
  if (unknown.length > 0) {
    throw new DomainError("validation_failed", `Unknown permissions: ${unknown.join(", ")}`, { errors: [{ path: "body.permissions", message: "Not in the catalogue (GET /api/v1/permissions)" }] });
  }
  const keyBased = input.tokenEndpointAuthMethod === "private_key_jwt";
  if (keyBased !== (input.publicKey !== undefined || input.jwksUri !== undefined)) {
    throw new DomainError("validation_failed", "private_key_jwt needs publicKey or jwksUri; client_secret_basic takes neither", {
      errors: [{ path: "body.publicKey", message: "publicKey or jwksUri, exactly with private_key_jwt" }],
    });
  }
  // Refuse a bad key or URL before creating anything.
  if (input.publicKey !== undefined) await parsePublicKey(input.publicKey);
  const jwksUri = input.jwksUri !== undefined ? assertJwksUri(ctx, input.jwksUri) : null;
  const slug = input.name.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[-.]+|[-.]+$/g, "") || "client";
  const account = platformAccount(ctx, {
    name: input.name,
    email: `${slug}-${randomBase62(6).toLowerCase()}@platform.${ctx.config.SERVICE_ACCOUNT_EMAIL_DOMAIN}`,
    permissions: input.permissions,
    tokenEndpointAuthMethod: input.tokenEndpointAuthMethod,
    jwksUri,
    createdBy: principal.accountId,
  });
  const id = account.id;
  await insertAccount(ctx, account);
  if (input.publicKey !== undefined) await addKeyTo(ctx, id, null, { publicKey: input.publicKey });
  if (keyBased) {
    // A jwksUri-only client has no key to write its KV record: its object writes it now.
    if (input.publicKey === undefined) unwrap(await accountObject(ctx, id).sync(id));
    return { account, clientSecret: undefined };
  }
  const { secret } = await issueFor(ctx, null, id, {});
  return { account, clientSecret: secret };
});

export const deletePlatformAccount = withPermission("platform.root", async (gate, clientId: string): Promise<void> => {
  gate.authorizePlatform();
  const ctx = gate.ctx;
  const account = await ctx.db.select().from(serviceAccounts).where(and(eq(serviceAccounts.id, clientId), isNull(serviceAccounts.orgId))).get();
  if (!account || !account.tokenEndpointAuthMethod) throw notFound("Client");
  unwrap(await accountObject(ctx, clientId).deleteAccount(clientId, ctx.meta));
});
