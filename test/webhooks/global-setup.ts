import { startWebhookReceiver } from "./receiver-server.ts";

/** The workers project's globalSetup: the loopback webhook receiver, on the port vitest.config.ts chose. */
export default async function setup(): Promise<() => Promise<void>> {
  const port = Number(process.env.KEYWARD_TEST_WEBHOOK_PORT);
  if (!port) throw new Error("vitest.config.ts sets KEYWARD_TEST_WEBHOOK_PORT");
  return startWebhookReceiver(port);
}
