import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { allowedTestIssuers } from "./test/federation/issuers.ts";
import { freePort } from "./test/federation/issuer-server.ts";
import { SECRET_SCANNING_KEYS_JSON } from "./test/fixtures/secret-scanning-keys.ts";

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  // The loopback OIDC issuers of the federation tests (test/federation/): the port is chosen here,
  // because the Worker's allow-list must name it, and the globalSetup serves on it.
  process.env.KEYWARD_TEST_ISSUER_PORT ||= String(await freePort());
  const testIssuerBase = `http://127.0.0.1:${process.env.KEYWARD_TEST_ISSUER_PORT}`;
  process.env.KEYWARD_TEST_WEBHOOK_PORT ||= String(await freePort());
  return {
    test: {
      projects: [
        {
          // Unit and integration tests run inside workerd with real local D1, KV and Durable Objects.
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  BOOTSTRAP_SECRET: "test-bootstrap-secret-0123456789",
                  SIGNING_KEY_ENCRYPTION_KEY: "test-signing-key-encryption-key-0123456789",
                  ALLOWED_AUDIENCES: "https://api.example.test",
                  // Trust policies may name these (docs/federation.md), and the federation tests' loopback issuers.
                  FEDERATION_ALLOWED_ISSUERS: `https://token.actions.githubusercontent.com,https://gitlab.com,https://oidc.cluster.example.test,${allowedTestIssuers(testIssuerBase)}`,
                  TEST_ISSUER_BASE: testIssuerBase,
                  // Accounts' jwksUri (docs/keys.md): the tests serve key sets from the loopback issuers.
                  JWKS_URI_ALLOW_LOOPBACK: "true",
                  // Webhooks (test/webhooks/): the receiver is on loopback; retries 1 s apart, attempts 1 s at most.
                  WEBHOOK_ALLOW_LOOPBACK: "true",
                  WEBHOOK_RETRY_BASE_SECONDS: "1",
                  WEBHOOK_RETRY_MAX_DELAY_SECONDS: "1",
                  WEBHOOK_TIMEOUT_MS: "1000",
                  TEST_WEBHOOK_RECEIVER: `http://127.0.0.1:${process.env.KEYWARD_TEST_WEBHOOK_PORT}`,
                  // Secret scanning reports (docs/leaked-tokens.md): the public halves of the test key pairs in test/fixtures/.
                  SECRET_SCANNING_KEYS: SECRET_SCANNING_KEYS_JSON,
                },
              },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
            setupFiles: ["test/setup.ts"],
            globalSetup: ["test/federation/global-setup.ts", "test/webhooks/global-setup.ts"],
            testTimeout: 30_000,
          },
        },
        {
          // Black-box tests: the real dev server (`npm run dev`) driven over HTTP from Node.
          test: {
            name: "e2e",
            include: ["test/e2e/**/*.test.ts"],
            environment: "node",
            testTimeout: 120_000,
            hookTimeout: 120_000,
          },
        },
      ],
    },
  };
});
