import type { ResolvedCredential } from "../credentials/resolver.ts";
import type { AccountClaims } from "../credentials/kv-records.ts";
import { MAX_ACTOR_JTIS, MAX_DELEGATION_DEPTH, type ActClaim, type JwtSource } from "../signing/jwt.ts";

/**
 * RFC 8693 delegation: a subject token exchanged with an `actor_token` gives the subject's JWT
 * (its account, its scope at most) with `act` naming the actor, so that a bot calling a bot stays
 * attributable. The rules (docs/dpop.md, "Delegation"):
 *   - the actor is one of our credentials, resolved like the subject (alive, within its network
 *     bounds, of its key when DPoP-bound); it is a service account of the org the new JWT is for;
 *   - `act` is the actor, nested with the actor token's own `act` and then the subject's: the
 *     actors most recent first, at most MAX_DELEGATION_DEPTH;
 *   - the new JWT carries the actors' credentials in its lineage (`act_token_ids`, `act_jtis`):
 *     revoking an actor's access token or JWT kills it, as revoking the subject's does.
 * Delegation gives the actor nothing it did not hold: it presents the subject token itself.
 */


const actorsOf = (act: ActClaim | undefined): string[] => {
  const subs: string[] = [];
  for (let a = act; a; a = a.act) subs.push(a.sub);
  return subs;
};

const nest = (subs: string[]): ActClaim | undefined => subs.reduceRight<ActClaim | undefined>((inner, sub) => ({ sub, ...(inner ? { act: inner } : {}) }), undefined);

/** The delegated JWT's source and `act`, or why the delegation is refused (an invalid_grant). */
export function delegation(subject: ResolvedCredential, actor: ResolvedCredential, account: AccountClaims): { source: JwtSource; act: ActClaim } | { refused: string } {
  const orgId = account.orgId;
  if (orgId === null || actor.account.orgId !== orgId || (actor.orgLimit !== undefined && actor.orgLimit !== orgId)) {
    return { refused: "The actor must be a service account of the org the token is for" };
  }
  if (!actor.derivedSource) return { refused: "The actor token is at the end of its exchange chain: use the access token it came from" };
  const chain = [actor.account.accountId, ...actorsOf(actor.jwt?.act), ...actorsOf(subject.jwt?.act)];
  if (chain.length > MAX_DELEGATION_DEPTH) return { refused: `Delegation is at most ${MAX_DELEGATION_DEPTH} actors deep` };
  const base = subject.derivedSource!;
  const actorSource = actor.derivedSource;
  const tokenIds = new Set([...(base.actors?.tokenIds ?? []), ...(actorSource.actors?.tokenIds ?? [])]);
  if (actorSource.tokenId) tokenIds.add(actorSource.tokenId);
  const jtis = new Set([...(base.actors?.jtis ?? []), ...(actorSource.actors?.jtis ?? []), ...actorSource.jtis]);
  if (tokenIds.size > MAX_DELEGATION_DEPTH || jtis.size > MAX_ACTOR_JTIS) return { refused: "The actors' lineage is too long" };
  return { source: { tokenId: base.tokenId, jtis: base.jtis, statusIdx: base.statusIdx, actors: { tokenIds: [...tokenIds], jtis: [...jtis] } }, act: nest(chain)! };
}
