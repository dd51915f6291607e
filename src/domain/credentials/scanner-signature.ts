import type { ScannerKey } from "../../env.ts";
import { base64Bytes, derToP1363 } from "../../lib/ecdsa-der.ts";
import { DomainError } from "../shared/errors.ts";
import type { Ctx } from "../shared/context.ts";
import { isolateState } from "../shared/isolate-state.ts";

/**
 * The signature of a secret scanning report (GitHub's partner programme, docs/leaked-tokens.md):
 * ECDSA P-256 with SHA-256 over the raw body, base64 DER in `GITHUB-PUBLIC-KEY-SIGNATURE`, by the
 * key `GITHUB-PUBLIC-KEY-IDENTIFIER` names among SECRET_SCANNING_KEYS. Each key is imported once
 * per isolate (at most as many as the variable lists, 50).
 */

const imported = isolateState("scanner-keys", () => ({ keys: new Map<string, Promise<CryptoKey>>() }));

const invalidSignature = (detail: string) => new DomainError("invalid_signature", detail);

function importScannerKey(key: ScannerKey): Promise<CryptoKey> {
  const cacheKey = `${key.keyIdentifier}\n${key.pem}`;
  let found = imported.keys.get(cacheKey);
  if (!found) {
    const body = key.pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
    const spki = base64Bytes(body);
    found = spki
      ? crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"])
      : Promise.reject(new Error(`SECRET_SCANNING_KEYS: key ${key.keyIdentifier} is not a PEM public key`));
    // A key that does not import is a configuration error: it fails loudly each time, and is not kept.
    found.catch(() => imported.keys.delete(cacheKey));
    imported.keys.set(cacheKey, found);
  }
  return found;
}

/** Whether reports are accepted at all (SECRET_SCANNING_KEYS set). */
export function assertScanningConfigured(ctx: Ctx): void {
  if (ctx.config.SECRET_SCANNING_KEYS.length === 0) {
    throw new DomainError("secret_scanning_not_configured", "Set SECRET_SCANNING_KEYS to accept secret scanning reports");
  }
}

/** Verifies a report's signature over its raw body; throws invalid_signature (401) otherwise. */
export async function verifyScannerSignature(ctx: Ctx, body: ArrayBuffer, keyIdentifier: string | undefined, signature: string | undefined): Promise<void> {
  assertScanningConfigured(ctx);
  if (!keyIdentifier || !signature) throw invalidSignature("Send GITHUB-PUBLIC-KEY-IDENTIFIER and GITHUB-PUBLIC-KEY-SIGNATURE");
  const entry = ctx.config.SECRET_SCANNING_KEYS.find((k) => k.keyIdentifier === keyIdentifier);
  if (!entry) throw invalidSignature("GITHUB-PUBLIC-KEY-IDENTIFIER names no configured key");
  const der = signature.length <= 256 ? base64Bytes(signature) : null;
  const raw = der && derToP1363(der, 32);
  if (!raw) throw invalidSignature("GITHUB-PUBLIC-KEY-SIGNATURE is not a base64 DER ECDSA signature");
  const valid = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, await importScannerKey(entry), raw, body);
  if (!valid) throw invalidSignature("The signature does not verify with the named key");
}
