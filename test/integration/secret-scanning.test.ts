import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import { checksum, generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import { SCANNER_KEYS } from "../fixtures/secret-scanning-keys.ts";
import { BASE, expectStatus, platformRoot, readResponse } from "../helpers.ts";
import { jwtFor } from "./oauth-helpers.ts";
import { auditOf, expectDead, expectWorks, freshOrg, issueOk, regenerate, revoke, sha256, tokenRow, viewerAccount } from "./token-helpers.ts";
import { deliveryRows, hooks, receiver } from "./webhook-helpers.ts";
import { call } from "../helpers.ts";

/**
 * POST /api/v1/secret-scanning (docs/leaked-tokens.md): GitHub's secret scanning partner
 * programme. Reports are signed with the test key pairs of test/fixtures/secret-scanning-keys.ts,
 * whose public halves vitest.config.ts puts into SECRET_SCANNING_KEYS.
 */

type Key = (typeof SCANNER_KEYS)[keyof typeof SCANNER_KEYS];

/** DER of an ECDSA signature (X.690), written here independently of the Worker's converter. */
function derOf(raw: Uint8Array): Uint8Array {
  const int = (v: Uint8Array) => {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    const body = v[i]! & 0x80 ? [0, ...v.subarray(i)] : [...v.subarray(i)];
    return [0x02, body.length, ...body];
  };
  const content = [...int(raw.subarray(0, 32)), ...int(raw.subarray(32))];
  return new Uint8Array([0x30, content.length, ...content]);
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

async function signature(key: Key, body: string): Promise<string> {
  const privateKey = await crypto.subtle.importKey("jwk", key.privateJwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, new TextEncoder().encode(body)));
  return b64(derOf(raw));
}

interface SendOptions {
  key?: Key;
  keyIdentifier?: string | null;
  sig?: string | null;
  contentType?: string;
}

/** A report as GitHub sends it: the body signed by `key` (the current one by default). */
async function report(body: string, o: SendOptions = {}) {
  const key = o.key ?? SCANNER_KEYS.current;
  const headers: Record<string, string> = { "content-type": o.contentType ?? "application/json" };
  const keyIdentifier = o.keyIdentifier === undefined ? key.keyIdentifier : o.keyIdentifier;
  const sig = o.sig === undefined ? await signature(key, body) : o.sig;
  if (keyIdentifier !== null) headers["github-public-key-identifier"] = keyIdentifier;
  if (sig !== null) headers["github-public-key-signature"] = sig;
  return call("POST", "/api/v1/secret-scanning", { body, headers });
}

const item = (token: string, extra: Record<string, string> = {}) => ({ token, type: "keyward_access_token", url: "https://github.com/octo/repo/blob/abc/.env", source: "content", ...extra });
const reportItems = (items: unknown[], o: SendOptions = {}) => report(JSON.stringify(items), o);

let root: { id: string; token: string };
let O: Awaited<ReturnType<typeof freshOrg>>;

async function liveToken() {
  const sa = await viewerAccount(O.adminToken, O.org.id);
  const issued = await issueOk(O.adminToken, O.org.id, sa.id);
  return { sa, issued, secret: issued.token };
}

const actions = async (tokenId: string) => (await auditOf(tokenId)).map((r) => r.action);

beforeAll(async () => {
  root = await platformRoot();
  O = await freshOrg(root.token);
});

describe("a signed report", () => {
  it("revokes a live token at once, answers in the programme's format, and audits access_token.leaked in the revocation's batch (the webhook outbox has it)", async () => {
    const r = receiver();
    const hook = await call("POST", hooks(O.org.id), { token: O.adminToken, body: { url: r.url, events: ["token.leaked"] } });
    expectStatus(hook, 201);
    const t = await liveToken();
    const jwt = await jwtFor(t.secret);
    expectStatus(await call("GET", `/api/v1/orgs/${O.org.id}`, { token: jwt }), 200);

    const res = await reportItems([item(t.secret)]);
    expectStatus(res, 200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.json).toEqual([{ token_raw: t.secret, token_type: "keyward_access_token", label: "true_positive" }]);

    await expectDead(t.secret, O.org.id, t.sa.id, "reported leaked");
    expect((await call("GET", `/api/v1/orgs/${O.org.id}`, { token: jwt })).status, "a JWT minted from it dies too").toBe(401);
    const row = await tokenRow(t.issued.id);
    expect([row!.status, row!.revoked_by]).toEqual(["revoked", "github-secret-scanning"]);

    const audit = await auditOf(t.issued.id);
    const revoked = audit.find((a) => a.action === "access_token.revoked")!;
    const leaked = audit.find((a) => a.action === "access_token.leaked")!;
    expect(JSON.parse(revoked.details)).toMatchObject({ reason: "leaked" });
    expect(JSON.parse(leaked.details)).toEqual({ accountId: t.sa.id, hint: t.issued.hint, reporter: "github", source: "content", url: "https://github.com/octo/repo/blob/abc/.env" });
    expect(JSON.stringify(audit), "the secret is in no audit event").not.toContain(t.secret);
    expect([leaked.org_id, leaked.actor_id, leaked.created_at]).toEqual([O.org.id, "github-secret-scanning", revoked.created_at]);

    // The outbox trigger turned the event into a delivery of the endpoint that asked for token.leaked (and only that event).
    const deliveries = await deliveryRows(hook.json.id);
    expect(deliveries.map((d) => [d.event_type, d.event_id])).toEqual([["token.leaked", leaked.id]]);
  });

  it("a token revoked already is a true_positive (ours) with no new event; a second report of the same live token changes nothing more", async () => {
    const t = await liveToken();
    expectStatus(await revoke(O.adminToken, O.org.id, t.sa.id, t.issued.id), 204);
    const before = await actions(t.issued.id);
    const res = await reportItems([item(t.secret)]);
    expectStatus(res, 200);
    expect(res.json[0].label).toBe("true_positive");
    expect(await actions(t.issued.id)).toEqual(before);

    const u = await liveToken();
    expect((await reportItems([item(u.secret)])).json[0].label).toBe("true_positive");
    const once = await actions(u.issued.id);
    expect((await reportItems([item(u.secret)])).json[0].label).toBe("true_positive");
    expect(await actions(u.issued.id)).toEqual(once);
    expect(once.filter((a) => a === "access_token.leaked")).toHaveLength(1);
  });

  it("a mixed batch: each item labelled in order; only the live ones are revoked, a duplicate once", async () => {
    const live = await liveToken();
    const other = await liveToken();
    const dead = await liveToken();
    expectStatus(await revoke(O.adminToken, O.org.id, dead.sa.id, dead.issued.id), 204);
    const untouched = await liveToken();
    const jwt = await jwtFor(untouched.secret);
    const items = [
      item(live.secret),
      item(generateAccessToken()), // well-formed, never issued
      item("not a token at all", { type: "something_else" }),
      item(dead.secret),
      item(jwt),
      item(other.secret, { source: "commit", url: "https://github.com/octo/repo/commit/1" }),
      item(live.secret, { url: "https://github.com/octo/repo/blob/abc/again" }),
      item(`${untouched.secret.slice(0, -1)}${untouched.secret.endsWith("A") ? "B" : "A"}`), // a typo: bad checksum
    ];
    const res = await reportItems(items);
    expectStatus(res, 200);
    expect(res.json.map((l: { label: string }) => l.label)).toEqual([
      "true_positive",
      "false_positive",
      "false_positive",
      "true_positive",
      "false_positive",
      "true_positive",
      "true_positive",
      "false_positive",
    ]);
    expect(res.json.map((l: { token_raw: string; token_type: string }) => [l.token_raw, l.token_type])).toEqual(items.map((i) => [i.token, i.type]));
    await expectDead(live.secret, O.org.id, live.sa.id);
    await expectDead(other.secret, O.org.id, other.sa.id);
    await expectWorks(untouched.secret, O.org.id, untouched.sa.id, "a JWT or a typo of a token revokes nothing");
    expectStatus(await call("GET", `/api/v1/orgs/${O.org.id}`, { token: jwt }), 200);
    expect((await actions(live.issued.id)).filter((a) => a === "access_token.leaked")).toHaveLength(1);
    const otherLeak = (await auditOf(other.issued.id)).find((a) => a.action === "access_token.leaked")!;
    expect(JSON.parse(otherLeak.details)).toMatchObject({ source: "commit", url: "https://github.com/octo/repo/commit/1" });
  });

  it("a checksum-invalid token costs no lookup: even with its hash planted on a live token in D1, it is a false_positive and nothing is revoked", async () => {
    const t = await liveToken();
    const typo = `${t.secret.slice(0, -6)}${checksum("something else")}`;
    expect(typo).not.toBe(t.secret);
    // Were the typo looked up, it would find this row (and revoke it).
    await env.DB.prepare("update access_tokens set secret_hash = ? where id = ?").bind(await sha256(typo), t.issued.id).run();
    const res = await reportItems([item(typo)]);
    expectStatus(res, 200);
    expect(res.json[0].label).toBe("false_positive");
    expect((await tokenRow(t.issued.id))!.status).toBe("active");
    expect(await actions(t.issued.id)).not.toContain("access_token.leaked");
  });

  it("the previous secret during a regenerate grace: reported, the token is revoked (both secrets die)", async () => {
    const t = await liveToken();
    const next = await regenerate(O.adminToken, O.org.id, t.sa.id, t.issued.id, { graceSeconds: 600 });
    expectStatus(next, 200);
    await expectWorks(t.secret, O.org.id, t.sa.id, "old secret within its grace");
    const res = await reportItems([item(t.secret)]);
    expect(res.json[0].label).toBe("true_positive");
    await expectDead(t.secret, O.org.id, t.sa.id);
    await expectDead(next.json.token, O.org.id, t.sa.id);
  });

  it("a key that is not the current one verifies too; an empty batch is an empty answer; a long url is cut in the audit event", async () => {
    const t = await liveToken();
    const long = `https://github.com/${"x".repeat(2000)}`;
    const res = await reportItems([item(t.secret, { url: long })], { key: SCANNER_KEYS.previous });
    expectStatus(res, 200);
    expect(res.json[0].label).toBe("true_positive");
    const leaked = (await auditOf(t.issued.id)).find((a) => a.action === "access_token.leaked")!;
    expect(JSON.parse(leaked.details).url).toBe(long.slice(0, 512));
    const empty = await reportItems([]);
    expectStatus(empty, 200);
    expect(empty.json).toEqual([]);
  });
});

describe("the lookup", () => {
  it("finds current and previous secrets through indexes, never by scanning access_tokens (migration 0008)", async () => {
    const plan = await env.DB.prepare("explain query plan select * from access_tokens where secret_hash in (?, ?) or previous_secret_hash in (?, ?)")
      .bind("a", "b", "a", "b")
      .all<{ detail: string }>();
    const details = plan.results.map((r) => r.detail);
    expect(details.join("\n")).toMatch(/access_tokens_secret_hash_unique/);
    expect(details.join("\n")).toMatch(/access_tokens_previous_secret_hash/);
    expect(details.filter((d) => /^SCAN access_tokens\b/.test(d)), details.join("\n")).toEqual([]);
  });
});

describe("refused reports change nothing", () => {
  const refused = (res: Awaited<ReturnType<typeof call>>, status: number, code: string) => {
    expect(res.status, res.text).toBe(status);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.json.code, res.text).toBe(code);
  };

  it("attack: a bad, missing or misplaced signature is 401 invalid_signature, and the token lives", async () => {
    const t = await liveToken();
    const body = JSON.stringify([item(t.secret)]);
    const otherBody = JSON.stringify([item(t.secret, { url: "https://elsewhere" })]);
    const goodSig = await signature(SCANNER_KEYS.current, body);
    const attempts: [string, SendOptions, string?][] = [
      ["signed by the other key, named as the current one", { sig: await signature(SCANNER_KEYS.previous, body) }],
      ["the signature of another body", { sig: await signature(SCANNER_KEYS.current, otherBody) }],
      ["a signature with a flipped byte", { sig: b64(Uint8Array.from(atob(goodSig), (c, i) => c.charCodeAt(0) ^ (i === 20 ? 1 : 0))) }],
      ["raw r||s instead of DER", { sig: b64(new Uint8Array(64).fill(7)) }],
      ["not base64", { sig: "!!!not-base64!!!" }],
      ["empty", { sig: "" }],
      ["no signature header", { sig: null }],
      ["no key identifier header", { keyIdentifier: null }],
      ["a good signature over the body with a byte appended", { sig: goodSig }, `${body} `],
      ["an attacker's own key", { sig: b64(derOf(new Uint8Array(64).fill(1))) }],
    ];
    for (const [label, o, sentBody] of attempts) {
      const res = await report(sentBody ?? body, o);
      expect(res.status, `${label}: ${res.text}`).toBe(401);
      expect(res.json.code, label).toBe("invalid_signature");
      expect(res.headers.get("www-authenticate"), label).toMatch(/^Signature realm="keyward", headers="github-public-key-identifier github-public-key-signature"$/);
    }
    await expectWorks(t.secret, O.org.id, t.sa.id, "after every refused report");
    expect(await actions(t.issued.id)).not.toContain("access_token.leaked");
  });

  it("attack: an unknown key identifier is 401 (whatever key signed), and the token lives", async () => {
    const t = await liveToken();
    const body = JSON.stringify([item(t.secret)]);
    for (const keyIdentifier of ["0".repeat(64), SCANNER_KEYS.current.keyIdentifier.toUpperCase(), ""]) {
      refused(await report(body, { keyIdentifier }), 401, "invalid_signature");
    }
    refused(await report(body, { key: SCANNER_KEYS.previous, keyIdentifier: SCANNER_KEYS.current.keyIdentifier }), 401, "invalid_signature");
    await expectWorks(t.secret, O.org.id, t.sa.id);
  });

  it("the signature is checked before the body is read: a badly signed malformed body is 401, a well signed one 400", async () => {
    refused(await report("{not json", { sig: "AAAA" }), 401, "invalid_signature");
    refused(await report("{not json"), 400, "malformed_json");
    refused(await report(JSON.stringify({ token: "sat_x" })), 400, "validation_failed");
    refused(await report(JSON.stringify([{ token: "sat_x" }])), 400, "validation_failed");
    refused(await report(JSON.stringify([item("x".repeat(1025))])), 400, "validation_failed");
  });

  it("a body over MAX_BODY_BYTES is 413 and revokes nothing; a body that is not JSON is 415", async () => {
    const t = await liveToken();
    const items = [item(t.secret), ...Array.from({ length: 700 }, () => item(generateAccessToken()))];
    const big = JSON.stringify(items);
    expect(big.length).toBeGreaterThan(65_536);
    refused(await report(big), 413, "payload_too_large");
    refused(await report(JSON.stringify([item(t.secret)]), { contentType: "text/plain" }), 415, "unsupported_media_type");
    await expectWorks(t.secret, O.org.id, t.sa.id);
  });

  it("without SECRET_SCANNING_KEYS the endpoint is off: 503 secret_scanning_not_configured, even for a well-signed report", async () => {
    const t = await liveToken();
    const body = JSON.stringify([item(t.secret)]);
    const request = new Request(`${BASE}/api/v1/secret-scanning`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "github-public-key-identifier": SCANNER_KEYS.current.keyIdentifier, "github-public-key-signature": await signature(SCANNER_KEYS.current, body) },
    });
    const ctx = createExecutionContext();
    const res = await readResponse(await worker.fetch(request, { ...env, SECRET_SCANNING_KEYS: "" } as never, ctx));
    await waitOnExecutionContext(ctx);
    expect(res.status, res.text).toBe(503);
    expect(res.json.code).toBe("secret_scanning_not_configured");
    await expectWorks(t.secret, O.org.id, t.sa.id);
  });
});

describe("the route in the reference", () => {
  it("/openapi.json documents it without bearer security, with the signature headers", async () => {
    const doc = (await (await exports.default.fetch(new Request(`${BASE}/openapi.json`))).json()) as any;
    const op = doc.paths["/api/v1/secret-scanning"].post;
    expect(op.security).toBeUndefined();
    expect(op.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`).sort()).toEqual(["header:github-public-key-identifier", "header:github-public-key-signature"]);
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["200", "401", "503"]));
  });
});
