import { env } from "cloudflare:workers";
import * as jose from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { webhookWithDelivery } from "./webhook-helpers.ts";
import {
  type ApiOperation,
  apiOperations,
  type BodyMaterial,
  is2xx,
  type Probes,
  refusedAt,
  send,
  snapshotOrg,
  stable,
  withoutAuthLimiter,
} from "./attack-helpers.ts";
import { answer, assign, assignmentsOf, authorizeFor, builtinOperations, claimsOf, createRole, exchangeFor, expectCode, expectMissing, inviteTo, operationsAt, sa, sas } from "./authz-helpers.ts";
import { addPublicKey, expectOAuthError, ISSUER, JWT_BEARER, JWT_TOKEN_TYPE, jwtFor, nowS, postForm, TOKEN_EXCHANGE } from "./oauth-helpers.ts";

/**
 * RESTler-style checks, driven by the OpenAPI document so that a new route is covered as soon as
 * it is documented: use-after-free (a deleted resource stays dead on every route that takes it and
 * nothing revives it), the resource hierarchy (ids of another org or another account never reach
 * through a path), and privilege escalation (nobody grants itself or others more than it holds).
 */

type Org = Awaited<ReturnType<typeof orgWithAdmin>>;

let root: { id: string; token: string };
let A: Org;
let B: Org;
let C: Org;
let probes: Probes;
let ops: ApiOperation[];
let material: BodyMaterial;
let restoreLimiter: () => void;
/** The operations of the built-in org-admin (every org operation). */
let ORG_OPS: string[];

/** An account with everything that hangs below it: a token, a key, a role assignment and a received invitation. */
interface Furnished {
  id: string;
  email: string;
  token: string;
  tokenId: string;
  keyId: string;
  fedId: string;
  kid: string;
  privateKey: CryptoKey;
  raId: string;
  /** An invitation it received (from org C), pending. */
  invId: string;
}

async function furnished(o: Org, roles: { role: string; scope?: { type: "org" | "project" | "environment"; id: string } }[] = [{ role: "viewer" }]): Promise<Furnished> {
  const created = await call("POST", sas(o.org.id), { token: o.adminToken, body: { name: unique("sa"), roles, issueToken: true } });
  expectStatus(created, 201);
  const id = created.json.id as string;
  const { publicKey, privateKey } = await jose.generateKeyPair("ES256", { extractable: true });
  const kid = unique("kid");
  const key = await addPublicKey(o.adminToken, o.org.id, id, { publicKey: await jose.exportSPKI(publicKey), kid });
  expectStatus(key, 201);
  const fed = await call("POST", `${sas(o.org.id)}/${id}/federated-credentials`, { token: o.adminToken, body: { name: unique("f"), issuer: "https://gitlab.com", subject: `project_path:${o.org.slug}/x:ref_type:branch:ref:main` } });
  expectStatus(fed, 201);
  const ras = await assignmentsOf(o.adminToken, o.org.id, id);
  const inv = await inviteTo(C.adminToken, C.org.id, created.json.email, "viewer");
  expectStatus(inv, 201);
  return { id, email: created.json.email, token: created.json.token.token, tokenId: created.json.token.id, keyId: key.json.id, fedId: fed.json.id, kid, privateKey, raId: ras[0].id, invId: inv.json.id };
}

const assertionOf = (f: Furnished, header: Partial<jose.JWTHeaderParameters> = {}) =>
  new jose.SignJWT({})
    .setProtectedHeader({ alg: "ES256", kid: f.kid, ...header })
    .setIssuer(f.id)
    .setSubject(f.id)
    .setAudience(ISSUER)
    .setIssuedAt()
    .setExpirationTime(nowS() + 60)
    .setJti(crypto.randomUUID())
    .sign(f.privateKey);

const byAssertion = async (f: Furnished) =>
  postForm("/oauth/token", { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: await assertionOf(f) });

/** Sends every operation `pick` selects with `ids`, and hands each response to `check`. Returns how many were sent. */
async function walk(pick: (op: ApiOperation) => boolean, ids: (op: ApiOperation) => Record<string, string>, token: string, check: (op: ApiOperation, res: Awaited<ReturnType<typeof call>>) => void) {
  const chosen = ops.filter(pick);
  for (const op of chosen) check(op, await send(op, ids(op), token, material));
  return chosen.length;
}

const label = (op: ApiOperation, res: { status: number; text: string }) => `${op.method} ${op.template}: ${res.status} ${res.text}`;
const expect404 = (op: ApiOperation, res: { status: number; text: string; json: any }) => {
  expect(res.status, label(op, res)).toBe(404);
  expect(res.json?.code, label(op, res)).toBe("not_found");
};
const takes = (...names: string[]) => (op: ApiOperation) => names.some((n) => op.params.includes(n));

beforeAll(async () => {
  restoreLimiter = withoutAuthLimiter();
  root = await platformRoot();
  [A, B, C] = [await orgWithAdmin(root.token), await orgWithAdmin(root.token), await orgWithAdmin(root.token)];
  const rs = await call("POST", sas(A.org.id), { token: A.adminToken, body: { name: unique("rs"), issueToken: true } });
  expectStatus(rs, 201);
  probes = { introspector: { id: rs.json.id, secret: rs.json.token.token }, revoker: { id: root.id, secret: root.token } };
  ops = await apiOperations();
  ORG_OPS = await builtinOperations(root.token, "org-admin");
  const cz = await call("POST", sas(C.org.id), { token: C.adminToken, body: { name: unique("cz"), issueToken: false } });
  expectStatus(cz, 201);
  const { publicKey } = await jose.generateKeyPair("ES256", { extractable: true });
  material = { pem: await jose.exportSPKI(publicKey), inviteEmail: cz.json.email };
});

afterAll(() => restoreLimiter());

describe("use-after-free", () => {
  it("a deleted account: every route that takes it is 404, its credentials are dead everywhere, and re-creating it by name revives nothing", async () => {
    const role = await createRole(A.adminToken, A.org.id, ["orgs.read"]);
    const x = await furnished(A, [{ role: "viewer" }, { role: role.id }]);
    const xName = (await call("GET", sa(A.org.id, x.id), { token: A.adminToken })).json.name as string;
    const jwt = await jwtFor(x.token);
    expectStatus(await call("DELETE", sa(A.org.id, x.id), { token: A.adminToken }), 204);

    const ids = { org: A.org.id, sa: x.id, tok: x.tokenId, key: x.keyId, fed: x.fedId, ra: x.raId, inv: x.invId };
    const sent = await walk(takes("sa"), () => ids, A.adminToken, expect404);
    expect(sent).toBeGreaterThanOrEqual(15);
    // The platform path does not reach it either; root sees the same 404 as the org-admin.
    expect404(ops.find((o) => o.template === "/api/service-accounts/{clientId}")!, await call("DELETE", `/api/service-accounts/${x.id}`, { token: root.token }));
    await walk(takes("sa"), () => ids, root.token, expect404);
    // The invitation it had received can no longer be answered or found; its inviter's copy is gone.
    expect((await call("GET", `/api/v1/orgs/${C.org.id}/invitations`, { token: C.adminToken })).json.items.map((i: { id: string }) => i.id)).not.toContain(x.invId);

    await refusedAt("deleted account's token", x.token, { orgId: A.org.id, accountId: x.id }, probes);
    await refusedAt("deleted account's JWT", jwt, { orgId: A.org.id, accountId: x.id }, probes);
    await refusedAt("deleted account's key", await assertionOf(x), { orgId: A.org.id, accountId: x.id }, probes);

    // The same name again is a new account: a new id, nothing of the old one.
    const again = await call("POST", sas(A.org.id), { token: A.adminToken, body: { name: xName, issueToken: true } });
    expectStatus(again, 201);
    expect(again.json.id).not.toBe(x.id);
    const y = again.json.id as string;
    expect(await assignmentsOf(A.adminToken, A.org.id, y)).toEqual([]);
    expect((await call("GET", `${sa(A.org.id, y)}/keys`, { token: A.adminToken })).json.items).toEqual([]);
    expect((await call("GET", `${sa(A.org.id, y)}/federated-credentials`, { token: A.adminToken })).json.items).toEqual([]);
    expect((await call("GET", `${sa(A.org.id, y)}/tokens`, { token: A.adminToken })).json.items.map((t: { id: string }) => t.id)).toEqual([again.json.token.id]);
    expect((await call("GET", `${sa(A.org.id, y)}/invitations`, { token: A.adminToken })).json.items).toEqual([]);
    // The old credentials stay dead, also in the new account's name.
    await refusedAt("old token after re-creation", x.token, { orgId: A.org.id, accountId: y }, probes);
    await refusedAt("old JWT after re-creation", jwt, { orgId: A.org.id, accountId: y }, probes);
    await refusedAt("old key in the new account's name", await assertionOf({ ...x, id: y }), { orgId: A.org.id, accountId: y }, probes);
    // The old ids under the new account are 404 as well.
    await walk(takes("tok", "key", "fed", "ra", "inv"), () => ({ ...ids, sa: y }), A.adminToken, expect404);
    expectCode(await call("GET", sa(A.org.id, x.id), { token: A.adminToken }), 404, "not_found");
  });

  it("a deleted public key: DELETE again and every route that takes it are 404; assertions under it are refused; re-adding it is a new key", async () => {
    const x = await furnished(A);
    expectStatus(await byAssertion(x), 200);
    const keyPath = `${sa(A.org.id, x.id)}/keys/${x.keyId}`;
    expectStatus(await call("DELETE", keyPath, { token: A.adminToken }), 204);
    await walk(takes("key"), () => ({ org: A.org.id, sa: x.id, key: x.keyId }), A.adminToken, expect404);
    const holder = { orgId: A.org.id, accountId: x.id };
    await refusedAt("deleted key, its kid", await assertionOf(x), holder, probes, ["assertion", "clientAuth"]);
    await refusedAt("deleted key, no kid", await assertionOf(x, { kid: undefined }), holder, probes, ["assertion", "clientAuth"]);
    expect((await call("GET", `${sa(A.org.id, x.id)}/keys`, { token: A.adminToken })).json.items).toEqual([]);
    // The account's other credential is untouched.
    expectStatus(await call("GET", sa(A.org.id, x.id), { token: x.token }), 200);
  });

  it("a deleted custom role: every route that takes it is 404; it cannot be assigned, granted or invited to again; a new role of the same name revives nothing", async () => {
    const role = await createRole(A.adminToken, A.org.id, ["orgs.read", "service-accounts.read"]);
    const holder = await call("POST", sas(A.org.id), { token: A.adminToken, body: { name: unique("h"), roles: [{ role: role.id }], issueToken: true } });
    expectStatus(holder, 201);
    const h = { id: holder.json.id as string, token: holder.json.token.token as string };
    expectStatus(await call("GET", sas(A.org.id), { token: h.token }), 200);
    expect(claimsOf(await jwtFor(h.token)).roles).toEqual([role.name]);

    expectStatus(await call("DELETE", `/api/v1/orgs/${A.org.id}/roles/${role.id}`, { token: A.adminToken }), 204);
    for (const ref of [role.id, role.name]) await walk(takes("role"), () => ({ org: A.org.id, role: ref }), A.adminToken, expect404);
    for (const ref of [role.id, role.name]) {
      expectCode(await assign(A.adminToken, A.org.id, h.id, ref), 400, "validation_failed");
      expectCode(await call("POST", sas(A.org.id), { token: A.adminToken, body: { name: unique("x"), roles: [{ role: ref }] } }), 400, "validation_failed");
      expectCode(await inviteTo(A.adminToken, A.org.id, material.inviteEmail, ref), 400, "validation_failed");
    }
    // The holder lost it at once: nothing left in the org, so the org is invisible to it.
    expect(await assignmentsOf(A.adminToken, A.org.id, h.id)).toEqual([]);
    expect(await operationsAt(A.adminToken, A.org.id, h.id)).toEqual([]);
    expectCode(await call("GET", `/api/v1/orgs/${A.org.id}`, { token: h.token }), 404, "not_found");
    const after = claimsOf(await jwtFor(h.token));
    expect([after.roles, after.scope]).toEqual([[], ""]);

    // A new role with the same name is another role: the holder does not get it back.
    const reborn = await createRole(A.adminToken, A.org.id, ["orgs.read", "service-accounts.read"], { name: role.name });
    expect(reborn.id).not.toBe(role.id);
    expect(await assignmentsOf(A.adminToken, A.org.id, h.id)).toEqual([]);
    expectCode(await call("GET", `/api/v1/orgs/${A.org.id}`, { token: h.token }), 404, "not_found");
    await walk(takes("role"), () => ({ org: A.org.id, role: role.id }), A.adminToken, expect404);
  });

  // Regression (found by this suite): accepting checks, in the accepting transaction, that the
  // invitation's role and scope still exist; deleting a role, project or environment also cancels
  // the pending invitations to it.
  it("a pending invitation to a custom role deleted meanwhile cannot be accepted and grants nothing", async () => {
    const member = await furnished(B);
    const role = await createRole(A.adminToken, A.org.id, ["orgs.read"]);
    const inv = await inviteTo(A.adminToken, A.org.id, member.email, role.id);
    expectStatus(inv, 201);
    expectStatus(await call("DELETE", `/api/v1/orgs/${A.org.id}/roles/${role.id}`, { token: A.adminToken }), 204);
    const res = await answer(B.adminToken, B.org.id, member.id, inv.json.id, "accepted");
    expect(is2xx(res.status), `accepting an invitation to a deleted role: ${res.status} ${res.text}`).toBe(false);
    expectCode(await call("GET", `/api/v1/orgs/${A.org.id}`, { token: member.token }), 404, "not_found");
    expectCode(await authorizeFor(member.token, A.org.id), 403, "permission_denied");
  });

  it("a deleted role assignment: DELETE again and every route that takes it are 404; its operations go at once; re-assigning makes a new one", async () => {
    const x = await furnished(A, [{ role: "viewer" }, { role: "service-account-admin" }]);
    const ras = await assignmentsOf(A.adminToken, A.org.id, x.id);
    const saa = ras.find((r) => r.role === "service-account-admin")!;
    const bare = await call("POST", sas(A.org.id), { token: A.adminToken, body: { name: unique("bare") } });
    const bareTokens = `${sa(A.org.id, bare.json.id)}/tokens`;
    const issued = await call("POST", bareTokens, { token: x.token, body: {} });
    expectStatus(issued, 201);
    expectStatus(await call("DELETE", `${bareTokens}/${issued.json.id}`, { token: x.token }), 204);
    expectStatus(await call("DELETE", `${sa(A.org.id, x.id)}/role-assignments/${saa.id}`, { token: A.adminToken }), 204);
    await walk(takes("ra"), () => ({ org: A.org.id, sa: x.id, ra: saa.id }), A.adminToken, expect404);
    expectMissing(await call("POST", bareTokens, { token: x.token, body: {} }), ["service-accounts.access-tokens.edit"]);
    expect(claimsOf(await jwtFor(x.token)).roles).toEqual(["viewer"]);
    const again = await assign(A.adminToken, A.org.id, x.id, "service-account-admin");
    expectStatus(again, 201);
    expect(again.json.id).not.toBe(saa.id);
    expectCode(await call("DELETE", `${sa(A.org.id, x.id)}/role-assignments/${saa.id}`, { token: A.adminToken }), 404, "not_found");
    expect((await assignmentsOf(A.adminToken, A.org.id, x.id)).map((r) => r.id).sort()).toEqual([ras.find((r) => r.role === "viewer")!.id, again.json.id].sort());
  });

  it("a revoked token: DELETE stays 204 (idempotent) and regenerate 409 on every route that takes it; it is dead everywhere; a new token is a new secret", async () => {
    const x = await furnished(A);
    const tok = `${sa(A.org.id, x.id)}/tokens/${x.tokenId}`;
    expectStatus(await call("DELETE", tok, { token: A.adminToken }), 204);
    const statuses: string[] = [];
    await walk(takes("tok"), () => ({ org: A.org.id, sa: x.id, tok: x.tokenId }), A.adminToken, (op, res) => {
      statuses.push(`${op.method} ${op.template} ${res.status}`);
      if (op.method === "DELETE") expect(res.status, label(op, res)).toBe(204);
      else expectCode(res, 409, "token_not_active");
    });
    expect(statuses.length).toBe(2);
    await refusedAt("revoked token", x.token, { orgId: A.org.id, accountId: x.id }, probes);
    const fresh = await call("POST", `${sa(A.org.id, x.id)}/tokens`, { token: A.adminToken, body: {} });
    expectStatus(fresh, 201);
    expect(fresh.json.id).not.toBe(x.tokenId);
    expect(fresh.json.token).not.toBe(x.token);
    await refusedAt("revoked token after a new one", x.token, { orgId: A.org.id, accountId: x.id }, probes, ["bearer", "exchange", "basic", "introspect"]);
    const list = await call("GET", `${sa(A.org.id, x.id)}/tokens`, { token: A.adminToken });
    expect(list.json.items.find((t: { id: string }) => t.id === x.tokenId).status).toBe("revoked");
    // Even root cannot bring it back.
    expectCode(await call("POST", `${tok}/regenerate`, { token: root.token, body: {} }), 409, "token_not_active");
  });

  it("a deleted environment, then its project: every route that takes them is 404, roles on them are gone, and new ones with the same slugs revive nothing", async () => {
    const o = `/api/v1/orgs/${A.org.id}`;
    const prj = await call("POST", `${o}/projects`, { token: A.adminToken, body: { slug: unique("p"), name: "P" } });
    const env = await call("POST", `${o}/projects/${prj.json.id}/environments`, { token: A.adminToken, body: { slug: unique("e"), name: "E" } });
    const h = await call("POST", sas(A.org.id), {
      token: A.adminToken,
      body: {
        name: unique("h"),
        issueToken: true,
        roles: [{ role: "viewer" }, { role: "org-admin", scope: { type: "project", id: prj.json.id } }, { role: "org-admin", scope: { type: "environment", id: env.json.id } }],
      },
    });
    expectStatus(h, 201);
    const hToken = h.json.token.token as string;
    expect(await operationsAt(A.adminToken, A.org.id, h.json.id, env.json.id)).toContain("orgs.admin");

    expectStatus(await call("DELETE", `${o}/projects/${prj.json.id}/environments/${env.json.id}`, { token: A.adminToken }), 204);
    await walk(takes("env"), () => ({ org: A.org.id, prj: prj.json.id, env: env.json.id }), A.adminToken, expect404);
    expectCode(await assign(A.adminToken, A.org.id, h.json.id, "viewer", { type: "environment", id: env.json.id }), 404, "not_found");
    expectCode(await inviteTo(A.adminToken, A.org.id, material.inviteEmail, "viewer", { type: "environment", id: env.json.id }), 404, "not_found");
    expectCode(await call("GET", `${sa(A.org.id, h.json.id)}/permissions?scope=${env.json.id}`, { token: A.adminToken }), 404, "not_found");

    expectStatus(await call("DELETE", `${o}/projects/${prj.json.id}`, { token: A.adminToken }), 204);
    await walk(takes("prj"), () => ({ org: A.org.id, prj: prj.json.id, env: env.json.id }), A.adminToken, expect404);
    expectCode(await assign(A.adminToken, A.org.id, h.json.id, "viewer", { type: "project", id: prj.json.id }), 404, "not_found");
    expectCode(await call("GET", `${sa(A.org.id, h.json.id)}/permissions?scope=${prj.json.id}`, { token: A.adminToken }), 404, "not_found");
    expect((await assignmentsOf(A.adminToken, A.org.id, h.json.id)).map((r) => r.role)).toEqual(["viewer"]);

    // The same slugs again are new nodes: the old grants do not come back.
    const prj2 = await call("POST", `${o}/projects`, { token: A.adminToken, body: { slug: prj.json.slug, name: "P again" } });
    expectStatus(prj2, 201);
    const env2 = await call("POST", `${o}/projects/${prj2.json.id}/environments`, { token: A.adminToken, body: { slug: env.json.slug, name: "E again" } });
    expectStatus(env2, 201);
    expect([prj2.json.id, env2.json.id]).not.toContain(prj.json.id);
    expect((await call("GET", `${o}/projects/${prj.json.slug}`, { token: A.adminToken })).json.id).toBe(prj2.json.id);
    expect(await operationsAt(A.adminToken, A.org.id, h.json.id, env2.json.id)).not.toContain("orgs.admin");
    expectMissing(await call("POST", `${o}/projects/${prj2.json.id}/environments`, { token: hToken, body: { slug: unique("e"), name: "no" } }), ["orgs.admin"]);
    expectMissing(await call("DELETE", `${o}/projects/${prj2.json.id}/environments/${env2.json.id}`, { token: hToken }), ["orgs.admin"]);
  });

  // Regression: the same for a project deleted after the invitation was sent.
  it("a pending invitation scoped to a project deleted meanwhile cannot be accepted and grants nothing", async () => {
    const member = await furnished(B);
    const prj = await call("POST", `/api/v1/orgs/${A.org.id}/projects`, { token: A.adminToken, body: { slug: unique("p"), name: "P" } });
    const inv = await inviteTo(A.adminToken, A.org.id, member.email, "viewer", { type: "project", id: prj.json.id });
    expectStatus(inv, 201);
    expectStatus(await call("DELETE", `/api/v1/orgs/${A.org.id}/projects/${prj.json.id}`, { token: A.adminToken }), 204);
    const res = await answer(B.adminToken, B.org.id, member.id, inv.json.id, "accepted");
    expect(is2xx(res.status), `accepting an invitation to a deleted project: ${res.status} ${res.text}`).toBe(false);
    expectCode(await call("GET", `/api/v1/orgs/${A.org.id}`, { token: member.token }), 404, "not_found");
    expectCode(await authorizeFor(member.token, A.org.id), 403, "permission_denied");
  });
});

describe("resource hierarchy", () => {
  /** Every id of an org's resources: an account (furnished), a custom role, a project, an environment, and an invitation the org sent. */
  async function inventory(o: Org) {
    const x = await furnished(o);
    const role = await createRole(o.adminToken, o.org.id, ["orgs.read"]);
    const prj = await call("POST", `/api/v1/orgs/${o.org.id}/projects`, { token: o.adminToken, body: { slug: unique("p"), name: "P" } });
    const env = await call("POST", `/api/v1/orgs/${o.org.id}/projects/${prj.json.id}/environments`, { token: o.adminToken, body: { slug: unique("e"), name: "E" } });
    const invitee = await call("POST", sas(C.org.id), { token: C.adminToken, body: { name: unique("invitee") } });
    expectStatus(invitee, 201);
    const sent = await inviteTo(o.adminToken, o.org.id, invitee.json.email, "viewer");
    expectStatus(sent, 201);
    const hook = await webhookWithDelivery(o.adminToken, o.org.id);
    return {
      x,
      ids: { sa: x.id, tok: x.tokenId, key: x.keyId, fed: x.fedId, ra: x.raId, role: role.id, prj: prj.json.id, env: env.json.id, sentInv: sent.json.id, recvInv: x.invId, clientId: x.id, ...hook },
    };
  }
  /** The {inv} of a template: the invitation the org sent, or the one its account received. */
  const withInv = (op: ApiOperation, ids: Record<string, string>, recv: string, sentInv: string) => ({ ...ids, inv: op.template.includes("/service-accounts/{sa}/invitations") ? recv : sentInv });

  it("org B's ids under org A's path, in every mix with A's own ids, on every route of the OpenAPI document: 404, and B unchanged", async () => {
    const a = await inventory(A);
    const b = await inventory(B);
    const before = await snapshotOrg(B.adminToken, B.org.id);
    const aBefore = stable({ tokens: (await call("GET", `${sa(A.org.id, a.x.id)}/tokens`, { token: A.adminToken })).json, keys: (await call("GET", `${sa(A.org.id, a.x.id)}/keys`, { token: A.adminToken })).json });
    const jwt = await jwtFor(A.adminToken);
    let sent = 0;
    // The management API's routes (a status list's number names no org's resource).
    for (const op of ops.filter((o) => o.template.startsWith("/api/") && o.params.some((p) => p !== "org"))) {
      const others = op.params.filter((p) => p !== "org");
      // Every assignment of A's or B's id to each non-org parameter, except all-A (that is A's own, legitimate).
      for (let mask = 1; mask < 1 << others.length; mask++) {
        const ids: Record<string, string> = { org: A.org.id };
        others.forEach((p, i) => {
          const side = mask & (1 << i) ? b : a;
          ids[p] = p === "inv" ? "" : (side.ids as Record<string, string>)[p]!;
        });
        const inv = others.indexOf("inv");
        const full = inv < 0 ? ids : withInv(op, ids, (mask & (1 << inv) ? b : a).ids.recvInv, (mask & (1 << inv) ? b : a).ids.sentInv);
        for (const token of [A.adminToken, jwt]) {
          const res = await send(op, full, token, material);
          sent++;
          const msg = `${label(op, res)} ids ${JSON.stringify(full)}`;
          expect(is2xx(res.status), msg).toBe(false);
          if (op.template.startsWith("/api/v1/orgs/")) expect(res.status, msg).toBe(404);
          else expect(res.status, msg).toBe(403); // platform routes: root only
        }
      }
    }
    expect(sent).toBeGreaterThan(60);
    expect(await snapshotOrg(B.adminToken, B.org.id)).toEqual(before);
    // A's own resources that stood beside B's ids are intact too.
    const aAfter = stable({ tokens: (await call("GET", `${sa(A.org.id, a.x.id)}/tokens`, { token: A.adminToken })).json, keys: (await call("GET", `${sa(A.org.id, a.x.id)}/keys`, { token: A.adminToken })).json });
    expect(aAfter).toEqual(aBefore);
    expectStatus(await call("GET", sa(A.org.id, a.x.id), { token: a.x.token }), 200);
    expectStatus(await byAssertion(b.x), 200);
    expectStatus(await call("GET", sa(B.org.id, b.x.id), { token: b.x.token }), 200);
  });

  it("org B's ids inside request bodies and queries under org A's path are refused and grant nothing", async () => {
    const a = await inventory(A);
    const b = await inventory(B);
    const before = await snapshotOrg(B.adminToken, B.org.id);
    const t = A.adminToken;
    // Role assignments: B's custom role is unknown here; B's project, environment and org are not scopes here.
    expectCode(await assign(t, A.org.id, a.x.id, b.ids.role), 400, "validation_failed");
    for (const scope of [{ type: "project", id: b.ids.prj }, { type: "environment", id: b.ids.env }, { type: "org", id: B.org.id }, { type: "project", id: b.ids.env }, { type: "environment", id: b.ids.prj }] as const) {
      expectCode(await assign(t, A.org.id, a.x.id, "viewer", scope), 404, "not_found");
      expectCode(await call("POST", sas(A.org.id), { token: t, body: { name: unique("x"), roles: [{ role: "viewer", scope }] } }), 404, "not_found");
      expectCode(await inviteTo(t, A.org.id, material.inviteEmail, "viewer", scope), 404, "not_found");
    }
    expectCode(await call("POST", sas(A.org.id), { token: t, body: { name: unique("x"), roles: [{ role: b.ids.role }] } }), 400, "validation_failed");
    expectCode(await inviteTo(t, A.org.id, material.inviteEmail, b.ids.role), 400, "validation_failed");
    for (const scope of [b.ids.prj, b.ids.env, B.org.id]) {
      const res = await call("GET", `${sa(A.org.id, a.x.id)}/permissions?scope=${scope}`, { token: t });
      expect([400, 404], res.text).toContain(res.status);
    }
    // The audit and token reviews filtered by B's ids show nothing of B.
    const audit = await call("GET", `/api/v1/orgs/${A.org.id}/audit-events?target=${b.x.id}`, { token: t });
    expectStatus(audit, 200);
    expect(audit.json.items).toEqual([]);
    // Credentials for org B through A's account: no JWT for B by any route.
    expectCode(await authorizeFor(a.x.token, B.org.id), 403, "permission_denied");
    expectStatus(await exchangeFor(a.x.token, { org: B.org.id }), 403);
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials", org: B.org.id }, { basic: [a.x.id, a.x.token] }), 400, "invalid_target");
    expect((await assignmentsOf(t, A.org.id, a.x.id)).map((r) => r.id)).toEqual([a.x.raId]);
    expect(await snapshotOrg(B.adminToken, B.org.id)).toEqual(before);
  });

  it("one account's token, key, role assignment and invitation ids under another account of the same org: 404 on every route, and nothing changes", async () => {
    const x = await furnished(A);
    const y = await furnished(A);
    const state = async () =>
      stable({
        tokens: (await call("GET", `${sa(A.org.id, x.id)}/tokens`, { token: A.adminToken })).json,
        keys: (await call("GET", `${sa(A.org.id, x.id)}/keys`, { token: A.adminToken })).json,
        feds: (await call("GET", `${sa(A.org.id, x.id)}/federated-credentials`, { token: A.adminToken })).json,
        ras: (await call("GET", `${sa(A.org.id, x.id)}/role-assignments`, { token: A.adminToken })).json,
        invs: (await call("GET", `${sa(A.org.id, x.id)}/invitations`, { token: A.adminToken })).json,
      });
    const before = await state();
    const sent = await walk(
      (op) => op.params.includes("sa") && op.params.some((p) => ["tok", "key", "fed", "ra", "inv"].includes(p)),
      () => ({ org: A.org.id, sa: y.id, tok: x.tokenId, key: x.keyId, fed: x.fedId, ra: x.raId, inv: x.invId }),
      A.adminToken,
      expect404,
    );
    expect(sent).toBe(9);
    expect(await state()).toEqual(before);
    expectStatus(await call("GET", sa(A.org.id, x.id), { token: x.token }), 200);
    expectStatus(await byAssertion(x), 200);
    // y's own things are untouched too.
    expectStatus(await call("GET", sa(A.org.id, y.id), { token: y.token }), 200);
  });
});

describe("privilege escalation", () => {
  it("a viewer cannot give itself more: a role, a custom role, a token or key of its own, wider allowedScopes or allowedCidrs", async () => {
    const v = await furnished(A);
    const self = sa(A.org.id, v.id);
    expectMissing(await assign(v.token, A.org.id, v.id, "org-admin"), ["roles.edit"]);
    expectMissing(await call("POST", `/api/v1/orgs/${A.org.id}/roles`, { token: v.token, body: { name: unique("r"), operations: ["orgs.admin"] } }), ["roles.edit"]);
    expectMissing(await call("POST", `${self}/tokens`, { token: v.token, body: {} }), ["service-accounts.access-tokens.edit"]);
    expectMissing(await call("POST", `${self}/tokens/${v.tokenId}/regenerate`, { token: v.token, body: {} }), ["service-accounts.access-tokens.edit"]);
    expectMissing(await call("POST", `${self}/keys`, { token: v.token, body: { publicKey: material.pem } }), ["service-accounts.access-tokens.edit"]);
    expectMissing(await call("PUT", `${self}/jwks-uri`, { token: v.token, body: { jwksUri: "https://attacker.example.com/jwks.json" } }), ["service-accounts.access-tokens.edit"]);
    expectMissing(await call("PATCH", self, { token: v.token, body: { allowedScopes: ["roles.edit"] } }), ["service-accounts.edit"]);
    expectMissing(await call("PATCH", self, { token: v.token, body: { allowedCidrs: [] } }), ["service-accounts.edit"]);
    expectMissing(await call("PATCH", `${self}/invitations/${v.invId}`, { token: v.token, body: { state: "accepted" } }), ["invitations.edit"]);
    expect((await assignmentsOf(A.adminToken, A.org.id, v.id)).map((r) => r.role)).toEqual(["viewer"]);
    expect((await call("GET", `${self}/keys`, { token: A.adminToken })).json.items.length).toBe(1);
  });

  it("a service-account-admin cannot edit allowedScopes or allowedCidrs of an account holding more (org-wide or at a project), and the account is unchanged", async () => {
    const prj = await call("POST", `/api/v1/orgs/${A.org.id}/projects`, { token: A.adminToken, body: { slug: unique("p"), name: "P" } });
    const caller = await furnished(A, [{ role: "service-account-admin" }]);
    const lacks = ["orgs.admin", "roles.edit", "invitations.edit", "audit.read", "service-accounts.incident-response", "webhooks.read", "webhooks.edit"];
    for (const scope of [undefined, { type: "project" as const, id: prj.json.id }]) {
      const target = await furnished(A, [scope ? { role: "org-admin", scope } : { role: "org-admin" }]);
      const path = sa(A.org.id, target.id);
      const before = (await call("GET", path, { token: A.adminToken })).json;
      for (const body of [{ allowedScopes: ["anything"] }, { allowedScopes: [] }, { allowedCidrs: ["203.0.113.0/24"] }, { allowedCidrs: [] }, { groups: ["admins"] }, { expiresAt: null }]) {
        expectMissing(await call("PATCH", path, { token: caller.token, body }), lacks);
      }
      expect((await call("GET", path, { token: A.adminToken })).json).toEqual(before);
      expectStatus(await call("GET", "/api/v1/orgs", { token: target.token }), 200);
    }
  });

  // Issue 16: the guard counted only the home org. B's role-less bot, invited by A to org-admin and
  // accepted by B's org-admin, had its token regenerated by B's service-account-admin (200), who then
  // authorized into A with it and created org-admin accounts there.
  it("a role the account holds in another org counts: B's service-account-admin (and B's org-admin) cannot mint the bot's credentials once it holds org-admin in A", async () => {
    const botRes = await call("POST", sas(B.org.id), { token: B.adminToken, body: { name: unique("bot"), issueToken: true } });
    expectStatus(botRes, 201);
    const bot = { id: botRes.json.id as string, email: botRes.json.email as string, tokenId: botRes.json.token.id as string };
    const inv = await inviteTo(A.adminToken, A.org.id, bot.email, "org-admin");
    expectStatus(inv, 201);
    expectStatus(await answer(B.adminToken, B.org.id, bot.id, inv.json.id, "accepted"), 200);
    const saa = await furnished(B, [{ role: "service-account-admin" }]);
    const botPath = sa(B.org.id, bot.id);
    const aAccounts = (await call("GET", `${sas(A.org.id)}?limit=200`, { token: A.adminToken })).json.items.length;
    for (const token of [saa.token, B.adminToken]) {
      const regen = await call("POST", `${botPath}/tokens/${bot.tokenId}/regenerate`, { token, body: {} });
      expectMissing(regen, ORG_OPS);
      expect(regen.json.detail, regen.text).toContain(A.org.id);
      expectMissing(await call("POST", `${botPath}/tokens`, { token, body: {} }), ORG_OPS);
      expectMissing(await call("POST", `${botPath}/keys`, { token, body: { publicKey: material.pem } }), ORG_OPS);
      expectMissing(await call("PATCH", botPath, { token, body: { description: "mine now" } }), ORG_OPS);
    }
    // The service-account-admin got nothing to authorize into A with; A is unchanged.
    expectCode(await authorizeFor(saa.token, A.org.id), 403, "permission_denied");
    expect((await call("GET", `${sas(A.org.id)}?limit=200`, { token: A.adminToken })).json.items.length).toBe(aAccounts);
    // B's org-admin may still take the bot's access away (incident response, marked in the audit log).
    expectStatus(await call("DELETE", `${botPath}/tokens/${bot.tokenId}`, { token: B.adminToken }), 204);
    const revoked = (await call("GET", `/api/v1/orgs/${B.org.id}/audit-events?target=${bot.tokenId}&action=access_token.revoked`, { token: B.adminToken })).json.items;
    expect(revoked.map((e: { details: Record<string, unknown> }) => e.details.incidentResponse)).toEqual([true]);
    // Root covers everything: the control.
    expectStatus(await call("POST", `${botPath}/tokens`, { token: root.token, body: {} }), 201);
  });

  // Issue 23 (High): allowedScopes put any operation name into a JWT. Now a scope naming a Keyward
  // operation can never come from allowedScopes, and setting one is refused.
  it("allowedScopes naming Keyward operations are refused (400 invalid_scope), on creation with issueToken and on its own account, and no JWT carries them", async () => {
    const caller = await furnished(A, [{ role: "service-account-admin" }]);
    const self = sa(A.org.id, caller.id);
    const name = unique("scoped");
    const created = await call("POST", sas(A.org.id), { token: caller.token, body: { name, allowedScopes: ["platform.root", "roles.edit"], issueToken: true } });
    expectCode(created, 400, "invalid_scope");
    expect(created.json.detail, created.text).toContain("platform.root");
    expect(created.json.detail, created.text).toMatch(/roles/);
    expect((await call("GET", `${sas(A.org.id)}?q=${name}`, { token: A.adminToken })).json.items).toEqual([]);
    expectCode(await call("PATCH", self, { token: caller.token, body: { allowedScopes: ["roles.edit", "orgs.admin", "platform.root"] } }), 400, "invalid_scope");
    expect((await call("GET", self, { token: A.adminToken })).json.allowedScopes).toEqual([]);
    for (const scope of ["platform.root", "roles.edit orgs.admin", "service-accounts.read platform.root"]) {
      expectCode(await exchangeFor(caller.token, { scope }), 400, "invalid_scope");
      expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials", scope }, { basic: [caller.id, caller.token] }), 400, "invalid_scope");
    }
    const jwt = (await exchangeFor(caller.token)).json.jwt as string;
    expect(claimsOf(jwt).scope!.split(" ")).not.toContain("roles.edit");
    expect(claimsOf(jwt).scope!.split(" ")).not.toContain("platform.root");
  });

  it("a row written before the rule (allowedScopes naming platform.root) still yields no such scope: the account's Keyward scopes are what its roles give", async () => {
    const legacy = await furnished(A, [{ role: "viewer" }]);
    await env.DB.prepare("update service_accounts set allowed_scopes = ? where id = ?").bind(JSON.stringify(["platform.root", "roles.edit"]), legacy.id).run();
    // Any rewrite of its records (here a new secret) computes the claims from D1 again.
    const fresh = await call("POST", `${sa(A.org.id, legacy.id)}/tokens/${legacy.tokenId}/regenerate`, { token: A.adminToken, body: {} });
    expectStatus(fresh, 200);
    expectCode(await exchangeFor(fresh.json.token, { scope: "platform.root" }), 400, "invalid_scope");
    const jwt = (await exchangeFor(fresh.json.token)).json.jwt as string;
    expect(claimsOf(jwt).scope!.split(" ").sort()).toEqual(["audit.read", "orgs.read", "service-accounts.read"]);
    expectMissing(await call("POST", "/api/v1/orgs", { token: jwt, body: { slug: unique("evil"), name: "Evil" } }), ["platform.root"]);
  });

  it("downstream scopes must be declared by the org first (400 invalid_scope otherwise); declared ones are requestable, in the home org only", async () => {
    const o = await orgWithAdmin(root.token);
    const caller = await call("POST", sas(o.org.id), { token: o.adminToken, body: { name: unique("saa"), roles: [{ role: "service-account-admin" }], issueToken: true } });
    const t = caller.json.token.token as string;
    const undeclared = await call("POST", sas(o.org.id), { token: t, body: { name: unique("d"), allowedScopes: ["billing:read"], issueToken: true } });
    expectCode(undeclared, 400, "invalid_scope");
    expect(undeclared.json.detail, undeclared.text).toContain("policy.scopes");
    // Declaring needs orgs.admin: the service-account-admin cannot do it for itself.
    expectMissing(await call("PATCH", `/api/v1/orgs/${o.org.id}`, { token: t, body: { policy: { scopes: ["billing:read"] } } }), ["orgs.admin"]);
    expectStatus(await call("PATCH", `/api/v1/orgs/${o.org.id}`, { token: o.adminToken, body: { policy: { scopes: ["billing:read"] } } }), 200);
    const ok = await call("POST", sas(o.org.id), { token: t, body: { name: unique("d"), allowedScopes: ["billing:read"], issueToken: true } });
    expectStatus(ok, 201);
    const jwt = await exchangeFor(ok.json.token.token, { scope: "billing:read" });
    expectStatus(jwt, 200);
    expect(claimsOf(jwt.json.jwt).scope).toBe("billing:read");
    // Invited elsewhere, the account's downstream scopes stay home.
    const inv = await inviteTo(A.adminToken, A.org.id, ok.json.email, "viewer");
    expectStatus(await answer(o.adminToken, o.org.id, ok.json.id, inv.json.id, "accepted"), 200);
    const forA = await authorizeFor(ok.json.token.token, A.org.id);
    expectStatus(forA, 200);
    expect(forA.json.scope.split(" ")).not.toContain("billing:read");
  });

  // Issue 23: weaker admins disarmed stronger ones (revoke 204 while regenerate was 403; a custom
  // role with roles.edit removed an org-admin's role). One rule now for every write on another
  // account's credentials and roles: cover what it holds, or hold incident response.
  it("a service-account-admin can neither revoke an org-admin's token nor remove its key; a roles.edit role cannot unassign its role; nothing changes", async () => {
    const caller = await furnished(A, [{ role: "service-account-admin" }]);
    const target = await furnished(A, [{ role: "org-admin" }]);
    const path = sa(A.org.id, target.id);
    const lacks = ["orgs.admin", "roles.edit", "invitations.edit", "audit.read", "service-accounts.incident-response", "webhooks.read", "webhooks.edit"];
    const before = stable({ tokens: (await call("GET", `${path}/tokens`, { token: A.adminToken })).json, keys: (await call("GET", `${path}/keys`, { token: A.adminToken })).json });
    const revoked = await call("DELETE", `${path}/tokens/${target.tokenId}`, { token: caller.token });
    expectMissing(revoked, lacks);
    expect(revoked.json.detail, revoked.text).toContain("service-accounts.incident-response");
    expectMissing(await call("DELETE", `${path}/keys/${target.keyId}`, { token: caller.token }), lacks);
    expectMissing(await call("PATCH", path, { token: caller.token, body: { status: "disabled" } }), lacks);
    expectMissing(await call("DELETE", path, { token: caller.token }), lacks);
    const roleEditor = await createRole(A.adminToken, A.org.id, ["roles.edit"]);
    const editor = await furnished(A, [{ role: roleEditor.id }]);
    expectMissing(await call("DELETE", `${path}/role-assignments/${target.raId}`, { token: editor.token }), ORG_OPS.filter((op) => op !== "roles.edit"));
    // The target keeps everything.
    expectStatus(await call("GET", path, { token: target.token }), 200);
    expectStatus(await byAssertion(target), 200);
    expect((await assignmentsOf(A.adminToken, A.org.id, target.id)).map((r) => r.role)).toEqual(["org-admin"]);
    expect(stable({ tokens: (await call("GET", `${path}/tokens`, { token: A.adminToken })).json, keys: (await call("GET", `${path}/keys`, { token: A.adminToken })).json })).toEqual(before);
    // Putting credentials out stays guarded as before.
    expectMissing(await call("POST", `${path}/tokens`, { token: caller.token, body: {} }), lacks);
    expectMissing(await call("POST", `${path}/keys`, { token: caller.token, body: { publicKey: material.pem } }), lacks);
  });

  it("service-accounts.incident-response takes any account's access away (revoke, remove a key, unassign, disable), marks every such event in the audit log, and hands out nothing", async () => {
    const responderRole = await createRole(A.adminToken, A.org.id, ["orgs.read", "service-accounts.read", "service-accounts.edit", "service-accounts.access-tokens.edit", "service-accounts.federated-credentials.edit", "roles.edit", "service-accounts.incident-response"]);
    const responder = await furnished(A, [{ role: responderRole.id }]);
    const target = await furnished(A, [{ role: "org-admin" }]);
    const path = sa(A.org.id, target.id);
    const lacks = ["orgs.admin", "invitations.edit", "audit.read", "webhooks.read", "webhooks.edit"];
    // Handing out stays guarded: no token, no regenerate, no key, no edit that could widen.
    expectMissing(await call("POST", `${path}/tokens/${target.tokenId}/regenerate`, { token: responder.token, body: {} }), lacks);
    expectMissing(await call("POST", `${path}/keys`, { token: responder.token, body: { publicKey: material.pem } }), lacks);
    expectMissing(await call("PATCH", path, { token: responder.token, body: { status: "disabled", description: "and more" } }), lacks);
    expectMissing(await call("POST", `${path}/federated-credentials`, { token: responder.token, body: { name: unique("f"), issuer: "https://gitlab.com", subject: "x" } }), lacks);
    expectMissing(await call("PATCH", `${path}/federated-credentials/${target.fedId}`, { token: responder.token, body: { enabled: false } }), lacks);
    // Taking away works.
    expectStatus(await call("DELETE", `${path}/federated-credentials/${target.fedId}`, { token: responder.token }), 204);
    expectStatus(await call("DELETE", `${path}/tokens/${target.tokenId}`, { token: responder.token }), 204);
    expectStatus(await call("DELETE", `${path}/keys/${target.keyId}`, { token: responder.token }), 204);
    expectStatus(await call("PATCH", path, { token: responder.token, body: { status: "disabled" } }), 200);
    expectStatus(await call("DELETE", `${path}/role-assignments/${target.raId}`, { token: responder.token }), 204);
    expectCode(await call("GET", path, { token: target.token }), 401, "unauthenticated");
    expectOAuthError(await byAssertion(target), 401, "invalid_client");
    expect(await assignmentsOf(A.adminToken, A.org.id, target.id)).toEqual([]);
    // Every one of those events says it was incident response; an ordinary revoke does not.
    const events = (await call("GET", `/api/v1/orgs/${A.org.id}/audit-events?actor=${responder.id}`, { token: A.adminToken })).json.items as { action: string; details: Record<string, unknown> }[];
    const actions = events.map((e) => e.action).sort();
    expect(actions).toEqual(["access_token.revoked", "federated_credential.deleted", "public_key.deleted", "role_assignment.deleted", "service_account.disabled"]);
    for (const e of events) expect(e.details.incidentResponse, JSON.stringify(e)).toBe(true);
    const plain = await furnished(A, [{ role: "viewer" }]);
    expectStatus(await call("DELETE", `${sa(A.org.id, plain.id)}/tokens/${plain.tokenId}`, { token: A.adminToken }), 204);
    const ordinary = (await call("GET", `/api/v1/orgs/${A.org.id}/audit-events?target=${plain.tokenId}&action=access_token.revoked`, { token: A.adminToken })).json.items;
    expect(ordinary.map((e: { details: Record<string, unknown> }) => e.details.incidentResponse)).toEqual([undefined]);
  });

  it("an account may always take its own access away: a JWT narrowed to access-token edits revokes its own token, and keeps it from minting", async () => {
    const o = await orgWithAdmin(root.token);
    expectStatus(await call("PATCH", `/api/v1/orgs/${o.org.id}`, { token: o.adminToken, body: { policy: { maxActiveTokensPerAccount: 2 } } }), 200);
    const second = await call("POST", `${sa(o.org.id, o.admin.id)}/tokens`, { token: o.adminToken, body: {} });
    expectStatus(second, 201);
    const narrow = (await exchangeFor(o.adminToken, { scope: "service-accounts.access-tokens.edit" })).json.jwt as string;
    expectStatus(await call("DELETE", `${sa(o.org.id, o.admin.id)}/tokens/${second.json.id}`, { token: narrow }), 204);
    expectCode(await call("GET", "/api/v1/orgs", { token: second.json.token }), 401, "unauthenticated");
    expect(is2xx((await call("POST", `${sa(o.org.id, o.admin.id)}/tokens`, { token: narrow, body: {} })).status)).toBe(false);
  });

  it("an invitation addressed to one account cannot be accepted through another account's path (same org, or the inviter's), and stays pending", async () => {
    const addressee = await furnished(B);
    const other = await furnished(B);
    const inv = await inviteTo(A.adminToken, A.org.id, addressee.email, "org-admin");
    expectStatus(inv, 201);
    expectCode(await answer(B.adminToken, B.org.id, other.id, inv.json.id, "accepted"), 404, "not_found");
    // The inviter answering for an account of its own org, or through the addressee under its own org path.
    const aAccount = await furnished(A);
    expectCode(await answer(A.adminToken, A.org.id, aAccount.id, inv.json.id, "accepted"), 404, "not_found");
    expectCode(await answer(A.adminToken, A.org.id, addressee.id, inv.json.id, "accepted"), 404, "not_found");
    expectCode(await answer(C.adminToken, B.org.id, addressee.id, inv.json.id, "accepted"), 404, "not_found");
    const list = await call("GET", `${sa(B.org.id, addressee.id)}/invitations`, { token: B.adminToken });
    expect(list.json.items.find((i: { id: string }) => i.id === inv.json.id).state).toBe("pending");
    for (const acc of [other, aAccount]) expect((await assignmentsOf(root.token, acc === other ? B.org.id : A.org.id, acc.id)).map((r) => r.role)).toEqual(["viewer"]);
    expectCode(await call("GET", sas(A.org.id), { token: other.token }), 404, "not_found");
    expectCode(await call("PATCH", `/api/v1/orgs/${A.org.id}`, { token: aAccount.token, body: { name: "x" } }), 403, "permission_denied");
  });

  it("a scope-narrowed JWT gets no wider through /api/v1/auth/authorize, the exchange or RFC 8693", async () => {
    const member = await furnished(B, [{ role: "org-admin" }]);
    const inv = await inviteTo(A.adminToken, A.org.id, member.email, "service-account-admin");
    expectStatus(inv, 201);
    expectStatus(await answer(B.adminToken, B.org.id, member.id, inv.json.id, "accepted"), 200);
    const narrow = (await exchangeFor(member.token, { scope: "orgs.read" })).json.jwt as string;
    expect(claimsOf(narrow).scope).toBe("orgs.read");
    // authorize: a JWT is confined to its org (B), so no JWT for A from it; for B, no more than its scope.
    expectCode(await authorizeFor(narrow, A.org.id), 403, "permission_denied");
    const forB = await authorizeFor(narrow, B.org.id);
    expectStatus(forB, 200);
    expect(forB.json.scope).toBe("orgs.read");
    expectMissing(await call("GET", sas(B.org.id), { token: forB.json.jwt }), ["service-accounts.read"]);
    // The access token itself does get A's role, as the invitation says (the control).
    const full = await authorizeFor(member.token, A.org.id);
    expectStatus(full, 200);
    expectStatus(await call("GET", sas(A.org.id), { token: full.json.jwt }), 200);
    // The exchange takes access tokens only; RFC 8693 keeps the subject's scope and refuses more.
    expect([400, 401]).toContain((await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: narrow, scope: "service-accounts.read" } })).status);
    for (const scope of ["service-accounts.read", "orgs.read roles.edit", "orgs.admin"]) {
      expectOAuthError(await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: narrow, subject_token_type: JWT_TOKEN_TYPE, scope }), 400, "invalid_scope");
    }
    const same = await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: narrow, subject_token_type: JWT_TOKEN_TYPE });
    expectStatus(same, 200);
    expect(same.json.scope).toBe("orgs.read");
    // The narrowed JWT as a client secret or assertion gets nothing either.
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [member.id, narrow] }), 401, "invalid_client");
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: narrow }), 401, "invalid_client");
  });

  /** An org-admin whose JWT is narrowed to what the test names (the account itself holds every org operation). */
  async function narrowedAdmin(scope: string, policy?: Record<string, unknown>) {
    const o = await orgWithAdmin(root.token);
    if (policy) expectStatus(await call("PATCH", `/api/v1/orgs/${o.org.id}`, { token: o.adminToken, body: { policy } }), 200);
    const res = await exchangeFor(o.adminToken, { scope });
    expectStatus(res, 200);
    const jwt = res.json.jwt as string;
    // The narrowing holds for everything else.
    expectMissing(await call("GET", sas(o.org.id), { token: jwt }), ["service-accounts.read"]);
    return { ...o, jwt, self: sa(o.org.id, o.admin.id) };
  }

  // Regression (found by this suite): an account may manage its own credentials only through an
  // unnarrowed credential; a scope-limited JWT does not hold what the account holds (assertCovers).
  it("a JWT narrowed to access-token edits cannot regenerate its own account's token into a full-power secret", async () => {
    const o = await narrowedAdmin("service-accounts.access-tokens.edit");
    const res = await call("POST", `${o.self}/tokens/${o.admin.token.id}/regenerate`, { token: o.jwt, body: { graceSeconds: 3600 } });
    expect(is2xx(res.status), `${res.status} ${res.text}`).toBe(false);
  });

  // Regression: the same for issuing (with room for a second token).
  it("a JWT narrowed to access-token edits cannot issue its own account a full-power token", async () => {
    const o = await narrowedAdmin("service-accounts.access-tokens.edit", { maxActiveTokensPerAccount: 2 });
    const res = await call("POST", `${o.self}/tokens`, { token: o.jwt, body: {} });
    expect(is2xx(res.status), `${res.status} ${res.text}`).toBe(false);
  });

  // Regression: and for registering a key (which would mint full-scope JWTs by private_key_jwt).
  it("a JWT narrowed to access-token edits cannot register a key on its own account and mint full-scope JWTs with it", async () => {
    const o = await narrowedAdmin("service-accounts.access-tokens.edit");
    const { publicKey, privateKey } = await jose.generateKeyPair("ES256", { extractable: true });
    const added = await call("POST", `${o.self}/keys`, { token: o.jwt, body: { publicKey: await jose.exportSPKI(publicKey), kid: "escalate" } });
    if (is2xx(added.status)) {
      const assertion = await new jose.SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "escalate" }).setIssuer(o.admin.id).setSubject(o.admin.id).setAudience(ISSUER).setIssuedAt().setExpirationTime(nowS() + 60).setJti(crypto.randomUUID()).sign(privateKey);
      const minted = await postForm("/oauth/token", { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: assertion });
      expect(minted.json?.scope ?? "", `the narrowed JWT turned into ${minted.text}`).toBe("service-accounts.access-tokens.edit");
    }
    expect(is2xx(added.status), `${added.status} ${added.text}`).toBe(false);
  });
});
