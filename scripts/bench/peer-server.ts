/**
 * The benchmark's peer (`npm run bench`, scenario f): `oidc-provider`, a certified OAuth 2.0 server,
 * on this Node (22) in its own process, with one client_credentials client (client_secret_basic)
 * that gets ES256-signed JWT access tokens (RFC 9068) for a resource server, and (scenario g) a
 * second client authenticating with private_key_jwt (ES256 assertions; oidc-provider's default
 * jti replay check through its adapter, the in-memory one).
 *
 * Usage: node scripts/bench/peer-server.ts <port> <client_id> <client_secret> <pkjwt_client_id> <pkjwt_public_jwk_json>
 * Prints one line `PEER_READY {"port":…,"tokenEndpoint":…}` when it listens.
 */
import { createServer } from "node:http";
import { exportJWK, generateKeyPair } from "jose";
import Provider from "oidc-provider";

const [portArg, clientId, clientSecret, pkjwtClientId, pkjwtJwk] = process.argv.slice(2);
if (!portArg || !clientId || !clientSecret || !pkjwtClientId || !pkjwtJwk) {
  throw new Error("usage: peer-server.ts <port> <client_id> <client_secret> <pkjwt_client_id> <pkjwt_public_jwk_json>");
}
const port = Number(portArg);
const issuer = `http://127.0.0.1:${port}`;
const resource = "https://api.bench.test";

const { privateKey } = await generateKeyPair("ES256", { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: "bench-es256", alg: "ES256", use: "sig" };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "ES256",
    },
    {
      client_id: pkjwtClientId,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "private_key_jwt",
      token_endpoint_auth_signing_alg: "ES256",
      id_token_signed_response_alg: "ES256",
      jwks: { keys: [JSON.parse(pkjwtJwk)] },
    },
  ],
  jwks: { keys: [signingKey] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // client_credentials without a `resource` parameter gets a token for this resource server.
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "read",
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "ES256" } },
      }),
    },
  },
});
provider.on("server_error", (_ctx: unknown, err: Error) => console.error(`[peer] server_error: ${err.stack ?? err}`));

const server = createServer(provider.callback());
server.keepAliveTimeout = 65_000;
server.listen(port, "127.0.0.1", () => {
  console.log(`PEER_READY ${JSON.stringify({ port, issuer, tokenEndpoint: `${issuer}/token` })}`);
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => server.close(() => process.exit(0)));
