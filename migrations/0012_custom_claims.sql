-- Custom claims (docs/claims.md): a service account's metadata, a small string map (JSON object)
-- that the org's policy.jwtClaims may copy into its JWTs. The mapping itself lives in orgs.policy.
-- Written by hand (no drizzle-kit); mirrored in src/db/schema.ts.
ALTER TABLE `service_accounts` ADD `metadata` text DEFAULT '{}' NOT NULL;
