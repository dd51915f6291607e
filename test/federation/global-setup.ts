import { startIssuerServer } from "./issuer-server.ts";

/** The workers project's globalSetup: the loopback issuers, on the port vitest.config.ts chose. */
export default async function setup(): Promise<() => Promise<void>> {
  const port = Number(process.env.KEYWARD_TEST_ISSUER_PORT);
  if (!port) throw new Error("vitest.config.ts sets KEYWARD_TEST_ISSUER_PORT");
  return startIssuerServer(port);
}
