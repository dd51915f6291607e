-- Per-token restrictions (docs/tokens.md): a token's own scopes and networks (JSON arrays, null
-- for the account's), its remaining uses with an optional refill, and the account's JWT quota.
ALTER TABLE `access_tokens` ADD `scopes` text;
--> statement-breakpoint
ALTER TABLE `access_tokens` ADD `allowed_cidrs` text;
--> statement-breakpoint
ALTER TABLE `access_tokens` ADD `remaining_uses` integer;
--> statement-breakpoint
ALTER TABLE `access_tokens` ADD `max_uses` integer;
--> statement-breakpoint
ALTER TABLE `access_tokens` ADD `refill_amount` integer;
--> statement-breakpoint
ALTER TABLE `access_tokens` ADD `refill_interval_ms` integer;
--> statement-breakpoint
ALTER TABLE `access_tokens` ADD `last_refill_at` integer;
--> statement-breakpoint
ALTER TABLE `service_accounts` ADD `jwt_quota` text;
