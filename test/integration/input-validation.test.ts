import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { BASE, call, expectStatus, orgWithAdmin, platformRoot, readResponse, unique } from "../helpers.ts";
import { concatBytes } from "./fuzz-helpers.ts";
import { expectFieldError, expectProblem, listAll, type Res } from "./registry-helpers.ts";

/**
 * What the management API accepts as text: names that identify things are NFC and hold no
 * invisible or look-alike characters (issue 16), bodies are well-formed UTF-8 (issue 23), and a
 * validation error says in words what is wrong with which field (issue 23).
 */

let root: { id: string; token: string };
let org: { id: string };
let admin: string;
const accounts = () => `/api/v1/orgs/${org.id}/service-accounts`;

beforeAll(async () => {
  root = await platformRoot();
  const o = await orgWithAdmin(root.token);
  org = o.org;
  admin = o.adminToken;
});

const accountNames = async () => (await listAll(accounts(), admin)).map((a: { name: string }) => a.name);

/** A request with the body's exact bytes: a fixed length, or a stream of the given chunks (no Content-Length, as chunked). */
async function sendBytes(method: string, path: string, body: Uint8Array | Uint8Array[]): Promise<Res> {
  const chunked = Array.isArray(body);
  const init: RequestInit & { duplex?: string } = {
    method,
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json", ...(chunked ? {} : { "content-length": String(body.byteLength) }) },
    body: chunked
      ? new ReadableStream<Uint8Array>({
          start(controller) {
            for (const part of body) controller.enqueue(part);
            controller.close();
          },
        })
      : body,
    ...(chunked ? { duplex: "half" } : {}),
  };
  return readResponse(await exports.default.fetch(new Request(BASE + path, init)));
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const bytes = (...parts: (string | number[])[]) => concatBytes(...parts.map((p) => (typeof p === "string" ? p : Uint8Array.from(p))));

describe("look-alike names (issue 16)", () => {
  const invisible: [string, string][] = [
    ["zero-width space U+200B", "deploy\u200bbot"],
    ["zero-width joiner U+200D", "deploy\u200dbot"],
    ["left-to-right mark U+200E", "deploy\u200ebot"],
    ["right-to-left override U+202E", "deploy\u202ebot"],
    ["left-to-right isolate U+2066", "\u2066deploy-bot"],
    ["byte order mark U+FEFF (inside: trim() strips it at the ends)", "deploy\ufeffbot"],
    ["soft hyphen U+00AD", "deploy\u00adbot"],
    ["word joiner U+2060", "deploy\u2060bot"],
    ["Arabic letter mark U+061C", "deploy\u061cbot"],
    ["variation selector U+FE0F", "deploy-bot\ufe0f"],
    ["combining grapheme joiner U+034F", "deploy\u034fbot"],
    ["Hangul filler U+3164", "deploy\u3164bot"],
    ["no-break space U+00A0", "deploy\u00a0bot"],
    ["ideographic space U+3000", "deploy\u3000bot"],
    ["line separator U+2028", "deploy\u2028bot"],
    ["tag character U+E0041", "deploy-bot\u{e0041}"],
    ["private use U+E000", "deploy\ue000bot"],
  ];

  it.each(invisible)("an account name with a %s is 400 naming the field, and nothing is stored", async (_label, name) => {
    const before = await accountNames();
    const res = await call("POST", accounts(), { token: admin, body: { name } });
    const problem = expectFieldError(res, "name");
    expect(problem.errors[0].message, res.text).toMatch(/^name must not contain invisible/);
    expect(await accountNames()).toEqual(before);
  });

  it("an NFD twin of an existing name is 409 name_taken (names are compared in NFC)", async () => {
    const nfc = `caf\u00e9-${unique("bot")}`;
    expectStatus(await call("POST", accounts(), { token: admin, body: { name: nfc } }), 201);
    const nfd = nfc.normalize("NFD");
    expect(nfd).not.toBe(nfc);
    expectProblem(await call("POST", accounts(), { token: admin, body: { name: nfd } }), 409, "name_taken");
    // Case-insensitively too, as before: the name key lowercases the normalized name.
    expectProblem(await call("POST", accounts(), { token: admin, body: { name: nfd.toUpperCase() } }), 409, "name_taken");
  });

  it("a name sent in NFD is stored and returned in NFC", async () => {
    const nfd = `Jos\u0065\u0301-${unique("bot")}`;
    const res = await call("POST", accounts(), { token: admin, body: { name: nfd, displayName: "Ange\u0301lique" } });
    expectStatus(res, 201);
    expect(res.json.name).toBe(nfd.normalize("NFC"));
    expect(res.json.displayName).toBe("Ang\u00e9lique");
    const read = await call("GET", `${accounts()}/${res.json.id}`, { token: admin });
    expect(read.json.name).toBe(nfd.normalize("NFC"));
  });

  it("renaming onto an NFD twin of another account's name is 409 name_taken", async () => {
    const taken = `r\u00e9seau-${unique("bot")}`;
    expectStatus(await call("POST", accounts(), { token: admin, body: { name: taken } }), 201);
    const other = await call("POST", accounts(), { token: admin, body: { name: unique("other") } });
    expectStatus(other, 201);
    expectProblem(await call("PATCH", `${accounts()}/${other.json.id}`, { token: admin, body: { name: taken.normalize("NFD") } }), 409, "name_taken");
    expectFieldError(await call("PATCH", `${accounts()}/${other.json.id}`, { token: admin, body: { name: `${taken}\u200b` } }), "name");
  });

  it("a platform account name with a zero-width character is 400", async () => {
    const res = await call("POST", "/api/service-accounts", { token: root.token, body: { name: `gw\u200b${unique("x")}`, permissions: [], tokenEndpointAuthMethod: "client_secret_basic" } });
    expectFieldError(res, "name");
  });

  it("names keep letters of any script, emoji and single spaces", async () => {
    for (const name of [`Déploiement ${unique("a")}`, `配置-${unique("b")}`, `bot-🤖-${unique("c")}`, `نشر-${unique("d")}`]) {
      const res = await call("POST", accounts(), { token: admin, body: { name } });
      expectStatus(res, 201);
      expect(res.json.name).toBe(name);
    }
  });

  it("free text refuses bidi overrides and isolates but keeps emoji joiners", async () => {
    expectFieldError(await call("POST", accounts(), { token: admin, body: { name: unique("t"), description: "build \u202egnp.exe" } }), "description");
    expectFieldError(await call("POST", accounts(), { token: admin, body: { name: unique("t"), displayName: "\u2067admin\u2069" } }), "displayName");
    const family = "\u{1f468}\u200d\u{1f469}\u200d\u{1f467}";
    const ok = await call("POST", accounts(), { token: admin, body: { name: unique("t"), description: `Team ${family}` } });
    expectStatus(ok, 201);
    expect(ok.json.description).toBe(`Team ${family}`);
  });
});

describe("bodies that are not well-formed UTF-8 (issue 23)", () => {
  const cases: [string, number[]][] = [
    ["a broken two-byte sequence (C3 28)", [0xc3, 0x28]],
    ["an overlong encoding of '.' (C0 AE)", [0xc0, 0xae]],
    ["an overlong three-byte NUL (E0 80 80)", [0xe0, 0x80, 0x80]],
    ["an encoded surrogate (ED A0 80)", [0xed, 0xa0, 0x80]],
    ["a lone continuation byte (80)", [0x80]],
    ["a truncated four-byte sequence (F0 9F A4)", [0xf0, 0x9f, 0xa4]],
    ["a byte that never appears (FF)", [0xff]],
    ["a code point above U+10FFFF (F4 90 80 80)", [0xf4, 0x90, 0x80, 0x80]],
  ];

  it.each(cases)("%s inside a name is 400 malformed_json saying the body must be UTF-8, and nothing is stored", async (_label, bad) => {
    const before = await accountNames();
    const res = await sendBytes("POST", accounts(), bytes('{"name":"bad', bad, 'x"}'));
    const problem = expectProblem(res, 400, "malformed_json");
    expect(problem.detail, res.text).toMatch(/UTF-8/);
    expect(await accountNames()).toEqual(before);
    expect((await accountNames()).some((n: string) => n.includes("\ufffd"))).toBe(false);
  });

  it("the same in a chunked body and in a PATCH (nothing changed)", async () => {
    const body = bytes('{"name":"bad', [0xc3, 0x28], 'x"}');
    expectProblem(await sendBytes("POST", accounts(), [body.subarray(0, 5), body.subarray(5)]), 400, "malformed_json");
    const target = await call("POST", accounts(), { token: admin, body: { name: unique("patch") } });
    expectStatus(target, 201);
    expectProblem(await sendBytes("PATCH", `${accounts()}/${target.json.id}`, bytes('{"displayName":"x', [0xed, 0xb0, 0x80], '"}')), 400, "malformed_json");
    const read = await call("GET", `${accounts()}/${target.json.id}`, { token: admin });
    expect(read.json.displayName).toBeNull();
  });

  it("well-formed UTF-8 is accepted byte for byte, also when a character is split across chunks", async () => {
    const name = `bot-é-🤖-${unique("u")}`;
    const body = utf8(JSON.stringify({ name }));
    const split = body.indexOf(0xc3) + 1; // between the two bytes of "é"
    const res = await sendBytes("POST", accounts(), [body.subarray(0, split), body.subarray(split)]);
    expectStatus(res, 201);
    expect(res.json.name).toBe(name);
  });

  it("the token exchange refuses a body that is not UTF-8 too, before looking at the token", async () => {
    const res = await sendBytes("POST", "/api/auth/access-tokens/jwt", bytes('{"access_token":"sat_', [0xc3, 0x28], '"}'));
    expectProblem(res, 400, "malformed_json");
  });

  it("a chunked body over the size limit is still 413 payload_too_large", async () => {
    const big = utf8(JSON.stringify({ name: "x", description: "d".repeat(70_000) }));
    const chunks = [big.subarray(0, 30_000), big.subarray(30_000, 60_000), big.subarray(60_000)];
    expectProblem(await sendBytes("POST", accounts(), chunks), 413, "payload_too_large");
  });
});

describe("validation errors that explain (issue 23)", () => {
  /** The problem's messages by path. */
  const messages = (res: Res) => Object.fromEntries(expectProblem(res, 400, "validation_failed").errors.map((e: { path: string; message: string }) => [e.path, e.message]));

  it("a missing field is 'name is required', in errors[] and in the detail", async () => {
    const res = await call("POST", accounts(), { token: admin, body: {} });
    expect(messages(res)).toEqual({ "body.name": "name is required" });
    expect(res.json.detail).toBe("Invalid body: name is required");
  });

  it("wrong types, bounds, enums, formats and unknown fields are said in words, with the bound", async () => {
    const res = await call("POST", accounts(), {
      token: admin,
      body: { name: "x".repeat(65), email: "nope", daysValid: 0, groups: "ci", expiresAt: "yesterday", roles: [{ scope: { type: "galaxy", id: "x" } }], owner: "me" },
    });
    const m = messages(res);
    expect(m["body.name"]).toBe("name must be at most 64 characters long");
    expect(m["body.email"]).toBe("email must be an email address");
    expect(m["body.daysValid"]).toBe("daysValid must be at least 1");
    expect(m["body.groups"]).toBe("groups must be an array, not a string");
    expect(m["body.expiresAt"]).toMatch(/^expiresAt must be an ISO 8601 date-time/);
    expect(m["body.roles.0.role"]).toBe("roles[0].role is required");
    expect(m["body.roles.0.scope.type"]).toBe('roles[0].scope.type must be one of "org", "project", "environment"');
    expect(m.body).toBe('the body has an unknown field "owner" (not allowed here)');
    expect(res.json.detail).toMatch(/^Invalid body: .*; and \d+ more \(see errors\)$/);
  });

  it("numbers: an integer is asked for as one, a string where a number goes is named", async () => {
    const res = await call("POST", accounts(), { token: admin, body: { name: unique("n"), daysValid: 1.5 } });
    expect(messages(res)["body.daysValid"]).toBe("daysValid must be an integer");
    const typed = await call("POST", accounts(), { token: admin, body: { name: 5 } });
    expect(messages(typed)["body.name"]).toBe("name must be a string, not a number");
    const empty = await call("POST", accounts(), { token: admin, body: { name: "   " } });
    expect(messages(empty)["body.name"]).toBe("name must not be empty");
  });

  it("query parameters and enums of a PATCH", async () => {
    const list = await call("GET", `${accounts()}?limit=0&status=nope`, { token: admin });
    const m = messages(list);
    expect(m["query.limit"]).toBe("limit must be at least 1");
    expect(m["query.status"]).toBe('status must be one of "active", "disabled", "expired"');
    const created = await call("POST", accounts(), { token: admin, body: { name: unique("p") } });
    const patch = await call("PATCH", `${accounts()}/${created.json.id}`, { token: admin, body: { status: "paused" } });
    expect(messages(patch)["body.status"]).toBe('status must be one of "active", "disabled"');
  });

  it("a message written on a schema is kept after the field's name", async () => {
    const res = await call("POST", "/api/v1/orgs", { token: root.token, body: { slug: "-bad-", name: "x" } });
    expect(messages(res)["body.slug"]).toBe("slug must be 1-40 letters, digits or dashes, not starting or ending with a dash");
    const cidr = await call("POST", accounts(), { token: admin, body: { name: unique("c"), allowedCidrs: ["10.0.0.0/33"] } });
    expect(messages(cidr)["body.allowedCidrs.0"]).toBe("allowedCidrs[0]: Not a CIDR block (e.g. 10.0.0.0/8 or 2001:db8::/32)");
  });

  it("a union says which types it takes; a body that is not an object says so", async () => {
    const res = await call("POST", accounts(), { token: admin, body: { name: unique("u"), issueToken: "yes" } });
    expect(messages(res)["body.issueToken"]).toBe("issueToken must be a boolean or an object, not a string");
    const array = await call("POST", accounts(), { token: admin, body: [] });
    expect(messages(array).body).toBe("the body must be an object, not an array");
  });

  it("no message echoes the value that was sent (it may be a secret in the wrong field)", async () => {
    const secret = `sat_${"S".repeat(70)}`;
    const res = await call("POST", accounts(), { token: admin, body: { name: secret, groups: secret, daysValid: secret, email: secret } });
    expectProblem(res, 400, "validation_failed");
    expect(res.text).not.toContain("SSSSSSSS");
  });
});
