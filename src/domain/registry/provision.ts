import { createAccount, resolveValidity, type CreateAccountInput } from "./accounts.ts";
import { orgFor, policyOf } from "./orgs.ts";
import { withPermission } from "../access/permissions.ts";
import { addKeyTo, parsePublicKey } from "../credentials/public-keys.ts";
import { syncAccounts } from "../credentials/account-object.ts";
import { issueFor, tokenExpiry, type IssueTokenInput } from "../credentials/tokens.ts";
import { checkRestrictions } from "../credentials/token-limits.ts";
import type { AccountClaims } from "../credentials/kv-records.ts";
import { DomainError } from "../shared/errors.ts";

export interface ProvisionInput extends CreateAccountInput {
  publicKey?: string | Record<string, unknown> | undefined;
  issueToken?: boolean | IssueTokenInput | undefined;
}

/**
 * Creates an account with its first credentials (a public key, a first token). Everything that
 * can be refused (the key, the token's lifetime under the org policy and the account's validity,
 * the token's own scopes and networks against the account's)
 * is checked before the account exists, so a refused create leaves nothing behind. Minting those
 * credentials needs no escalation guard: the account holds only what the caller could grant it
 * (each role is checked by planAssignments, allowedScopes need this operation's permission).
 */
export const provisionAccount = withPermission("service-accounts.edit", async (gate, orgRef: string, input: ProvisionInput) => {
  const { ctx, principal } = gate;
  const { publicKey, issueToken, ...accountInput } = input;
  const tokenInput = issueToken === true ? {} : issueToken || undefined;
  const org = await orgFor(gate, orgRef);
  if (publicKey !== undefined) await parsePublicKey(publicKey);
  if (tokenInput) tokenExpiry(tokenInput, policyOf(org), ctx.now(), resolveValidity(accountInput, ctx.now()) ?? null);
  // The token's own scopes and networks are checked against the claims the account is created with.
  const checkToken = tokenInput
    ? (claims: AccountClaims) => {
        const checked = checkRestrictions(tokenInput, claims, ctx.now());
        if (!checked.ok) throw new DomainError(checked.code, checked.detail);
      }
    : undefined;
  const account = await createAccount(ctx, principal, org, accountInput, checkToken);
  if (publicKey !== undefined) await addKeyTo(ctx, account.id, org.id, { publicKey }, policyOf(org));
  // A jwksUri-only account has no key or token to write its KV record with: its object writes it now.
  else if (account.jwksUri !== null && !tokenInput) await syncAccounts(ctx, [account.id]);
  const issued = tokenInput ? await issueFor(ctx, org, account.id, tokenInput, account.expiresAt) : undefined;
  return { account, issued };
});
