import type { Bindings } from "../src/env.ts";
import type { AccountCredentials } from "../src/durable-objects/account-credentials.ts";
import type { SigningKeys } from "../src/durable-objects/signing-keys.ts";

declare global {
  namespace Cloudflare {
    interface GlobalProps {
      mainModule: typeof import("../src/index.ts");
      durableNamespaces: "AccountCredentials";
    }
    // Tests reach the Durable Objects' own methods (runInDurableObject), so their namespaces are typed here.
    interface Env extends Omit<Bindings, "ACCOUNT_DO" | "SIGNING_KEYS"> {
      ACCOUNT_DO: DurableObjectNamespace<AccountCredentials>;
      SIGNING_KEYS: DurableObjectNamespace<SigningKeys>;
      TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
      /** The loopback OIDC issuers' base URL (test/federation/issuer-server.ts). */
      TEST_ISSUER_BASE: string;
      /** The loopback webhook receiver's base URL (test/webhooks/receiver-server.ts). */
      TEST_WEBHOOK_RECEIVER: string;
    }
  }
}
