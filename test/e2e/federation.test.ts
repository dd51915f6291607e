import http from "node:http";
import { createRemoteJWKSet, decodeJwt, exportJWK, generateKeyPair, jwtVerify } from "jose";
import Provider from "oidc-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startDevServer, type DevServer } from "../../scripts/dev-server.ts";

/**
 * Issue 18 end to end: a real external issuer nobody here wrote (node-oidc-provider on loopback)
 * issues JWT access tokens by its client_credentials grant with a resource indicator naming
 * Keyward; the dev server trusts it through FEDERATION_ALLOWED_ISSUERS and a trust policy made by
 * the API, finds its keys by OIDC discovery, and answers both federated grants with Keyward JWTs
 * that verify against Keyward's own JWKS.
 */
describe("federation with node-oidc-provider as the foreign issuer", () => {
  let server: DevServer;
  let oidc: http.Server;
  let oidcIssuer: string;
  let account: { id: string; orgId: string };
  const CLIENT = { client_id: "ci-runner", client_secret: "ci-runner-secret-0123456789abcdef" };

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(server.base + path, {
      method,
      headers: { authorization: `Bearer ${server.rootToken}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text);
  };

  /** A fresh JWT access token from oidc-provider for the Keyward resource. */
  const foreignToken = async () => {
    const res = await fetch(`${oidcIssuer}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${btoa(`${CLIENT.client_id}:${CLIENT.client_secret}`)}` },
      body: new URLSearchParams({ grant_type: "client_credentials", resource: server.base, scope: "deploy" }),
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    return JSON.parse(text).access_token as string;
  };

  const token = (params: Record<string, string>) =>
    fetch(`${server.base}/oauth/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(params) });

  beforeAll(async () => {
    const oidcPort = await freePort();
    oidcIssuer = `http://127.0.0.1:${oidcPort}`;
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const signing = { ...(await exportJWK(privateKey)), kid: "oidc-e2e-1", alg: "ES256", use: "sig" };
    const provider = new Provider(oidcIssuer, {
      clients: [{ ...CLIENT, grant_types: ["client_credentials"], redirect_uris: [], response_types: [], id_token_signed_response_alg: "ES256" }],
      jwks: { keys: [signing] },
      scopes: ["deploy"],
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => server.base,
          getResourceServerInfo: () => ({ scope: "deploy", audience: server.base, accessTokenFormat: "jwt", accessTokenTTL: 300, jwt: { sign: { alg: "ES256" } } }),
        },
      },
    } as never);
    oidc = http.createServer(provider.callback());
    await new Promise<void>((resolve) => oidc.listen(oidcPort, "127.0.0.1", resolve));
    server = await startDevServer({ federationAllowedIssuers: [oidcIssuer] });
    const org = await api("POST", "/api/v1/orgs", { slug: "e2e-federation", name: "E2E federation" });
    const sa = await api("POST", `/api/v1/orgs/${org.id}/service-accounts`, { name: "ci-deployer", roles: [{ role: "viewer" }] });
    account = { id: sa.id, orgId: org.id };
    await api("POST", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/federated-credentials`, {
      name: "oidc-provider-ci",
      issuer: oidcIssuer,
      subject: CLIENT.client_id,
      claims: { scope: "deploy" },
      maxTokenAgeSeconds: 600,
    });
  });
  afterAll(async () => {
    await server?.stop();
    await new Promise((r) => (oidc ? oidc.close(r) : r(undefined)));
  });

  const verifyKeyward = async (jwt: string) => {
    const jwks = createRemoteJWKSet(new URL(`${server.base}/.well-known/jwks.json`));
    return (await jwtVerify(jwt, jwks, { issuer: server.base, audience: server.base, typ: "at+jwt" })).payload;
  };

  it("the foreign token is what oidc-provider says it is (a JWT for Keyward, from its client)", async () => {
    const claims = decodeJwt(await foreignToken());
    expect(claims.iss).toBe(oidcIssuer);
    expect(claims.aud).toBe(server.base);
    expect(claims.sub).toBe(CLIENT.client_id);
  });

  it("jwt-bearer: a Keyward JWT for the account, verifiable with Keyward's JWKS", async () => {
    const res = await token({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: await foreignToken() });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const payload = await verifyKeyward(JSON.parse(text).access_token);
    expect(payload.sub).toBe(account.id);
    expect(payload.org_id).toBe(account.orgId);
    expect(payload.federated).toMatchObject({ iss: oidcIssuer, sub: CLIENT.client_id });
    const me = await fetch(`${server.base}/api/v1/orgs/${account.orgId}/service-accounts/${account.id}`, { headers: { authorization: `Bearer ${JSON.parse(text).access_token}` } });
    expect(me.status).toBe(200);
  });

  it("token exchange with subject_token_type jwt: the same", async () => {
    const res = await token({
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: await foreignToken(),
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      scope: "service-accounts.read",
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const body = JSON.parse(text);
    expect(body.issued_token_type).toBe("urn:ietf:params:oauth:token-type:access_token");
    expect(body.scope).toBe("service-accounts.read");
    expect((await verifyKeyward(body.access_token)).sub).toBe(account.id);
  });

  it("the same foreign token twice: its jti is accepted once", async () => {
    const foreign = await foreignToken();
    expect((await token({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: foreign })).status).toBe(200);
    const replay = await token({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: foreign });
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as { error: string }).error).toBe("invalid_grant");
  });

  it("the metadata lists both grants", async () => {
    const meta = (await (await fetch(`${server.base}/.well-known/oauth-authorization-server`)).json()) as { grant_types_supported: string[] };
    expect(meta.grant_types_supported).toEqual(expect.arrayContaining(["urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:token-exchange"]));
  });
});
