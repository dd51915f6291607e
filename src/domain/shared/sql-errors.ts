import type { ErrorCode } from "./errors.ts";

const message = (err: unknown) => String((err as { message?: string })?.message ?? err);

/** Whether a D1 error is a UNIQUE violation on a column whose name contains `column`. */
export function isUniqueViolation(err: unknown, column: string): boolean {
  const m = message(err);
  return /UNIQUE constraint failed/i.test(m) && m.includes(column);
}

/** The conflict code a constraint violation stands for, or null when the error is not one (then D1 is at fault). */
export function conflictCode(err: unknown): ErrorCode | null {
  const m = message(err);
  if (!/constraint failed/i.test(m)) return null;
  return m.includes("name_key") ? "name_taken" : "conflict";
}
