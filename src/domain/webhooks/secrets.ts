import type { WrappedWebhookSecret } from "../../db/schema.ts";
import { DomainError } from "../shared/errors.ts";
import { isolateState } from "../shared/isolate-state.ts";

/**
 * Webhook signing secrets and Standard Webhooks signatures. HMAC needs the secret itself, so it is
 * kept wrapped with AES-256-GCM under a key derived from SIGNING_KEY_ENCRYPTION_KEY (HKDF, its own
 * `info`, so it is never the key that wraps the JWT signing keys), the endpoint id as additional
 * data (a wrapped secret copied onto another endpoint does not unwrap). Shown once, in clear, at
 * creation and rotation.
 */

export const SECRET_PREFIX = "whsec_";
const SECRET_BYTES = 32;
const encoder = new TextEncoder();

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

const keks = isolateState("webhook-secret-keys", () => ({ bySecret: new Map<string, Promise<CryptoKey>>() }));

function kek(masterSecret: string): Promise<CryptoKey> {
  let key = keks.bySecret.get(masterSecret);
  if (!key) {
    key = crypto.subtle
      .importKey("raw", encoder.encode(masterSecret), "HKDF", false, ["deriveKey"])
      .then((base) =>
        crypto.subtle.deriveKey(
          { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(), info: encoder.encode("keyward webhook signing secrets v1") },
          base,
          { name: "AES-GCM", length: 256 },
          false,
          ["encrypt", "decrypt"],
        ),
      );
    keks.bySecret.set(masterSecret, key);
  }
  return key;
}

function masterSecret(secret: string | undefined): string {
  if (!secret) throw new DomainError("signing_not_configured", "SIGNING_KEY_ENCRYPTION_KEY is not set: webhook secrets cannot be stored");
  return secret;
}

/** A new signing secret: `whsec_` + base64 of 32 random bytes (what Standard Webhooks libraries take). */
export function generateSecret(): { secret: string; raw: Uint8Array } {
  const raw = crypto.getRandomValues(new Uint8Array(SECRET_BYTES));
  return { secret: SECRET_PREFIX + b64(raw), raw };
}

export async function wrapSecret(raw: Uint8Array, endpointId: string, master: string | undefined, now: number): Promise<WrappedWebhookSecret> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(endpointId) }, await kek(masterSecret(master)), raw);
  return { iv: b64(iv), data: b64(new Uint8Array(data)), createdAt: now, expiresAt: null };
}

async function unwrapSecret(wrapped: WrappedWebhookSecret, endpointId: string, master: string | undefined): Promise<Uint8Array> {
  const raw = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: unb64(wrapped.iv), additionalData: encoder.encode(endpointId) },
    await kek(masterSecret(master)),
    unb64(wrapped.data),
  );
  return new Uint8Array(raw);
}

/** The secrets that sign at `now`: the current one, and a rotated-out one until its grace ends. */
export const liveSecrets = (secrets: WrappedWebhookSecret[], now: number) => secrets.filter((s) => s.expiresAt === null || s.expiresAt > now);

/**
 * The `webhook-signature` header: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for every live
 * secret, space separated (a receiver accepts the message when any one verifies, so both the old
 * and the new secret work during a rotation's grace period).
 */
export async function signatureHeader(
  endpoint: { id: string; secrets: WrappedWebhookSecret[] },
  master: string | undefined,
  messageId: string,
  timestampSeconds: number,
  body: string,
  now: number,
): Promise<string> {
  const content = encoder.encode(`${messageId}.${timestampSeconds}.${body}`);
  const parts = await Promise.all(
    liveSecrets(endpoint.secrets, now).map(async (s) => {
      const key = await crypto.subtle.importKey("raw", await unwrapSecret(s, endpoint.id, master), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      return `v1,${b64(new Uint8Array(await crypto.subtle.sign("HMAC", key, content)))}`;
    }),
  );
  return parts.join(" ");
}
