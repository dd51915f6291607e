import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createCtx } from "../../src/domain/shared/context.ts";
import { renderStatusList } from "../../src/domain/signing/status-list-token.ts";
import { STATUS_LIST_SIZE } from "../../src/domain/signing/status-list.ts";

/**
 * The status lists at 100,000 credentials (docs/performance.md, "Status lists"): the rows are
 * written straight into credential_status (one statement), on indexes taken from the sequence as
 * the write path takes them, so no other credential is touched. The render is timed uncached (what
 * one edge location pays once per STATUS_LIST_TTL_SECONDS) and the compressed size reported.
 */

const CREDENTIALS = 100_000;

/** Writes CREDENTIALS rows from the start of a fresh list (so the list holds only them); returns the list. */
async function seed(revokedPercent: number): Promise<number> {
  const { n } = (await env.DB.prepare(
    "UPDATE credential_status_seq SET next_idx = CAST((next_idx + ?1 - 1) / ?1 AS INTEGER) * ?1 + ?2 WHERE id = 0 RETURNING CAST((next_idx - ?2) / ?1 AS INTEGER) AS n",
  )
    .bind(STATUS_LIST_SIZE, CREDENTIALS)
    .first<{ n: number }>())!;
  const base = n * STATUS_LIST_SIZE;
  await env.DB.prepare(
    `WITH RECURSIVE i(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM i WHERE k < ? - 1)
     INSERT INTO credential_status (idx, credential_type, credential_id, account_id, revoked, updated_at)
     SELECT ? + k, 'access_token', 'tok_scale' || (? + k), 'sa_scale', CASE WHEN abs(random()) % 100 < ? THEN 1 ELSE 0 END, 0 FROM i`,
  )
    .bind(CREDENTIALS, base, base, revokedPercent)
    .run();
  return n;
}

const ctx = createCtx(env, { actorId: "test", requestId: null, ip: null, userAgent: null });

describe("status lists at 100,000 credentials", () => {
  for (const percent of [1, 10]) {
    it(`${percent} % revoked: the list renders compressed far below its 16 KiB, quickly`, async () => {
      const n = await seed(percent);
      expect(await renderStatusList(ctx, 0), "a warm-up render (the signing key imported)").not.toBeNull();
      // Timers advance on I/O in workerd: this is the D1 read, the compression and the signature; the median of 5.
      const times: number[] = [];
      let list: Awaited<ReturnType<typeof renderStatusList>> = null;
      for (let run = 0; run < 5; run++) {
        const started = performance.now();
        list = await renderStatusList(ctx, n);
        times.push(performance.now() - started);
      }
      const ms = times.sort((a, b) => a - b)[2]!;
      expect(list).not.toBeNull();
      const lst = (JSON.parse(atob(list!.jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { status_list: { lst: string } }).status_list.lst;
      const compressed = Math.floor((lst.length * 3) / 4);
      const from = n * STATUS_LIST_SIZE;
      const revoked = (await env.DB.prepare("SELECT count(*) AS c FROM credential_status WHERE idx >= ? AND idx < ? AND revoked = 1").bind(from, from + STATUS_LIST_SIZE).first<{ c: number }>())!.c;
      console.log(`status list ${n}: ${CREDENTIALS} credentials, ${revoked} revoked (${percent} %): ${compressed} bytes compressed, ${list!.jwt.length} bytes of JWT, rendered in ${ms.toFixed(0)} ms`);
      expect(revoked).toBeGreaterThan(0);
      // Random bits compress to about their entropy: 1 % of 2^17 bits is about 1.4 KiB, 10 % about 7 KiB.
      expect(compressed).toBeLessThan(STATUS_LIST_SIZE / 8);
      expect(ms).toBeLessThan(10_000);
    });
  }
});
