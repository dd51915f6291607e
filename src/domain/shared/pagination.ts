import { and, asc, eq, gt, or, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import { DomainError } from "./errors.ts";

export interface PageQuery {
  limit: number;
  cursor?: string | undefined;
}

interface CursorValue {
  t: number;
  id: string;
}

/** Opaque cursors: base64url of the last item's (createdAt, id), the list's stable order. */
export function encodeCursor(value: CursorValue): string {
  return btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function decodeCursor(cursor: string): CursorValue {
  try {
    const value = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/"))) as CursorValue;
    if (typeof value.t === "number" && typeof value.id === "string") return value;
  } catch {
    // fall through
  }
  throw new DomainError("validation_failed", "The cursor is not one this API returned", {
    errors: [{ path: "query.cursor", message: "Invalid cursor" }],
  });
}

/** The WHERE part and ORDER BY for keyset pagination over (createdAt, id). */
export function keyset(columns: { createdAt: SQLiteColumn; id: SQLiteColumn }, cursor: string | undefined) {
  let where: SQL | undefined;
  if (cursor) {
    const c = decodeCursor(cursor);
    where = or(gt(columns.createdAt, c.t), and(eq(columns.createdAt, c.t), gt(columns.id, c.id)));
  }
  return { where, orderBy: [asc(columns.createdAt), asc(columns.id)] };
}

/** Cuts the `limit + 1` rows a query fetched into a page. */
export function toPage<T extends { createdAt: number; id: string }, D>(rows: T[], limit: number, map: (row: T) => D) {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(map),
    nextCursor: rows.length > limit && last ? encodeCursor({ t: last.createdAt, id: last.id }) : null,
  };
}
