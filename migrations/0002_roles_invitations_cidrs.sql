CREATE TABLE `invitations` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`account_id` text NOT NULL,
	`account_org_id` text NOT NULL,
	`role_id` text NOT NULL,
	`scope_type` text NOT NULL,
	`scope_id` text NOT NULL,
	`state` text NOT NULL,
	`assignment_id` text,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`responded_at` integer,
	`responded_by` text
);
--> statement-breakpoint
CREATE INDEX `invitations_org` ON `invitations` (`org_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `invitations_account` ON `invitations` (`account_id`,`state`);--> statement-breakpoint
CREATE TABLE `roles` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`operations` text NOT NULL,
	`assignable_to_service_accounts` integer NOT NULL,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `roles_org_name` ON `roles` (`org_id`,`name`);--> statement-breakpoint
ALTER TABLE `service_accounts` ADD `allowed_cidrs` text DEFAULT '[]' NOT NULL;