-- Webhooks (docs/webhooks.md): endpoints, the outbox of deliveries, and every attempt.
-- Written by hand (no drizzle-kit); mirrored in src/db/schema.ts.
CREATE TABLE `webhook_endpoints` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`url` text NOT NULL,
	`description` text,
	`events` text NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`secrets` text NOT NULL,
	`failing_since` integer,
	`disabled_reason` text,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `webhook_endpoints_org` ON `webhook_endpoints` (`org_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`endpoint_id` text NOT NULL,
	`org_id` text NOT NULL,
	`event_id` text NOT NULL,
	`event_type` text NOT NULL,
	`state` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`window_started_at` integer NOT NULL,
	`next_attempt_at` integer,
	`enqueued_at` integer,
	`lease_until` integer,
	`last_status` integer,
	`last_error` text,
	`created_at` integer NOT NULL,
	`delivered_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `webhook_deliveries_endpoint_event` ON `webhook_deliveries` (`endpoint_id`,`event_id`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_endpoint_time` ON `webhook_deliveries` (`endpoint_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_unqueued` ON `webhook_deliveries` (`created_at`) WHERE `enqueued_at` IS NULL AND `state` = 'pending';--> statement-breakpoint
CREATE INDEX `webhook_deliveries_pending` ON `webhook_deliveries` (`next_attempt_at`) WHERE `state` = 'pending';--> statement-breakpoint
CREATE TABLE `webhook_attempts` (
	`delivery_id` text NOT NULL,
	`attempt` integer NOT NULL,
	`started_at` integer NOT NULL,
	`duration_ms` integer NOT NULL,
	`status` integer,
	`error` text,
	PRIMARY KEY(`delivery_id`, `started_at`, `attempt`)
);
--> statement-breakpoint
-- Which audit actions are webhook events, under which event type: a copy of EVENT_CATALOGUE
-- (src/domain/webhooks/catalogue.ts); test/integration/webhooks-outbox.test.ts fails when they differ.
CREATE TABLE `webhook_event_types` (
	`action` text PRIMARY KEY NOT NULL,
	`event_type` text NOT NULL
);
--> statement-breakpoint
INSERT INTO `webhook_event_types` (`action`, `event_type`) VALUES
	('access_token.created', 'token.created'),
	('access_token.regenerated', 'token.regenerated'),
	('access_token.revoked', 'token.revoked'),
	('access_token.expiring', 'token.expiring'),
	('access_token.expired', 'token.expired'),
	('access_token.leaked', 'token.leaked'),
	('access_token.exhausted', 'token.exhausted'),
	('service_account.created', 'account.created'),
	('service_account.disabled', 'account.disabled'),
	('service_account.enabled', 'account.enabled'),
	('service_account.deleted', 'account.deleted'),
	('service_account.expiring', 'account.expiring'),
	('public_key.created', 'key.added'),
	('public_key.deleted', 'key.removed'),
	('public_key.expired', 'key.expired'),
	('public_key.disabled', 'key.disabled'),
	('public_key.enabled', 'key.enabled'),
	('credential.refused_network', 'credential.network_refused'),
	('credential.federation_refused', 'federation.refused'),
	('webhook_endpoint.disabled', 'webhook.disabled');
--> statement-breakpoint
-- The outbox: an audit event of the catalogue gets one delivery row per enabled endpoint of its org
-- whose filter names the event type (or `*`), in the same transaction as the change it records.
CREATE TRIGGER `webhook_outbox` AFTER INSERT ON `audit_events`
WHEN NEW.`org_id` IS NOT NULL AND EXISTS (SELECT 1 FROM `webhook_event_types` WHERE `action` = NEW.`action`)
BEGIN
	INSERT OR IGNORE INTO `webhook_deliveries` (`id`, `endpoint_id`, `org_id`, `event_id`, `event_type`, `state`, `attempts`, `window_started_at`, `created_at`)
	SELECT 'whd_' || lower(hex(randomblob(12))), e.`id`, e.`org_id`, NEW.`id`, t.`event_type`, 'pending', 0, NEW.`created_at`, NEW.`created_at`
	FROM `webhook_endpoints` e JOIN `webhook_event_types` t ON t.`action` = NEW.`action`
	WHERE e.`org_id` = NEW.`org_id` AND e.`enabled` = 1
		AND EXISTS (SELECT 1 FROM json_each(e.`events`) j WHERE j.`value` = '*' OR j.`value` = t.`event_type`);
END;
