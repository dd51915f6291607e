/**
 * Seeding: through the API (bootstrap, an org, service accounts with a token, some with an ES256
 * key for private_key_jwt), and, for the scale check, accounts with a token written straight into
 * a stopped Worker's D1 and KV files (store-files.ts).
 */
import { createHash, createPrivateKey, type KeyObject } from "node:crypto";
import { exportJWK, generateKeyPair, type CryptoKey as JoseKey, type JWK } from "jose";
import type { Miniflare } from "miniflare";
import { generateAccessToken, tokenHint } from "../../src/domain/credentials/access-token.ts";
import { accountKey, tokenKey, type AccountClaims, type AccountRecord, type TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import { newId } from "../../src/lib/ids.ts";
import type { Log } from "./lifecycle.ts";
import type { StoreFiles } from "./store-files.ts";

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

/** A bench account's D1 rows and KV claims, cloned for every account the scale check writes. */
export interface AccountTemplate {
  account: Record<string, string | number | null>;
  assignments: Record<string, string | number | null>[];
  claims: AccountClaims;
  /** Its `sa:` record (claims and keys, what reconcile compares), the account id replaced per clone. */
  accountRecord: AccountRecord;
}

export async function accountTemplate(mf: Miniflare, kv: { get(key: string): Promise<unknown> }, account: BenchAccount): Promise<AccountTemplate> {
  const db = await mf.getD1Database("DB");
  const row = await db.prepare("SELECT * FROM service_accounts WHERE id = ?").bind(account.id).first<Record<string, string | number | null>>();
  const assignments = await db.prepare("SELECT * FROM role_assignments WHERE account_id = ?").bind(account.id).all<Record<string, string | number | null>>();
  const stored = await kv.get(tokenKey(sha256Hex(account.token)));
  const accountRecord = await kv.get(accountKey(account.id));
  if (!row || typeof stored !== "string" || typeof accountRecord !== "string") throw new Error(`no D1 row or KV records for ${account.id}`);
  return { account: row, assignments: assignments.results, claims: (JSON.parse(stored) as TokenRecord).account, accountRecord: JSON.parse(accountRecord) as AccountRecord };
}

let seededAccounts = 0;

/** Accounts per transaction. */
const SEED_BATCH = 10_000;

/**
 * Writes `count` more accounts, each with one active token (the one-active-token rule holds),
 * cloned from a bench account, straight into a stopped Worker's D1 (service_accounts,
 * role_assignments, credential_status, access_tokens rows) and KV (the `tok:` and `sa:` records
 * an account's Durable Object writes for a live token, status index included, so reconcile finds
 * them in agreement). Returns the tokens' secrets; `log` (if given) gets progress.
 */
export function seedTokensDirect(store: StoreFiles, template: AccountTemplate, createdBy: string, count: number, log?: Log): string[] {
  const secrets: string[] = [];
  const started = Date.now();
  // The status list indexes, taken as one range.
  const seq = store.get("UPDATE credential_status_seq SET next_idx = next_idx + ? WHERE id = 0 RETURNING next_idx - ? AS first", count, count);
  if (!seq) throw new Error("credential_status_seq is empty");
  const firstIdx = Number(seq.first);
  for (let done = 0; done < count; ) {
    const n = Math.min(SEED_BATCH, count - done);
    store.transaction(() => writeAccounts(store, template, createdBy, n, firstIdx + done, secrets));
    done += n;
    if (log && (done % 100_000 === 0 || done === count)) {
      log(`  seeded ${done.toLocaleString("en-US")} / ${count.toLocaleString("en-US")} accounts with a token (${Math.round(done / ((Date.now() - started) / 1000))}/s)`);
    }
  }
  return secrets;
}

/** `n` accounts cloned from the template, each with its role set and one active token; the secrets pushed onto `secrets`. */
function writeAccounts(store: StoreFiles, template: AccountTemplate, createdBy: string, n: number, firstIdx: number, secrets: string[]): void {
  const orgId = template.claims.orgId;
  const now = Date.now();
  const accounts: Record<string, string | number | null>[] = [];
  const assignments: Record<string, string | number | null>[] = [];
  const tokens: Record<string, string | number | null>[] = [];
  const statuses: Record<string, string | number | null>[] = [];
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
    const statusIdx = firstIdx + i;
    statuses.push({ idx: statusIdx, credential_type: "access_token", credential_id: tokenId, account_id: accountId, revoked: 0, updated_at: now });
    const claims = { ...template.claims, accountId };
    store.put(tokenKey(hash), JSON.stringify({ tokenId, expiresAt: null, tokenExpiresAt: null, account: claims, statusIdx } satisfies TokenRecord));
    store.put(accountKey(accountId), JSON.stringify({ ...template.accountRecord, account: claims } satisfies AccountRecord));
  }
  // The status rows before the tokens: the insert trigger then gives none a second index.
  for (const [table, rows] of [["service_accounts", accounts], ["role_assignments", assignments], ["credential_status", statuses], ["access_tokens", tokens]] as const) store.insert(table, rows);
}
