import { z } from "zod";

/**
 * A Durable Object namespace whose class this leaf does not name: the domain reaches each object
 * through the interface it declares for it (AccountCredentialsRpc, SigningKeysRpc).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ObjectNamespace = DurableObjectNamespace<any>;

/** Bindings and variables declared in wrangler.toml, plus secrets from `.dev.vars` / `wrangler secret`. */
export interface Bindings {
  DB: D1Database;
  TOKENS: KVNamespace;
  /** One AccountCredentials object per account (reached through src/domain/credentials/account-object.ts). */
  ACCOUNT_DO: ObjectNamespace;
  /** The one SigningKeys object (reached through src/domain/signing/jwt.ts). */
  SIGNING_KEYS: ObjectNamespace;
  /** Count failed authentications per IP and per client id (optional: without them nothing is limited). */
  AUTH_FAILURES_IP?: RateLimit;
  AUTH_FAILURES_CLIENT?: RateLimit;
  /** Counts reports of leaked tokens per IP (POST /api/v1/leaked-tokens); without it nothing is limited. */
  LEAK_REPORTS?: RateLimit;
  /** The webhook delivery queue (producer; the same Worker consumes it): without it nothing is sent. */
  WEBHOOKS?: Queue<unknown>;
  ISSUER?: string;
  SERVICE_ACCOUNT_EMAIL_DOMAIN?: string;
  DEFAULT_JWT_TTL_SECONDS?: string;
  MAX_JWT_TTL_SECONDS?: string;
  MAX_BODY_BYTES?: string;
  JWT_SIGNING_ALG?: string;
  ALLOWED_AUDIENCES?: string;
  JWKS_MAX_AGE_SECONDS?: string;
  AUTHORIZE_JWT_TTL_SECONDS?: string;
  CRON_BATCH_SIZE?: string;
  CRON_TIME_BUDGET_MS?: string;
  CRON_MAX_ITEMS?: string;
  CRON_SUBREQUEST_BUDGET?: string;
  AUDIT_RETENTION_DAYS?: string;
  KEY_ROTATION_DAYS?: string;
  RATE_LIMIT_BLOCK_SECONDS?: string;
  MAX_CLIENT_ASSERTION_LIFETIME_SECONDS?: string;
  CORS_ALLOWED_ORIGINS?: string;
  FEDERATION_ALLOWED_ISSUERS?: string;
  WEBHOOK_ALLOW_LOOPBACK?: string;
  JWKS_URI_ALLOW_LOOPBACK?: string;
  WEBHOOK_TIMEOUT_MS?: string;
  WEBHOOK_RETRY_BASE_SECONDS?: string;
  WEBHOOK_RETRY_MAX_DELAY_SECONDS?: string;
  WEBHOOK_RETRY_WINDOW_SECONDS?: string;
  WEBHOOK_MAX_ATTEMPTS?: string;
  WEBHOOK_DISABLE_AFTER_DAYS?: string;
  SECRET_SCANNING_KEYS?: string;
  STATUS_LIST_TTL_SECONDS?: string;
  DPOP_PROOF_MAX_AGE_SECONDS?: string;
  DPOP_REQUIRE_NONCE?: string;
  DPOP_NONCE_LIFETIME_SECONDS?: string;
  BOOTSTRAP_SECRET?: string;
  SIGNING_KEY_ENCRYPTION_KEY?: string;
  /** "on": binding calls are counted and served at GET /__binding-counts (the bench; docs/benchmarking.md). */
  BINDING_COUNTS?: string;
}

const intVar = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

const configSchema = z.object({
  ISSUER: z.url().default("http://localhost:8787"),
  SERVICE_ACCOUNT_EMAIL_DOMAIN: z
    .string()
    .regex(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i)
    .default("svc.keyward.dev"),
  DEFAULT_JWT_TTL_SECONDS: intVar(300, 30, 86_400),
  MAX_JWT_TTL_SECONDS: intVar(3600, 30, 86_400),
  MAX_BODY_BYTES: intVar(65_536, 1024, 1_048_576),
  JWT_SIGNING_ALG: z.enum(["ES256", "RS256", "EdDSA"]).default("ES256"),
  /** Audiences a client may ask for with `resource`/`audience`, besides the issuer itself. */
  ALLOWED_AUDIENCES: z
    .string()
    .default("")
    .transform((s) => s.split(/[\s,]+/).filter(Boolean)),
  JWKS_MAX_AGE_SECONDS: intVar(300, 0, 86_400),
  /** Lifetime of the cross-org JWTs of POST /api/v1/auth/authorize. */
  AUTHORIZE_JWT_TTL_SECONDS: intVar(86_400, 60, 7 * 86_400),
  /** Items one cron job handles per run. */
  CRON_BATCH_SIZE: intVar(200, 1, 1000),
  /**
   * Wall-clock time after which a run starts no further batch (a batch under way finishes). Well
   * under the platform's limits for scheduled invocations (paid: CPU 30 s by default, at most
   * 15 min for Cron Triggers; free: 10 ms CPU), so a run never ends mid-batch by force.
   */
  CRON_TIME_BUDGET_MS: intVar(20_000, 0, 600_000),
  /** Items one run handles across all its batches (each job at least one batch). */
  CRON_MAX_ITEMS: intVar(5_000, 1, 100_000),
  /**
   * Subrequests (KV and D1 operations, Durable Object calls) a run may spend, estimated per batch;
   * under the platform's per-invocation cap (paid: 1,000 on older plans, 10,000 now; free: 50).
   */
  CRON_SUBREQUEST_BUDGET: intVar(900, 10, 10_000),
  AUDIT_RETENTION_DAYS: intVar(365, 1, 3650),
  KEY_ROTATION_DAYS: intVar(30, 1, 365),
  /** How long an IP or client over its AUTH_FAILURES_* limit is refused (429, Retry-After). */
  RATE_LIMIT_BLOCK_SECONDS: intVar(60, 1, 3600),
  /**
   * The furthest ahead a private_key_jwt assertion's `exp` may be (RFC 7523 3: the server bounds
   * it). 3600 s by default, what common clients sign (Python Authlib's PrivateKeyJWT); each jti is
   * remembered until its assertion expires, so a longer bound means a longer replay memory.
   */
  MAX_CLIENT_ASSERTION_LIFETIME_SECONDS: intVar(3600, 60, 86_400),
  /** Origins allowed to call the API from a browser (CORS); empty: CORS off. `*` allows any. */
  CORS_ALLOWED_ORIGINS: z
    .string()
    .default("")
    .transform((s) => s.split(/[\s,]+/).filter(Boolean)),
  /**
   * External OIDC issuers a trust policy (federated credential) may name, exactly as their tokens'
   * `iss`; empty: federation off. https only, except loopback http when ISSUER is loopback.
   */
  FEDERATION_ALLOWED_ISSUERS: z
    .string()
    .default("")
    .transform((s) => s.split(/[\s,]+/).filter(Boolean)),
  /** Webhook URLs on loopback (http or https) allowed: local development and tests only (docs/webhooks.md). */
  WEBHOOK_ALLOW_LOOPBACK: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
  /** Account jwksUri on loopback (http or https) allowed: local development and tests only (docs/keys.md). */
  JWKS_URI_ALLOW_LOOPBACK: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
  /** One delivery attempt's whole exchange. */
  WEBHOOK_TIMEOUT_MS: intVar(3000, 100, 30_000),
  /** The first retry's delay; each next one is 4 times longer, up to WEBHOOK_RETRY_MAX_DELAY_SECONDS (with jitter). */
  WEBHOOK_RETRY_BASE_SECONDS: intVar(5, 1, 3600),
  WEBHOOK_RETRY_MAX_DELAY_SECONDS: intVar(21_600, 1, 43_200),
  /** How long after its event a delivery is still retried before it is marked failed. */
  WEBHOOK_RETRY_WINDOW_SECONDS: intVar(86_400, 60, 7 * 86_400),
  WEBHOOK_MAX_ATTEMPTS: intVar(12, 1, 50),
  /** An endpoint whose deliveries have all failed for this long is disabled (an event tells the org's other endpoints). */
  WEBHOOK_DISABLE_AFTER_DAYS: intVar(5, 1, 60),
  /**
   * The public keys that sign secret scanning reports (POST /api/v1/secret-scanning,
   * docs/leaked-tokens.md), as GitHub's meta endpoint serves them; empty: the endpoint is off.
   */
  SECRET_SCANNING_KEYS: z.string().default(""),
  /**
   * How long a status list token may be cached (its `ttl`, `exp` and `max-age`; docs/status-list.md):
   * the bound on how late a verifier reading the lists sees a revocation.
   */
  STATUS_LIST_TTL_SECONDS: intVar(60, 1, 3600),
  /** How old a DPoP proof's `iat` may be (plus a 30 s skew); its jti is remembered that long. */
  DPOP_PROOF_MAX_AGE_SECONDS: intVar(300, 10, 3600),
  /** Whether every DPoP proof must carry a server nonce (RFC 9449 8: `use_dpop_nonce`, `DPoP-Nonce`). */
  DPOP_REQUIRE_NONCE: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
  /** A server nonce is accepted for one to two of these periods (stateless: an HMAC of the period). */
  DPOP_NONCE_LIFETIME_SECONDS: intVar(300, 10, 86_400),
  /** Binding calls counted in the Worker and served at GET /__binding-counts (src/lib/binding-counts.ts). */
  BINDING_COUNTS: z.enum(["on", "off"]).default("off"),
});

export interface ScannerKey {
  keyIdentifier: string;
  /** PEM SubjectPublicKeyInfo of an ECDSA P-256 key. */
  pem: string;
}

const scannerKeysSchema = z.object({
  public_keys: z.array(z.object({ key_identifier: z.string().min(1).max(256), key: z.string().min(1).max(4096), is_current: z.boolean().optional() })).max(50),
});

/** SECRET_SCANNING_KEYS parsed: `{"public_keys":[{"key_identifier","key","is_current"}]}` (GitHub's meta shape); every listed key verifies. */
export function parseScannerKeys(text: string): ScannerKey[] {
  if (text.trim() === "") return [];
  let parsed: z.infer<typeof scannerKeysSchema>;
  try {
    parsed = scannerKeysSchema.parse(JSON.parse(text));
  } catch {
    throw new Error('SECRET_SCANNING_KEYS: expected {"public_keys":[{"key_identifier":"...","key":"-----BEGIN PUBLIC KEY-----...","is_current":true}]}');
  }
  return parsed.public_keys.map((k) => ({ keyIdentifier: k.key_identifier, pem: k.key }));
}

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

export const isLoopbackUrl = (url: URL) => url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname);

/**
 * Checks FEDERATION_ALLOWED_ISSUERS against ISSUER: each entry an absolute URL without query,
 * fragment or credentials; https, or http on a loopback host when ISSUER is itself loopback (local
 * development and tests). Entries are kept exactly as written: they are compared to `iss` as strings.
 */
export function parseAllowedIssuers(entries: string[], issuer: string): string[] {
  const loopbackIssuer = URL.canParse(issuer) && isLoopbackUrl(new URL(issuer));
  for (const entry of entries) {
    const url = URL.canParse(entry) ? new URL(entry) : null;
    const shapeOk = url !== null && !url.search && !url.hash && !url.username && !url.password && !entry.includes("#") && !entry.includes("?");
    const schemeOk = url !== null && (url.protocol === "https:" || (loopbackIssuer && isLoopbackUrl(url)));
    if (!shapeOk || !schemeOk) {
      throw new Error(`FEDERATION_ALLOWED_ISSUERS: ${JSON.stringify(entry)} is not an https issuer URL (loopback http only when ISSUER is loopback)`);
    }
  }
  return [...new Set(entries)];
}

export type Config = Omit<z.infer<typeof configSchema>, "SECRET_SCANNING_KEYS"> & { SECRET_SCANNING_KEYS: ScannerKey[] } & { bootstrapSecret: string | undefined; signingSecret: string | undefined };

const cache = new WeakMap<object, Config>();

/** Parses and caches the configuration once per isolate; a bad variable fails loudly at the first request. */
export function getConfig(env: Bindings): Config {
  let config = cache.get(env);
  if (!config) {
    // An empty variable counts as unset, so its default applies.
    const vars = env as unknown as Record<string, string | undefined>;
    const parsed = configSchema.parse(Object.fromEntries(Object.keys(configSchema.shape).map((k) => [k, vars[k] || undefined])));
    config = {
      ...parsed,
      ISSUER: parsed.ISSUER.replace(/\/+$/, ""),
      FEDERATION_ALLOWED_ISSUERS: parseAllowedIssuers(parsed.FEDERATION_ALLOWED_ISSUERS, parsed.ISSUER),
      SECRET_SCANNING_KEYS: parseScannerKeys(parsed.SECRET_SCANNING_KEYS),
      bootstrapSecret: env.BOOTSTRAP_SECRET,
      signingSecret: env.SIGNING_KEY_ENCRYPTION_KEY,
    };
    cache.set(env, config);
  }
  return config;
}
