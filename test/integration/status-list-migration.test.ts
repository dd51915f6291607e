import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { newId } from "../../src/lib/ids.ts";

/**
 * The backfill of migrations/0007_status_list.sql: every credential that existed before the lists
 * gets an index, its bit set when it is already dead (a revoked or expired token, any credential of
 * a disabled account). The migration's own statement runs again here, into a scratch table of the
 * same shape, over rows written the way the earlier migrations left them.
 */

const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0007_"))!;
const backfill = migration.queries.find((q) => q.includes("row_number()"))!;

async function seedAccount(status: "active" | "disabled") {
  const id = newId("account");
  const now = Date.now();
  await env.DB.prepare(
    "INSERT INTO service_accounts (id, org_id, name, name_key, email, groups, status, created_at, created_by, updated_at) VALUES (?, NULL, ?, ?, ?, '[]', ?, ?, 'test', ?)",
  )
    .bind(id, id, `/${id}`, `${id}@backfill.test`, status, now, now)
    .run();
  return id;
}

async function seedToken(accountId: string, status: "active" | "revoked" | "expired") {
  const id = newId("token");
  await env.DB.prepare("INSERT INTO access_tokens (id, account_id, secret_hash, hint, status, created_at, created_by) VALUES (?, ?, ?, 'sat_…', ?, ?, 'test')")
    .bind(id, accountId, crypto.randomUUID(), status, Date.now())
    .run();
  return id;
}

async function seedKey(accountId: string) {
  const id = newId("key");
  await env.DB.prepare("INSERT INTO public_keys (id, account_id, kid, alg, jwk, fingerprint, created_at, created_by) VALUES (?, ?, ?, 'ES256', '{}', 'fp', ?, 'test')")
    .bind(id, accountId, id, Date.now())
    .run();
  return id;
}

describe("migration 0007: the backfill", () => {
  it("indexes every token, key and trust policy from 0 without gaps, setting the bits of dead ones", async () => {
    expect(backfill, "the backfill statement of the migration").toBeDefined();
    const live = await seedAccount("active");
    const disabled = await seedAccount("disabled");
    const ids = {
      liveToken: await seedToken(live, "active"),
      revokedToken: await seedToken(live, "revoked"),
      expiredToken: await seedToken(live, "expired"),
      liveKey: await seedKey(live),
      disabledToken: await seedToken(disabled, "active"),
      disabledKey: await seedKey(disabled),
    };
    const scratch = `credential_status_backfill_${crypto.randomUUID().replace(/-/g, "")}`;
    await env.DB.prepare(`CREATE TABLE ${scratch} AS SELECT * FROM credential_status WHERE 0`).run();
    try {
      await env.DB.prepare(backfill.replace("INSERT INTO `credential_status`", `INSERT INTO ${scratch}`)).run();
      const rows = (await env.DB.prepare(`SELECT idx, credential_type, credential_id, account_id, revoked FROM ${scratch} ORDER BY idx`).all<{
        idx: number;
        credential_type: string;
        credential_id: string;
        account_id: string;
        revoked: number;
      }>()).results;
      const counts = await env.DB.prepare(
        "SELECT (SELECT count(*) FROM access_tokens) + (SELECT count(*) FROM public_keys) + (SELECT count(*) FROM federated_credentials) AS n",
      ).first<{ n: number }>();
      expect(rows.length, "one row per credential").toBe(counts!.n);
      expect(rows.map((r) => r.idx)).toEqual(rows.map((_, i) => i));
      const byId = new Map(rows.map((r) => [r.credential_id, r]));
      expect(byId.get(ids.liveToken)).toMatchObject({ credential_type: "access_token", account_id: live, revoked: 0 });
      expect(byId.get(ids.revokedToken)?.revoked).toBe(1);
      expect(byId.get(ids.expiredToken)?.revoked).toBe(1);
      expect(byId.get(ids.liveKey)).toMatchObject({ credential_type: "public_key", revoked: 0 });
      expect(byId.get(ids.disabledToken)?.revoked, "a disabled account's token").toBe(1);
      expect(byId.get(ids.disabledKey)?.revoked, "a disabled account's key").toBe(1);
    } finally {
      await env.DB.prepare(`DROP TABLE ${scratch}`).run();
    }
  });

  it("credentials written outside the write path get an index from the insert triggers, their bit as the account says", async () => {
    const disabled = await seedAccount("disabled");
    const token = await seedToken(disabled, "active");
    const key = await seedKey(disabled);
    const live = await seedAccount("active");
    const liveToken = await seedToken(live, "active");
    const row = (id: string) => env.DB.prepare("SELECT idx, revoked FROM credential_status WHERE credential_id = ?").bind(id).first<{ idx: number; revoked: number }>();
    expect((await row(token))?.revoked).toBe(1);
    expect((await row(key))?.revoked).toBe(1);
    expect((await row(liveToken))?.revoked).toBe(0);
    const seq = await env.DB.prepare("SELECT next_idx FROM credential_status_seq WHERE id = 0").first<{ next_idx: number }>();
    expect((await row(liveToken))!.idx).toBeLessThan(seq!.next_idx);
    // Enabling the account clears what the account's state set, not a token's own death.
    await env.DB.prepare("UPDATE service_accounts SET status = 'active' WHERE id = ?").bind(disabled).run();
    expect((await row(token))?.revoked).toBe(0);
    await env.DB.prepare("UPDATE access_tokens SET status = 'expired' WHERE id = ?").bind(token).run();
    expect((await row(token))?.revoked).toBe(1);
    await env.DB.prepare("UPDATE service_accounts SET status = 'disabled' WHERE id = ?").bind(disabled).run();
    await env.DB.prepare("UPDATE service_accounts SET status = 'active' WHERE id = ?").bind(disabled).run();
    expect((await row(token))?.revoked, "an expired token stays set").toBe(1);
    expect((await row(key))?.revoked).toBe(0);
  });
});
