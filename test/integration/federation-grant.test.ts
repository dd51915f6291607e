import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { API_AUDIENCE, expectOAuthError, ISSUER, newClient, nowS, verifyAgainstJwks as verifyServed, type Client } from "./oauth-helpers.ts";
import {
  addPolicy,
  exchangeExternal,
  githubActionsClaims,
  ID_TOKEN_TYPE,
  JWT_BEARER_GRANT,
  jwtBearer,
  kubernetesClaims,
  testIssuer,
  waitForAudit,
  type TestIssuer,
} from "./federation-helpers.ts";

/**
 * Issue 18, the federated grants' happy paths: an external OIDC token (shaped like GitHub Actions'
 * and Kubernetes', served by the loopback issuers) that a trust policy accepts, exchanged for a
 * Keyward JWT by RFC 7523 jwt-bearer and by RFC 8693 token exchange.
 */

let root: { id: string; token: string };
let gha: TestIssuer;
let k8s: TestIssuer;
let deployer: Client;
let deployPolicy: Awaited<ReturnType<typeof addPolicy>>;
const verifyAgainstJwks = async (jwt: string, audience?: string) => (await verifyServed(jwt, audience)).payload;
const accountOf = (c: Client) => ({ id: c.account.id as string, orgId: c.org.id });

beforeAll(async () => {
  root = await platformRoot();
  [gha, k8s] = await Promise.all([testIssuer("gha", "RS256"), testIssuer("k8s", "ES256")]);
  deployer = await newClient(root.token, { roles: [{ role: "viewer" }] });
  deployPolicy = await addPolicy(accountOf(deployer), {
    issuer: gha.url,
    claims: { repository: "acme/deploy", environment: "prod", job_workflow_ref: "acme/deploy/.github/workflows/*.yml@refs/heads/main" },
  });
});

describe("jwt-bearer: a GitHub Actions token", () => {
  it("gets a Keyward JWT for the policy's account, verifiable with Keyward's JWKS, saying where it came from", async () => {
    const external = await gha.sign(githubActionsClaims("acme/deploy", "prod"));
    const res = await jwtBearer(external);
    expectStatus(res, 200);
    expect(res.headers.get("cache-control"), res.text).toMatch(/no-store/);
    expect(res.json.token_type, res.text).toBe("Bearer");
    const claims = await verifyAgainstJwks(res.json.access_token);
    expect(claims.sub).toBe(deployer.account.id);
    expect(claims.client_id).toBe(deployer.account.id);
    expect(claims.org_id).toBe(deployer.org.id);
    expect(claims.aud).toBe(ISSUER);
    expect(claims.federated).toEqual({ iss: gha.url, sub: "repo:acme/deploy:environment:prod", policy_id: deployPolicy.id });
    expect(claims.source_token_id, "no access token stands behind it").toBeUndefined();
    expect(res.json.expires_in, res.text).toBeGreaterThan(0);
    expect(res.json.expires_in, res.text).toBeLessThanOrEqual(300);
    expect(res.json.scope.split(" "), res.text).toContain("service-accounts.read");
  });

  it("the JWT authenticates the management API as the account", async () => {
    const res = await jwtBearer(await gha.sign(githubActionsClaims("acme/deploy", "prod")));
    expectStatus(res, 200);
    const got = await call("GET", `/api/v1/orgs/${deployer.org.id}/service-accounts/${deployer.account.id}`, { token: res.json.access_token });
    expectStatus(got, 200);
    expect(got.json.id, got.text).toBe(deployer.account.id);
  });

  it("scope and audience follow client_credentials' rules: a narrower scope, an allowed audience; an unknown scope or audience is refused", async () => {
    const narrowed = await jwtBearer(await gha.sign(githubActionsClaims()), { scope: "service-accounts.read", audience: API_AUDIENCE });
    expectStatus(narrowed, 200);
    expect(narrowed.json.scope, narrowed.text).toBe("service-accounts.read");
    expect((await verifyAgainstJwks(narrowed.json.access_token, API_AUDIENCE)).aud).toBe(API_AUDIENCE);
    expectOAuthError(await jwtBearer(await gha.sign(githubActionsClaims()), { scope: "orgs.edit" }), 400, "invalid_scope");
    expectOAuthError(await jwtBearer(await gha.sign(githubActionsClaims()), { audience: "https://elsewhere.test" }), 400, "invalid_target");
  });

  it("the JWT lives no longer than the external token has left", async () => {
    const res = await jwtBearer(await gha.sign(githubActionsClaims("acme/deploy", "prod", { exp: nowS() + 40 })));
    expectStatus(res, 200);
    expect(res.json.expires_in, res.text).toBeLessThanOrEqual(40);
  });

  it("a success is audited as credential.federated in the account's org, with the external iss and sub", async () => {
    const external = githubActionsClaims();
    const res = await jwtBearer(await gha.sign(external));
    expectStatus(res, 200);
    const jti = (jose.decodeJwt(res.json.access_token).jti as string) ?? "";
    const rows = await waitForAudit(deployer.account.id, "credential.federated", 1);
    const row = rows.find((r: any) => JSON.parse(r.details).jti === jti);
    expect(row, JSON.stringify(rows)).toBeDefined();
    expect(JSON.parse(row!.details), JSON.stringify(row)).toMatchObject({ iss: gha.url, sub: external.sub, policyId: deployPolicy.id, externalJti: external.jti });
  });
});

describe("an account with no stored secret at all", () => {
  it("an account that never held a token or a key gets JWTs through its trust policy", async () => {
    const bare = await newClient(root.token, { roles: [{ role: "viewer" }], issueToken: false });
    expect(bare.token, "no token was issued").toBeUndefined();
    await addPolicy(accountOf(bare), { issuer: gha.url, subject: "repo:acme/secretless:environment:prod" });
    const res = await jwtBearer(await gha.sign(githubActionsClaims("acme/secretless", "prod")));
    expectStatus(res, 200);
    expect((await verifyAgainstJwks(res.json.access_token)).sub).toBe(bare.account.id);
  });
});

describe("jwt-bearer: a Kubernetes projected service-account token", () => {
  it("a policy on the exact subject and a nested claim (kubernetes.io.namespace) takes it", async () => {
    const worker = await newClient(root.token, { roles: [{ role: "viewer" }] });
    await addPolicy(accountOf(worker), { issuer: k8s.url, subject: "system:serviceaccount:payments:api", claims: { "kubernetes.io.namespace": "payments" } });
    const res = await jwtBearer(await k8s.sign({ ...kubernetesClaims("payments", "api"), aud: [ISSUER, "https://kubernetes.default.svc"] }));
    expectStatus(res, 200);
    const claims = await verifyAgainstJwks(res.json.access_token);
    expect(claims.sub).toBe(worker.account.id);
    expect((claims.federated as any).sub).toBe("system:serviceaccount:payments:api");
  });

  it("another service account of the same namespace is refused", async () => {
    const res = await jwtBearer(await k8s.sign(kubernetesClaims("payments", "batch")));
    expectOAuthError(res, 400, "invalid_grant");
  });
});

describe("token exchange (RFC 8693) of an external token", () => {
  it("subject_token_type jwt: the same JWT as jwt-bearer gives, with issued_token_type", async () => {
    const res = await exchangeExternal(await gha.sign(githubActionsClaims()));
    expectStatus(res, 200);
    expect(res.json.issued_token_type, res.text).toBe("urn:ietf:params:oauth:token-type:access_token");
    const claims = await verifyAgainstJwks(res.json.access_token);
    expect(claims.sub).toBe(deployer.account.id);
    expect((claims.federated as any).policy_id).toBe(deployPolicy.id);
  });

  it("subject_token_type id_token", async () => {
    const res = await exchangeExternal(await gha.sign(githubActionsClaims()), ID_TOKEN_TYPE);
    expectStatus(res, 200);
    expect((await verifyAgainstJwks(res.json.access_token)).sub).toBe(deployer.account.id);
  });

  it("a refused external subject token is invalid_grant", async () => {
    expectOAuthError(await exchangeExternal(await gha.sign(githubActionsClaims("acme/other"))), 400, "invalid_grant");
    expectOAuthError(await exchangeExternal(await gha.sign(githubActionsClaims("acme/other")), ID_TOKEN_TYPE), 400, "invalid_grant");
  });

  it("our own JWTs still exchange as before (subject_token_type jwt)", async () => {
    const own = await jwtBearer(await gha.sign(githubActionsClaims()));
    expectStatus(own, 200);
    const res = await exchangeExternal(own.json.access_token);
    expectStatus(res, 200);
    expect((await verifyAgainstJwks(res.json.access_token)).sub).toBe(deployer.account.id);
  });
});

describe("several accounts trust the same token", () => {
  it("without client_id: invalid_grant; client_id names the account (each gets only its own)", async () => {
    const a = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const b = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const subject = "repo:acme/shared:environment:prod";
    const pa = await addPolicy(accountOf(a), { issuer: gha.url, subject });
    await addPolicy(accountOf(b), { issuer: gha.url, subject });
    const sign = () => gha.sign(githubActionsClaims("acme/shared", "prod"));
    const both = await jwtBearer(await sign());
    expect(expectOAuthError(both, 400, "invalid_grant").error_description).not.toMatch(/acme|sa_/);
    const forA = await jwtBearer(await sign(), { client_id: a.account.id });
    expectStatus(forA, 200);
    const claims = await verifyAgainstJwks(forA.json.access_token);
    expect(claims.sub).toBe(a.account.id);
    expect((claims.federated as any).policy_id).toBe(pa.id);
    const forB = await exchangeExternal(await sign(), undefined, { client_id: b.account.id });
    expectStatus(forB, 200);
    expect((await verifyAgainstJwks(forB.json.access_token)).sub).toBe(b.account.id);
  });
});

describe("metadata", () => {
  it("grant_types_supported lists jwt-bearer and token exchange", async () => {
    const res = await call("GET", "/.well-known/oauth-authorization-server");
    expectStatus(res, 200);
    expect(res.json.grant_types_supported, res.text).toEqual(expect.arrayContaining([JWT_BEARER_GRANT, "urn:ietf:params:oauth:grant-type:token-exchange"]));
  });

  it("jwt-bearer without an assertion is invalid_request", async () => {
    expectOAuthError(await jwtBearer(""), 400, "invalid_request");
  });
});

describe("policies through the management API", () => {
  it("a policy created by the API applies at once; disabled or deleted, it takes nothing at once", async () => {
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const path = `/api/v1/orgs/${c.org.id}/service-accounts/${c.account.id}/federated-credentials`;
    const created = await call("POST", path, { token: root.token, body: { name: "deploy-api", issuer: gha.url, subject: "repo:acme/api-made:environment:prod" } });
    expectStatus(created, 201);
    const sign = () => gha.sign(githubActionsClaims("acme/api-made", "prod"));
    expectStatus(await jwtBearer(await sign()), 200);
    expectStatus(await call("PATCH", `${path}/${created.json.id}`, { token: root.token, body: { enabled: false } }), 200);
    expectOAuthError(await jwtBearer(await sign()), 400, "invalid_grant");
    expectStatus(await call("PATCH", `${path}/${created.json.id}`, { token: root.token, body: { enabled: true } }), 200);
    expectStatus(await jwtBearer(await sign()), 200);
    expectStatus(await call("DELETE", `${path}/${created.json.id}`, { token: root.token }), 204);
    expectOAuthError(await jwtBearer(await sign()), 400, "invalid_grant");
  });
});
