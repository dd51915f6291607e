PRAGMA foreign_keys=OFF;--> statement-breakpoint
-- Invitations are addressed to an email; existing ones take their account's (edited by hand: drizzle-kit copies columns by name).
CREATE TABLE `__new_invitations` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`email` text NOT NULL,
	`account_id` text,
	`account_org_id` text,
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
INSERT INTO `__new_invitations`("id", "org_id", "email", "account_id", "account_org_id", "role_id", "scope_type", "scope_id", "state", "assignment_id", "created_at", "created_by", "responded_at", "responded_by") SELECT "id", "org_id", coalesce((SELECT "email" FROM `service_accounts` WHERE `service_accounts`."id" = `invitations`."account_id"), ''), "account_id", "account_org_id", "role_id", "scope_type", "scope_id", "state", "assignment_id", "created_at", "created_by", "responded_at", "responded_by" FROM `invitations`;--> statement-breakpoint
DROP TABLE `invitations`;--> statement-breakpoint
ALTER TABLE `__new_invitations` RENAME TO `invitations`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `invitations_org` ON `invitations` (`org_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `invitations_account` ON `invitations` (`account_id`,`state`);--> statement-breakpoint
CREATE INDEX `invitations_email` ON `invitations` (`email`,`state`);