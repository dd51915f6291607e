import { describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { consoleGet, consoleLogin, consolePost, expectPage, expectRedirect, flashOf, follow, hasFormTo } from "./console-helpers.ts";

async function pemOf(key: CryptoKey) {
  const der = new Uint8Array((await crypto.subtle.exportKey("spki", key)) as ArrayBuffer);
  const b64 = btoa(String.fromCharCode(...der)).replace(/(.{64})/g, "$1\n");
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----`;
}
const ecKey = async () => ((await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair).publicKey;
const edKey = async () => ((await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair).publicKey;

async function setup() {
  const root = await platformRoot();
  const { org, adminToken } = await orgWithAdmin(root.token);
  const sa = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: adminToken, body: { name: unique("keys"), roles: [{ role: "viewer" }] } });
  expectStatus(sa, 201);
  const base = `/console/orgs/${org.slug}/service-accounts/${sa.json.id}`;
  return { root, org, adminToken, sa: sa.json, base, cookie: await consoleLogin(adminToken) };
}
const keysOf = async (adminToken: string, orgId: string, saId: string) => (await call("GET", `/api/v1/orgs/${orgId}/service-accounts/${saId}/keys`, { token: adminToken })).json.items;

describe("console: public keys", () => {
  it("adds a PEM key (ES256 detected) and a JWK (EdDSA detected), lists their fingerprints, removes one", async () => {
    const { org, adminToken, sa, base, cookie } = await setup();
    const res = await consolePost(`${base}/keys`, cookie, { publicKey: await pemOf(await ecKey()), name: "ci key" });
    expectRedirect(res, `${base}#keys`);
    expect(flashOf(res)).toMatch(/\(ES256, fingerprint [A-Za-z0-9_-]{43}\)/);
    const jwk = await crypto.subtle.exportKey("jwk", await edKey());
    expectRedirect(await consolePost(`${base}/keys`, cookie, { publicKey: JSON.stringify(jwk), kid: "ed-1" }), `${base}#keys`);
    const keys = await keysOf(adminToken, org.id, sa.id);
    expect(keys.map((k: any) => k.alg).sort()).toEqual(["ES256", "EdDSA"]);
    const page = expectPage(await follow(res, cookie));
    for (const k of keys) expect(page).toContain(k.fingerprint);
    expect(page).toContain("ci key");
    expect(page).toMatch(/<details class="confirm"><summary>Remove<\/summary>[\s\S]*Client assertions signed with the key ed-1 are refused/);
    const ed = keys.find((k: any) => k.kid === "ed-1");
    expectRedirect(await consolePost(`${base}/keys/${ed.id}/remove`, cookie), `${base}#keys`);
    expect((await keysOf(adminToken, org.id, sa.id)).map((k: any) => k.alg)).toEqual(["ES256"]);
  });

  it("inline errors: not a key, a private JWK, bad JSON (400); the same key twice (409); nothing added", async () => {
    const { org, adminToken, sa, base, cookie } = await setup();
    for (const publicKey of ["-----BEGIN PUBLIC KEY-----\nAAAAbm90IGEga2V5\n-----END PUBLIC KEY-----", '{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"secret"}', "{not json", ""]) {
      const html = expectPage(await consolePost(`${base}/keys`, cookie, { publicKey }), 400);
      expect(html, publicKey).toMatch(/id="f-key-publicKey-error"/);
      expect(html).not.toContain('"d":"secret"'.replaceAll('"', "&quot;"));
    }
    const pem = await pemOf(await ecKey());
    expectRedirect(await consolePost(`${base}/keys`, cookie, { publicKey: pem, kid: "same" }), base);
    const dupe = expectPage(await consolePost(`${base}/keys`, cookie, { publicKey: pem, kid: "same" }), 409);
    expect(dupe).toMatch(/id="f-key-kid-error"/);
    expect((await keysOf(adminToken, org.id, sa.id)).length).toBe(1);
  });

  it("another org's keys are 404 and stay", async () => {
    const { root, cookie } = await setup();
    const other = await setup();
    const added = await call("POST", `/api/v1/orgs/${other.org.id}/service-accounts/${other.sa.id}/keys`, { token: other.adminToken, body: { publicKey: await pemOf(await ecKey()) } });
    expectStatus(added, 201);
    expectPage(await consolePost(`${other.base}/keys`, cookie, { publicKey: await pemOf(await ecKey()) }), 404);
    expectPage(await consolePost(`${other.base}/keys/${added.json.id}/remove`, cookie), 404);
    expectPage(await consoleGet(other.base, cookie), 404);
    expect((await keysOf(other.adminToken, other.org.id, other.sa.id)).length).toBe(1);
    void root;
  });

  it("a read-only account sees the keys but no add or remove, and gets 403 removing by hand", async () => {
    const { org, adminToken, sa, base } = await setup();
    const added = await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/keys`, { token: adminToken, body: { publicKey: await pemOf(await ecKey()) } });
    expectStatus(added, 201);
    const viewer = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: adminToken, body: { name: unique("ro"), roles: [{ role: "viewer" }], issueToken: true } });
    const ro = await consoleLogin(viewer.json.token.token);
    const page = expectPage(await consoleGet(base, ro));
    expect(page).toContain(added.json.fingerprint);
    expect(page).not.toContain(`${base}/keys/${added.json.id}/remove`);
    expect(page).not.toContain("Add a public key");
    expectPage(await consolePost(`${base}/keys/${added.json.id}/remove`, ro), 403);
    expect((await keysOf(adminToken, org.id, sa.id)).length).toBe(1);
  });

  it("disable and enable from the account page (status shown, refused by the API's rules), and the review's key lists", async () => {
    const { org, adminToken, sa, base, cookie } = await setup();
    const soon = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const added = await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/keys`, { token: adminToken, body: { publicKey: await pemOf(await ecKey()), kid: "soon", expiresAt: soon } });
    expectStatus(added, 201);
    let page = expectPage(await consoleGet(base, cookie));
    expect(hasFormTo(page, `${base}/keys/${added.json.id}/disable`)).toBe(true);
    const off = await consolePost(`${base}/keys/${added.json.id}/disable`, cookie);
    expectRedirect(off, `${base}#keys`);
    expect(flashOf(off)).toMatch(/Key soon disabled/);
    expect((await keysOf(adminToken, org.id, sa.id))[0].status).toBe("disabled");
    page = expectPage(await consoleGet(base, cookie));
    expect(hasFormTo(page, `${base}/keys/${added.json.id}/enable`)).toBe(true);
    expect(page).toMatch(/badge disabled">disabled</);
    expectRedirect(await consolePost(`${base}/keys/${added.json.id}/enable`, cookie), `${base}#keys`);
    expect((await keysOf(adminToken, org.id, sa.id))[0].status).toBe("active");

    const review = `/console/orgs/${org.slug}/review`;
    const expiring = expectPage(await consoleGet(`${review}?view=expiring-keys`, cookie));
    expect(expiring).toContain("<code>soon</code>");
    expect(expectPage(await consoleGet(`${review}?view=expiring-keys&days=1`, cookie))).not.toContain("<code>soon</code>");
    expect(expectPage(await consoleGet(`${review}?view=expired-keys`, cookie))).not.toContain("<code>soon</code>");
    expectPage(await consoleGet(`${review}?view=expiring-keys&days=-1`, cookie), 400);
  });

  it("a read-only account cannot disable a key by hand (403)", async () => {
    const { org, adminToken, sa, base } = await setup();
    const added = await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/keys`, { token: adminToken, body: { publicKey: await pemOf(await ecKey()) } });
    const viewer = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: adminToken, body: { name: unique("ro"), roles: [{ role: "viewer" }], issueToken: true } });
    const ro = await consoleLogin(viewer.json.token.token);
    expect(hasFormTo(expectPage(await consoleGet(base, ro)), `${base}/keys/${added.json.id}/disable`)).toBe(false);
    expectPage(await consolePost(`${base}/keys/${added.json.id}/disable`, ro), 403);
    expect((await keysOf(adminToken, org.id, sa.id))[0].status).toBe("active");
  });
});
