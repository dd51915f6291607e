import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import * as schema from "../db/schema.ts";
import { getConfig, type Bindings, type Config } from "../env.ts";

export type Db = DrizzleD1Database<typeof schema>;

/** Who did something, for the audit log. Never carries a secret. */
export interface RequestMeta {
  actorId: string;
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
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

export function createCtx(
  env: Bindings,
  meta: RequestMeta,
  waitUntil: (promise: Promise<unknown>) => void = () => {},
): Ctx {
  return { env, config: getConfig(env), db: drizzle(env.DB, { schema }), now: Date.now, meta, waitUntil };
}
