import { env } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { KEYWARD_JWT_CLAIM_NAMES } from "../../src/domain/signing/jwt.ts";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { answer, authorizeFor, inviteTo, sa } from "./authz-helpers.ts";
import { expectTokenResponse, jwtFor, JWT_TOKEN_TYPE, postForm, TOKEN_EXCHANGE, verifyAgainstJwks } from "./oauth-helpers.ts";
import { expectProblem, newAccount, newEnvironment, newProject } from "./registry-helpers.ts";
import { auditOf, kvKeyOf } from "./token-helpers.ts";
import { forgetCredentials } from "../../src/domain/credentials/record-cache.ts";

/**
 * Issue 20, custom claims: an account's metadata and the org policy's jwtClaims mapping, which
 * copies externalId, metadata keys, project and environment ids into the org's JWTs under names
 * that never override a registered claim or one of Keyward's own.
 */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

type World = Awaited<ReturnType<typeof orgWithAdmin>>;
const orgPath = (org: string) => `/api/v1/orgs/${org}`;
const patchOrg = (w: World, policy: Record<string, unknown>) => call("PATCH", orgPath(w.org.id), { token: w.adminToken, body: { policy } });
const patchAccount = (w: World, id: string, body: Record<string, unknown>) => call("PATCH", sa(w.org.id, id), { token: w.adminToken, body });
const createAccount = (w: World, body: Record<string, unknown>) =>
  call("POST", `/api/v1/orgs/${w.org.id}/service-accounts`, { token: w.adminToken, body: { name: unique("sa"), ...body } });

async function mapClaims(w: World, jwtClaims: { claim: string; from: string }[]) {
  const res = await patchOrg(w, { jwtClaims });
  expectStatus(res, 200);
  expect(res.json.policy.jwtClaims, res.text).toEqual(jwtClaims);
  return res;
}

/** The JWT payload as its JSON text (to see duplicate names, which a decoder hides). */
const payloadText = (jwt: string) => new TextDecoder().decode(jose.base64url.decode(jwt.split(".")[1]!));
const occurrences = (text: string, name: string) => text.split(`"${name}":`).length - 1;

const orgPolicy = async (orgId: string) => JSON.parse((await env.DB.prepare("select policy from orgs where id = ?").bind(orgId).first<{ policy: string }>())!.policy);

describe("metadata: set, returned, replaced, cleared", () => {
  it("is set on create, returned on GET and in lists, and the created event names its keys (not its values)", async () => {
    const w = await orgWithAdmin(root.token);
    const res = await createAccount(w, { metadata: { team: "payments", "cost.center": "cc-42" } });
    expectStatus(res, 201);
    expect(res.json.metadata, res.text).toEqual({ team: "payments", "cost.center": "cc-42" });
    const read = await call("GET", sa(w.org.id, res.json.id), { token: w.adminToken });
    expect(read.json.metadata, read.text).toEqual({ team: "payments", "cost.center": "cc-42" });
    const other = await createAccount(w, {});
    expect(other.json.metadata, other.text).toEqual({});
    const created = (await auditOf(res.json.id)).find((r) => r.action === "service_account.created")!;
    expect(JSON.parse(created.details).metadataKeys).toEqual(["team", "cost.center"]);
    expect(created.details).not.toContain("payments");
  });

  it("PATCH replaces the whole map, null clears it; each change is audited with the keys it sets", async () => {
    const w = await orgWithAdmin(root.token);
    const { json: account } = await createAccount(w, { metadata: { team: "payments", tier: "gold" } });
    const replaced = await patchAccount(w, account.id, { metadata: { team: "billing" } });
    expectStatus(replaced, 200);
    expect(replaced.json.metadata, replaced.text).toEqual({ team: "billing" });
    const cleared = await patchAccount(w, account.id, { metadata: null });
    expectStatus(cleared, 200);
    expect(cleared.json.metadata, cleared.text).toEqual({});
    const untouched = await patchAccount(w, account.id, { displayName: "Bot" });
    expect(untouched.json.metadata, untouched.text).toEqual({});
    const updates = (await auditOf(account.id)).filter((r) => r.action === "service_account.updated").map((r) => JSON.parse(r.details));
    expect(updates.map((d) => [d.fields, d.metadataKeys])).toEqual([
      [["metadata"], ["team"]],
      [["metadata"], []],
      [["displayName"], undefined],
    ]);
  });

  const bad: [string, Record<string, unknown>][] = [
    ["a key starting with a digit", { "1team": "x" }],
    ["a key with a space", { "my team": "x" }],
    ["a key starting with an underscore", { _team: "x" }],
    ["a key of 64 characters", { [`k${"a".repeat(63)}`]: "x" }],
    ["an empty key", { "": "x" }],
    ["21 keys", Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, "v"]))],
    ["a value of 257 characters", { team: "x".repeat(257) }],
    ["a control character in a value", { team: "a\nb" }],
    ["over 2 KiB as JSON", Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, "é".repeat(120)]))],
  ];
  it.each(bad)("%s is refused with 422 invalid_metadata, on create and on PATCH, and nothing changes", async (_, metadata) => {
    const w = await orgWithAdmin(root.token);
    const name = unique("sa");
    const raw = JSON.stringify({ name, metadata });
    expectProblem(await call("POST", `/api/v1/orgs/${w.org.id}/service-accounts`, { token: w.adminToken, body: raw }), 422, "invalid_metadata");
    const { json: account } = await createAccount(w, { name, metadata: { team: "payments" } });
    expect(account.name, "the refused create left nothing behind").toBe(name);
    expectProblem(await call("PATCH", sa(w.org.id, account.id), { token: w.adminToken, body: JSON.stringify({ metadata }) }), 422, "invalid_metadata");
    const read = await call("GET", sa(w.org.id, account.id), { token: w.adminToken });
    expect(read.json.metadata, read.text).toEqual({ team: "payments" });
  });

  it("the bounds themselves are accepted: 20 keys, 63-character keys, 256-character values within 2 KiB", async () => {
    const w = await orgWithAdmin(root.token);
    const twenty = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, "v".repeat(60)]));
    expectStatus(await createAccount(w, { metadata: twenty }), 201);
    expectStatus(await createAccount(w, { metadata: { [`k${"a".repeat(62)}`]: "x".repeat(256) } }), 201);
  });

  it("a value that is not a string, or the key __proto__, is a 400 validation_failed", async () => {
    const w = await orgWithAdmin(root.token);
    expectProblem(await createAccount(w, { metadata: JSON.parse('{"__proto__": "x"}') }), 400, "validation_failed");
    expectProblem(await createAccount(w, { metadata: { team: 7 } }), 400, "validation_failed");
    expectProblem(await createAccount(w, { metadata: ["team"] }), 400, "validation_failed");
  });
});

describe("the claim mapping (policy.jwtClaims)", () => {
  it("is set by PATCH, shown on GET, audited (org.updated names the mapping), and validated on org creation too", async () => {
    const w = await orgWithAdmin(root.token);
    const mapping = [
      { claim: "team", from: "metadata.team" },
      { claim: "ext_id", from: "externalId" },
    ];
    await mapClaims(w, mapping);
    const read = await call("GET", orgPath(w.org.id), { token: w.adminToken });
    expect(read.json.policy.jwtClaims, read.text).toEqual(mapping);
    const updated = (await auditOf(w.org.id)).filter((r) => r.action === "org.updated").map((r) => JSON.parse(r.details));
    expect(updated.at(-1).policy.jwtClaims).toEqual(mapping);

    const slug = unique("org");
    const created = await call("POST", "/api/v1/orgs", { token: root.token, body: { slug, name: slug, policy: { jwtClaims: [{ claim: "team", from: "metadata.team" }] } } });
    expectStatus(created, 201);
    expect(created.json.policy.jwtClaims, created.text).toEqual([{ claim: "team", from: "metadata.team" }]);
    const refused = await call("POST", "/api/v1/orgs", { token: root.token, body: { slug: unique("org"), name: "x", policy: { jwtClaims: [{ claim: "sub", from: "externalId" }] } } });
    expectProblem(refused, 422, "claim_name_reserved");
  });

  const reserved = [...KEYWARD_JWT_CLAIM_NAMES, "nbf", "cnf", "act", "status", "token_use", "typ", "azp", "auth_time", "nonce", "active", "token_type", "email", "name"];
  it.each(reserved)("refuses the reserved name %s (422 claim_name_reserved) and keeps the policy", async (claim) => {
    const w = await orgWithAdmin(root.token);
    await mapClaims(w, [{ claim: "team", from: "metadata.team" }]);
    const res = await patchOrg(w, { jwtClaims: [{ claim, from: "metadata.team" }] });
    const body = expectProblem(res, 422, "claim_name_reserved");
    expect(body.errors[0].path).toBe("body.policy.jwtClaims.0.claim");
    expect((await orgPolicy(w.org.id)).jwtClaims).toEqual([{ claim: "team", from: "metadata.team" }]);
  });

  it("refuses reserved names in odd casing as reserved (SUB, Scope, Client_Id, ISS)", async () => {
    const w = await orgWithAdmin(root.token);
    for (const claim of ["SUB", "Scope", "Client_Id", "ISS", "Org_ID"]) {
      expectProblem(await patchOrg(w, { jwtClaims: [{ claim, from: "externalId" }] }), 422, "claim_name_reserved");
    }
  });

  const invalid: [string, { claim: string; from: string }[]][] = [
    ["a name given twice", [{ claim: "team", from: "metadata.team" }, { claim: "team", from: "externalId" }]],
    ["an upper-case name", [{ claim: "Team", from: "metadata.team" }]],
    ["a name with a dash", [{ claim: "team-name", from: "metadata.team" }]],
    ["a name starting with a digit", [{ claim: "1team", from: "metadata.team" }]],
    ["a name of 33 characters", [{ claim: `t${"a".repeat(32)}`, from: "metadata.team" }]],
    ["a namespaced URI name", [{ claim: "https://acme.example/team", from: "metadata.team" }]],
    ["an unknown source", [{ claim: "team", from: "email" }]],
    ["metadata without a key", [{ claim: "team", from: "metadata." }]],
    ["a metadata key that could never exist", [{ claim: "team", from: "metadata.1x" }]],
    ["11 entries", Array.from({ length: 11 }, (_, i) => ({ claim: `c${i}`, from: "externalId" }))],
  ];
  it.each(invalid)("refuses %s (422 invalid_claim_mapping)", async (_, jwtClaims) => {
    const w = await orgWithAdmin(root.token);
    expectProblem(await patchOrg(w, { jwtClaims }), 422, "invalid_claim_mapping");
    expect((await orgPolicy(w.org.id)).jwtClaims).toBeUndefined();
  });

  it("a malformed entry is a 400 validation_failed", async () => {
    const w = await orgWithAdmin(root.token);
    expectProblem(await patchOrg(w, { jwtClaims: [{ claim: "team" }] }), 400, "validation_failed");
    expectProblem(await patchOrg(w, { jwtClaims: [{ claim: "team", from: "externalId", extra: 1 }] }), 400, "validation_failed");
    expectProblem(await patchOrg(w, { jwtClaims: "team" }), 400, "validation_failed");
  });

  it("an org admin may set it; a viewer may not (403)", async () => {
    const w = await orgWithAdmin(root.token);
    const viewer = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "viewer" }] });
    const res = await call("PATCH", orgPath(w.org.id), { token: viewer.token, body: { policy: { jwtClaims: [{ claim: "team", from: "externalId" }] } } });
    expectProblem(res, 403, "permission_denied");
  });
});

describe("JWTs carry the mapped claims", () => {
  async function mapped() {
    const w = await orgWithAdmin(root.token);
    await mapClaims(w, [
      { claim: "team", from: "metadata.team" },
      { claim: "ext_id", from: "externalId" },
      { claim: "tier", from: "metadata.tier" },
      { claim: "odd", from: "metadata.constructor" },
    ]);
    const client = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "viewer" }], externalId: "github:acme/web", metadata: { team: "payments" } });
    return { w, client };
  }

  it("from the exchange: the mapped values, verified against the JWKS; a missing metadata key leaves its claim out", async () => {
    const { client } = await mapped();
    const jwt = await jwtFor(client.token);
    const { payload } = await verifyAgainstJwks(jwt);
    expect(payload.team).toBe("payments");
    expect(payload.ext_id).toBe("github:acme/web");
    expect(payload, "no metadata.tier: no tier claim").not.toHaveProperty("tier");
    expect(payload, "metadata.constructor is not Object.prototype's").not.toHaveProperty("odd");
    expect(payload.sub).toBe(client.account.id);
  });

  it("from client_credentials (both token endpoints)", async () => {
    const { client } = await mapped();
    for (const path of ["/oauth/token", "/api/m2m/oauth/token"]) {
      const res = await postForm(path, { grant_type: "client_credentials" }, { basic: [client.account.id, client.token] });
      await expectTokenResponse(res, client.account.id);
      const { payload } = await verifyAgainstJwks(res.json.access_token);
      expect(payload.team, res.text).toBe("payments");
      expect(payload.ext_id, res.text).toBe("github:acme/web");
    }
  });

  it("from RFC 8693 token exchange (a JWT as the subject token)", async () => {
    const { client } = await mapped();
    const subject = await jwtFor(client.token);
    const res = await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: JWT_TOKEN_TYPE });
    expectStatus(res, 200);
    const { payload } = await verifyAgainstJwks(res.json.access_token);
    expect(payload.team, res.text).toBe("payments");
    expect(payload.source_jtis, res.text).toEqual([jose.decodeJwt(subject).jti]);
  });

  it("a mapping change reaches the next JWT; so does a metadata change, and clearing the mapping removes the claims", async () => {
    const { w, client } = await mapped();
    await mapClaims(w, [{ claim: "squad", from: "metadata.team" }]);
    let payload = jose.decodeJwt(await jwtFor(client.token));
    expect(payload.squad).toBe("payments");
    expect(payload).not.toHaveProperty("team");
    expect(payload).not.toHaveProperty("ext_id");

    expectStatus(await patchAccount(w, client.account.id, { metadata: { team: "billing" } }), 200);
    payload = jose.decodeJwt(await jwtFor(client.token));
    expect(payload.squad).toBe("billing");

    await mapClaims(w, []);
    payload = jose.decodeJwt(await jwtFor(client.token));
    expect(payload).not.toHaveProperty("squad");
  });

  it("setting the same mapping again rewrites the records (the repair after a failed rewrite)", async () => {
    const { w, client } = await mapped();
    const key = await kvKeyOf(client.token);
    const record = JSON.parse((await env.TOKENS.get(key))!);
    expect(record.account.customClaims).toEqual({ team: "payments", ext_id: "github:acme/web" });
    delete record.account.customClaims;
    await env.TOKENS.put(key, JSON.stringify(record));
    forgetCredentials({ accountId: client.account.id });
    expect(jose.decodeJwt(await jwtFor(client.token)), "the stale record is what mints").not.toHaveProperty("team");
    const { policy } = (await call("GET", orgPath(w.org.id), { token: w.adminToken })).json;
    await mapClaims(w, policy.jwtClaims);
    expect(jose.decodeJwt(await jwtFor(client.token)).team).toBe("payments");
  });

  it("values are JSON-escaped: quotes, backslashes, non-ASCII and what looks like JSON stay a string", async () => {
    const w = await orgWithAdmin(root.token);
    await mapClaims(w, [{ claim: "team", from: "metadata.team" }]);
    const value = 'a"b\\c", "sub": "sa_evil", "x": "é✓';
    const client = await newAccount(w.adminToken, w.org.id, { metadata: { team: value } });
    const jwt = await jwtFor(client.token);
    const { payload } = await verifyAgainstJwks(jwt);
    expect(payload.team).toBe(value);
    expect(payload.sub).toBe(client.account.id);
    expect(occurrences(payloadText(jwt), "sub")).toBe(1);
  });

  it("projectId and environmentId: the one project and environment of the account's roles; several, or none, leave the claim out", async () => {
    const w = await orgWithAdmin(root.token);
    await mapClaims(w, [
      { claim: "project", from: "projectId" },
      { claim: "environment", from: "environmentId" },
    ]);
    const prj = await newProject(w.adminToken, w.org.id);
    const envA = await newEnvironment(w.adminToken, w.org.id, prj.id);
    const scoped = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "viewer", scope: { type: "environment", id: envA.id } }] });
    let payload = jose.decodeJwt(await jwtFor(scoped.token));
    expect(payload.project).toBe(prj.id);
    expect(payload.environment).toBe(envA.id);

    const other = await newProject(w.adminToken, w.org.id);
    const assigned = await call("POST", `${sa(w.org.id, scoped.account.id)}/role-assignments`, { token: w.adminToken, body: { role: "viewer", scope: { type: "project", id: other.id } } });
    expectStatus(assigned, 201);
    payload = jose.decodeJwt(await jwtFor(scoped.token));
    expect(payload, "two projects: no project claim").not.toHaveProperty("project");
    expect(payload.environment).toBe(envA.id);

    const orgWide = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "viewer" }] });
    payload = jose.decodeJwt(await jwtFor(orgWide.token));
    expect(payload).not.toHaveProperty("project");
    expect(payload).not.toHaveProperty("environment");
  });

  it("a reserved name in a stored mapping (written before it was reserved) never overrides sub, scope or iss, nor duplicates them", async () => {
    const w = await orgWithAdmin(root.token);
    const client = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "viewer" }], metadata: { team: "sa_victim" } });
    // As if stored by an older version: straight into D1, then the account's records rewritten.
    const policy = await orgPolicy(w.org.id);
    policy.jwtClaims = ["sub", "scope", "iss", "client_id", "org_id", "roles", "SUB", "nbf"].map((claim) => ({ claim, from: "metadata.team" }));
    policy.jwtClaims.push({ claim: "team", from: "metadata.team" });
    await env.DB.prepare("update orgs set policy = ? where id = ?").bind(JSON.stringify(policy), w.org.id).run();
    expectStatus(await patchAccount(w, client.account.id, { metadata: { team: "sa_victim" } }), 200);

    const jwt = await jwtFor(client.token);
    const { payload } = await verifyAgainstJwks(jwt);
    expect(payload.sub).toBe(client.account.id);
    expect(payload.client_id).toBe(client.account.id);
    expect(payload.org_id).toBe(w.org.id);
    expect(payload.scope).toContain("service-accounts.read");
    expect(payload).not.toHaveProperty("nbf");
    expect(payload).not.toHaveProperty("SUB");
    expect(payload.team).toBe("sa_victim");
    const text = payloadText(jwt);
    for (const name of ["sub", "scope", "iss", "client_id", "org_id", "roles"]) expect(occurrences(text, name), `${name} in ${text}`).toBe(1);
  });
});

describe("cross-org JWTs and introspection", () => {
  it("a JWT for another org carries that org's mapping, and only what that org controls (its project, not the home org's metadata)", async () => {
    const [A, B] = [await orgWithAdmin(root.token), await orgWithAdmin(root.token)];
    await mapClaims(A, [
      { claim: "team", from: "metadata.team" },
      { claim: "ext_id", from: "externalId" },
      { claim: "project", from: "projectId" },
    ]);
    await mapClaims(B, [{ claim: "home_team", from: "metadata.team" }]);
    const member = await newAccount(B.adminToken, B.org.id, { roles: [{ role: "viewer" }], externalId: "ext-1", metadata: { team: "admins" } });
    const prj = await newProject(A.adminToken, A.org.id);
    const inv = await inviteTo(A.adminToken, A.org.id, member.account.email, "viewer", { type: "project", id: prj.id });
    expectStatus(inv, 201);
    expectStatus(await answer(B.adminToken, B.org.id, member.account.id, inv.json.id, "accepted"), 200);

    const res = await authorizeFor(member.token, A.org.id);
    expectStatus(res, 200);
    const { payload } = await verifyAgainstJwks(res.json.jwt);
    expect(payload.org_id).toBe(A.org.id);
    expect(payload.project).toBe(prj.id);
    for (const name of ["team", "ext_id", "home_team"]) expect(payload, `${name} must not reach org A's JWT`).not.toHaveProperty(name);

    const home = jose.decodeJwt(await jwtFor(member.token));
    expect(home.home_team).toBe("admins");
    expect(home).not.toHaveProperty("project");
  });

  it("introspection returns a JWT's custom claims, and for an access token those its JWTs carry; never overriding active", async () => {
    const w = await orgWithAdmin(root.token);
    await mapClaims(w, [{ claim: "team", from: "metadata.team" }]);
    const rs = await newAccount(w.adminToken, w.org.id, {});
    const client = await newAccount(w.adminToken, w.org.id, { roles: [{ role: "viewer" }], metadata: { team: "payments" } });
    const introspect = (token: string) => postForm("/oauth/introspect", { token }, { basic: [rs.account.id, rs.token] });

    const ofJwt = await introspect(await jwtFor(client.token));
    expectStatus(ofJwt, 200);
    expect(ofJwt.json, ofJwt.text).toMatchObject({ active: true, token_type: "Bearer", sub: client.account.id, team: "payments" });
    const ofToken = await introspect(client.token);
    expect(ofToken.json, ofToken.text).toMatchObject({ active: true, token_type: "access_token", team: "payments" });

    const plain = await newAccount(w.adminToken, w.org.id, {});
    const ofPlain = await introspect(await jwtFor(plain.token));
    expect(ofPlain.json, ofPlain.text).not.toHaveProperty("team");
  });
});
