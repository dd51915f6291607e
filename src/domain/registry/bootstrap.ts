import { serviceAccounts, systemState } from "../../db/schema.ts";
import { DomainError } from "../shared/errors.ts";
import { timingSafeEqualString } from "../../lib/crypto.ts";
import { auditInsert } from "../audit/audit-log.ts";
import { isUnauthenticated } from "../credentials/bearer.ts";
import { failureKeys, limitFailedAttempts } from "../credentials/failure-limits.ts";
import type { Ctx } from "../shared/context.ts";
import { isUniqueViolation } from "../shared/sql-errors.ts";
import { platformAccount } from "./platform-accounts.ts";
import { issueFor } from "../credentials/tokens.ts";

/**
 * Creates the platform root service account (all permissions) and its first token, once. The
 * `system_state` primary key makes concurrent bootstraps race-safe: one wins, the rest get 409.
 */
export async function bootstrap(ctx: Ctx, presented: string) {
  const secret = ctx.config.bootstrapSecret;
  if (!secret) throw new DomainError("bootstrap_not_configured", "Set the BOOTSTRAP_SECRET secret to enable bootstrap");
  await limitFailedAttempts(ctx, () => failureKeys(ctx, "bootstrap"), isUnauthenticated, async () => {
    if (!(await timingSafeEqualString(presented, secret))) {
      throw new DomainError("unauthenticated", "The bootstrap secret does not match");
    }
  });
  const now = ctx.now();
  const account = platformAccount(ctx, {
    name: "root",
    email: `root@platform.${ctx.config.SERVICE_ACCOUNT_EMAIL_DOMAIN}`,
    displayName: "Platform root",
    description: "Created by bootstrap; holds every permission",
    permissions: ["platform.root"],
    createdBy: "bootstrap",
  });
  const audited = { ...ctx, meta: { ...ctx.meta, actorId: account.id } };
  try {
    await ctx.db.batch([
      ctx.db.insert(systemState).values({ key: "bootstrap", value: account.id, createdAt: now }),
      ctx.db.insert(serviceAccounts).values(account),
      auditInsert(audited, { action: "platform.bootstrapped", orgId: null, targetType: "service_account", targetId: account.id }),
    ]);
  } catch (err) {
    if (isUniqueViolation(err, "system_state") || isUniqueViolation(err, "name_key")) {
      throw new DomainError("already_bootstrapped", "Bootstrap has already been done; use the root token it returned");
    }
    throw err;
  }
  const { token, secret: tokenSecret } = await issueFor(audited, null, account.id, {});
  return { account, token, secret: tokenSecret };
}
