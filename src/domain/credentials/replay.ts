import { sha256Hex } from "../../lib/sha256.ts";
import type { Ctx } from "../shared/context.ts";
import type { AccountCredentialsRpc } from "./account-object.ts";

/**
 * The one replay check for single-use JWTs: client assertions (private_key_jwt), DPoP proofs and
 * single-use federated tokens. A jti is remembered in one of a namespace's shards (AccountCredentials
 * objects named below, picked by sha256(scope jti)) until `expMs`; the key includes the scope (client
 * id, key thumbprint, issuer), so two scopes' equal jti never collide.
 */
export type ReplayNamespace = "client-jwt" | "dpop" | "federation";

const SPECS: Record<ReplayNamespace, { shards: number; object: (scope: string, shard: number) => string; key: string }> = {
  "client-jwt": { shards: 8, object: (_scope, n) => `client-jwt:${n}`, key: "jti:client-jwt:" },
  // DPoP and federation keep the object and key names they had before this module.
  dpop: { shards: 32, object: (_scope, n) => `dpop:${n}`, key: "jti:dpop:" },
  federation: { shards: 16, object: (scope, n) => `federation:${sha256Hex(scope).slice(0, 16)}:${n}`, key: "jti:fed:" },
};

/** The object name and the key a jti is remembered under. */
export function replaySlot(namespace: ReplayNamespace, scope: string, jti: string): { object: string; key: string } {
  const spec = SPECS[namespace];
  const hash = sha256Hex(`${scope} ${jti}`);
  return { object: spec.object(scope, parseInt(hash.slice(0, 4), 16) % spec.shards), key: spec.key + hash };
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
