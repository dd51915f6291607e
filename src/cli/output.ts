/** Tables for people, JSON for scripts. Secrets are printed only where a command says so (shown once). */

export type Column<T> = [header: string, value: (row: T) => unknown];

export function cell(v: unknown): string {
  if (v === null || v === undefined || v === "") return "-";
  if (Array.isArray(v)) return v.length ? v.map(cell).join(",") : "-";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v).replace(/[\r\n\t]+/g, " ");
}

export function table<T>(rows: T[], columns: Column<T>[]): string {
  const cells = rows.map((r) => columns.map(([, f]) => cell(f(r))));
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (cs: string[]) => cs.map((c, i) => (i === cs.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(columns.map(([h]) => h.toUpperCase())), ...cells.map(line)].join("\n");
}

/** key: value lines for one object. */
export function record(obj: Record<string, unknown>, keys?: string[]): string {
  const ks = keys ?? Object.keys(obj);
  const width = Math.max(...ks.map((k) => k.length));
  return ks.map((k) => `${(k + ":").padEnd(width + 1)} ${cell(obj[k])}`).join("\n");
}

export function out(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}
/** Messages for people go to stderr, so stdout stays what a script captures. */
export function info(text: string): void {
  process.stderr.write(text.endsWith("\n") ? text : text + "\n");
}
export function json(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** Prints a list as JSON (`{items, nextCursor}`) or a table (with a hint when more pages exist). */
export function printList<T>(page: { items: T[]; nextCursor: string | null }, columns: Column<T>[], asJson: boolean | undefined): void {
  if (asJson) return json(page);
  if (!page.items.length) return info("(none)");
  out(table(page.items, columns));
  if (page.nextCursor) info(`(more: --cursor ${page.nextCursor}, or --all)`);
}

export function printOne(obj: unknown, asJson: boolean | undefined, keys?: string[]): void {
  if (asJson) return json(obj);
  out(record(obj as Record<string, unknown>, keys));
}
