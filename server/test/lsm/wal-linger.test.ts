/**
 * Group commit with n committers in a closed loop (wal-writer.ts, Linger): one WAL object per
 * round of all of them, not two alternating halves; a lone committer never waits; the linger is
 * capped by the store's PUT time.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Db } from "../../src/lsm/db.ts";
import { WriteBatch } from "../../src/lsm/write-batch.ts";
import { FaultInjectingStore } from "../../src/store/fault-store.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { testKeys } from "../../../test/support/test-keys.ts";

/** A store whose WAL PUTs take `putMs`, like an fsync (the engine's own objects are not delayed). */
function slowWalStore(putMs: number): FaultInjectingStore {
  return new FaultInjectingStore(new MemoryStore()).addRule({ op: "putIfAbsent", key: /^wal\//, delayMs: putMs });
}

/** `n` committers, each writing and waiting for durability `rounds` times; returns the WAL objects written. */
async function closedLoop(db: Db, n: number, rounds: number): Promise<number> {
  const before = db.stats().walObjects;
  await Promise.all(
    Array.from({ length: n }, async (_, c) => {
      for (let r = 0; r < rounds; r++) {
        await db.write(new WriteBatch().put(Buffer.from(`c${c}-r${r}`), Buffer.from("v")), { awaitDurable: false });
        await db.flush();
        // The committer's own work between commits (an RPC round trip, a request's processing).
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }),
  );
  return db.stats().walObjects - before;
}

describe("WAL group commit linger", () => {
  it("16 committers in a closed loop share one object per round instead of two", async () => {
    const rounds = 20;
    const run = async (walLingerMs: number): Promise<number> => {
      const db = await Db.open(slowWalStore(5), testKeys(), { gcIntervalMs: 0, walMaxInFlight: 1, walLingerMs });
      try {
        await closedLoop(db, 16, 2); // warm-up: the writer learns how many committers there are
        return await closedLoop(db, 16, rounds);
      } finally {
        await db.close();
      }
    };
    const without = await run(0);
    const lingering = await run(50);
    // Without lingering the committers split into two halves, each its own PUT per round.
    assert.ok(without >= 1.8 * rounds, `without linger: ${without} objects for ${rounds} rounds`);
    assert.ok(lingering <= 1.2 * rounds, `with linger: ${lingering} objects for ${rounds} rounds (expected about one per round)`);
  });

  it("a lone committer never waits for the linger", async () => {
    const db = await Db.open(slowWalStore(1), testKeys(), { gcIntervalMs: 0, walMaxInFlight: 1, walLingerMs: 10_000 });
    try {
      const t0 = performance.now();
      const objects = await closedLoop(db, 1, 20);
      const ms = performance.now() - t0;
      assert.equal(objects, 20);
      // 20 commits of ~1 ms each; one lingered commit alone would take 10 s.
      assert.ok(ms < 5_000, `20 lone commits took ${ms.toFixed(0)} ms`);
    } finally {
      await db.close();
    }
  });

  it("never lingers longer than a quarter of a PUT: on a fast store the round's stragglers are not waited for", async () => {
    const db = await Db.open(slowWalStore(2), testKeys(), { gcIntervalMs: 0, walMaxInFlight: 1, walLingerMs: 10_000 });
    try {
      await closedLoop(db, 16, 3);
      const t0 = performance.now();
      await closedLoop(db, 1, 10);
      const ms = performance.now() - t0;
      // PUTs of ~2 ms cap the linger at ~0.5 ms (one event-loop turn); the configured 10 s would show.
      assert.ok(ms < 2_000, `10 commits after the crowd left took ${ms.toFixed(0)} ms`);
    } finally {
      await db.close();
    }
  });

  it("when committers go away, the rest wait at most the linger once", async () => {
    const db = await Db.open(slowWalStore(2), testKeys(), { gcIntervalMs: 0, walMaxInFlight: 1, walLingerMs: 300 });
    try {
      await closedLoop(db, 16, 3);
      const t0 = performance.now();
      await closedLoop(db, 1, 10);
      const ms = performance.now() - t0;
      // The first commit may wait for the 15 that never come back (300 ms), the next ones not.
      assert.ok(ms < 300 + 1_500, `10 commits after the crowd left took ${ms.toFixed(0)} ms`);
    } finally {
      await db.close();
    }
  });
});
