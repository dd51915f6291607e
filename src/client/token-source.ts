import { decodeJwt, SignJWT, type CryptoKey as JoseCryptoKey, type KeyObject } from "jose";

/**
 * tokenSource: short-lived Keyward JWTs for a service, from any of the grants (docs/sdk.md).
 * The JWT is kept until `refreshAt` of its lifetime has passed, then refreshed ahead of expiry
 * (callers keep getting the current JWT meanwhile); concurrent callers share one request; 429 and
 * 5xx (and network failures) are retried with backoff, honouring Retry-After. Nothing is logged,
 * and no error message carries a secret.
 */

const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** An access token (`sat_…`) exchanged at POST /api/auth/access-tokens/jwt. */
export interface AccessTokenGrant {
  type: "access_token";
  accessToken: string;
  scope?: string;
  durationSeconds?: number;
  org?: string;
}

/** client_credentials with the account's access token as client secret (client_secret_basic). */
export interface ClientSecretGrant {
  type: "client_credentials";
  clientId: string;
  clientSecret: string;
  scope?: string;
  audience?: string | string[];
  org?: string;
}

/** client_credentials with a private_key_jwt assertion signed by one of the account's registered keys. */
export interface PrivateKeyJwtGrant {
  type: "private_key_jwt";
  clientId: string;
  privateKey: JoseCryptoKey | KeyObject | CryptoKey;
  alg: "ES256" | "RS256" | "EdDSA";
  kid?: string;
  scope?: string;
  audience?: string | string[];
  org?: string;
}

/** jwt-bearer (federation): an external token (a CI OIDC token, a cluster token) a trust policy accepts. */
export interface JwtBearerGrant {
  type: "jwt_bearer";
  /** Called for each request: the external token, fresh. */
  assertion: () => string | Promise<string>;
  /** The account, when trust policies of several accounts accept the token. */
  clientId?: string;
  scope?: string;
  audience?: string | string[];
}

export type TokenGrant = AccessTokenGrant | ClientSecretGrant | PrivateKeyJwtGrant | JwtBearerGrant;

export interface TokenSourceOptions {
  /** Keyward's base URL (its ISSUER), e.g. https://keyward.example.com. */
  baseUrl: string;
  grant: TokenGrant;
  /** Share of the JWT's lifetime after which it is refreshed (0 < refreshAt <= 1; default 0.8). */
  refreshAt?: number;
  /** Attempts per refresh, the first included (default 4). */
  maxAttempts?: number;
  /** First backoff delay in ms, doubled per attempt, with full jitter (default 250). */
  baseDelayMs?: number;
  /** Longest wait between attempts, Retry-After included (default 10000). */
  maxDelayMs?: number;
  fetch?: typeof fetch;
  /** The clock, epoch ms (tests). */
  now?: () => number;
  /** How to wait (tests). */
  sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1) (tests). */
  random?: () => number;
}

/** A refresh that failed: the HTTP status and Keyward's error code, never the request's secrets. */
export class TokenSourceError extends Error {
  override readonly name = "TokenSourceError";
  constructor(
    message: string,
    readonly status: number | null,
    readonly code: string | null,
  ) {
    super(message);
  }
}

export interface TokenSource {
  /** A valid JWT: the cached one, or a new one (one request however many callers wait). */
  getToken(): Promise<string>;
  /** Forgets the cached JWT (after a 401 from a service, say). */
  invalidate(): void;
}

interface Cached {
  jwt: string;
  refreshAfter: number;
  expiresAt: number;
}

/** Retry-After (seconds or an HTTP date) in ms, or null. */
function retryAfterMs(value: string | null, now: number): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

const basicAuth = (id: string, secret: string) => `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}`;

function form(params: Record<string, string | string[] | undefined>): URLSearchParams {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
  }
  return body;
}

export function tokenSource(options: TokenSourceOptions): TokenSource {
  const base = options.baseUrl.replace(/\/+$/, "");
  const share = options.refreshAt ?? 0.8;
  if (!(share > 0 && share <= 1)) throw new TypeError("refreshAt must be in (0, 1]");
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  const baseDelay = options.baseDelayMs ?? 250;
  const maxDelay = options.maxDelayMs ?? 10_000;
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = options.random ?? Math.random;
  const grant = options.grant;

  let cached: Cached | undefined;
  let inFlight: Promise<Cached> | undefined;

  async function request(): Promise<Request> {
    const tokenUrl = `${base}/oauth/token`;
    const formHeaders = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
    switch (grant.type) {
      case "access_token":
        return new Request(`${base}/api/auth/access-tokens/jwt`, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify({ access_token: grant.accessToken, scope: grant.scope, duration_seconds: grant.durationSeconds, org: grant.org }),
        });
      case "client_credentials":
        return new Request(tokenUrl, {
          method: "POST",
          headers: { ...formHeaders, authorization: basicAuth(grant.clientId, grant.clientSecret) },
          body: form({ grant_type: "client_credentials", scope: grant.scope, audience: grant.audience, org: grant.org }),
        });
      case "private_key_jwt": {
        const assertion = await new SignJWT({})
          .setProtectedHeader(grant.kid ? { alg: grant.alg, kid: grant.kid } : { alg: grant.alg })
          .setIssuer(grant.clientId)
          .setSubject(grant.clientId)
          .setAudience(tokenUrl)
          .setIssuedAt(Math.floor(now() / 1000))
          .setExpirationTime(Math.floor(now() / 1000) + 60)
          .setJti(crypto.randomUUID())
          .sign(grant.privateKey as JoseCryptoKey);
        return new Request(tokenUrl, {
          method: "POST",
          headers: formHeaders,
          body: form({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER_ASSERTION, client_assertion: assertion, scope: grant.scope, audience: grant.audience, org: grant.org }),
        });
      }
      case "jwt_bearer":
        return new Request(tokenUrl, {
          method: "POST",
          headers: formHeaders,
          body: form({ grant_type: JWT_BEARER_GRANT, assertion: await grant.assertion(), client_id: grant.clientId, scope: grant.scope, audience: grant.audience }),
        });
    }
  }

  /** The JWT of a 200 answer, and how long it lives (expires_in, else its exp - iat). */
  async function parse(res: Response, requestedAt: number): Promise<Cached> {
    let body: { jwt?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = (await res.json()) as typeof body;
    } catch {
      throw new TokenSourceError("Keyward answered 200 without a JSON body", res.status, null);
    }
    const jwt = typeof body.access_token === "string" ? body.access_token : body.jwt;
    if (typeof jwt !== "string") throw new TokenSourceError("Keyward answered 200 without a JWT", res.status, null);
    let lifetime = typeof body.expires_in === "number" ? body.expires_in : NaN;
    if (!(lifetime > 0)) {
      try {
        const { exp, iat } = decodeJwt(jwt);
        lifetime = typeof exp === "number" ? exp - (typeof iat === "number" ? iat : Math.floor(requestedAt / 1000)) : NaN;
      } catch {
        lifetime = NaN;
      }
    }
    if (!(lifetime > 0)) throw new TokenSourceError("Keyward's JWT has no lifetime (expires_in or exp)", res.status, null);
    // Counted from when the request left: the JWT's clock started no earlier.
    return { jwt, refreshAfter: requestedAt + lifetime * share * 1000, expiresAt: requestedAt + lifetime * 1000 };
  }

  async function refresh(): Promise<Cached> {
    let lastError: TokenSourceError | undefined;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const requestedAt = now();
      let res: Response;
      try {
        res = await doFetch(await request());
      } catch (err) {
        lastError = new TokenSourceError(`Keyward could not be reached (${err instanceof Error ? err.name : "error"})`, null, null);
        if (attempt < maxAttempts) await sleep(Math.min(maxDelay, random() * baseDelay * 2 ** (attempt - 1)));
        continue;
      }
      if (res.ok) return parse(res, requestedAt);
      const text = await res.text().catch(() => "");
      let code: string | null = null;
      let detail = "";
      try {
        const problem = JSON.parse(text) as { code?: unknown; error?: unknown; detail?: unknown; error_description?: unknown };
        code = typeof problem.code === "string" ? problem.code : typeof problem.error === "string" ? problem.error : null;
        const d = typeof problem.detail === "string" ? problem.detail : problem.error_description;
        if (typeof d === "string") detail = `: ${d.slice(0, 300)}`;
      } catch {
        // not JSON: the status says enough
      }
      lastError = new TokenSourceError(`Keyward refused the ${grant.type} grant with ${res.status}${code ? ` ${code}` : ""}${detail}`, res.status, code);
      if (!(res.status === 429 || res.status >= 500) || attempt === maxAttempts) throw lastError;
      const hinted = retryAfterMs(res.headers.get("retry-after"), now());
      await sleep(Math.min(maxDelay, hinted ?? random() * baseDelay * 2 ** (attempt - 1)));
    }
    throw lastError!;
  }

  function start(): Promise<Cached> {
    if (!inFlight) {
      inFlight = refresh().then(
        (fresh) => {
          cached = fresh;
          inFlight = undefined;
          return fresh;
        },
        (err: unknown) => {
          inFlight = undefined;
          throw err;
        },
      );
    }
    return inFlight;
  }

  return {
    async getToken() {
      const t = now();
      // A JWT within its last second is not handed out: it could expire on the way.
      if (cached && t < cached.expiresAt - 1000) {
        if (t >= cached.refreshAfter) start().catch(() => undefined);
        return cached.jwt;
      }
      return (await start()).jwt;
    },
    invalidate() {
      cached = undefined;
    },
  };
}
