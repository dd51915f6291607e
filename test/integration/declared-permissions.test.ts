import * as jose from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { bodyFor, fill, withoutAuthLimiter, type ApiOperation } from "./attack-helpers.ts";
import { builtinOperations, createRole, inviteTo, sa, sas } from "./authz-helpers.ts";
import { addPublicKey } from "./oauth-helpers.ts";
import { webhookWithDelivery } from "./webhook-helpers.ts";

/**
 * Issue 16: the permission a route declares (`x-required-permission` in the OpenAPI document) is
 * the one it enforces. Every documented route that declares one is sent twice: by a principal
 * holding every operation but that one (403 naming exactly it), and by one holding only that one
 * (never refused for lacking it). The routes come from the document, so a new route is covered
 * as soon as it is documented.
 */

type Org = Awaited<ReturnType<typeof orgWithAdmin>>;
interface DeclaredOperation extends ApiOperation {
  permission: string;
}

/** Routes that take a credential but declare no permission, each for a stated reason. */
const UNDECLARED = new Map([
  ["GET /api/v1/orgs", "lists the orgs the caller holds anything in"],
  ["GET /api/v1/permissions", "the public catalogue, for any authenticated caller"],
  ["POST /api/v1/auth/authorize", "a JWT for an org where the caller holds an accepted role"],
  ["POST /api/v1/bootstrap", "authenticated by BOOTSTRAP_SECRET, once"],
  ["DELETE /api/v1/tokens/current", "a credential revokes itself, whatever it may do (self-revocation)"],
]);

let root: { id: string; token: string };
let O: Org;
let C: Org;
let ORG_OPS: string[];
let restoreLimiter: () => void;
const principals = new Map<string, { allBut: string; only: string; role: string }>();

async function accountHolding(o: Org, roleId: string) {
  const res = await call("POST", sas(o.org.id), { token: o.adminToken, body: { name: unique("p"), roles: [{ role: roleId }], issueToken: true } });
  expectStatus(res, 201);
  return res.json;
}

/** The two principals of a permission (all but it, only it) and a role holding only it. */
async function principalsFor(permission: string) {
  let found = principals.get(permission);
  if (found) return found;
  if (permission === "platform.root") {
    found = { allBut: O.adminToken, only: root.token, role: "" };
  } else {
    const only = await createRole(O.adminToken, O.org.id, [permission]);
    const allBut = await createRole(O.adminToken, O.org.id, ORG_OPS.filter((op) => op !== permission));
    found = { allBut: (await accountHolding(O, allBut.id)).token.token, only: (await accountHolding(O, only.id)).token.token, role: only.id };
  }
  principals.set(permission, found);
  return found;
}

/** Fresh resources for one route: an account holding `role` with a token, a key and its assignment; a project, environment, role and invitations. */
async function fixture(role: string) {
  const o = `/api/v1/orgs/${O.org.id}`;
  const target = await call("POST", sas(O.org.id), { token: O.adminToken, body: { name: unique("t"), roles: role ? [{ role }] : [], issueToken: true } });
  expectStatus(target, 201);
  const { publicKey } = await jose.generateKeyPair("ES256", { extractable: true });
  const key = await addPublicKey(O.adminToken, O.org.id, target.json.id, { publicKey: await jose.exportSPKI(publicKey) });
  expectStatus(key, 201);
  const fed = await call("POST", `${sa(O.org.id, target.json.id)}/federated-credentials`, { token: O.adminToken, body: { name: unique("f"), issuer: "https://gitlab.com", subject: "project_path:acme/x:ref_type:branch:ref:main" } });
  expectStatus(fed, 201);
  const ras = await call("GET", `${sa(O.org.id, target.json.id)}/role-assignments`, { token: O.adminToken });
  const prj = await call("POST", `${o}/projects`, { token: O.adminToken, body: { slug: unique("p"), name: "P" } });
  const env = await call("POST", `${o}/projects/${prj.json.id}/environments`, { token: O.adminToken, body: { slug: unique("e"), name: "E" } });
  const ownRole = await createRole(O.adminToken, O.org.id, ["orgs.read"]);
  const sent = await inviteTo(O.adminToken, O.org.id, `${unique("x")}@example.test`, "viewer");
  const received = await inviteTo(C.adminToken, C.org.id, target.json.email, "viewer");
  const client = await call("POST", "/api/service-accounts", { token: root.token, body: { name: unique("pc"), permissions: [], tokenEndpointAuthMethod: "client_secret_basic" } });
  for (const res of [prj, env, sent, received, client]) expectStatus(res, 201);
  const { publicKey: fresh } = await jose.generateKeyPair("ES256", { extractable: true });
  return {
    ids: { org: O.org.id, sa: target.json.id, tok: target.json.token.id, key: key.json.id, fed: fed.json.id, ra: ras.json.items[0]?.id ?? "ra_none", role: ownRole.id, prj: prj.json.id, env: env.json.id, sentInv: sent.json.id, recvInv: received.json.id, clientId: client.json.clientId },
    material: { pem: await jose.exportSPKI(fresh), inviteEmail: `${unique("y")}@example.test`, role, scope: { type: "project" as const, id: prj.json.id } },
  };
}

async function declaredOperations(): Promise<{ declared: DeclaredOperation[]; undeclared: string[] }> {
  const res = await call("GET", "/openapi.json");
  expectStatus(res, 200);
  const declared: DeclaredOperation[] = [];
  const undeclared: string[] = [];
  for (const [template, item] of Object.entries(res.json.paths as Record<string, Record<string, Record<string, unknown>>>)) {
    for (const [method, op] of Object.entries(item)) {
      // The management API's routes take a bearer credential; the OAuth endpoints authenticate clients (RFC 6749) and hold no permission.
      const bearer = (op.security as Record<string, unknown>[] | undefined)?.some((s) => "bearer" in s);
      if (!["get", "post", "put", "patch", "delete"].includes(method) || !bearer) continue;
      const params = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      const permission = op["x-required-permission"];
      if (typeof permission === "string") declared.push({ method: method.toUpperCase(), template, params, permission });
      else undeclared.push(`${method.toUpperCase()} ${template}`);
    }
  }
  return { declared, undeclared };
}

beforeAll(async () => {
  restoreLimiter = withoutAuthLimiter();
  root = await platformRoot();
  [O, C] = [await orgWithAdmin(root.token), await orgWithAdmin(root.token)];
  expectStatus(await call("PATCH", `/api/v1/orgs/${O.org.id}`, { token: O.adminToken, body: { policy: { maxActiveTokensPerAccount: 10 } } }), 200);
  ORG_OPS = await builtinOperations(root.token, "org-admin");
});

afterAll(() => restoreLimiter());

describe("the declared permission is the enforced one", () => {
  it("every route taking a credential declares its permission, or is one of the few stated exceptions", async () => {
    const { declared, undeclared } = await declaredOperations();
    expect(declared.length).toBeGreaterThan(40);
    expect(undeclared.sort()).toEqual([...UNDECLARED.keys()].sort());
    for (const op of declared) expect([...ORG_OPS, "platform.root"], `${op.method} ${op.template}`).toContain(op.permission);
  });

  // A fixture and two requests per route: longer than the default timeout on a busy machine.
  it("on every route: holding everything but its permission is 403 naming exactly it; holding only it is never refused for it", async () => {
    const { declared } = await declaredOperations();
    const checked: string[] = [];
    for (const op of declared) {
      const who = await principalsFor(op.permission);
      const { ids, material } = await fixture(who.role);
      const inv = op.template.includes("/service-accounts/{sa}/invitations") ? ids.recvInv : ids.sentInv;
      // An org holds 20 webhook endpoints at most: one only for the routes that name one.
      const hook = op.template.includes("{whk}") ? await webhookWithDelivery(O.adminToken, O.org.id) : {};
      const all = { ...ids, inv, ...hook };
      const body = op.method === "POST" && op.template === "/api/service-accounts" ? { name: unique("pc"), permissions: [], tokenEndpointAuthMethod: "client_secret_basic" } : bodyFor(op, all, material);
      const send = (token: string) => call(op.method, fill(op.template, all), body === undefined ? { token } : { token, body });
      const label = `${op.method} ${op.template} (declares ${op.permission})`;

      const without = await send(who.allBut);
      expect(without.status, `${label} without it: ${without.text}`).toBe(403);
      expect(without.json?.missing, `${label} without it: ${without.text}`).toEqual([op.permission]);

      const withIt = await send(who.only);
      const refusedForIt = withIt.status === 403 && (withIt.json?.missing ?? []).includes(op.permission);
      expect(refusedForIt, `${label} with only it: ${withIt.status} ${withIt.text}`).toBe(false);
      expect(withIt.status, `${label} with only it: ${withIt.text}`).toBeLessThan(500);
      checked.push(`${label} -> ${withIt.status}`);
    }
    expect(checked.length).toBe(declared.length);
  }, 120_000);
});
