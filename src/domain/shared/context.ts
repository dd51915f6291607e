import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import { getConfig, type Bindings, type Config } from "../../env.ts";

/** No relational schema: building its config per D1 session (one per management request) cost more than the query. */
export type Db = DrizzleD1Database;

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

/** The binding itself, or one request's D1 session (Sessions API: read replicas, bookmark carried). */
export type D1Handle = D1Database | D1DatabaseSession;

const dbs = new WeakMap<D1Handle, Db>();

/**
 * One drizzle instance per D1 binding (or session) and isolate: it holds no per-request state.
 * drizzle's D1 driver only calls prepare and batch, which a session has too.
 */
export function dbFor(d1: D1Handle): Db {
  let db = dbs.get(d1);
  if (!db) dbs.set(d1, (db = drizzle(d1 as D1Database)));
  return db;
}

/** `d1`: the request's D1 session when it has one (management requests), else the binding. */
export function createCtx(
  env: Bindings,
  meta: RequestMeta,
  waitUntil: (promise: Promise<unknown>) => void = () => {},
  d1: D1Handle = env.DB,
): Ctx {
  return { env, config: getConfig(env), db: dbFor(d1), now: Date.now, meta, waitUntil };
}
