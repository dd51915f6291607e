CREATE TABLE `usage_counters` (
	`account_id` text NOT NULL,
	`hour` integer NOT NULL,
	`exchanges` integer NOT NULL,
	PRIMARY KEY(`account_id`, `hour`)
);
--> statement-breakpoint
CREATE INDEX `usage_counters_hour` ON `usage_counters` (`hour`);--> statement-breakpoint
DROP INDEX `audit_events_org_time`;--> statement-breakpoint
CREATE INDEX `audit_events_time` ON `audit_events` (`created_at`);--> statement-breakpoint
CREATE INDEX `audit_events_org_time` ON `audit_events` (`org_id`,`created_at`,`id`);