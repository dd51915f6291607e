import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createKeywardClient, tokenSource, type Schema } from "../../src/client/index.ts";
import { createKeywardVerifier } from "../../src/verify/index.ts";
import { platformRoot, unique } from "../helpers.ts";
import { ISSUER } from "../integration/oauth-helpers.ts";

/** keyward/client's typed management client (generated from /openapi.json), driving the Worker. */

const workerFetch = (req: Request) => exports.default.fetch(req);

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

describe("the typed client", () => {
  it("creates an org, an account with a token, exchanges it through tokenSource, revokes it; errors are typed problem+json", async () => {
    const api = createKeywardClient({ baseUrl: `${ISSUER}/`, token: root.token, fetch: workerFetch });
    const slug = unique("org");
    const org = await api.POST("/api/v1/orgs", { body: { slug, name: `Org ${slug}` } });
    expect(org.response.status, JSON.stringify(org.error)).toBe(201);
    const orgId = org.data!.id;
    const sa = await api.POST("/api/v1/orgs/{org}/service-accounts", { params: { path: { org: orgId } }, body: { name: unique("sa"), issueToken: true, roles: [{ role: "viewer" }] } });
    expect(sa.response.status, JSON.stringify(sa.error)).toBe(201);
    const account: Schema<"ServiceAccount"> = sa.data!;
    const secret = sa.data!.token!.token;

    const source = tokenSource({ baseUrl: ISSUER, grant: { type: "access_token", accessToken: secret }, fetch: (i, init) => exports.default.fetch(new Request(i as RequestInfo, init)) });
    // The account reads itself with its JWT from the source.
    const self = createKeywardClient({ baseUrl: ISSUER, token: source, fetch: workerFetch });
    const read = await self.GET("/api/v1/orgs/{org}/service-accounts/{sa}", { params: { path: { org: orgId, sa: account.id } } });
    expect(read.response.status, JSON.stringify(read.error)).toBe(200);
    expect(read.data!.id).toBe(account.id);
    const jwt = await source.getToken();
    await createKeywardVerifier({ issuer: ISSUER, audience: ISSUER, fetch: (i, init) => exports.default.fetch(new Request(i as RequestInfo, init)) }).verify(jwt);

    const denied = await self.POST("/api/v1/orgs", { body: { slug: unique("org"), name: "no" } });
    expect(denied.response.status).toBe(403);
    expect(denied.error?.code).toBeTypeOf("string");

    const revoked = await api.DELETE("/api/v1/orgs/{org}/service-accounts/{sa}/tokens/{tok}", { params: { path: { org: orgId, sa: account.id, tok: sa.data!.token!.id } } });
    expect(revoked.response.status).toBe(204);
    const anon = await createKeywardClient({ baseUrl: ISSUER, token: secret, fetch: workerFetch }).GET("/api/v1/orgs/{org}", { params: { path: { org: orgId } } });
    expect(anon.response.status).toBe(401);
    expect(anon.error?.code).toBe("unauthenticated");
  });
});
