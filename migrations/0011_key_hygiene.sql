-- Key hygiene (docs/keys.md): public keys get an expiry and a status (active, disabled, expired),
-- and an account may name a JWKS URL its private_key_jwt keys are fetched from.
-- Written by hand (no drizzle-kit); mirrored in src/db/schema.ts.
ALTER TABLE `public_keys` ADD `expires_at` integer;--> statement-breakpoint
ALTER TABLE `public_keys` ADD `status` text DEFAULT 'active' NOT NULL;--> statement-breakpoint
ALTER TABLE `public_keys` ADD `updated_at` integer;--> statement-breakpoint
CREATE INDEX `public_keys_expiry` ON `public_keys` (`expires_at`) WHERE `status` = 'active' AND `expires_at` IS NOT NULL;--> statement-breakpoint
CREATE INDEX `public_keys_org` ON `public_keys` (`org_id`,`created_at`,`id`);--> statement-breakpoint
ALTER TABLE `service_accounts` ADD `jwks_uri` text;
