import { DurableObject } from "cloudflare:workers";
import { KEYSET_KEY } from "../domain/credentials/kv-records.ts";
import { generateSigningKey, publishedKeys, type KeyPolicy, type Keyset, type SigningKey, type SigningKeysRpc } from "../domain/signing/keyset.ts";
import type { Bindings } from "../env.ts";
import { Serial } from "../lib/serial.ts";
import { countedEnv } from "../lib/binding-counts.ts";

const KEYS = "keys";


/**
 * The single writer of the signing keys (one instance, named "global"). It keeps the keys in its
 * own storage (private halves wrapped) and publishes the keyset to KV, where every isolate reads it.
 */
export class SigningKeys extends DurableObject<Bindings> implements SigningKeysRpc {
  constructor(ctx: DurableObjectState, env: Bindings) {
    // BINDING_COUNTS=on: this object's D1/KV calls count too (src/lib/binding-counts.ts).
    super(ctx, countedEnv(env));
  }

  private readonly lock = new Serial();

  private secret(): string {
    const secret = this.env.SIGNING_KEY_ENCRYPTION_KEY;
    if (!secret) throw new Error("SIGNING_KEY_ENCRYPTION_KEY is not set");
    return secret;
  }

  private async save(keys: SigningKey[], policy: KeyPolicy): Promise<Keyset> {
    const keyset: Keyset = { keys: publishedKeys({ keys, retentionMs: policy.retentionMs }, Date.now()), retentionMs: policy.retentionMs };
    await this.ctx.storage.put(KEYS, keyset.keys);
    await this.env.TOKENS.put(KEYSET_KEY, JSON.stringify(keyset));
    return keyset;
  }

  /** The current keyset, creating (and activating at once) the first key if there is none. */
  keyset(policy: KeyPolicy): Promise<Keyset> {
    return this.lock.run(async () => {
      const keys = (await this.ctx.storage.get<SigningKey[]>(KEYS)) ?? [];
      const now = Date.now();
      if (keys.some((k) => k.retiredAt === null)) return this.save(keys, policy);
      return this.save([...keys, await generateSigningKey(policy.alg, this.secret(), now, now)], policy);
    });
  }

  /**
   * Adds a new key, published now and signing from `activateInSeconds` on; the keys before it retire
   * at that moment and stay published for the retention period. `now` is the caller's clock.
   */
  rotate(policy: KeyPolicy, activateInSeconds: number, now = Date.now()): Promise<{ keyset: Keyset; kid: string }> {
    return this.lock.run(async () => {
      const activatesAt = now + activateInSeconds * 1000;
      const keys = ((await this.ctx.storage.get<SigningKey[]>(KEYS)) ?? []).map((k) =>
        k.retiredAt === null || k.retiredAt > activatesAt ? { ...k, retiredAt: activatesAt } : k,
      );
      const key = await generateSigningKey(policy.alg, this.secret(), now, activatesAt);
      return { keyset: await this.save([...keys, key], policy), kid: key.kid };
    });
  }
}
