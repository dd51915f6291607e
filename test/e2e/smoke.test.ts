import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { smokeWalk } from "../../scripts/smoke.ts";

describe("the real dev server", () => {
  let server: DevServer;
  beforeAll(async () => {
    server = await startDevServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("bootstrapped once and printed the root token", () => {
    expect(server.rootToken).toMatch(/^sat_[0-9A-Za-z]{38}$/);
    expect(server.output().match(/KEYWARD_ROOT_TOKEN=/g)?.length).toBe(1);
  });

  it("walks org -> service account -> token -> authenticated call -> revoke -> 401", async () => {
    const steps = await smokeWalk(server.base, server.rootToken);
    expect(steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      "create org:201",
      "create service account:201",
      "issue token:201",
      "authenticated call:200",
      "revoke token:204",
      "revoked token refused:401",
    ]);
  });

  it("refuses a second bootstrap, and a wrong bootstrap secret", async () => {
    const secret = /^BOOTSTRAP_SECRET=(.+)$/m.exec(readFileSync(".dev.vars", "utf8"))?.[1];
    const again = await fetch(`${server.base}/api/v1/bootstrap`, { method: "POST", headers: { authorization: `Bearer ${secret}` } });
    expect(again.status, await again.text()).toBe(409);
    const wrong = await fetch(`${server.base}/api/v1/bootstrap`, { method: "POST", headers: { authorization: "Bearer wrong" } });
    expect(wrong.status).toBe(401);
  });
});
