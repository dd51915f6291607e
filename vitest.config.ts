import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
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
                  // Trust policies may name these (docs/federation.md); federation tests add their loopback issuers here.
                  FEDERATION_ALLOWED_ISSUERS: "https://token.actions.githubusercontent.com,https://gitlab.com,https://oidc.cluster.example.test",
                },
              },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
            setupFiles: ["test/setup.ts"],
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
