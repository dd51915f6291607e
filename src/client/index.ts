/**
 * `keyward/client`: the typed management client (generated from /openapi.json, src/client/schema.d.ts)
 * and tokenSource (docs/sdk.md). Imports nothing from the Worker.
 */
import createClient, { type Client, type ClientOptions } from "openapi-fetch";
import type { components, paths } from "./schema.d.ts";
import type { TokenSource } from "./token-source.ts";

export { tokenSource, TokenSourceError, type TokenGrant, type TokenSource, type TokenSourceOptions, type AccessTokenGrant, type ClientSecretGrant, type PrivateKeyJwtGrant, type JwtBearerGrant } from "./token-source.ts";
export type { components, paths, operations } from "./schema.d.ts";

/** A schema of the API by name: `Schema<"ServiceAccount">`. */
export type Schema<Name extends keyof components["schemas"]> = components["schemas"][Name];

export type KeywardClient = Client<paths>;

export interface KeywardClientOptions extends Omit<ClientOptions, "baseUrl" | "fetch"> {
  /** Keyward's base URL (its ISSUER). */
  baseUrl: string;
  /** The bearer credential of every request: an access token, a function returning one, or a tokenSource's JWTs. */
  token?: string | (() => string | Promise<string>) | TokenSource;
  fetch?: (input: Request) => Promise<Response>;
}

/**
 * A client typed by the API's paths: `client.GET("/api/v1/orgs/{org}", { params: { path: { org } } })`
 * answers `{ data, error, response }` with `data` and `error` (problem+json) typed per status.
 */
export function createKeywardClient(options: KeywardClientOptions): KeywardClient {
  const { token, baseUrl, ...rest } = options;
  const client = createClient<paths>({ ...rest, baseUrl: baseUrl.replace(/\/+$/, "") });
  if (token !== undefined) {
    const credential = typeof token === "string" ? () => token : typeof token === "function" ? token : () => token.getToken();
    client.use({
      async onRequest({ request }) {
        request.headers.set("authorization", `Bearer ${await credential()}`);
        return request;
      },
    });
  }
  return client;
}
