import { fnv1a } from "../../lib/fnv.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import type { Ctx } from "../shared/context.ts";
import type { AccountCredentialsRpc } from "./account-object.ts";

/**
 * The one replay check for single-use JWTs: client assertions (private_key_jwt), DPoP proofs and
 * single-use federated tokens. A jti is remembered in one of a namespace's shards (AccountCredentials
 * objects named below) until `expMs`; the key includes the scope (client id, key thumbprint,
 * issuer), so two scopes' equal jti never collide.
 */
export type ReplayNamespace = "client-jwt" | "dpop" | "federation";

/** Where a namespace remembers a jti: the shard's object name and the key in it. */
type Slot = (scope: string, jti: string) => { object: string; key: string };

/**
 * Client assertions: FNV-1a picks the shard (a client's jtis are its own to choose, so aiming them
 * at one shard only loads that shard), the key is the scope and the jti in plain (length-prefixed,
 * so no pair reads as another). DPoP and federation keep the sha256-named objects and keys they had
 * before this module, so their remembered jtis carry over a deploy.
 */
const SLOTS: Record<ReplayNamespace, Slot> = {
  "client-jwt": (scope, jti) => ({ object: `client-jwt:${fnv1a(`${scope} ${jti}`) % 8}`, key: `jti:client-jwt:${scope.length}:${scope}:${jti}` }),
  dpop: (scope, jti) => hashedSlot("dpop", 32, "dpop", scope, jti),
  federation: (scope, jti) => hashedSlot(`federation:${sha256Hex(scope).slice(0, 16)}`, 16, "fed", scope, jti),
};

function hashedSlot(objectPrefix: string, shards: number, keyPrefix: string, scope: string, jti: string) {
  const hash = sha256Hex(`${scope} ${jti}`);
  return { object: `${objectPrefix}:${parseInt(hash.slice(0, 4), 16) % shards}`, key: `jti:${keyPrefix}:${hash}` };
}

/** The object name and the key a jti is remembered under. */
export function replaySlot(namespace: ReplayNamespace, scope: string, jti: string): { object: string; key: string } {
  return SLOTS[namespace](scope, jti);
}

// Ids are plain values (stubs are bound to the request that made them): naming one hashes the name.
const ids = new Map<string, DurableObjectId>();

function shard(ctx: Pick<Ctx, "env">, name: string): AccountCredentialsRpc {
  const namespace: DurableObjectNamespace = ctx.env.ACCOUNT_DO;
  let id = ids.get(name);
  if (!id) {
    id = namespace.idFromName(name);
    if (ids.size < 1024) ids.set(name, id);
  }
  return namespace.get(id) as unknown as AccountCredentialsRpc;
}

/** True the first time `jti` is presented within `scope`; false for a replay while it is remembered. */
export async function rememberOnce(ctx: Pick<Ctx, "env">, namespace: ReplayNamespace, scope: string, jti: string, expMs: number): Promise<boolean> {
  const { object, key } = replaySlot(namespace, scope, jti);
  return shard(ctx, object).rememberOnce(key, expMs);
}
