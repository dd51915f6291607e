import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import * as jose from "jose";
import * as oauth from "oauth4webapi";
import { expect } from "vitest";
import worker from "../../src/index.ts";
import { ISSUER } from "./oauth-helpers.ts";

/** Shared helpers of the DPoP and delegation tests: oauth4webapi as the independent client, and hand-made proofs for the attacks. */

export const TOKEN_URL = `${ISSUER}/oauth/token`;

type Fetch = (url: string, init: RequestInit) => Promise<Response>;

/** The Worker, as oauth4webapi's fetch (the URLs it builds from the metadata name ISSUER). */
export const viaWorker: Fetch = (url, init) => exports.default.fetch(new Request(url, init));

/** The real Worker with more variables (the bindings are the same objects). */
export function viaWorkerWith(vars: Record<string, string>): Fetch {
  return async (url, init) => {
    const ctx = createExecutionContext();
    const res = await worker.fetch(new Request(url, init), { ...env, ...vars }, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };
}

/** The authorization server, discovered by oauth4webapi through the Worker's RFC 8414 metadata. */
export async function discover(fetchImpl: Fetch = viaWorker): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(ISSUER);
  const res = await oauth.discoveryRequest(issuer, { algorithm: "oauth2", [oauth.customFetch]: fetchImpl, [oauth.allowInsecureRequests]: true });
  return oauth.processDiscoveryResponse(issuer, res);
}

export const clientOptions = (fetchImpl: Fetch, DPoP?: oauth.DPoPHandle) => ({ [oauth.customFetch]: fetchImpl, [oauth.allowInsecureRequests]: true, ...(DPoP ? { DPoP } : {}) });

/** client_credentials with client_secret_basic through oauth4webapi, with a DPoP handle (the client retries once on use_dpop_nonce). */
export async function dpopClientCredentials(
  as: oauth.AuthorizationServer,
  clientId: string,
  secret: string,
  DPoP: oauth.DPoPHandle,
  fetchImpl: Fetch = viaWorker,
  parameters: Record<string, string> = {},
): Promise<oauth.TokenEndpointResponse> {
  const client: oauth.Client = { client_id: clientId };
  const attempt = async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(secret), parameters, clientOptions(fetchImpl, DPoP));
    return oauth.processClientCredentialsResponse(as, client, res);
  };
  try {
    return await attempt();
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) return attempt();
    throw err;
  }
}

export type ProofAlg = "ES256" | "EdDSA" | "RS256" | "PS256";

export async function proofKeys(alg: ProofAlg = "ES256"): Promise<CryptoKeyPair> {
  return jose.generateKeyPair(alg, { extractable: true, ...(alg.startsWith("RS") || alg.startsWith("PS") ? { modulusLength: 2048 } : {}) }) as Promise<CryptoKeyPair>;
}

export const thumbprintOf = async (keys: CryptoKeyPair) => jose.calculateJwkThumbprint(await jose.exportJWK(keys.publicKey), "sha256");

export interface ProofOptions {
  alg?: ProofAlg;
  htm?: string;
  htu?: string;
  iat?: number;
  jti?: string | null;
  typ?: string;
  accessToken?: string;
  ath?: string;
  nonce?: string;
  /** Header members replacing the public jwk. */
  jwk?: Record<string, unknown>;
}

/** A DPoP proof made by hand (jose), so each claim can be wrong in turn. */
export async function proof(keys: CryptoKeyPair, o: ProofOptions = {}): Promise<string> {
  const jwk = o.jwk ?? (await jose.exportJWK(keys.publicKey));
  const payload: jose.JWTPayload = { htm: o.htm ?? "POST", htu: o.htu ?? TOKEN_URL, iat: o.iat ?? Math.floor(Date.now() / 1000) };
  if (o.jti !== null) payload.jti = o.jti ?? crypto.randomUUID();
  if (o.ath !== undefined) payload.ath = o.ath;
  else if (o.accessToken !== undefined) payload.ath = jose.base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(o.accessToken))));
  if (o.nonce !== undefined) payload.nonce = o.nonce;
  return new jose.SignJWT(payload).setProtectedHeader({ alg: o.alg ?? "ES256", typ: o.typ ?? "dpop+jwt", jwk } as jose.JWTHeaderParameters).sign(keys.privateKey);
}

/** A resource request through oauth4webapi with the DPoP-bound token. */
export async function dpopGet(accessToken: string, path: string, DPoP: oauth.DPoPHandle, fetchImpl: Fetch = viaWorker): Promise<Response> {
  return oauth.protectedResourceRequest(accessToken, "GET", new URL(ISSUER + path), new Headers(), null, clientOptions(fetchImpl, DPoP));
}

export const cnfOf = (jwt: string) => (jose.decodeJwt(jwt) as { cnf?: { jkt?: string } }).cnf;

export function expectDpopChallenge(res: { status: number; headers: Headers; text: string }, error: string) {
  expect(res.status, res.text).toBe(401);
  expect(res.headers.get("www-authenticate") ?? "", res.text).toMatch(new RegExp(`^DPoP .*error="${error}"`));
}
