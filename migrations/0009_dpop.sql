-- DPoP (docs/dpop.md): a service account whose JWTs must all be DPoP-bound (RFC 9449).
-- Written by hand (no drizzle-kit); mirrored in src/db/schema.ts.
ALTER TABLE `service_accounts` ADD `require_dpop` integer DEFAULT false NOT NULL;
