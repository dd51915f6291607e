import { env } from "cloudflare:workers";
import * as jose from "jose";
import { testIssuerUrl, type TestIssuerName } from "../federation/issuers.ts";
import type { IssuerMode } from "../federation/issuer-server.ts";
import { ISSUER, nowS, postForm } from "./oauth-helpers.ts";
import { federatedCredentials } from "../../src/db/schema.ts";
import { issuerKeysKvKey } from "../../src/domain/credentials/issuer-keys.ts";
import { dbFor } from "../../src/domain/shared/context.ts";
import { resetIsolateState } from "../../src/domain/shared/isolate-state.ts";
import { newId } from "../../src/lib/ids.ts";

/**
 * The federation tests' side of the loopback issuers (test/federation/issuer-server.ts): keys made
 * here, their public halves served there, and tokens shaped like the platforms' own.
 */

export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
export const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token";

export type SigningAlg = "RS256" | "ES256" | "EdDSA";

export interface SigningKeyPair {
  kid: string;
  alg: SigningAlg;
  privateKey: CryptoKey;
  publicJwk: jose.JWK;
}

export async function signingKey(alg: SigningAlg = "ES256", kid = `k-${crypto.randomUUID().slice(0, 8)}`): Promise<SigningKeyPair> {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await jose.exportJWK(publicKey)), kid, alg, use: "sig" } };
}

async function control(name: TestIssuerName, patch: Record<string, unknown> = {}) {
  const res = await fetch(`${env.TEST_ISSUER_BASE}/__control/${name}`, { method: "POST", body: JSON.stringify(patch) });
  if (!res.ok) throw new Error(`issuer control ${res.status}`);
  return (await res.json()) as { hits: { discovery: number; jwks: number }; mode: IssuerMode };
}

export interface TestIssuer {
  name: TestIssuerName;
  url: string;
  key: SigningKeyPair;
  /** Serves these keys' public halves (replacing what was served). */
  serve(keys: SigningKeyPair[]): Promise<void>;
  mode(mode: IssuerMode, cacheControl?: string | null): Promise<void>;
  /** How often discovery and the key set were fetched since the last resetHits. */
  hits(): Promise<{ discovery: number; jwks: number }>;
  resetHits(): Promise<void>;
  /** A token of this issuer: `claims` over iss/iat/nbf/exp defaults (ISSUER as aud), signed with `key` (default the served one). */
  sign(claims: jose.JWTPayload, options?: { key?: SigningKeyPair; header?: Record<string, unknown> }): Promise<string>;
}

/** A loopback issuer with one fresh signing key, served and behaving (mode ok, no Cache-Control). */
export async function testIssuer(name: TestIssuerName, alg: SigningAlg = "ES256"): Promise<TestIssuer> {
  const key = await signingKey(alg);
  const url = testIssuerUrl(env.TEST_ISSUER_BASE, name);
  await control(name, { keys: [key.publicJwk], mode: "ok", cacheControl: null, resetHits: true });
  // A new key served is a rotation: forget the old set here so the tests need not wait a minute.
  await forgetFederationCaches([url]);
  return {
    name,
    url,
    key,
    serve: async (keys) => void (await control(name, { keys: keys.map((k) => k.publicJwk) })),
    mode: async (mode, cacheControl) => void (await control(name, { mode, ...(cacheControl !== undefined ? { cacheControl } : {}) })),
    hits: async () => (await control(name)).hits,
    resetHits: async () => void (await control(name, { resetHits: true })),
    sign: (claims, options = {}) => {
      const k = options.key ?? key;
      const now = nowS();
      return new jose.SignJWT({ iss: url, aud: ISSUER, iat: now, nbf: now - 5, exp: now + 300, ...claims })
        .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: "JWT", ...options.header })
        .sign(k.privateKey);
    },
  };
}

/**
 * The claims of a GitHub Actions OIDC token (docs.github.com, "About security hardening with
 * OpenID Connect": the example token), for `owner/repo` deploying to `environment`.
 */
export function githubActionsClaims(repo = "acme/deploy", environment = "prod", overrides: jose.JWTPayload = {}): jose.JWTPayload {
  const [owner] = repo.split("/");
  return {
    jti: crypto.randomUUID(),
    sub: `repo:${repo}:environment:${environment}`,
    environment,
    ref: "refs/heads/main",
    sha: "e83c5163316f89bfbde7d9ab23ca2e25604af290",
    repository: repo,
    repository_id: "74",
    repository_owner: owner,
    repository_owner_id: "65",
    repository_visibility: "private",
    actor: "octocat",
    actor_id: "12",
    workflow: "deploy",
    workflow_ref: `${repo}/.github/workflows/deploy.yml@refs/heads/main`,
    job_workflow_ref: `${repo}/.github/workflows/deploy.yml@refs/heads/main`,
    head_ref: "",
    base_ref: "",
    event_name: "workflow_dispatch",
    ref_type: "branch",
    ref_protected: "true",
    runner_environment: "github-hosted",
    run_id: "1234567890",
    run_number: "42",
    run_attempt: "1",
    ...overrides,
  };
}

/** The claims of a Kubernetes projected service-account token (kubernetes.io docs, "Service account token volume projection"). */
export function kubernetesClaims(namespace = "payments", serviceAccount = "api", overrides: jose.JWTPayload = {}): jose.JWTPayload {
  return {
    jti: crypto.randomUUID(),
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    "kubernetes.io": {
      namespace,
      node: { name: "node-1", uid: crypto.randomUUID() },
      pod: { name: `${serviceAccount}-7d9f8b-x2x9p`, uid: crypto.randomUUID() },
      serviceaccount: { name: serviceAccount, uid: crypto.randomUUID() },
    },
    ...overrides,
  };
}

/** POST /oauth/token with the RFC 7523 jwt-bearer grant. */
export const jwtBearer = (assertion: string, extra: Record<string, string | undefined> = {}, headers: Record<string, string> = {}) =>
  postForm("/oauth/token", { grant_type: JWT_BEARER_GRANT, assertion, ...extra }, { headers });

/** POST /oauth/token with the RFC 8693 token exchange of an external token. */
export const exchangeExternal = (subjectToken: string, type = "urn:ietf:params:oauth:token-type:jwt", extra: Record<string, string | undefined> = {}) =>
  postForm("/oauth/token", { grant_type: "urn:ietf:params:oauth:grant-type:token-exchange", subject_token: subjectToken, subject_token_type: type, ...extra });

export interface PolicyInput {
  issuer: string;
  subject?: string | null;
  claims?: Record<string, string>;
  audiences?: string[];
  maxTokenAgeSeconds?: number | null;
  enabled?: boolean;
  singleUse?: boolean;
  name?: string;
}

/**
 * A trust policy on `account`, written straight into D1 (these tests are about the grants; the
 * policy routes have their own), and this isolate's cached policies forgotten so it applies at once.
 */
export async function addPolicy(account: { id: string; orgId: string }, input: PolicyInput) {
  const now = Date.now();
  const row = {
    id: newId("federatedCredential"),
    orgId: account.orgId,
    serviceAccountId: account.id,
    name: input.name ?? `policy-${crypto.randomUUID().slice(0, 8)}`,
    description: null,
    issuer: input.issuer,
    audiences: input.audiences ?? [ISSUER],
    subject: input.subject ?? null,
    claims: input.claims ?? {},
    maxTokenAgeSeconds: input.maxTokenAgeSeconds ?? null,
    enabled: input.enabled ?? true,
    singleUse: input.singleUse ?? true,
    createdAt: now,
    createdBy: "test",
    updatedAt: now,
  };
  await dbFor(env.DB).insert(federatedCredentials).values(row);
  resetIsolateState("trust-policies");
  return row;
}

/** Forgets what this isolate cached of issuers' keys, policies and verified tokens (and KV's copy of the keys). */
export async function forgetFederationCaches(issuers: string[] = []) {
  resetIsolateState("trust-policies", "issuer-keys", "federated-verified-tokens");
  await Promise.all(issuers.map((iss) => env.TOKENS.delete(issuerKeysKvKey(iss))));
}

/** The federated audit rows of an account, oldest first, polled until `count` of `action` exist. */
export { waitForAudit } from "./authz-helpers.ts";
