/**
 * The engine during a store outage: durability waits are bounded (StoreUnavailableError, the
 * write stays queued and lands once the store is back), close() gives up at its deadline and
 * says what never reached the store, and retries of store outages log no warnings.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { Db } from "../../src/lsm/db.ts";
import { FlushIncompleteError } from "../../src/lsm/errors.ts";
import { WriteBatch } from "../../src/lsm/write-batch.ts";
import { StoreUnavailableError } from "../../src/store/errors.ts";
import { FaultInjectingStore } from "../../src/store/fault-store.ts";
import { GuardedStore } from "../../src/store/guarded-store.ts";
import { StoreHealth } from "../../src/store/health.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { testKeys } from "../../../test/support/test-keys.ts";
import { SMALL } from "./engine-suite.ts";

const k = (s: string): Buffer => Buffer.from(s);

function setup(): { inner: MemoryStore; fault: FaultInjectingStore; store: GuardedStore; warnings: string[] } {
  const warnings: string[] = [];
  const logger = pino({ level: "debug" }, {
    write: (s: string) => {
      const l = JSON.parse(s) as { level: number; msg: string };
      if (l.level >= 40) warnings.push(l.msg);
    },
  });
  const inner = new MemoryStore();
  const fault = new FaultInjectingStore(inner);
  const store = new GuardedStore(fault, { timeoutMs: 200, health: new StoreHealth({ store: "test", logger }), retryBaseMs: 10, retryMaxMs: 50 });
  return { inner, fault, store, warnings };
}

describe("the engine during a store outage", () => {
  it("a durable write waits at most durableWaitMs, then lands once the store is back; retries log no warning", async () => {
    const { inner, fault, store, warnings } = setup();
    const logger = pino({ level: "debug" }, { write: (s: string) => {
      const l = JSON.parse(s) as { level: number; msg: string };
      if (l.level >= 40) warnings.push(l.msg);
    } });
    const db = await Db.open(store, testKeys(), { ...SMALL, durableWaitMs: 500, logger });
    await db.write(new WriteBatch().put(k("before"), k("1")));
    fault.addRule({ op: ["putIfAbsent", "put"], error: true });
    const t0 = performance.now();
    await assert.rejects(db.write(new WriteBatch().put(k("during"), k("2"))), (e: unknown) => e instanceof StoreUnavailableError && e.reason === "timeout" && /the write stays queued/.test(e.message));
    const waited = performance.now() - t0;
    assert.ok(waited >= 490 && waited < 3_000, `waited ${waited} ms for a 500 ms bound`);
    await assert.rejects(db.flush(), StoreUnavailableError);
    assert.equal((await db.get(k("during")))?.toString(), "2", "applied in the memtable meanwhile");
    assert.ok(store.health.state === "degraded");
    fault.reset();
    // The WAL writer's next retry (its backoff reaches 5 s) finds the store back.
    for (let i = 0; ; i++) {
      try {
        await db.flush();
        break;
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || i >= 20) throw err;
      }
    }
    assert.equal(store.health.state, "healthy");
    assert.deepEqual(warnings.filter((m) => !/object store unavailable/.test(m)), [], "WAL retries of an outage log at debug only");
    assert.equal(warnings.filter((m) => /object store unavailable/.test(m)).length, 1);
    await db.close();
    const again = await Db.open(inner, testKeys(), SMALL);
    assert.equal((await again.get(k("during")))?.toString(), "2", "the queued write became durable after the outage");
    await again.close();
  });

  it("close gives up at its deadline, naming the batches that never reached the store; the acknowledged ones survive", async () => {
    const { inner, fault, store } = setup();
    const db = await Db.open(store, testKeys(), { ...SMALL, flushIntervalMs: 60_000 });
    for (let i = 0; i < 20; i++) await db.write(new WriteBatch().put(k(`acked${i}`), Buffer.alloc(100, i)));
    fault.addRule({ op: ["putIfAbsent", "put"], delayMs: 60_000 });
    for (let i = 0; i < 7; i++) await db.write(new WriteBatch().put(k(`buffered${i}`), Buffer.alloc(100, i)), { awaitDurable: false });
    const t0 = performance.now();
    await assert.rejects(db.close({ signal: AbortSignal.timeout(700) }), (e: unknown) => {
      assert.ok(e instanceof FlushIncompleteError, String(e));
      assert.equal(e.unflushed.notDurableBatches, 7);
      assert.ok(e.unflushed.notDurableBytes > 700, String(e.unflushed.notDurableBytes));
      assert.ok(e.unflushed.memtableBytes > 0);
      assert.match(e.message, /7 write batches \(\d+ bytes\) never reached the store/);
      return true;
    });
    const took = performance.now() - t0;
    assert.ok(took >= 690 && took < 2_500, `close took ${took} ms for a 700 ms deadline`);
    await store.close();
    const again = await Db.open(inner, testKeys(), SMALL);
    for (let i = 0; i < 20; i++) assert.equal((await again.get(k(`acked${i}`)))?.[0], i, `acknowledged write ${i}`);
    assert.equal(await again.get(k("buffered0")), undefined);
    await again.close();
  });

  it("a close that flushed everything before its deadline succeeds", async () => {
    const { inner, store } = setup();
    const db = await Db.open(store, testKeys(), SMALL);
    await db.write(new WriteBatch().put(k("a"), k("1")), { awaitDurable: false });
    await db.close({ signal: AbortSignal.timeout(5_000) });
    const again = await Db.open(inner, testKeys(), SMALL);
    assert.equal((await again.get(k("a")))?.toString(), "1");
    await again.close();
  });
});
