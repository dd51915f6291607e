/**
 * The conditions of a trust policy (federated-credentials.ts) on an external token's claims, after
 * its signature, `iss`, `aud` and times were verified. The rule (docs/federation.md):
 *  - `subject`, when set, equals `sub` exactly (no glob);
 *  - each entry of `claims` names a claim and a pattern: the claim must be present and a string
 *    that matches, or an array with at least one string element that matches;
 *  - a pattern without `*` is compared exactly; `*` matches any run of characters without `:`
 *    (so `repo:acme/*:environment:prod` never spans two segments), `**` any run at all; `?`, `[`
 *    and every other character are literal; three or more `*` in a row are refused;
 *  - a claim name is a top-level claim, or a dotted path into nested objects
 *    (`kubernetes.io.namespace`): a key that itself contains dots is taken whole first.
 * Every condition must hold. Matching runs in O(pattern x value), whatever the pattern.
 */

export const MAX_PATTERN_LENGTH = 256;
/** Longer claim values are not matched (no issuer sends such claims; it bounds the work). */
export const MAX_CLAIM_VALUE_LENGTH = 4096;
const MAX_ARRAY_ELEMENTS = 256;

export interface ClaimConditions {
  subject: string | null;
  claims: Record<string, string>;
}

export type MatchResult = { ok: true } | { ok: false; reason: string };

const STAR = -1;
const DOUBLE_STAR = -2;

/** Why a pattern is refused, or null when it is usable. */
export function patternProblem(pattern: string): string | null {
  if (pattern.length === 0) return "A pattern must not be empty";
  if (pattern.length > MAX_PATTERN_LENGTH) return `A pattern is at most ${MAX_PATTERN_LENGTH} characters`;
  if (pattern.includes("***")) return "Three or more '*' in a row mean nothing; use '*' (within a ':' segment) or '**' (anything)";
  if (/^\*+$/.test(pattern)) return "A pattern of only '*' matches every value; name the value, or drop the condition";
  return null;
}

/** Pattern -> tokens: UTF-16 code units, STAR, DOUBLE_STAR. */
function tokens(pattern: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === "*") {
      if (pattern[i + 1] === "*") {
        out.push(DOUBLE_STAR);
        i++;
      } else out.push(STAR);
    } else out.push(pattern.charCodeAt(i));
  }
  return out;
}

const COLON = ":".charCodeAt(0);

/** Whether `value` matches `pattern` (the rule above). An unusable pattern matches nothing. */
export function matchesPattern(pattern: string, value: string): boolean {
  if (patternProblem(pattern) !== null || value.length > MAX_CLAIM_VALUE_LENGTH) return false;
  if (!pattern.includes("*")) return pattern === value;
  const t = tokens(pattern);
  const n = t.length;
  // The set of pattern positions reachable after each value character (an NFA run, no backtracking).
  let current = new Uint8Array(n + 1);
  let next = new Uint8Array(n + 1);
  const close = (set: Uint8Array) => {
    for (let i = 0; i < n; i++) if (set[i] && t[i]! < 0) set[i + 1] = 1;
  };
  current[0] = 1;
  close(current);
  for (let v = 0; v < value.length; v++) {
    const ch = value.charCodeAt(v);
    next.fill(0);
    let any = false;
    for (let i = 0; i < n; i++) {
      if (!current[i]) continue;
      const tok = t[i]!;
      if (tok === DOUBLE_STAR || (tok === STAR && ch !== COLON)) next[i] = 1;
      else if (tok === ch) next[i + 1] = 1;
      else continue;
      any = true;
    }
    if (!any) return false;
    close(next);
    [current, next] = [next, current];
  }
  return current[n] === 1;
}

/** The value of a claim by name: the top-level key, else a dotted path (longest key first at each level). */
export function claimValue(claims: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  const parts = name.split(".");
  for (let k = parts.length - 1; k >= 1; k--) {
    const key = parts.slice(0, k).join(".");
    const inner = Object.hasOwn(claims, key) ? claims[key] : undefined;
    if (inner !== null && typeof inner === "object" && !Array.isArray(inner)) {
      const found = claimValue(inner as Record<string, unknown>, parts.slice(k).join("."));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function claimMatches(pattern: string, value: unknown): boolean {
  if (typeof value === "string") return matchesPattern(pattern, value);
  if (Array.isArray(value)) return value.slice(0, MAX_ARRAY_ELEMENTS).some((v) => typeof v === "string" && matchesPattern(pattern, v));
  return false;
}

/**
 * Whether a verified token's claims satisfy a policy's conditions. The reason names the failed
 * condition (for the audit log), never the claim's value.
 */
export function policyMatches(policy: ClaimConditions, claims: Record<string, unknown>): MatchResult {
  const entries = Object.entries(policy.claims);
  if (policy.subject === null && entries.length === 0) return { ok: false, reason: "the policy has no condition" };
  if (policy.subject !== null && claims.sub !== policy.subject) return { ok: false, reason: "sub does not equal the policy's subject" };
  for (const [name, pattern] of entries) {
    const value = claimValue(claims, name);
    if (value === undefined) return { ok: false, reason: `claim ${name} is missing` };
    if (!claimMatches(pattern, value)) return { ok: false, reason: `claim ${name} does not match` };
  }
  return { ok: true };
}
