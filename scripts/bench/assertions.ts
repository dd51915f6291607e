/**
 * private_key_jwt client assertions (RFC 7523): pre-signed with jose, one per request (the Worker
 * accepts a jti once), signed synchronously with node:crypto when the pool runs dry.
 */
import { randomUUID, sign as nodeSign } from "node:crypto";
import { SignJWT } from "jose";
import type { RoundStats } from "./load.ts";
import type { ScenarioHooks } from "./scenario.ts";
import type { BenchAccount } from "./seed.ts";

export const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const b64url = (s: string | Buffer) => Buffer.from(s).toString("base64url");

export class AssertionPool {
  private pool: string[] = [];
  private turn = 0;
  /** Assertions signed on the spot because the pre-signed pool ran dry (reported). */
  signedOnDemand = 0;
  private readonly clients: BenchAccount[];
  private readonly audience: string;

  constructor(clients: BenchAccount[], audience: string) {
    this.clients = clients;
    this.audience = audience;
  }

  /** Pre-signs `n` assertions with jose (round robin over the clients), replacing the pool. */
  async fill(n: number): Promise<number> {
    const started = performance.now();
    const pool: string[] = [];
    const exp = Math.floor(Date.now() / 1000) + 280;
    for (let i = 0; i < n; i += 500) {
      const chunk = Array.from({ length: Math.min(500, n - i) }, (_, j) => {
        const client = this.clients[(i + j) % this.clients.length]!;
        return new SignJWT({})
          .setProtectedHeader({ alg: "ES256", kid: client.key!.kid })
          .setIssuer(client.id)
          .setSubject(client.id)
          .setAudience(this.audience)
          .setIssuedAt()
          .setExpirationTime(exp)
          .setJti(randomUUID())
          .sign(client.key!.privateKey);
      });
      pool.push(...(await Promise.all(chunk)));
    }
    this.pool = pool;
    return (performance.now() - started) / 1000;
  }

  get remaining(): number {
    return this.pool.length;
  }

  next(): string {
    const pre = this.pool.pop();
    if (pre) return pre;
    // Ran dry: sign synchronously (setupRequest cannot wait); same claims, node:crypto.
    this.signedOnDemand++;
    const client = this.clients[this.turn++ % this.clients.length]!;
    const now = Math.floor(Date.now() / 1000);
    const input = `${b64url(JSON.stringify({ alg: "ES256", kid: client.key!.kid }))}.${b64url(JSON.stringify({ iss: client.id, sub: client.id, aud: this.audience, iat: now, exp: now + 280, jti: randomUUID() }))}`;
    return `${input}.${b64url(nodeSign("sha256", Buffer.from(input), { key: client.key!.nodeKey, dsaEncoding: "ieee-p1363" }))}`;
  }
}

/**
 * The hooks of a scenario drawing from `pool`, shared by (d) and the peer's (g): before each run, enough
 * assertions for it at the last round's rate (2,000 req/s before the first) plus 50 %; the notes say
 * how many were pre-signed and how many the pool lacked.
 */
export function poolHooks(pool: AssertionPool, connections: number, note: () => string): ScenarioHooks {
  let signing = 0;
  let presigned = 0;
  return {
    beforeRun: async (seconds: number, previous: RoundStats | null) => {
      const n = Math.ceil((previous?.rps ?? 2000) * seconds * 1.5) + 4 * connections;
      signing += await pool.fill(n);
      presigned += n;
    },
    notes: () => [`${note()}${presigned} assertions pre-signed with jose in ${signing.toFixed(1)} s; ${pool.signedOnDemand} signed on demand because the pool ran dry`],
  };
}
