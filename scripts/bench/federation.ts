/**
 * The federated-grant scenario's outside: a loopback OIDC issuer (discovery and an RS256 key set,
 * as GitHub Actions serves them) that the Worker trusts through FEDERATION_ALLOWED_ISSUERS, a trust
 * policy made through the API, and a pool of pre-signed external tokens shaped like GitHub
 * Actions' (without jti, so each may be presented again: the scenario measures verification and
 * minting with the issuer's keys cached, not the replay cache).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey as JoseKey } from "jose";
import type { LoadRequest } from "./load.ts";
import { form } from "./requests.ts";
import { api } from "./seed.ts";

export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";

export interface BenchIssuer {
  issuer: string;
  privateKey: JoseKey;
  kid: string;
  stop: () => Promise<void>;
}

/** Serves `/.well-known/openid-configuration` and `/jwks` on a free loopback port. */
export async function startBenchIssuer(): Promise<BenchIssuer> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = "bench-issuer-1";
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }] });
  let issuer = "";
  const server = http.createServer((req, res) => {
    const json = (body: string) => res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=3600" }).end(body);
    if (req.url === "/.well-known/openid-configuration") return json(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    if (req.url === "/jwks") return json(jwks);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { issuer, privateKey, kid, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

const SUBJECT = "repo:bench/deploy:environment:prod";

/** A trust policy on the account for the bench issuer's deploy job. */
export async function trustBenchIssuer(base: string, rootToken: string, org: string, accountId: string, issuer: string, audience: string): Promise<void> {
  await api(base, "POST", `/api/v1/orgs/${org}/service-accounts/${accountId}/federated-credentials`, rootToken, {
    name: "bench-deploy",
    issuer,
    audiences: [audience],
    subject: SUBJECT,
    claims: { repository_owner: "bench", ref: "refs/heads/*" },
  }, [201]);
}

/** `n` external tokens valid for an hour (the bench's rounds fit in it), cycled by `next`. */
export async function presignedPool(bench: BenchIssuer, audience: string, n: number): Promise<() => LoadRequest> {
  const now = Math.floor(Date.now() / 1000);
  const tokens = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      new SignJWT({ sub: SUBJECT, repository: "bench/deploy", repository_owner: "bench", ref: "refs/heads/main", environment: "prod", run_id: String(1000 + i), actor: "bench" })
        .setProtectedHeader({ alg: "RS256", kid: bench.kid, typ: "JWT" })
        .setIssuer(bench.issuer)
        .setAudience(audience)
        .setIssuedAt(now)
        .setNotBefore(now - 5)
        .setExpirationTime(now + 3600)
        .sign(bench.privateKey),
    ),
  );
  const bodies = tokens.map((assertion) => form({ grant_type: JWT_BEARER_GRANT, assertion }));
  let i = 0;
  return () => ({ method: "POST", path: "/oauth/token", headers: { "content-type": "application/x-www-form-urlencoded" }, body: bodies[i++ % bodies.length]! });
}
