/**
 * `npm run sdk:generate [-- --base URL]`: writes src/client/schema.d.ts from the OpenAPI document
 * the app serves. Without --base it starts the dev server on a free port with a fresh state
 * folder (the document does not depend on data), reads /openapi.json and stops it.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { startDevServer, type DevServer } from "./dev-server.ts";
import { renderClientSchema, SCHEMA_FILE } from "./sdk-schema.ts";

const args = process.argv.slice(2);
const baseArg = args.indexOf("--base");
let server: DevServer | undefined;
try {
  let base = baseArg >= 0 ? args[baseArg + 1] : undefined;
  if (!base) {
    server = await startDevServer();
    base = server.base;
  }
  const res = await fetch(`${base.replace(/\/+$/, "")}/openapi.json`);
  if (!res.ok) throw new Error(`GET /openapi.json answered ${res.status}`);
  const file = path.resolve(import.meta.dirname, "..", SCHEMA_FILE);
  writeFileSync(file, await renderClientSchema((await res.json()) as Record<string, unknown>));
  console.log(`wrote ${SCHEMA_FILE}`);
} finally {
  await server?.stop();
}
