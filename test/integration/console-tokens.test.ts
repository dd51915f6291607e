import { describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { consoleGet, consoleLogin, consolePost, expectPage, expectRedirect, flashOf } from "./console-helpers.ts";

const secretOf = (html: string) => /<code id="new-secret">(sat_[^<]+)<\/code>/.exec(html)?.[1];

async function setup() {
  const root = await platformRoot();
  const { org, adminToken } = await orgWithAdmin(root.token);
  const sa = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: adminToken, body: { name: unique("tok"), roles: [{ role: "viewer" }] } });
  expectStatus(sa, 201);
  const base = `/console/orgs/${org.slug}/service-accounts/${sa.json.id}`;
  return { root, org, adminToken, sa: sa.json, base, cookie: await consoleLogin(adminToken) };
}

const apiRead = (secret: string, orgId: string, saId: string) => call("GET", `/api/v1/orgs/${orgId}/service-accounts/${saId}`, { token: secret });

describe("console: access tokens", () => {
  it("issues a token: the secret once with a copy button and the warning, then only its hint", async () => {
    const { org, adminToken, sa, base, cookie } = await setup();
    const res = await consolePost(`${base}/tokens`, cookie, { name: "ci", expiresInDays: "30" });
    const html = expectPage(res);
    expect(html).toContain("This token will not be shown again.");
    expect(html).toMatch(/<button type="button" class="secondary" data-copy="new-secret" hidden="">Copy<\/button>/);
    const secret = secretOf(html)!;
    expect(secret).toMatch(/^sat_/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.getSetCookie().some((c) => c.includes(secret))).toBe(false);
    expectStatus(await apiRead(secret, org.id, sa.id), 200);

    const tokens = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/tokens`, { token: adminToken });
    const token = tokens.json.items[0];
    expect(token.name).toBe("ci");
    expect(Date.parse(token.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    const reload = expectPage(await consoleGet(base, cookie));
    expect(reload).not.toContain(secret);
    expect(reload).toContain(token.hint);
    expect(reload).toMatch(/<span class="badge active">active<\/span>/);
  });

  it("the one-active-token rule is a clear message on the account page (409), not an error page", async () => {
    const { org, adminToken, sa, base, cookie } = await setup();
    expect(secretOf(expectPage(await consolePost(`${base}/tokens`, cookie, {})))).toBeDefined();
    const res = await consolePost(`${base}/tokens`, cookie, { name: "second" });
    const html = expectPage(res, 409);
    expect(html).toContain("Revoke a token (or regenerate the active one) before issuing another.");
    expect(html).toContain("Access tokens");
    expect(html).toContain("1 of at most 1 active token (the org&#39;s one-active-token rule)");
    expect(secretOf(html)).toBeUndefined();
    const tokens = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/tokens`, { token: adminToken });
    expect(tokens.json.items.length).toBe(1);
  });

  it("inline errors: a bad expiry is 400 beside the field; nothing issued", async () => {
    const { org, adminToken, sa, base, cookie } = await setup();
    for (const days of ["0", "99999", "soon"]) {
      const html = expectPage(await consolePost(`${base}/tokens`, cookie, { expiresInDays: days }), 400);
      expect(html, days).toMatch(/id="f-expiresInDays-error"/);
    }
    const policy = await call("PATCH", `/api/v1/orgs/${org.id}`, { token: adminToken, body: { policy: { maxTokenLifetimeDays: 7 } } });
    expectStatus(policy, 200);
    const over = expectPage(await consolePost(`${base}/tokens`, cookie, { expiresInDays: "30" }), 400);
    expect(over).toMatch(/id="f-expiresInDays-error"/);
    const tokens = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/tokens`, { token: adminToken });
    expect(tokens.json.items).toEqual([]);
  });

  it("regenerates with a grace period: a new secret once, the old one works during the grace", async () => {
    const { org, adminToken, sa, base, cookie } = await setup();
    const old = secretOf(expectPage(await consolePost(`${base}/tokens`, cookie, {})))!;
    const tokenId = (await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/tokens`, { token: adminToken })).json.items[0].id;
    const html = expectPage(await consolePost(`${base}/tokens/${tokenId}/regenerate`, cookie, { graceSeconds: "300" }));
    expect(html).toContain("New secret of the token");
    const fresh = secretOf(html)!;
    expect(fresh).not.toBe(old);
    expectStatus(await apiRead(fresh, org.id, sa.id), 200);
    expectStatus(await apiRead(old, org.id, sa.id), 200);
    const bad = expectPage(await consolePost(`${base}/tokens/${tokenId}/regenerate`, cookie, { graceSeconds: "999999" }), 400);
    expect(secretOf(bad)).toBeUndefined();
    const noGrace = secretOf(expectPage(await consolePost(`${base}/tokens/${tokenId}/regenerate`, cookie, { graceSeconds: "0" })))!;
    expect((await apiRead(fresh, org.id, sa.id)).status).toBe(401);
    expectStatus(await apiRead(noGrace, org.id, sa.id), 200);
  });

  it("revokes: the token stops working at once, the page says so", async () => {
    const { org, adminToken, sa, base, cookie } = await setup();
    const secret = secretOf(expectPage(await consolePost(`${base}/tokens`, cookie, {})))!;
    const token = (await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/tokens`, { token: adminToken })).json.items[0];
    const res = await consolePost(`${base}/tokens/${token.id}/revoke`, cookie);
    expectRedirect(res, `${base}#tokens`);
    expect(flashOf(res)).toContain(`Token ${token.hint} revoked.`);
    expect((await apiRead(secret, org.id, sa.id)).status).toBe(401);
    const page = expectPage(await consoleGet(base, cookie));
    expect(page).toMatch(/<span class="badge revoked">revoked<\/span>/);
    expect(page).not.toContain(`/tokens/${token.id}/revoke`);
  });

  it("another org's tokens are 404 and stay alive", async () => {
    const { root, cookie } = await setup();
    const { org: other, admin: otherAdmin, adminToken: otherToken } = await orgWithAdmin(root.token);
    const base = `/console/orgs/${other.slug}/service-accounts/${otherAdmin.id}`;
    expectPage(await consolePost(`${base}/tokens`, cookie, {}), 404);
    expectPage(await consolePost(`${base}/tokens/${otherAdmin.token.id}/revoke`, cookie), 404);
    expectPage(await consolePost(`${base}/tokens/${otherAdmin.token.id}/regenerate`, cookie, { graceSeconds: "0" }), 404);
    expectStatus(await apiRead(otherToken, other.id, otherAdmin.id), 200);
  });

  it("an unknown token id on the right account is 404", async () => {
    const { base, cookie } = await setup();
    expectPage(await consolePost(`${base}/tokens/tok_nope/revoke`, cookie), 404);
  });
});
