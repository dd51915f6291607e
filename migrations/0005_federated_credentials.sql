CREATE TABLE `federated_credentials` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`service_account_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`issuer` text NOT NULL,
	`audiences` text NOT NULL,
	`subject` text,
	`claims` text DEFAULT '{}' NOT NULL,
	`max_token_age_seconds` integer,
	`enabled` integer DEFAULT true NOT NULL,
	`single_use` integer DEFAULT true NOT NULL,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `federated_credentials_account_name` ON `federated_credentials` (`service_account_id`,`name`);--> statement-breakpoint
CREATE INDEX `federated_credentials_issuer` ON `federated_credentials` (`issuer`);