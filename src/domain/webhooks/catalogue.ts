/**
 * The webhook event catalogue (docs/webhooks.md): which audit actions reach webhooks, under which
 * event type. This is the one mapping; migrations/0006_webhooks.sql copies it into the
 * `webhook_event_types` table the outbox trigger reads, and a test fails when the two differ (a
 * new event is a row in a new migration and a line here).
 */
export const EVENT_CATALOGUE = {
  "access_token.created": { type: "token.created", description: "An access token was issued" },
  "access_token.regenerated": { type: "token.regenerated", description: "An access token got a new secret" },
  "access_token.revoked": { type: "token.revoked", description: "An access token was revoked" },
  "access_token.expiring": { type: "token.expiring", description: "An access token expires within `details.days` days (the org policy's expiryWarningDays)" },
  "access_token.expired": { type: "token.expired", description: "An access token reached its expiry" },
  "access_token.leaked": { type: "token.leaked", description: "An access token was reported leaked and revoked (`details.source`, `details.url`)" },
  "access_token.exhausted": { type: "token.exhausted", description: "An access token used up its limit" },
  "service_account.created": { type: "account.created", description: "A service account was created" },
  "service_account.disabled": { type: "account.disabled", description: "A service account was disabled" },
  "service_account.enabled": { type: "account.enabled", description: "A service account was enabled again" },
  "service_account.deleted": { type: "account.deleted", description: "A service account was deleted (every credential revoked)" },
  "service_account.expiring": { type: "account.expiring", description: "A service account expires within `details.days` days" },
  "public_key.created": { type: "key.added", description: "A public key was registered on an account" },
  "public_key.deleted": { type: "key.removed", description: "A public key was removed" },
  "public_key.expired": { type: "key.expired", description: "A public key reached its expiry" },
  "public_key.disabled": { type: "key.disabled", description: "A public key was disabled" },
  "public_key.enabled": { type: "key.enabled", description: "A public key was enabled again" },
  "credential.refused_network": { type: "credential.network_refused", description: "A valid credential was presented from outside its account's allowed networks" },
  "credential.federation_refused": { type: "federation.refused", description: "An external token was refused by every trust policy of its issuer" },
  "webhook_endpoint.disabled": { type: "webhook.disabled", description: "A webhook endpoint was disabled after failing for days (sent to the org's other endpoints)" },
} as const satisfies Record<string, { type: string; description: string }>;

export type CatalogueAction = keyof typeof EVENT_CATALOGUE;

/** The event of POST .../webhooks/{id}/test, sent to that endpoint whatever its filter. */
export const TEST_EVENT_TYPE = "webhook.test";

/** Every event type an endpoint's filter may name (besides `*`). */
export const EVENT_TYPES: string[] = Object.values(EVENT_CATALOGUE).map((e) => e.type);

/** The version of the payload's shape; a field removed or changing meaning makes it 2 (docs/webhooks.md). */
export const PAYLOAD_VERSION = 1;

/** The event type of an audit action, or undefined when the action is not an event. */
export function eventTypeOf(action: string): string | undefined {
  return (EVENT_CATALOGUE as Record<string, { type: string }>)[action]?.type;
}
