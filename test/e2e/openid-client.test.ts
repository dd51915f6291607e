import { exportSPKI, generateKeyPair, createRemoteJWKSet, jwtVerify } from "jose";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";

/**
 * A client nobody here wrote (openid-client) against the real dev server: discovery through our
 * RFC 8414 metadata, client_credentials with client_secret_basic and private_key_jwt, and the JWTs
 * verified offline with jose's remote JWKS.
 */
describe("openid-client against the dev server", () => {
  let server: DevServer;
  let orgId: string;
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
  const discover = (clientId: string, auth: client.ClientAuth) =>
    client.discovery(new URL(server.base), clientId, undefined, auth, { algorithm: "oauth2", execute: [client.allowInsecureRequests] });

  beforeAll(async () => {
    server = await startDevServer();
    orgId = (await api("POST", "/api/v1/orgs", { slug: "e2e-oidc", name: "E2E" })).id;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("client_credentials with client_secret_basic", async () => {
    const sa = await api("POST", `/api/v1/orgs/${orgId}/service-accounts`, { name: "basic-bot", roles: [{ role: "viewer" }], issueToken: true });
    const config = await discover(sa.id, client.ClientSecretBasic(sa.token.token));
    const tokens = await client.clientCredentialsGrant(config, { scope: "service-accounts.read" });
    expect(tokens.token_type).toBe("bearer");
    expect(tokens.scope).toBe("service-accounts.read");
    const jwks = createRemoteJWKSet(new URL(`${server.base}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, { issuer: server.base, audience: server.base, typ: "at+jwt" });
    expect(protectedHeader.alg).toBe("ES256");
    expect(payload.sub).toBe(sa.id);
    expect(payload.org_id).toBe(orgId);
    expect(payload.roles).toEqual(["viewer"]);
    const me = await fetch(`${server.base}/api/v1/orgs/${orgId}/service-accounts/${sa.id}`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(me.status).toBe(200);
  });

  it("client_credentials with private_key_jwt, and a replayed assertion is refused", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
    const sa = await api("POST", `/api/v1/orgs/${orgId}/service-accounts`, { name: "key-bot", roles: [{ role: "viewer" }], publicKey: await exportSPKI(publicKey) });
    const [key] = (await api("GET", `/api/v1/orgs/${orgId}/service-accounts/${sa.id}/keys`)).items;
    const config = await discover(sa.id, client.PrivateKeyJwt({ key: privateKey, kid: key.kid }));
    const tokens = await client.clientCredentialsGrant(config);
    const jwks = createRemoteJWKSet(new URL(`${server.base}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: server.base, audience: server.base });
    expect(payload.sub).toBe(sa.id);
    expect(String(payload.scope).split(" ")).toContain("service-accounts.read");

    // Replay: capture one assertion the library builds and send it twice by hand.
    const capture = client.PrivateKeyJwt({ key: privateKey, kid: key.kid });
    const fakeBody = new URLSearchParams();
    await capture({ issuer: server.base, token_endpoint: `${server.base}/oauth/token` } as never, { client_id: sa.id } as never, fakeBody, new Headers());
    const assertion = fakeBody.get("client_assertion")!;
    const send = () =>
      fetch(`${server.base}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "client_credentials", client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: assertion }),
      });
    expect((await send()).status).toBe(200);
    const replay = await send();
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: string }).error).toBe("invalid_client");
  });
});
