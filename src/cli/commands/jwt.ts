import { createPrivateKey, randomUUID, type JsonWebKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { calculateJwkThumbprint, importJWK, SignJWT, type JWK } from "jose";
import type { Command } from "commander";
import { client, networkError, type ApiClient } from "../api.ts";
import { positiveInt, verb, withJson, type Run } from "../command.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { json, out } from "../output.ts";

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

interface OAuthToken {
  access_token: string;
  [k: string]: unknown;
}

export function jwtCommand(program: Command): void {
  withJson(
    verb(program, "jwt", "Print a short-lived JWT (alone, so $(keyward jwt) works): by token exchange (default), client_credentials or federation", async (run) => {
      const o = run.opts;
      const result = o.federated || o.idTokenFile ? await federated(run) : o.clientId ? await clientCredentials(run) : await exchange(run);
      if (o.json) json(result.body);
      else out(result.jwt);
    }),
  )
    .option("--scope <scopes>", "space-separated scopes (default: every scope allowed)")
    .option("--duration <seconds>", "token exchange: the JWT's lifetime in seconds", positiveInt)
    .option("--target-org <org>", "token exchange: another org where the account holds an accepted role")
    .option("--client-id <account>", "client_credentials as this service account: its secret from KEYWARD_CLIENT_SECRET, --client-secret-file or the profile's token, or --key-file")
    .option("--client-secret-file <path>", "client_credentials: a file holding the client secret (an access token of the account)")
    .option("--key-file <path>", "client_credentials by private_key_jwt: a PKCS#8 PEM private key whose public half is registered")
    .option("--kid <kid>", "private_key_jwt: the registered key's kid (default: the RFC 7638 thumbprint)")
    .option("--federated", "federation: GitHub Actions' ID token when ACTIONS_ID_TOKEN_REQUEST_URL is set, else --id-token-file")
    .option("--id-token-file <path>", "federation: a file holding the external JWT (e.g. a Kubernetes projected token)")
    .option("--audience <aud>", "federation on GitHub Actions: the audience to request (default: Keyward's issuer)")
    .addHelpText(
      "after",
      `
Methods:
  keyward jwt                                  exchange the sat_ token in KEYWARD_TOKEN (or the profile's)
  keyward jwt --client-id SA                   client_credentials with a secret
  keyward jwt --client-id SA --key-file k.pem  client_credentials by private_key_jwt
  keyward jwt --federated                      GitHub Actions OIDC (id-token: write) or --id-token-file`,
    );
}

async function exchange(run: Run): Promise<{ jwt: string; body: unknown }> {
  const o = run.opts;
  const api = client(run.settings);
  if (!run.settings.token!.startsWith("sat_")) throw usageError(`The token in ${run.settings.tokenSource} is not an access token (sat_...)`);
  const body = { access_token: run.settings.token, ...(o.duration ? { duration_seconds: o.duration } : {}), ...(o.scope !== undefined ? { scope: o.scope } : {}), ...(o.targetOrg ? { org: o.targetOrg } : {}) };
  const res = await api.request<{ jwt: string }>("POST", "/api/auth/access-tokens/jwt", { body, anonymous: true });
  return { jwt: res.jwt, body: res };
}

async function clientCredentials(run: Run): Promise<{ jwt: string; body: unknown }> {
  const o = run.opts;
  const api = client(run.settings, false);
  const form: Record<string, string | undefined> = { grant_type: "client_credentials", scope: o.scope };
  const headers: Record<string, string> = {};
  if (o.keyFile) {
    form.client_id = o.clientId;
    form.client_assertion_type = ASSERTION_TYPE;
    form.client_assertion = await clientAssertion(o.keyFile, o.clientId, `${api.base}/oauth/token`, o.kid);
  } else {
    const secret = o.clientSecretFile ? readTokenFile(o.clientSecretFile, "client secret") : process.env.KEYWARD_CLIENT_SECRET || run.settings.token;
    if (!secret) throw new CliError("No client secret: set KEYWARD_CLIENT_SECRET, pass --client-secret-file or --key-file, or log in", EXIT.auth);
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(o.clientId)}:${encodeURIComponent(secret)}`).toString("base64")}`;
  }
  const res = await api.request<OAuthToken>("POST", "/oauth/token", { form, headers, anonymous: true });
  return { jwt: res.access_token, body: res };
}

/** RFC 7523 client assertion: iss = sub = the account, aud = the token endpoint, 60 s, a fresh jti. */
export async function clientAssertion(keyFile: string, clientId: string, audience: string, kid?: string): Promise<string> {
  const { jwk, alg } = privateJwk(readFileSync(keyFile, "utf8"), keyFile);
  const key = await importJWK(jwk, alg);
  const pub = publicJwk(jwk);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg, kid: kid ?? (await calculateJwkThumbprint(pub)), typ: "JWT" })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .setJti(randomUUID())
    .sign(key);
}

/** A PEM private key as a JWK with the algorithm Keyward accepts for it (ES256, RS256, EdDSA). */
export function privateJwk(pem: string, where: string): { jwk: JWK; alg: string } {
  let jwk: JsonWebKey;
  try {
    jwk = createPrivateKey(pem).export({ format: "jwk" });
  } catch (err) {
    throw usageError(`${where} is not a PEM private key (${(err as Error).message})`);
  }
  if (jwk.kty === "EC" && jwk.crv === "P-256") return { jwk: jwk as JWK, alg: "ES256" };
  if (jwk.kty === "RSA") return { jwk: jwk as JWK, alg: "RS256" };
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return { jwk: jwk as JWK, alg: "EdDSA" };
  throw usageError(`${where}: unsupported key type (use EC P-256, RSA or Ed25519)`);
}

/** The public members of a JWK. */
export function publicJwk(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}

function readTokenFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (err) {
    throw usageError(`Cannot read the ${what} file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!text) throw usageError(`The ${what} file ${file} is empty`);
  return text;
}

async function federated(run: Run): Promise<{ jwt: string; body: unknown }> {
  const o = run.opts;
  const api = client(run.settings, false);
  const subject = o.idTokenFile ? readTokenFile(o.idTokenFile, "ID token") : await githubActionsToken(api, o.audience);
  const res = await api.request<OAuthToken>("POST", "/oauth/token", {
    form: { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: JWT_TYPE, scope: o.scope },
    anonymous: true,
  });
  return { jwt: res.access_token, body: res };
}

/** GitHub Actions' OIDC token (the job needs `permissions: id-token: write`), for Keyward's issuer unless told otherwise. */
async function githubActionsToken(api: ApiClient, audience: string | undefined): Promise<string> {
  const url = process.env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const bearer = process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!url || !bearer) {
    throw usageError("No federated token: ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN are not set (give the job `permissions: id-token: write`), and no --id-token-file");
  }
  const aud = audience ?? (await api.request<{ issuer: string }>("GET", "/.well-known/oauth-authorization-server", { anonymous: true })).issuer;
  const request = new URL(url);
  request.searchParams.set("audience", aud);
  let res: Response;
  try {
    res = await fetch(request, { headers: { authorization: `Bearer ${bearer}`, accept: "application/json" }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw networkError(request.origin, err);
  }
  if (!res.ok) throw new CliError(`GitHub Actions refused the ID token request (HTTP ${res.status})`, res.status === 401 || res.status === 403 ? EXIT.auth : EXIT.server);
  const body = (await res.json().catch(() => ({}))) as { value?: unknown };
  if (typeof body.value !== "string" || !body.value) throw new CliError("GitHub Actions answered without an ID token (no `value`)", EXIT.server);
  return body.value;
}

