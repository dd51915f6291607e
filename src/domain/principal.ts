/** An authenticated caller: always a service account, reached through one of its credentials. */
export interface Principal {
  accountId: string;
  /** The account's home org; null for platform-level accounts. */
  orgId: string | null;
  platformPermissions: string[];
  credential: { type: "access_token"; tokenId: string } | { type: "jwt"; jti: string };
  /** A JWT's scope: its operations are the most the principal can do, whatever its roles. */
  scopeLimit?: string[] | undefined;
}
