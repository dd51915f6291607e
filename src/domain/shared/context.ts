import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import * as schema from "../../db/schema.ts";
import { getConfig, type Bindings, type Config } from "../../env.ts";

export type Db = DrizzleD1Database<typeof schema>;

/** Who did something, for the audit log. Never carries a secret. */
export interface RequestMeta {
  actorId: string;
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
  /** Set when the escalation guard was lifted by service-accounts.incident-response: every audit event says so. */
  incidentResponse?: boolean | undefined;
}

/** What every service function gets: bindings, config, the database, a clock and the request's metadata. */
export interface Ctx {
  env: Bindings;
  config: Config;
  db: Db;
  now: () => number;
  meta: RequestMeta;
  waitUntil: (promise: Promise<unknown>) => void;
}

const dbs = new WeakMap<D1Database, Db>();

/** One drizzle instance per D1 binding and isolate (it holds no per-request state). */
export function dbFor(d1: D1Database): Db {
  let db = dbs.get(d1);
  if (!db) dbs.set(d1, (db = drizzle(d1, { schema })));
  return db;
}

export function createCtx(
  env: Bindings,
  meta: RequestMeta,
  waitUntil: (promise: Promise<unknown>) => void = () => {},
): Ctx {
  return { env, config: getConfig(env), db: dbFor(env.DB), now: Date.now, meta, waitUntil };
}
