import { ipAllowed } from "../../lib/cidr.ts";
import { auditInsert } from "../audit/audit-log.ts";
import type { Ctx } from "../shared/context.ts";
import type { AccountClaims } from "./kv-records.ts";

/**
 * Network bounds: an account with allowed CIDRs may use its credentials only from inside them
 * (the client address is CF-Connecting-IP). Returns whether this request may; a use from outside
 * is refused like a bad credential by the caller, and audited here (credential.refused_network)
 * off the response path. An access token with its own networks must also be used from inside one
 * of them. Only the credential resolver calls it.
 */
export function auditedNetworkCheck(ctx: Ctx, account: AccountClaims): boolean {
  const cidrs = account.allowedCidrs ?? [];
  const inAccount = cidrs.length === 0 || ipAllowed(ctx.meta.ip, cidrs);
  if (inAccount && (!account.tokenCidrs || ipAllowed(ctx.meta.ip, account.tokenCidrs))) return true;
  ctx.waitUntil(
    auditInsert(ctx, {
      action: "credential.refused_network",
      orgId: account.orgId,
      targetType: "service_account",
      targetId: account.accountId,
      details: { ip: ctx.meta.ip },
    }).then(
      () => undefined,
      () => undefined,
    ),
  );
  return false;
}
