/**
 * DPoP proofs (RFC 9449) for the (i) scenario: one ES256 key, a fresh proof per request (the
 * Worker accepts a jti once), signed synchronously with node:crypto as each request is set up.
 */
import { generateKeyPairSync, randomUUID, sign } from "node:crypto";

const b64url = (s: string | Buffer) => Buffer.from(s).toString("base64url");

export class DpopProofs {
  private readonly key = generateKeyPairSync("ec", { namedCurve: "P-256" });
  private readonly header: string;
  private readonly htu: string;

  constructor(tokenEndpoint: string) {
    const { kty, crv, x, y } = this.key.publicKey.export({ format: "jwk" });
    this.header = b64url(JSON.stringify({ typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } }));
    this.htu = tokenEndpoint;
  }

  next(): string {
    const payload = b64url(JSON.stringify({ htm: "POST", htu: this.htu, iat: Math.floor(Date.now() / 1000), jti: randomUUID() }));
    const input = `${this.header}.${payload}`;
    return `${input}.${b64url(sign("sha256", Buffer.from(input), { key: this.key.privateKey, dsaEncoding: "ieee-p1363" }))}`;
  }
}
