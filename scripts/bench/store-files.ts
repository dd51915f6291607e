/**
 * A stopped Worker's D1 database and KV namespace, written straight into Miniflare's state files
 * (the scale check's million accounts: through workerd, KV takes about a thousand puts a second
 * here, and each account needs two). The layout is Miniflare's own: D1 is one SQLite database in
 * `d1/miniflare-D1DatabaseObject/`; a KV namespace is an entry table (key, blob id, expiration,
 * metadata) in `kv/miniflare-KVNamespaceObject/` and one file per value in
 * `kv/<namespace id>/blobs/`. Only while workerd is stopped (it holds the databases open).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";

type Row = Record<string, string | number | null>;

export interface StoreFiles {
  /** Runs one statement on D1's database, returning the first row. */
  get(sql: string, ...params: (string | number)[]): Row | undefined;
  /** Inserts rows (all with the first row's columns) into a D1 table. */
  insert(table: string, rows: Row[]): void;
  /** Writes a KV value (no expiration, no metadata). */
  put(key: string, value: string): void;
  /** Runs `fill` in one transaction on each database. */
  transaction(fill: () => void): void;
  close(): void;
}

/** The one object database (named by a 64-hex hash) in a Miniflare object folder. */
function objectDatabase(dir: string): DatabaseSync {
  const files = readdirSync(dir).filter((f) => /^[0-9a-f]{64}\.sqlite$/.test(f));
  if (files.length !== 1) throw new Error(`expected one object database in ${dir}, found ${files.length}`);
  return new DatabaseSync(path.join(dir, files[0]!));
}

export function openStoreFiles(persist: string, kvNamespaceId: string): StoreFiles {
  const d1 = objectDatabase(path.join(persist, "d1", "miniflare-D1DatabaseObject"));
  const kv = objectDatabase(path.join(persist, "kv", "miniflare-KVNamespaceObject"));
  const blobs = path.join(persist, "kv", encodeURIComponent(kvNamespaceId), "blobs");
  mkdirSync(blobs, { recursive: true });
  const putEntry = kv.prepare("INSERT OR REPLACE INTO _mf_entries (key, blob_id, expiration, metadata) VALUES (?, ?, NULL, NULL)");
  const inserts = new Map<string, StatementSync>();
  return {
    get: (sql, ...params) => d1.prepare(sql).get(...params) as Row | undefined,
    insert(table, rows) {
      const columns = Object.keys(rows[0] ?? {});
      const key = `${table}(${columns.join(",")})`;
      let statement = inserts.get(key);
      if (!statement) inserts.set(key, (statement = d1.prepare(`INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`)));
      for (const row of rows) statement.run(...columns.map((c) => row[c] ?? null));
    },
    put(key, value) {
      // Miniflare's blob ids: 32 random bytes and the time, in hex.
      const id = randomBytes(32).toString("hex") + BigInt(Date.now()).toString(16).padStart(16, "0");
      writeFileSync(path.join(blobs, id), value);
      putEntry.run(key, id);
    },
    transaction(fill) {
      d1.exec("BEGIN");
      kv.exec("BEGIN");
      try {
        fill();
        d1.exec("COMMIT");
        kv.exec("COMMIT");
      } catch (err) {
        d1.exec("ROLLBACK");
        kv.exec("ROLLBACK");
        throw err;
      }
    },
    close() {
      d1.close();
      kv.close();
    },
  };
}
