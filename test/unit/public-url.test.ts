import { describe, expect, it } from "vitest";
import { publicUrlProblem } from "../../src/lib/public-url.ts";

/** The webhook URL check (SSRF): what a deployment refuses (loopback not allowed) and what it takes. */

const deployed = { allowLoopback: false };
const local = { allowLoopback: true };

describe("refused in a deployment", () => {
  const refused: [string, RegExp][] = [
    ["http://hooks.example.com/x", /only https/],
    ["ftp://hooks.example.com/x", /only https/],
    ["https://user:pass@hooks.example.com/x", /credentials/],
    ["https://hooks.example.com/x#frag", /fragment/],
    ["https://127.0.0.1/x", /not public/],
    ["https://127.1/x", /not public/],
    ["https://2130706433/x", /not public/],
    ["https://0x7f000001/x", /not public/],
    ["https://0177.0.0.1/x", /not public/],
    ["https://0.0.0.0/x", /not public/],
    ["https://10.0.0.1/x", /not public/],
    ["https://167772161/x", /not public/],
    ["https://172.16.5.4/x", /not public/],
    ["https://192.168.1.1/x", /not public/],
    ["https://100.64.0.1/x", /not public/],
    ["https://169.254.169.254/latest/meta-data", /not public/],
    ["https://0xa9.0xfe.0xa9.0xfe/", /not public/],
    ["https://[::1]/x", /not public/],
    ["https://[::]/x", /not public/],
    ["https://[::ffff:127.0.0.1]/x", /not public/],
    ["https://[::ffff:a00:1]/x", /not public/],
    ["https://[::ffff:169.254.169.254]/x", /not public/],
    ["https://[fd00::1]/x", /not public/],
    ["https://[fc00::abcd]/x", /not public/],
    ["https://[fe80::1]/x", /not public/],
    ["https://[64:ff9b::a00:1]/x", /not public/],
    ["https://[2002:a00:1::]/x", /not public/],
    ["https://[ff02::1]/x", /not public/],
    ["https://localhost/x", /internal|single label/],
    ["https://localhost./x", /internal|single label/],
    ["https://api.localhost/x", /internal/],
    ["https://metadata.google.internal/x", /internal/],
    ["https://printer.local/x", /internal/],
    ["https://intranet/x", /single label/],
    ["not a url", /absolute URL/],
  ];
  for (const [url, why] of refused) {
    it(url, () => expect(publicUrlProblem(url, deployed) ?? "accepted").toMatch(why));
  }
});

describe("accepted", () => {
  for (const url of ["https://hooks.example.com/keyward?x=1", "https://hooks.example.com:8443/k", "https://93.184.216.34/x", "https://[2606:4700::1111]/x"]) {
    it(url, () => expect(publicUrlProblem(url, deployed)).toBeNull());
  }
  it("loopback only when allowed (local development, tests), http or https; private networks never", () => {
    expect(publicUrlProblem("http://127.0.0.1:8788/h", local)).toBeNull();
    expect(publicUrlProblem("http://localhost:8788/h", local)).toBeNull();
    expect(publicUrlProblem("https://[::1]:8788/h", local)).toBeNull();
    expect(publicUrlProblem("http://127.0.0.1:8788/h", deployed)).not.toBeNull();
    expect(publicUrlProblem("http://10.0.0.1/h", local)).not.toBeNull();
    expect(publicUrlProblem("https://169.254.169.254/", local)).not.toBeNull();
    expect(publicUrlProblem("http://hooks.example.com/", local)).toMatch(/only https/);
  });
});
