-- Token status lists (draft-ietf-oauth-status-list; docs/status-list.md): every credential (access
-- token, public key, trust policy) holds one index; bit `idx` of list floor(idx / 131072) is 1 when
-- the JWTs minted from the credential are dead. Written by hand (no drizzle-kit); mirrored in
-- src/db/schema.ts. The triggers below are the one place the bits change.
CREATE TABLE `credential_status` (
	`idx` integer PRIMARY KEY NOT NULL,
	`credential_type` text NOT NULL,
	`credential_id` text NOT NULL,
	`account_id` text NOT NULL,
	`revoked` integer DEFAULT 0 NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `credential_status_credential` ON `credential_status` (`credential_id`);--> statement-breakpoint
CREATE INDEX `credential_status_account` ON `credential_status` (`account_id`);--> statement-breakpoint
-- The render reads only the set bits of one list.
CREATE INDEX `credential_status_revoked` ON `credential_status` (`idx`) WHERE `revoked` = 1;--> statement-breakpoint
-- The next index to hand out (one row). The write path takes an index from it while planning, so that
-- the KV record it writes can carry the index; indexes taken by a plan that never ran stay unused.
CREATE TABLE `credential_status_seq` (
	`id` integer PRIMARY KEY NOT NULL CHECK (`id` = 0),
	`next_idx` integer NOT NULL
);
--> statement-breakpoint
-- Backfill: every existing credential, oldest first, from index 0.
INSERT INTO `credential_status` (`idx`, `credential_type`, `credential_id`, `account_id`, `revoked`, `updated_at`)
SELECT row_number() OVER (ORDER BY c.`created_at`, c.`credential_id`) - 1, c.`credential_type`, c.`credential_id`, c.`account_id`,
	CASE WHEN c.`live` = 1 AND EXISTS (SELECT 1 FROM `service_accounts` a WHERE a.`id` = c.`account_id` AND a.`status` = 'active') THEN 0 ELSE 1 END,
	c.`created_at`
FROM (
	SELECT 'access_token' AS `credential_type`, `id` AS `credential_id`, `account_id`, `created_at`, CASE WHEN `status` = 'active' THEN 1 ELSE 0 END AS `live` FROM `access_tokens`
	UNION ALL
	SELECT 'public_key', `id`, `account_id`, `created_at`, 1 FROM `public_keys`
	UNION ALL
	SELECT 'federated_credential', `id`, `service_account_id`, `created_at`, 1 FROM `federated_credentials`
) c;
--> statement-breakpoint
INSERT INTO `credential_status_seq` (`id`, `next_idx`) SELECT 0, coalesce(max(`idx`) + 1, 0) FROM `credential_status`;
--> statement-breakpoint
-- A credential inserted without its status row (the write path inserts it first, in the same batch)
-- still gets one: every credential has an index.
CREATE TRIGGER `credential_status_token_inserted` AFTER INSERT ON `access_tokens`
WHEN NOT EXISTS (SELECT 1 FROM `credential_status` WHERE `credential_id` = NEW.`id`)
BEGIN
	INSERT INTO `credential_status` (`idx`, `credential_type`, `credential_id`, `account_id`, `revoked`, `updated_at`)
	SELECT s.`next_idx`, 'access_token', NEW.`id`, NEW.`account_id`,
		CASE WHEN NEW.`status` = 'active' AND EXISTS (SELECT 1 FROM `service_accounts` a WHERE a.`id` = NEW.`account_id` AND a.`status` = 'active') THEN 0 ELSE 1 END,
		NEW.`created_at`
	FROM `credential_status_seq` s WHERE s.`id` = 0;
	UPDATE `credential_status_seq` SET `next_idx` = `next_idx` + 1 WHERE `id` = 0;
END;
--> statement-breakpoint
CREATE TRIGGER `credential_status_key_inserted` AFTER INSERT ON `public_keys`
WHEN NOT EXISTS (SELECT 1 FROM `credential_status` WHERE `credential_id` = NEW.`id`)
BEGIN
	INSERT INTO `credential_status` (`idx`, `credential_type`, `credential_id`, `account_id`, `revoked`, `updated_at`)
	SELECT s.`next_idx`, 'public_key', NEW.`id`, NEW.`account_id`,
		CASE WHEN EXISTS (SELECT 1 FROM `service_accounts` a WHERE a.`id` = NEW.`account_id` AND a.`status` = 'active') THEN 0 ELSE 1 END,
		NEW.`created_at`
	FROM `credential_status_seq` s WHERE s.`id` = 0;
	UPDATE `credential_status_seq` SET `next_idx` = `next_idx` + 1 WHERE `id` = 0;
END;
--> statement-breakpoint
CREATE TRIGGER `credential_status_policy_inserted` AFTER INSERT ON `federated_credentials`
WHEN NOT EXISTS (SELECT 1 FROM `credential_status` WHERE `credential_id` = NEW.`id`)
BEGIN
	INSERT INTO `credential_status` (`idx`, `credential_type`, `credential_id`, `account_id`, `revoked`, `updated_at`)
	SELECT s.`next_idx`, 'federated_credential', NEW.`id`, NEW.`service_account_id`,
		CASE WHEN EXISTS (SELECT 1 FROM `service_accounts` a WHERE a.`id` = NEW.`service_account_id` AND a.`status` = 'active') THEN 0 ELSE 1 END,
		NEW.`created_at`
	FROM `credential_status_seq` s WHERE s.`id` = 0;
	UPDATE `credential_status_seq` SET `next_idx` = `next_idx` + 1 WHERE `id` = 0;
END;
--> statement-breakpoint
-- A token revoked or expired: its bit is set for good (a token never becomes active again).
CREATE TRIGGER `credential_status_token_dead` AFTER UPDATE OF `status` ON `access_tokens`
WHEN NEW.`status` <> 'active'
BEGIN
	UPDATE `credential_status` SET `revoked` = 1, `updated_at` = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
	WHERE `credential_id` = NEW.`id` AND `revoked` = 0;
END;
--> statement-breakpoint
CREATE TRIGGER `credential_status_token_deleted` AFTER DELETE ON `access_tokens`
BEGIN
	UPDATE `credential_status` SET `revoked` = 1, `updated_at` = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
	WHERE `credential_id` = OLD.`id` AND `revoked` = 0;
END;
--> statement-breakpoint
-- An account disabled: every credential it ever held, so every JWT minted from one.
CREATE TRIGGER `credential_status_account_disabled` AFTER UPDATE OF `status` ON `service_accounts`
WHEN NEW.`status` <> 'active' AND OLD.`status` = 'active'
BEGIN
	UPDATE `credential_status` SET `revoked` = 1, `updated_at` = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
	WHERE `account_id` = NEW.`id` AND `revoked` = 0;
END;
--> statement-breakpoint
-- Enabled again: the JWTs of its keys and policies verify again (as introspection says), those of
-- an active token too; a revoked, expired or deleted token's stay dead.
CREATE TRIGGER `credential_status_account_enabled` AFTER UPDATE OF `status` ON `service_accounts`
WHEN NEW.`status` = 'active' AND OLD.`status` <> 'active'
BEGIN
	UPDATE `credential_status` SET `revoked` = 0, `updated_at` = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
	WHERE `account_id` = NEW.`id` AND `revoked` = 1
		AND (`credential_type` <> 'access_token' OR `credential_id` IN (SELECT `id` FROM `access_tokens` WHERE `account_id` = NEW.`id` AND `status` = 'active'));
END;
--> statement-breakpoint
-- An account deleted: its rows stay, set, after its credentials are gone.
CREATE TRIGGER `credential_status_account_deleted` AFTER DELETE ON `service_accounts`
BEGIN
	UPDATE `credential_status` SET `revoked` = 1, `updated_at` = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
	WHERE `account_id` = OLD.`id` AND `revoked` = 0;
END;
