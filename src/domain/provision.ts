import type { Ctx } from "./context.ts";
import { createAccount, type CreateAccountInput } from "./accounts.ts";
import { orgFor } from "./orgs.ts";
import type { Principal } from "./principal.ts";
import { addKeyTo, parsePublicKey } from "./public-keys.ts";
import { issueFor, policyOf, tokenExpiry, type IssueTokenInput } from "./tokens.ts";

export interface ProvisionInput extends CreateAccountInput {
  publicKey?: string | Record<string, unknown> | undefined;
  issueToken?: boolean | IssueTokenInput | undefined;
}

/**
 * Creates an account with its first credentials (the Dfns `publicKey`, a first token). Everything
 * that can be refused (the key, the token's lifetime under the org policy) is checked before the
 * account exists, so a refused create leaves nothing behind.
 */
export async function provisionAccount(ctx: Ctx, principal: Principal, orgRef: string, input: ProvisionInput) {
  const { publicKey, issueToken, ...accountInput } = input;
  const tokenInput = issueToken === true ? {} : issueToken || undefined;
  if (publicKey !== undefined) await parsePublicKey(publicKey);
  if (tokenInput) tokenExpiry(tokenInput, policyOf(await orgFor(ctx, principal, orgRef, "service-accounts.edit")), ctx.now());
  const { org, account } = await createAccount(ctx, principal, orgRef, accountInput);
  if (publicKey !== undefined) await addKeyTo(ctx, account.id, org.id, { publicKey });
  const issued = tokenInput ? await issueFor(ctx, org, account.id, tokenInput) : undefined;
  return { account, issued };
}
