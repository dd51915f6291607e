import * as jose from "jose";
import * as oauth from "oauth4webapi";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { ACCESS_TOKEN_TYPE, expectOAuthError, JWT_TOKEN_TYPE, newClient, postForm, TOKEN_EXCHANGE, type Client } from "./oauth-helpers.ts";
import { revoke } from "./token-helpers.ts";
import { clientOptions, cnfOf, discover, proof, proofKeys, thumbprintOf, viaWorker } from "./dpop-helpers.ts";

/** RFC 8693 delegation: an actor_token yields the subject's JWT with an `act` claim naming the actor, nested, revocable through the actor. */

let root: { id: string; token: string };
let subject: Client;
let actor: Client;
let otherActor: Client;

beforeAll(async () => {
  root = await platformRoot();
  subject = await newClient(root.token, { roles: [{ role: "viewer" }] });
  actor = await newClient(root.token, { roles: [{ role: "org-admin" }] }, subject.org.id);
  otherActor = await newClient(root.token, { roles: [{ role: "viewer" }] }, subject.org.id);
});

const delegate = (subjectToken: string, actorToken: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) =>
  postForm(
    "/oauth/token",
    {
      grant_type: TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: subjectToken.startsWith("sat_") ? ACCESS_TOKEN_TYPE : JWT_TOKEN_TYPE,
      actor_token: actorToken,
      actor_token_type: actorToken.startsWith("sat_") ? ACCESS_TOKEN_TYPE : JWT_TOKEN_TYPE,
      ...extra,
    },
    { headers },
  );

async function delegated(subjectToken: string, actorToken: string): Promise<string> {
  const res = await delegate(subjectToken, actorToken);
  expectStatus(res, 200);
  return res.json.access_token as string;
}

const claims = (jwt: string) => jose.decodeJwt(jwt) as jose.JWTPayload & { act?: unknown; scope?: string };
const orgPath = () => `/api/v1/orgs/${subject.org.id}`;

describe("the act claim", () => {
  it("the subject's JWT, its scope, with act naming the actor; usable on the management API", async () => {
    const jwt = await delegated(subject.token, actor.token);
    const c = claims(jwt);
    expect(c.sub).toBe(subject.account.id);
    expect(c.act).toEqual({ sub: actor.account.id });
    // The subject's scope (viewer), not the actor's (org-admin).
    expect(c.scope).toBe("audit.read orgs.read service-accounts.read");
    expectStatus(await call("GET", orgPath(), { token: jwt }), 200);
  });

  it("introspection (oauth4webapi) returns act", async () => {
    const jwt = await delegated(subject.token, actor.token);
    const as = await discover();
    const client: oauth.Client = { client_id: subject.account.id };
    const res = await oauth.introspectionRequest(as, client, oauth.ClientSecretBasic(subject.token), jwt, clientOptions(viaWorker));
    const result = await oauth.processIntrospectionResponse(as, client, res);
    expect(result.active).toBe(true);
    expect(result.act).toEqual({ sub: actor.account.id });
  });

  it("nested: an actor token that is itself delegated puts its own act under the actor", async () => {
    // otherActor acts for actor; then actor (with that token) acts for subject.
    const actorActingForItself = await delegated(actor.token, otherActor.token);
    expect(claims(actorActingForItself).act).toEqual({ sub: otherActor.account.id });
    const jwt = await delegated(subject.token, actorActingForItself);
    expect(claims(jwt).act).toEqual({ sub: actor.account.id, act: { sub: otherActor.account.id } });
  });

  it("a delegated JWT exchanged again keeps its act; delegated again, the new actor comes first", async () => {
    const first = await delegated(subject.token, actor.token);
    const plain = await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: first, subject_token_type: JWT_TOKEN_TYPE });
    expectStatus(plain, 200);
    expect(claims(plain.json.access_token).act).toEqual({ sub: actor.account.id });
    const again = await delegated(first, otherActor.token);
    expect(claims(again).act).toEqual({ sub: otherActor.account.id, act: { sub: actor.account.id } });
  });

  it("at most 4 actors deep", async () => {
    let jwt = subject.token;
    for (let depth = 1; depth <= 4; depth++) {
      jwt = await delegated(jwt, actor.token);
      let n = 0;
      for (let a = claims(jwt).act as { act?: unknown } | undefined; a; a = a.act as typeof a) n++;
      expect(n).toBe(depth);
    }
    expectOAuthError(await delegate(jwt, actor.token), 400, "invalid_grant");
  });

  it("a DPoP proof binds the delegated JWT too", async () => {
    const keys = await proofKeys();
    const res = await delegate(subject.token, actor.token, {}, { dpop: await proof(keys) });
    expectStatus(res, 200);
    expect(res.json.token_type).toBe("DPoP");
    expect(cnfOf(res.json.access_token)).toEqual({ jkt: await thumbprintOf(keys) });
    expect(claims(res.json.access_token).act).toEqual({ sub: actor.account.id });
  });
});

describe("who may act", () => {
  it("an actor of another org: refused", async () => {
    const stranger = await newClient(root.token, { roles: [{ role: "org-admin" }] });
    expectOAuthError(await delegate(subject.token, stranger.token), 400, "invalid_grant");
  });

  it("an invalid, revoked or disabled actor: refused", async () => {
    expectOAuthError(await delegate(subject.token, "sat_" + "x".repeat(38)), 400, "invalid_grant");
    expectOAuthError(await delegate(subject.token, "not.a.jwt"), 400, "invalid_grant");
    const disabled = await newClient(root.token, { roles: [{ role: "viewer" }] }, subject.org.id);
    expectStatus(await call("PATCH", `${orgPath()}/service-accounts/${disabled.account.id}`, { token: root.token, body: { status: "disabled" } }), 200);
    expectOAuthError(await delegate(subject.token, disabled.token), 400, "invalid_grant");
  });

  it("actor_token without actor_token_type (and the reverse), or an unknown type: invalid_request", async () => {
    const base = { grant_type: TOKEN_EXCHANGE, subject_token: subject.token, subject_token_type: ACCESS_TOKEN_TYPE };
    expectOAuthError(await postForm("/oauth/token", { ...base, actor_token: actor.token }), 400, "invalid_request");
    expectOAuthError(await postForm("/oauth/token", { ...base, actor_token_type: ACCESS_TOKEN_TYPE }), 400, "invalid_request");
    expectOAuthError(await postForm("/oauth/token", { ...base, actor_token: actor.token, actor_token_type: "urn:ietf:params:oauth:token-type:saml2" }), 400, "invalid_request");
  });

  it("a DPoP-bound actor token needs the request's proof of its key", async () => {
    const keys = await proofKeys();
    const boundActor = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [actor.account.id, actor.token], headers: { dpop: await proof(keys) } });
    expectStatus(boundActor, 200);
    expectOAuthError(await delegate(subject.token, boundActor.json.access_token), 400, "invalid_dpop_proof");
    expectStatus(await delegate(subject.token, boundActor.json.access_token, {}, { dpop: await proof(keys) }), 200);
  });
});

describe("revocation through the actor", () => {
  it("revoking the actor's access token kills the delegated JWT (management API and introspection)", async () => {
    const victimActor = await newClient(root.token, { roles: [{ role: "viewer" }] }, subject.org.id);
    const jwt = await delegated(subject.token, victimActor.token);
    expectStatus(await call("GET", orgPath(), { token: jwt }), 200);
    expectStatus(await revoke(root.token, subject.org.id, victimActor.account.id, victimActor.tokenId), 204);
    expect((await call("GET", orgPath(), { token: jwt })).status).toBe(401);
    const intro = await postForm("/oauth/introspect", { token: jwt }, { basic: [subject.account.id, subject.token] });
    expectStatus(intro, 200);
    expect(intro.json).toEqual({ active: false });
  });

  it("revoking the actor's JWT kills the JWT delegated with it, and one nested further", async () => {
    const actorJwt = (await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [otherActor.account.id, otherActor.token] })).json.access_token as string;
    const jwt = await delegated(subject.token, actorJwt);
    const actorForActor = await delegated(actor.token, actorJwt);
    const nested = await delegated(subject.token, actorForActor);
    expectStatus(await call("GET", orgPath(), { token: jwt }), 200);
    expectStatus(await call("GET", orgPath(), { token: nested }), 200);
    expectStatus(await postForm("/oauth/revoke", { token: actorJwt }, { basic: [otherActor.account.id, otherActor.token] }), 200);
    expect((await call("GET", orgPath(), { token: jwt })).status).toBe(401);
    expect((await call("GET", orgPath(), { token: nested })).status).toBe(401);
  });

  it("revoking the subject's access token kills it too (the subject's lineage is kept)", async () => {
    const victim = await newClient(root.token, { roles: [{ role: "viewer" }] }, subject.org.id);
    const jwt = await delegated(victim.token, actor.token);
    expectStatus(await revoke(root.token, subject.org.id, victim.account.id, victim.tokenId), 204);
    expect((await call("GET", orgPath(), { token: jwt })).status).toBe(401);
  });
});
