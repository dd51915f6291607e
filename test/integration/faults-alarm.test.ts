import { beforeAll, describe, expect, it } from "vitest";
import { CHANGES, cellsFor, faultsOf, runCell, scenarioFor, setupFixture } from "./fault-helpers.ts";

/**
 * The fault matrix of faults.test.ts (see there and fault-helpers.ts), repaired the way a crash is:
 * right after the fault the object's instance is evicted (its in-memory state gone, its storage
 * kept) and the alarm the change armed runs on a fresh instance, with no call at all. When the
 * alarm could not be armed (alarm-set), the journal waits for the object's next call.
 * journal-put and d1-constraint leave nothing to replay and run in faults.test.ts only.
 */

beforeAll(async () => {
  await setupFixture();
});

const CELLS = cellsFor("alarm");

describe("fault matrix, completed by the alarm of a fresh instance", () => {
  it("covers every step of every change but journal-put and d1-constraint", () => {
    expect(CELLS.length).toBe(CHANGES.reduce((n, c) => n + faultsOf(c).length - 2, 0));
  });

  // Each cell touches only its own account's object, so several run at a time.
  describe.concurrent("cells", () => {
    it.each(CELLS)("$label", async (cell) => {
      await runCell(cell, await scenarioFor(cell.change));
    });
  });
});
