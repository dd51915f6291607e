/** Whether a D1 error is a UNIQUE violation on a column whose name contains `column`. */
export function isUniqueViolation(err: unknown, column: string): boolean {
  const message = String((err as { message?: string })?.message ?? err);
  return /UNIQUE constraint failed/i.test(message) && message.includes(column);
}
