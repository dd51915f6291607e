/**
 * What an isolate remembers between requests: the caches of KV records and keys, the failure
 * blocks, the usage buffer. Each module declares its piece here by name, as a plain object of
 * fields, so that one place knows all of it and tests reach it one way: resetIsolateState().
 * Nothing here is shared between isolates; each piece states its own bound where it is declared.
 */
const pieces = new Map<string, { state: object; fresh: () => object }>();

/** Declares a piece of per-isolate state; `fresh` makes its fields, now and at every reset. */
export function isolateState<T extends object>(name: string, fresh: () => T): T {
  const state = fresh();
  pieces.set(name, { state, fresh });
  return state;
}

/** Forgets what this isolate remembers: every piece, or the named ones (a test hook). */
export function resetIsolateState(...names: string[]): void {
  for (const [name, piece] of pieces) if (names.length === 0 || names.includes(name)) Object.assign(piece.state, piece.fresh());
}
