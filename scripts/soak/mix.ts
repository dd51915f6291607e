/**
 * The soak's request mix: weighted picks over the hot paths, management reads and writes, and
 * wrong secrets. Each planned request knows which statuses it expects and settles its own state
 * (a created token is revoked by the next request any connection sends; a writer or rotator
 * account is leased to one request chain at a time, as an account holds one active token).
 */
import { generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import type { AssertionPool } from "../bench/assertions.ts";
import type { LoadRequest } from "../bench/load.ts";
import { assertionRequest, basicAuth, basicRequest, exchangeRequest, form, listAccountsRequest } from "../bench/requests.ts";
import type { BenchAccount } from "../bench/seed.ts";

export const KINDS = ["exchange", "client-basic", "private-key-jwt", "list-accounts", "get-account", "create-token", "revoke-token", "regenerate", "bad-secret"] as const;
export type Kind = (typeof KINDS)[number];

/** Relative weights of the picks; revoke-token follows every create-token and is not picked. */
export const WEIGHTS: Record<Exclude<Kind, "revoke-token">, number> = {
  exchange: 35,
  "client-basic": 20,
  "private-key-jwt": 10,
  // A listing costs over 15 exchanges (README "Performance"): a small weight keeps it from owning the connections.
  "list-accounts": 2,
  "get-account": 12,
  "create-token": 3,
  regenerate: 2,
  "bad-secret": 10,
};

/**
 * Wrong secrets claim one of this many made-up client ids, each from its own address
 * (`cf-connecting-ip`), so that no key nears the failure limits (20/min per client, 100/min per
 * IP) at the rates a 2-core machine reaches: they exercise the full 401 path, not the 429 one.
 */
const BAD_KEYS = 4096;

export interface Planned {
  kind: Kind;
  request: LoadRequest;
  /** Statuses that are no error: 2xx for good requests, 401 and 429 for wrong secrets. */
  expected: readonly number[];
  /** Called with the response; frees leases and queues the revoke of a created token. */
  settle(status: number, body: string): void;
}

export interface MixAccounts {
  org: string;
  rootToken: string;
  /** Viewers with a token (the hot paths and reads); those with `key` also use private_key_jwt. */
  clients: BenchAccount[];
  /** Accounts without a token: each create-token issues one, the next request revokes it. */
  writers: string[];
  /** Accounts whose one token is regenerated. */
  rotators: { id: string; tokenId: string }[];
}

export class SoakMix {
  private readonly accounts: MixAccounts;
  private readonly pool: AssertionPool;
  private readonly freeWriters: string[];
  private readonly freeRotators: { id: string; tokenId: string }[];
  private readonly revokes: { accountId: string; tokenId: string }[] = [];
  private readonly total: number;
  private turn = 0;
  private bad = 0;

  constructor(accounts: MixAccounts, pool: AssertionPool) {
    this.accounts = accounts;
    this.pool = pool;
    this.freeWriters = [...accounts.writers];
    this.freeRotators = [...accounts.rotators];
    this.total = Object.values(WEIGHTS).reduce((s, w) => s + w, 0);
  }

  /** The next request: a pending revoke first, else a weighted pick. */
  next(): Planned {
    if (this.revokes.length > 0) return this.plan("revoke-token")!;
    let r = Math.random() * this.total;
    for (const [kind, weight] of Object.entries(WEIGHTS) as [Kind, number][]) {
      r -= weight;
      if (r < 0) return this.plan(kind) ?? this.plan("get-account")!;
    }
    return this.plan("exchange")!;
  }

  /** A request of this kind, or null when it cannot be sent now (no free account, nothing to revoke). */
  plan(kind: Kind): Planned | null {
    const { org, rootToken, clients } = this.accounts;
    const planned = (request: LoadRequest, expected: readonly number[] = [200], settle: Planned["settle"] = () => {}): Planned => ({ kind, request, expected, settle });
    const client = () => clients[this.turn++ % clients.length]!;
    const asRoot = { authorization: `Bearer ${rootToken}`, "content-type": "application/json" };
    const tokens = (accountId: string) => `/api/v1/orgs/${org}/service-accounts/${accountId}/tokens`;
    switch (kind) {
      case "exchange":
        return planned(exchangeRequest(client().token));
      case "client-basic":
        return planned(basicRequest(client()));
      case "private-key-jwt":
        return planned(assertionRequest(this.pool.next()));
      case "list-accounts":
        return planned(listAccountsRequest(org, client().token));
      case "get-account": {
        const [reader, read] = [client(), client()];
        return planned({ method: "GET", path: `/api/v1/orgs/${org}/service-accounts/${read.id}`, headers: { authorization: `Bearer ${reader.token}` } });
      }
      case "create-token": {
        const accountId = this.freeWriters.pop();
        if (accountId === undefined) return null;
        return planned({ method: "POST", path: tokens(accountId), headers: asRoot, body: JSON.stringify({ name: "soak" }) }, [201], (status, body) => {
          if (status === 201) this.revokes.push({ accountId, tokenId: (JSON.parse(body) as { id: string }).id });
          else this.freeWriters.push(accountId);
        });
      }
      case "revoke-token": {
        const revoke = this.revokes.shift();
        if (revoke === undefined) return null;
        return planned({ method: "DELETE", path: `${tokens(revoke.accountId)}/${revoke.tokenId}`, headers: { authorization: asRoot.authorization } }, [204], () => this.freeWriters.push(revoke.accountId));
      }
      case "regenerate": {
        const rotator = this.freeRotators.pop();
        if (rotator === undefined) return null;
        return planned({ method: "POST", path: `${tokens(rotator.id)}/${rotator.tokenId}/regenerate`, headers: asRoot, body: JSON.stringify({ graceSeconds: 0 }) }, [200], () => this.freeRotators.push(rotator));
      }
      case "bad-secret": {
        const n = this.bad++ % BAD_KEYS;
        const ip = `10.77.${n >> 8}.${n & 255}`;
        return planned(
          {
            method: "POST",
            path: "/oauth/token",
            headers: { "content-type": "application/x-www-form-urlencoded", authorization: basicAuth(`sa_soak_${n}`, generateAccessToken()), "cf-connecting-ip": ip },
            body: form({ grant_type: "client_credentials" }),
          },
          [401, 429],
        );
      }
    }
  }
}
