-- Leaked-token reports (docs/leaked-tokens.md) look tokens up by the hash of the reported secret,
-- current or previous (a regenerate grace): the previous secret's hash gets an index too.
-- Written by hand (no drizzle-kit); mirrored in src/db/schema.ts.
CREATE INDEX `access_tokens_previous_secret_hash` ON `access_tokens` (`previous_secret_hash`) WHERE `previous_secret_hash` IS NOT NULL;
