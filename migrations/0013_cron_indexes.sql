-- Indexes for the scheduled jobs that otherwise read the whole store on every run (docs/performance.md,
-- "A million tokens"): expireAccounts looks for accounts past their expiry; revokeUnused, per org with
-- the policy, for active tokens last used (or created) before its cutoff.
-- Written by hand (no drizzle-kit); mirrored in src/db/schema.ts.
CREATE INDEX `service_accounts_expires` ON `service_accounts` (`expires_at`) WHERE `expires_at` IS NOT NULL;--> statement-breakpoint
CREATE INDEX `access_tokens_org_unused` ON `access_tokens` (`org_id`,`status`,coalesce(`last_used_at`, `created_at`));
