#!/usr/bin/env node
/**
 * `keyward` entry point: parses argv with commander, runs the command, maps every failure to an
 * exit code (src/cli/errors.ts) and a readable message on stderr. Runs from source on Node >= 22.18
 * (type stripping) and as the esbuild bundle dist/cli.js (npm run build:cli).
 */
import { CommanderError } from "commander";
import { CliError, EXIT } from "./errors.ts";
import { buildProgram } from "./program.ts";

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version exit 0; every other parse failure (already printed by commander) is usage.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`keyward: ${err.message}\n${err.details.map((d) => d + "\n").join("")}`);
      return err.exitCode;
    }
    process.stderr.write(`keyward: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    return EXIT.server;
  }
}

// `keyward ... | head`: a closed pipe ends the output quietly, not with a stack trace.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});
process.exitCode = await main(process.argv);
