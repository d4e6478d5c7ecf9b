import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Db } from "../../src/lsm/db.ts";
import { WriteBatch } from "../../src/lsm/write-batch.ts";
import { FaultInjectingStore } from "../../src/store/fault-store.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { testKeys } from "../../../test/support/test-keys.ts";
import { SMALL } from "./engine-suite.ts";

const k = (s: string): Buffer => Buffer.from(s);

describe("transient store errors", () => {
  it("failed SST uploads and manifest writes are retried; nothing is lost and the writer keeps serving", async () => {
    const inner = new MemoryStore();
    const fault = new FaultInjectingStore(inner);
    const db = await Db.open(fault, testKeys(), SMALL);
    fault.addRule({ op: "put", key: /^sst\//, times: 3, error: true });
    fault.addRule({ op: "putIfAbsent", key: /^manifest\//, times: 1, error: true });
    // A manifest write that lands but whose reply is lost must not look like a rival writer.
    let manifestCalls = 0;
    fault.addRule({ op: "putIfAbsent", key: (key) => key.startsWith("manifest/") && ++manifestCalls === 4, error: true, afterInner: true });
    fault.addRule({ op: "putIfAbsent", key: /^wal\//, times: 1, error: true });
    let walCalls = 0;
    fault.addRule({ op: "putIfAbsent", key: (key) => key.startsWith("wal/") && ++walCalls === 4, error: true, afterInner: true });
    for (let i = 0; i < 500; i++) await db.write(new WriteBatch().put(k(`t${i}`), Buffer.alloc(200, i)), { awaitDurable: i % 50 === 0 });
    await db.flushMemtable();
    await db.compactAll();
    assert.ok(fault.stats.injectedErrors >= 7, `expected the injected errors to fire, got ${fault.stats.injectedErrors}`);
    assert.equal(db.isFenced, false);
    for (let i = 0; i < 500; i += 37) assert.equal((await db.get(k(`t${i}`)))?.[0], i % 256);
    await db.close();
    const again = await Db.open(inner, testKeys(), SMALL);
    let n = 0;
    for await (const _ of again.scan()) n++;
    assert.equal(n, 500);
    await again.close();
  });
});
