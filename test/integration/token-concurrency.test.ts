import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { expectProblem } from "./registry-helpers.ts";
import {
  accountPath,
  auditOf,
  expectDead,
  expectWorks,
  freshOrg,
  issue,
  issueOk,
  kvKeyOf,
  regenerate,
  revoke,
  setPolicy,
  sha256,
  tokenRows,
  viewerAccount,
  type Res,
} from "./token-helpers.ts";

/**
 * The account's Durable Object is the single writer of its credentials: parallel requests on one
 * account must keep the active-token limit and never leave KV granting more than D1 does.
 */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

async function setup(limit?: number) {
  const o = await freshOrg(root.token);
  if (limit !== undefined) await setPolicy(o.adminToken, o.org.id, { maxActiveTokensPerAccount: limit });
  const sa = await viewerAccount(o.adminToken, o.org.id);
  return { ...o, sa };
}

const summary = (responses: Res[]) => responses.map((r) => `${r.status} ${r.json?.code ?? ""}`).join(", ");

/** A bearer check that needs only a valid credential. */
const authenticates = async (secret: string) => (await call("GET", "/api/v1/orgs", { token: secret })).status !== 401;

/**
 * The invariants after any mix of changes: D1 holds at most `limit` active tokens; every secret
 * of a revoked token is gone from KV and refused; every active token's current secret is in KV.
 */
async function checkInvariants(accountId: string, limit: number, secretsByToken: Map<string, Set<string>>) {
  const rows = await tokenRows(accountId);
  const dump = JSON.stringify(rows.map((r) => ({ id: r.id, status: r.status, prev: r.previous_secret_hash !== null })));
  const active = rows.filter((r) => r.status === "active");
  expect(active.length, `active tokens over the limit: ${dump}`).toBeLessThanOrEqual(limit);
  for (const row of rows) {
    const secrets = [...(secretsByToken.get(row.id) ?? [])];
    if (row.status === "revoked") {
      expect(row.previous_secret_hash, dump).toBeNull();
      for (const s of secrets) {
        const key = await kvKeyOf(s);
        expect(await env.TOKENS.get(key), `KV record left for revoked ${row.id} (${key}): ${dump}`).toBeNull();
        expect(await authenticates(s), `a secret of revoked ${row.id} authenticates: ${dump}`).toBe(false);
      }
    } else {
      expect(await env.TOKENS.get(`tok:${row.secret_hash}`), `no KV record for active ${row.id}: ${dump}`).not.toBeNull();
      const current = [];
      for (const s of secrets) if ((await sha256(s)) === row.secret_hash) current.push(s);
      expect(current.length, `the current secret of ${row.id} was never returned: ${dump}`).toBe(1);
      expect(await authenticates(current[0]!), `the current secret of ${row.id} is refused`).toBe(true);
      // Any other secret of the token is either the one in grace or dead.
      for (const s of secrets) {
        const hash = await sha256(s);
        if (hash === row.secret_hash || hash === row.previous_secret_hash) continue;
        expect(await env.TOKENS.get(`tok:${hash}`), `superseded secret of ${row.id} still in KV: ${dump}`).toBeNull();
        expect(await authenticates(s), `superseded secret of ${row.id} authenticates`).toBe(false);
      }
    }
  }
  return { rows, active };
}

function remember(map: Map<string, Set<string>>, res: Res) {
  if ((res.status === 200 || res.status === 201) && res.json?.token) {
    const set = map.get(res.json.id) ?? new Set<string>();
    set.add(res.json.token);
    map.set(res.json.id, set);
  }
}

describe("parallel creates", () => {
  it("25 parallel creates on one account: exactly 1 success and 24 x 409 token_limit_reached", async () => {
    const { org, adminToken, sa } = await setup();
    const responses = await Promise.all(Array.from({ length: 25 }, (_, i) => issue(adminToken, org.id, sa.id, { name: `p${i}` })));
    const ok = responses.filter((r) => r.status === 201);
    const limited = responses.filter((r) => r.status === 409 && r.json?.code === "token_limit_reached");
    expect(ok.length, summary(responses)).toBe(1);
    expect(limited.length, summary(responses)).toBe(24);
    for (const r of limited) expectProblem(r, 409, "token_limit_reached");
    const rows = await tokenRows(sa.id);
    expect(rows.map((r) => r.id), JSON.stringify(rows)).toEqual([ok[0]!.json.id]);
    expect(rows[0]!.status).toBe("active");
    await expectWorks(ok[0]!.json.token, org.id, sa.id);
  });

  it("with a limit of 3, 25 parallel creates give exactly 3 successes", async () => {
    const { org, adminToken, sa } = await setup(3);
    const responses = await Promise.all(Array.from({ length: 25 }, () => issue(adminToken, org.id, sa.id)));
    expect(responses.filter((r) => r.status === 201).length, summary(responses)).toBe(3);
    expect(responses.filter((r) => r.status === 409 && r.json?.code === "token_limit_reached").length, summary(responses)).toBe(22);
    expect((await tokenRows(sa.id)).filter((r) => r.status === "active").length).toBe(3);
  });
});

describe("a parallel mix of regenerate, revoke and create", () => {
  it.each([1, 2])("limit %i: never more active tokens than the limit, never a KV record for a revoked token", async (limit) => {
    const { org, adminToken, sa } = await setup(limit);
    const secrets = new Map<string, Set<string>>();
    for (let i = 0; i < limit; i++) {
      const t = await issueOk(adminToken, org.id, sa.id);
      secrets.set(t.id, new Set([t.token]));
    }
    const allowed = new Set([200, 201, 204, 409]);
    const counts = new Map<number, number>();
    for (let round = 0; round < 3; round++) {
      const known = [...secrets.keys()];
      const pick = (i: number) => known[i % known.length]!;
      // Sent in this order (regenerates, creates, revokes) but all in flight at once.
      const ops: Promise<Res>[] = [];
      for (let i = 0; i < 6; i++) ops.push(regenerate(adminToken, org.id, sa.id, pick(i), { graceSeconds: i % 2 === 0 ? 300 : 0 }));
      for (let i = 0; i < 6; i++) ops.push(issue(adminToken, org.id, sa.id));
      for (let i = 0; i < 3; i++) ops.push(revoke(adminToken, org.id, sa.id, pick(i + round)));
      const responses = await Promise.all(ops);
      for (const r of responses) {
        expect(allowed.has(r.status), `unexpected ${r.status}: ${r.text}`).toBe(true);
        if (r.status === 409) expect(["token_limit_reached", "token_not_active"], r.text).toContain(r.json?.code);
        remember(secrets, r);
      }
      const { rows, active } = await checkInvariants(sa.id, limit, secrets);
      // Every token that was ever returned exists in D1, and only those.
      expect(rows.map((r) => r.id).sort(), JSON.stringify(rows)).toEqual([...secrets.keys()].sort());
      // Nothing re-activates a revoked token.
      expect(active.every((r) => r.revoked_at === null), JSON.stringify(active)).toBe(true);
      for (const r of responses) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    }
    // The mix really exercised every path (otherwise the invariants above prove little).
    const seen = JSON.stringify([...counts]);
    expect(counts.get(200) ?? 0, seen).toBeGreaterThan(0);
    expect(counts.get(201) ?? 0, seen).toBeGreaterThan(0);
    expect(counts.get(204) ?? 0, seen).toBeGreaterThan(0);
    expect(counts.get(409) ?? 0, seen).toBeGreaterThan(0);
    const revoked = (await tokenRows(sa.id)).filter((r) => r.status === "revoked");
    expect(revoked.length, seen).toBeGreaterThan(0);
  });

  it("a revoke racing ten creates on a one-token account: at most one new token, the old one dead", async () => {
    const { org, adminToken, sa } = await setup(1);
    const t = await issueOk(adminToken, org.id, sa.id);
    const secrets = new Map([[t.id, new Set([t.token])]]);
    const ops = [revoke(adminToken, org.id, sa.id, t.id), ...Array.from({ length: 10 }, () => issue(adminToken, org.id, sa.id))];
    const responses = await Promise.all(ops);
    expectStatus(responses[0]!, 204);
    const created = responses.slice(1).filter((r) => r.status === 201);
    expect(created.length, summary(responses)).toBeLessThanOrEqual(1);
    for (const r of responses) remember(secrets, r);
    await checkInvariants(sa.id, 1, secrets);
    await expectDead(t.token, org.id, sa.id);
  });
});

describe("deleting an account", () => {
  it("revokes all its tokens in the same request: KV keys gone, D1 rows gone, secrets 401", async () => {
    const { org, adminToken, sa } = await setup(3);
    const a = await issueOk(adminToken, org.id, sa.id);
    const b = await issueOk(adminToken, org.id, sa.id, { expiresInSeconds: 3600 });
    const c = await issueOk(adminToken, org.id, sa.id);
    const b2 = await regenerate(adminToken, org.id, sa.id, b.id, { graceSeconds: 300 });
    expectStatus(b2, 200);
    expectStatus(await revoke(adminToken, org.id, sa.id, c.id), 204);
    const secrets = [a.token, b.token, b2.json.token as string, c.token];
    for (const s of [a.token, b.token, b2.json.token]) await expectWorks(s, org.id, sa.id);
    expect(await env.TOKENS.get(`sa:${sa.id}`), "account KV record before delete").not.toBeNull();

    const del = await call("DELETE", accountPath(org.id, sa.id), { token: adminToken });
    expectStatus(del, 204);

    // Immediately after the response, with no waiting: nothing of the account is left.
    for (const s of secrets) expect(await env.TOKENS.get(await kvKeyOf(s)), `KV record of ${s.slice(0, 8)}…`).toBeNull();
    expect(await env.TOKENS.get(`sa:${sa.id}`), "account KV record").toBeNull();
    expect(await tokenRows(sa.id), "D1 token rows").toEqual([]);
    for (const s of secrets) {
      const res = await call("GET", "/api/v1/orgs", { token: s });
      expect(res.status, `${s.slice(0, 8)}… after delete: ${res.text}`).toBe(401);
    }
    expectProblem(await call("GET", accountPath(org.id, sa.id), { token: adminToken }), 404, "not_found");
    const events = await auditOf(sa.id);
    const deleted = events.find((e) => e.action === "service_account.deleted");
    expect(deleted, JSON.stringify(events)).toBeDefined();
    expect(JSON.parse(deleted!.details).revokedTokens, deleted!.details).toBe(2);
    for (const s of secrets) expect(JSON.stringify(events).includes(s)).toBe(false);
  });

  it("racing creates and regenerates: once deleted, no token of the account survives anywhere", async () => {
    const { org, adminToken, sa } = await setup(3);
    const t = await issueOk(adminToken, org.id, sa.id);
    const responses = await Promise.all([
      issue(adminToken, org.id, sa.id),
      regenerate(adminToken, org.id, sa.id, t.id, { graceSeconds: 300 }),
      call("DELETE", accountPath(org.id, sa.id), { token: adminToken }),
      issue(adminToken, org.id, sa.id),
      regenerate(adminToken, org.id, sa.id, t.id),
      issue(adminToken, org.id, sa.id),
    ]);
    expectStatus(responses[2]!, 204);
    for (const r of responses) expect([200, 201, 204, 404, 409], r.text).toContain(r.status);
    const secrets = [t.token, ...responses.filter((r) => r.json?.token).map((r) => r.json.token as string)];
    expect(await tokenRows(sa.id), summary(responses)).toEqual([]);
    for (const s of secrets) {
      expect(await env.TOKENS.get(await kvKeyOf(s)), `KV record of ${s.slice(0, 8)}… (${summary(responses)})`).toBeNull();
      expect(await authenticates(s), `${s.slice(0, 8)}… authenticates after delete (${summary(responses)})`).toBe(false);
    }
    expect(await env.TOKENS.get(`sa:${sa.id}`), "account KV record").toBeNull();
  });
});
