/**
 * The life of a bench or soak process: a prefixed logger, cleanups run once on exit or on a
 * signal (children stopped, Miniflare disposed, temporary folders removed), and the entry's main.
 */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type Log = (msg: string) => void;

/** A numeric setting from the environment, or its default. */
export const envNumber = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);

export const logger = (prefix: string): Log => (msg) => console.log(`[${prefix}] ${msg}`);

const cleanups: (() => Promise<void> | void)[] = [];
let prefix = "bench";

/** Runs `fn` on exit, after every cleanup registered later (last in, first out). */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

async function cleanup() {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch (err) {
      console.error(`[${prefix}] cleanup: ${(err as Error).message}`);
    }
  }
}

/** Runs an entry's main and exits with its code (1 on a throw), cleaning up first; SIGINT and SIGTERM clean up and exit 130. */
export async function runMain(name: string, main: () => Promise<number>): Promise<never> {
  prefix = name;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      void cleanup().finally(() => process.exit(130));
    });
  }
  let code = 1;
  try {
    code = await main();
  } catch (err) {
    console.error(`[${name}] ${(err as Error).stack ?? err}`);
    code = 1;
  } finally {
    await cleanup();
  }
  process.exit(code);
}
