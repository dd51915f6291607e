import { TOKEN_PREFIX } from "./access-token.ts";
import type { Ctx } from "../shared/context.ts";
import { liveAccountRecord, verifyAccessToken } from "./record-cache.ts";
import { MAX_EXCHANGE_DEPTH, NO_SOURCE, sourceOf, verifyJwt, type JwtSource, type VerifiedJwt } from "../signing/jwt.ts";
import { auditFederationRefused, isForeignToken, verifyFederatedToken, type FederatedMatch } from "./federated-tokens.ts";
import { accountKey, credentialExpiry, type AccountClaims, type AccountRecord } from "./kv-records.ts";
import { replayCache, syncAccounts } from "./account-object.ts";
import { narrowedClaims } from "./token-limits.ts";
import { auditedNetworkCheck } from "./network.ts";
import { recordUse } from "./usage.ts";
import { boundThumbprint, invalidProof, verifyDpopProof, type ProofRequest } from "./dpop.ts";
import { DomainError } from "../shared/errors.ts";

/**
 * The one place a presented credential becomes a resolved one. Every endpoint that accepts a
 * credential calls `resolveCredential` (bearer on the management API, the exchange endpoint, the
 * RFC 8693 subject token, the access token used as client_secret, introspection, revocation), or
 * `resolveAccount` for the account a private_key_jwt assertion names. The checks live here once:
 * the access token's record and expiry, the JWT's signature, claims and revocation (its own jti,
 * its ancestors' and its root access token's), the account being alive, the account's network
 * bounds, a token's own restrictions (its scopes narrow the account's, its networks apply beside
 * the account's, and a token with a use limit spends one use, counted by the account's Durable
 * Object, each time it is accepted to act or to exchange), and the recording of uses. A new kind of credential is one new branch of `resolveCredential`.
 * `federated`: an external OIDC token (its issuer not ours) that a trust policy accepts
 * (federated-tokens.ts) stands for the policy's account; a refusal is audited there.
 */

export type CredentialKind = "access_token" | "jwt" | "federated";

/**
 * Why a credential is presented, which decides the checks that concern its holder:
 *   act       by its holder, to act with it (bearer): network bounds apply, and the use is recorded here;
 *   exchange  by its holder, to get a JWT for it (the exchange endpoint, an RFC 8693 subject token,
 *             a client secret at the token endpoint): network bounds apply, and the use is recorded
 *             with the JWT once it is issued (issueJwtFor), so that a refused exchange counts nothing;
 *   inspect   by a third party asking about it (introspection, revocation): the holder's network
 *             bounds say nothing about the request, and nothing is recorded.
 */
export type CredentialPurpose = "act" | "exchange" | "inspect";

export interface CredentialQuery {
  purpose: CredentialPurpose;
  /** Whether an access token (`sat_…`) is accepted. */
  accessToken: boolean;
  /** Whether our JWTs are accepted: for this audience, for any (null), or not at all (false). */
  jwtAudience: string | null | false;
  /** The account the credential must belong to (a client_secret is only its client_id's). */
  accountId?: string | undefined;
  /**
   * Whether external tokens (a JWT whose `iss` is not ours) are accepted through the trust
   * policies; `accountId` then chooses among accounts whose policies all hold.
   */
  federated?: boolean | undefined;
  /**
   * How the presenter proves it holds the key a DPoP-bound JWT (`cnf.jkt`) is bound to: the DPoP
   * proof of a resource request, verified here over the token (`ath`); or the thumbprint of the
   * proof the token endpoint already verified (null: it sent none). Absent: a bound JWT is refused
   * (dpop_required), whatever else it would pass.
   */
  possession?: { proof: ProofRequest & { header: string | undefined } } | { verifiedJkt: string | null } | undefined;
}

export interface ResolvedCredential {
  kind: CredentialKind;
  /** The access token's id, or the JWT's jti. */
  id: string;
  /** The claims of the account, from its live KV record (its home org's, for a JWT too). */
  account: AccountClaims;
  /** When the credential stops being valid (epoch ms), null for never. */
  expiresAt: number | null;
  /** What a JWT minted from this credential carries as its source, or null when the chain is at its bound. */
  derivedSource: JwtSource | null;
  /** A JWT's scope, or an access token's own scopes: its operations are the most it can do. */
  scopeLimit?: string[] | undefined;
  /** An access token with a use limit: each accepted use is counted by the account's Durable Object. */
  limitedUses?: boolean | undefined;
  /** Inspected (not used) tokens with a use limit: the uses left, as the account's object counts them. */
  usesLeft?: number | undefined;
  /** A JWT's org_id: the only org it is for. */
  orgLimit?: string | undefined;
  /** A JWT's verified claims. */
  jwt?: VerifiedJwt | undefined;
  /** An external token's verified claims and the trust policy that took it. */
  federated?: FederatedMatch | undefined;
  /** The key thumbprint a JWT is bound to (RFC 9449 `cnf.jkt`), whose possession was proven. */
  jkt?: string | undefined;
}

/** The credential `presented` resolves to under `query`, or null (one answer for every failure). */
export async function resolveCredential(ctx: Ctx, presented: string, query: CredentialQuery): Promise<ResolvedCredential | null> {
  let resolved: ResolvedCredential | null = null;
  if (presented.startsWith(TOKEN_PREFIX)) {
    if (query.accessToken) resolved = await resolveAccessToken(ctx, presented);
  } else if (query.federated && isForeignToken(presented, ctx.config.ISSUER)) {
    resolved = await resolveFederated(ctx, presented, query.accountId);
  } else if (query.jwtAudience !== false) {
    resolved = await resolveJwt(ctx, presented, query.jwtAudience);
  }
  if (!resolved || (query.accountId !== undefined && resolved.account.accountId !== query.accountId)) return null;
  if (query.purpose === "inspect") {
    if (resolved.limitedUses) resolved.usesLeft = await replayCache(ctx, resolved.account.accountId).usesLeft(resolved.account.accountId, resolved.id);
    return resolved;
  }
  if (resolved.jkt !== undefined) await assertPossession(ctx, resolved.jkt, presented, query.possession);
  if (!auditedNetworkCheck(ctx, resolved.account)) return null;
  // Never answered from a cached record: only the object knows what is left.
  if (resolved.limitedUses && !(await spendUse(ctx, resolved))) return null;
  if (query.purpose === "act") recordUse(ctx, { accountId: resolved.account.accountId, tokenId: resolved.kind === "access_token" ? resolved.id : undefined });
  return resolved;
}

/**
 * RFC 9449: the presenter of a bound JWT holds its key. Throws (unlike every other failure, which
 * is null) so that the caller learns what to send: dpop_required for a bound JWT without a proof
 * (RFC 9449 7.2: never accepted as a bearer token), invalid_dpop_proof for a proof that fails or is
 * of another key.
 */
async function assertPossession(ctx: Ctx, jkt: string, presented: string, possession: CredentialQuery["possession"]): Promise<void> {
  let proven: string | null = null;
  if (possession && "proof" in possession) {
    if (possession.proof.header === undefined) throw new DomainError("dpop_required", "This token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof");
    proven = (await verifyDpopProof(ctx, possession.proof.header, { ...possession.proof, accessToken: presented })).jkt;
  } else if (possession) {
    proven = possession.verifiedJkt;
  }
  if (proven === null) throw new DomainError("dpop_required", "This token is DPoP-bound: present it with a DPoP proof of its key");
  if (proven !== jkt) throw invalidProof("the proof's key is not the one the token is bound to");
}

/**
 * The live account a client names (private_key_jwt: the assertion's `sub`), with its public keys,
 * or null; its network bounds apply. The assertion itself is verified by client authentication.
 */
export async function resolveAccount(ctx: Ctx, accountId: string): Promise<AccountRecord | null> {
  const record = await liveAccountRecord(ctx.env, accountId, ctx.now());
  return record && auditedNetworkCheck(ctx, record.account) ? record : null;
}

async function resolveAccessToken(ctx: Ctx, token: string): Promise<ResolvedCredential | null> {
  const record = await verifyAccessToken(ctx.env, token, ctx.now());
  if (!record) return null;
  return {
    kind: "access_token",
    id: record.tokenId,
    account: narrowedClaims(record),
    expiresAt: credentialExpiry(record),
    derivedSource: { tokenId: record.tokenId, jtis: [], statusIdx: record.statusIdx ?? null },
    scopeLimit: record.scopes,
    limitedUses: record.limitedUses,
  };
}

/** Spends one use of a limited token in the account's Durable Object; false when none is left. */
async function spendUse(ctx: Ctx, resolved: ResolvedCredential): Promise<boolean> {
  const { accountId } = resolved.account;
  const outcome = await replayCache(ctx, accountId).useToken(accountId, resolved.id, ctx.meta);
  return outcome.accepted;
}

async function resolveJwt(ctx: Ctx, token: string, audience: string | null): Promise<ResolvedCredential | null> {
  const jwt = await verifyJwt(ctx, token, audience);
  const live = jwt ? await liveAccountRecord(ctx.env, jwt.sub, ctx.now()) : null;
  const source = jwt && sourceOf(jwt, ctx.config.ISSUER);
  if (!jwt || !live || !source) return null;
  const jtis = [...source.jtis, jwt.jti];
  const jkt = boundThumbprint(jwt);
  // A `cnf` that names no thumbprint binds to nothing anyone could prove.
  if (jkt === null) return null;
  return {
    kind: "jwt",
    id: jwt.jti,
    account: live.account,
    expiresAt: Math.min(jwt.exp * 1000, live.account.expiresAt ?? Infinity),
    derivedSource: jtis.length <= MAX_EXCHANGE_DEPTH ? { tokenId: source.tokenId, jtis, statusIdx: source.statusIdx, actors: source.actors } : null,
    scopeLimit: (jwt.scope ?? "").split(" ").filter(Boolean),
    orgLimit: jwt.org_id,
    jwt,
    jkt,
  };
}

/**
 * The live record of a federated account. An account that never held a token or a key has no KV
 * record yet (federation needs no stored secret): its object writes it from D1 on first use.
 */
async function federatedAccountRecord(ctx: Ctx, accountId: string): Promise<AccountRecord | null> {
  const live = await liveAccountRecord(ctx.env, accountId, ctx.now());
  if (live || (await ctx.env.TOKENS.get(accountKey(accountId))) !== null) return live;
  await syncAccounts(ctx, [accountId]).catch(() => undefined);
  return liveAccountRecord(ctx.env, accountId, ctx.now());
}

/** An external token a trust policy accepts: the policy's account, alive and still of the policy's org. */
async function resolveFederated(ctx: Ctx, token: string, accountId: string | undefined): Promise<ResolvedCredential | null> {
  const outcome = await verifyFederatedToken(ctx, token, accountId);
  if (!outcome.ok) {
    auditFederationRefused(ctx, outcome);
    return null;
  }
  const { policy, claims, sub } = outcome.match;
  const live = await federatedAccountRecord(ctx, policy.serviceAccountId);
  if (!live || live.account.orgId !== policy.orgId) {
    auditFederationRefused(ctx, { reason: "the policy's account is not active", iss: claims.iss, sub, candidates: [policy] });
    return null;
  }
  return {
    kind: "federated",
    id: policy.id,
    account: live.account,
    // A JWT for an external token lives no longer than the token itself.
    expiresAt: Math.min(claims.exp * 1000, live.account.expiresAt ?? Infinity),
    derivedSource: { ...NO_SOURCE, statusIdx: policy.statusIdx ?? null },
    federated: outcome.match,
  };
}
