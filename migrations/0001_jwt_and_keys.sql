CREATE TABLE `public_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`org_id` text,
	`kid` text NOT NULL,
	`alg` text NOT NULL,
	`jwk` text NOT NULL,
	`fingerprint` text NOT NULL,
	`name` text,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `public_keys_account_kid` ON `public_keys` (`account_id`,`kid`);--> statement-breakpoint
CREATE INDEX `public_keys_account` ON `public_keys` (`account_id`);--> statement-breakpoint
ALTER TABLE `service_accounts` ADD `allowed_scopes` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `service_accounts` ADD `token_endpoint_auth_method` text;