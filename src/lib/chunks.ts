/** D1 binds at most 100 parameters per statement: lists in an `IN (...)` go in chunks of this size. */
export const SQL_IN_CHUNK = 90;

/** `xs` in consecutive slices of at most `size`. */
export function chunks<T>(xs: T[], size = SQL_IN_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}
