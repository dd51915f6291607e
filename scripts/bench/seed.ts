/**
 * Seeding: through the API (bootstrap, an org, service accounts with a token, some with an ES256
 * key for private_key_jwt), and, for the scale check, accounts with a token written straight into
 * D1 and KV through the seeder Worker (runtime.ts).
 */
import { createHash, createPrivateKey, type KeyObject } from "node:crypto";
import { exportJWK, generateKeyPair, type CryptoKey as JoseKey, type JWK } from "jose";
import type { Miniflare } from "miniflare";
import { generateAccessToken, tokenHint } from "../../src/domain/credentials/access-token.ts";
import { tokenKey, type AccountClaims, type TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import { newId } from "../../src/lib/ids.ts";
import type { Log } from "./lifecycle.ts";

export interface BenchAccount {
  id: string;
  token: string;
  tokenId: string;
  /** For private_key_jwt clients. */
  key?: { kid: string; privateKey: JoseKey; nodeKey: KeyObject };
}

/** One management API call with a bearer token; throws (with the body) on an unexpected status. */
export async function api<T>(base: string, method: string, pathname: string, token: string, body?: unknown, expected = [200, 201]): Promise<T> {
  const res = await fetch(base + pathname, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!expected.includes(res.status)) throw new Error(`${method} ${pathname}: ${res.status} ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : null) as T;
}

/** Bootstrap, the org 'bench', `accounts` viewers with a token each; the first `pkjwtClients` with an ES256 key. */
export async function seedThroughApi(base: string, bootstrapSecret: string, counts: { accounts: number; pkjwtClients: number }) {
  const boot = await api<{ account: { id: string }; token: { token: string } }>(base, "POST", "/api/v1/bootstrap", bootstrapSecret, undefined, [201]);
  const rootToken = boot.token.token;
  const org = await api<{ id: string; slug: string }>(base, "POST", "/api/v1/orgs", rootToken, { slug: "bench", name: "Bench" }, [201]);
  const accounts: BenchAccount[] = [];
  let next = 0;
  const createOne = async () => {
    while (next < counts.accounts) {
      const i = next++;
      let key: BenchAccount["key"];
      let publicKey: JWK | undefined;
      if (i < counts.pkjwtClients) {
        const pair = await generateKeyPair("ES256", { extractable: true });
        const kid = `bench-key-${i}`;
        const privateJwk = await exportJWK(pair.privateKey);
        publicKey = { ...(await exportJWK(pair.publicKey)), kid, alg: "ES256" };
        key = { kid, privateKey: pair.privateKey, nodeKey: createPrivateKey({ key: privateJwk as never, format: "jwk" }) };
      }
      const created = await api<{ id: string; token: { id: string; token: string } }>(
        base,
        "POST",
        `/api/v1/orgs/${org.slug}/service-accounts`,
        rootToken,
        { name: `bench-bot-${i}`, roles: [{ role: "viewer" }], issueToken: true, ...(publicKey ? { publicKey } : {}) },
        [201],
      );
      accounts[i] = { id: created.id, token: created.token.token, tokenId: created.token.id, ...(key ? { key } : {}) };
    }
  };
  await Promise.all(Array.from({ length: 4 }, createOne));
  return { rootToken, rootAccountId: boot.account.id, org, accounts };
}

/** `n` viewers with a token each and a JWT quota far above what the bench issues (scenario j). */
export async function seedQuotaAccounts(base: string, rootToken: string, orgSlug: string, n: number): Promise<BenchAccount[]> {
  const jwtQuota = { perMinute: 1_000_000, perDay: 100_000_000 };
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const body = { name: `bench-quota-${i}`, roles: [{ role: "viewer" }], issueToken: true, jwtQuota };
      const created = await api<{ id: string; token: { id: string; token: string } }>(base, "POST", `/api/v1/orgs/${orgSlug}/service-accounts`, rootToken, body, [201]);
      return { id: created.id, token: created.token.token, tokenId: created.token.id };
    }),
  );
}

const sha256Hex = (s: string) => createHash("sha256").update(s).digest("hex");
const sqlValue = (v: string | number | null) => (v === null ? "NULL" : typeof v === "number" ? String(v) : `'${v.replace(/'/g, "''")}'`);

/** A bench account's D1 rows and KV claims, cloned for every account the scale check writes. */
export interface AccountTemplate {
  account: Record<string, string | number | null>;
  assignments: Record<string, string | number | null>[];
  claims: AccountClaims;
}

export async function accountTemplate(mf: Miniflare, kv: { get(key: string): Promise<unknown> }, account: BenchAccount): Promise<AccountTemplate> {
  const db = await mf.getD1Database("DB");
  const row = await db.prepare("SELECT * FROM service_accounts WHERE id = ?").bind(account.id).first<Record<string, string | number | null>>();
  const assignments = await db.prepare("SELECT * FROM role_assignments WHERE account_id = ?").bind(account.id).all<Record<string, string | number | null>>();
  const stored = await kv.get(tokenKey(sha256Hex(account.token)));
  if (!row || typeof stored !== "string") throw new Error(`no D1 row or KV record for ${account.id}`);
  return { account: row, assignments: assignments.results, claims: (JSON.parse(stored) as TokenRecord).account };
}

const insert = (table: string, rows: Record<string, string | number | null>[]) =>
  `INSERT INTO ${table} (${Object.keys(rows[0]!).join(", ")}) VALUES ${rows.map((r) => `(${Object.values(r).map(sqlValue).join(",")})`).join(",")}`;

let seededAccounts = 0;

/**
 * Writes `count` more accounts, each with one active token (the one-active-token rule holds),
 * cloned from a bench account, straight into D1 (service_accounts, role_assignments, access_tokens
 * rows) and KV (tok:<sha256> records, exactly what an account's Durable Object writes for a live
 * token), through the seeder Worker. Returns the tokens' secrets; `log` (if given) gets progress.
 */
export async function seedTokensDirect(seederUrl: string, template: AccountTemplate, createdBy: string, count: number, log?: Log): Promise<string[]> {
  const secrets: string[] = [];
  const BATCH = 1000;
  const ROWS_PER_INSERT = 100;
  const started = Date.now();
  const orgId = template.claims.orgId;
  for (let done = 0; done < count; ) {
    const n = Math.min(BATCH, count - done);
    const now = Date.now();
    const accounts: Record<string, string | number | null>[] = [];
    const assignments: Record<string, string | number | null>[] = [];
    const tokens: Record<string, string | number | null>[] = [];
    const kv: [string, string][] = [];
    for (let i = 0; i < n; i++) {
      const accountId = newId("account");
      const name = `bench-seed-${++seededAccounts}`;
      accounts.push({ ...template.account, id: accountId, name, name_key: `${orgId ?? ""}/${name}`, email: `${name}@seed.bench.invalid`, created_at: now, updated_at: now, last_used_at: null });
      for (const a of template.assignments) assignments.push({ ...a, id: newId("roleAssignment"), account_id: accountId, created_at: now });
      const secret = generateAccessToken();
      const hash = sha256Hex(secret);
      const tokenId = newId("token");
      secrets.push(secret);
      tokens.push({
        id: tokenId,
        account_id: accountId,
        org_id: orgId,
        name: "bench-seed",
        secret_hash: hash,
        hint: tokenHint(secret),
        status: "active",
        expires_at: null,
        previous_secret_hash: null,
        previous_secret_expires_at: null,
        created_at: now,
        created_by: createdBy,
        regenerated_at: null,
        revoked_at: null,
        revoked_by: null,
        last_used_at: null,
      });
      const record: TokenRecord = { tokenId, expiresAt: null, tokenExpiresAt: null, account: { ...template.claims, accountId } };
      kv.push([tokenKey(hash), JSON.stringify(record)]);
    }
    const sql: string[] = [];
    for (const [table, rows] of [["service_accounts", accounts], ["role_assignments", assignments], ["access_tokens", tokens]] as const) {
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) sql.push(insert(table, rows.slice(i, i + ROWS_PER_INSERT)));
    }
    const res = await fetch(seederUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql, kv }) });
    const text = await res.text();
    if (!res.ok) throw new Error(`seeding D1 + KV failed: ${res.status} ${text.slice(0, 500)}`);
    done += n;
    if (log && (done % 10_000 === 0 || done === count)) {
      const rate = done / ((Date.now() - started) / 1000);
      log(`  seeded ${done.toLocaleString("en-US")} / ${count.toLocaleString("en-US")} accounts with a token (${Math.round(rate)}/s)`);
    }
  }
  return secrets;
}
