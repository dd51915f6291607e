/**
 * The CLI's one way to the server: plain fetch, problem details and OAuth errors turned into
 * CliErrors with the right exit code. Everything else in src/cli calls through here, so a typed SDK
 * can replace it later without touching the commands.
 */
import { CliError, EXIT, exitForStatus } from "./errors.ts";
import type { Settings } from "./config.ts";

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  form?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  /** Send no Authorization header (public endpoints, OAuth grants that authenticate in the body). */
  anonymous?: boolean;
}

export interface ApiClient {
  base: string;
  request<T = unknown>(method: string, path: string, options?: RequestOptions): Promise<T>;
}

/** RFC 9457 problem details as Keyward sends them. */
interface Problem {
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  requestId?: string;
  errors?: { path: string; message: string }[];
  missing?: string[];
  error?: string;
  error_description?: string;
}

export function client(settings: Pick<Settings, "url" | "token" | "tokenSource">, needToken = true): ApiClient {
  const base = requireUrl(settings.url);
  if (needToken && !settings.token) {
    throw new CliError("Not logged in: run `keyward login --url URL` or set KEYWARD_TOKEN", EXIT.auth);
  }
  return {
    base,
    async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
      const url = new URL(base + path);
      for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
      const headers: Record<string, string> = { accept: "application/json", "user-agent": "keyward-cli", ...options.headers };
      if (!options.anonymous && settings.token) headers.authorization = `Bearer ${settings.token}`;
      let body: string | undefined;
      if (options.form) {
        headers["content-type"] = "application/x-www-form-urlencoded";
        const form = new URLSearchParams();
        for (const [k, v] of Object.entries(options.form)) if (v !== undefined) form.set(k, v);
        body = form.toString();
      } else if (options.body !== undefined) {
        headers["content-type"] = "application/json";
        body = JSON.stringify(options.body);
      }
      let res: Response;
      try {
        res = await fetch(url, { method, headers, body, redirect: "error", signal: AbortSignal.timeout(30_000) });
      } catch (err) {
        throw networkError(base, err);
      }
      const text = await res.text();
      if (!res.ok) throw httpError(method, path, res.status, text);
      if (!text) return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new CliError(`${method} ${path}: the server answered ${res.status} with a body that is not JSON`, EXIT.server);
      }
    },
  };
}

export function requireUrl(url: string | undefined): string {
  if (!url) throw new CliError("No server URL: run `keyward login --url URL`, pass --url or set KEYWARD_URL", EXIT.usage);
  return url;
}

export function networkError(base: string, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  return new CliError(`Cannot reach ${base} (${why}): is the server running and the URL right?`, EXIT.server);
}

/** A readable error from a problem+json or RFC 6749 body (never echoing request secrets: only what the server said). */
export function httpError(method: string, path: string, status: number, text: string): CliError {
  let p: Problem = {};
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object") p = parsed as Problem;
  } catch {
    // not JSON: report the status alone
  }
  const details: string[] = [];
  let message: string;
  if (p.code || p.title) {
    message = `${p.title ?? "Error"} (${status}${p.code ? ` ${p.code}` : ""})${p.detail ? `: ${p.detail}` : ""}`;
    for (const e of p.errors ?? []) details.push(`  ${e.path || "(body)"}: ${e.message}`);
    if (p.missing?.length) details.push(`  missing permissions: ${p.missing.join(", ")}`);
  } else if (p.error) {
    message = `${p.error} (${status})${p.error_description ? `: ${p.error_description}` : ""}`;
  } else {
    message = `${method} ${path} failed with HTTP ${status}`;
  }
  if (p.requestId) details.push(`  request id: ${p.requestId}`);
  return new CliError(message, exitForStatus(status), details);
}

/** Every page of a list endpoint (`{items, nextCursor}`), or one page when `all` is false. */
export async function listPages<T>(api: ApiClient, path: string, query: Query, all: boolean): Promise<{ items: T[]; nextCursor: string | null }> {
  const items: T[] = [];
  let cursor = query.cursor as string | undefined;
  for (;;) {
    const page = await api.request<{ items: T[]; nextCursor: string | null }>("GET", path, { query: { ...query, cursor } });
    items.push(...page.items);
    if (!all || !page.nextCursor) return { items, nextCursor: page.nextCursor };
    cursor = page.nextCursor;
  }
}

/** A path segment, escaped (ids and slugs are plain, but a user may type anything). */
export const seg = (s: string) => encodeURIComponent(s);
