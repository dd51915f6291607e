#!/usr/bin/env node
// The `keyward` bin. In this repository it runs the TypeScript source (Node >= 22.18 strips the
// types); Node refuses to strip types under node_modules, so an installed copy runs the bundle
// that `npm run build:cli` writes to dist/cli.js.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(import.meta.url);
const bundle = new URL("../../dist/cli.js", import.meta.url);
const installed = /[\\/]node_modules[\\/]/.test(here);
if (installed || !process.features.typescript) {
  if (!existsSync(bundle)) {
    process.stderr.write("keyward: dist/cli.js is missing: run `npm run build:cli` (or use Node >= 22.18 in the repository)\n");
    process.exit(5);
  }
  await import(bundle.href);
} else {
  await import("./main.ts");
}
