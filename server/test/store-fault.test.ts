import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InjectedCrashError, ObjectStoreError } from "../src/store/errors.ts";
import { FaultInjectingStore } from "../src/store/fault-store.ts";
import { MemoryStore } from "../src/store/memory-store.ts";
import { storeConformance } from "./store-conformance.ts";

const b = (s: string) => Buffer.from(s);

// With no rules the wrapper must be invisible.
storeConformance("FaultInjectingStore (no faults) over MemoryStore", async () => ({ store: new FaultInjectingStore(new MemoryStore()), cleanup: async () => {} }), {
  raceRounds: 4,
});

describe("FaultInjectingStore", () => {
  it("crashAfter(n): n calls go through, then every call throws and nothing reaches the inner store", async () => {
    const inner = new MemoryStore();
    const f = new FaultInjectingStore(inner);
    await f.put("before", b("x"));
    f.crashAfter(2);
    assert.equal(f.crashed, false);
    await f.put("one", b("1"));
    await f.get("one");
    assert.equal(f.crashed, false);
    await assert.rejects(f.put("two", b("2")), (e: unknown) => {
      assert.ok(e instanceof InjectedCrashError);
      assert.equal(e.op, "put");
      assert.equal(e.key, "two");
      return true;
    });
    assert.equal(f.crashed, true);
    await assert.rejects(f.get("one"), InjectedCrashError);
    await assert.rejects(f.list(""), InjectedCrashError);
    await assert.rejects(f.delete("one"), InjectedCrashError);
    assert.equal(await inner.head("two"), null);
    assert.deepEqual(
      (await inner.list("")).map((m) => m.key),
      ["before", "one"],
    );
    assert.deepEqual(f.stats, { calls: 7, forwarded: 3, injectedErrors: 0, crashed: 4, byOp: { put: 3, get: 2, list: 1, delete: 1 } });
    await f.close(); // close always reaches the inner store
    f.reset();
    assert.equal((await f.get("one")).toString(), "1");
  });

  it("crashAfter numbers concurrent calls in call order", async () => {
    const inner = new MemoryStore();
    const f = new FaultInjectingStore(inner).crashAfter(3);
    const results = await Promise.allSettled([0, 1, 2, 3, 4].map((i) => f.put(`k${i}`, b("v"))));
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "fulfilled", "fulfilled", "rejected", "rejected"],
    );
    assert.deepEqual(
      (await inner.list("")).map((m) => m.key),
      ["k0", "k1", "k2"],
    );
  });

  it("crashAfter(n, {midPut}): the tripping put lands in the inner store but the caller gets the crash", async () => {
    const inner = new MemoryStore();
    const f = new FaultInjectingStore(inner).crashAfter(1, { midPut: true });
    await f.put("a", b("1"));
    await assert.rejects(f.putIfAbsent("manifest", b("m")), InjectedCrashError);
    assert.equal((await inner.get("manifest")).toString(), "m");
    await assert.rejects(f.put("after", b("x")), InjectedCrashError);
    assert.equal(await inner.head("after"), null);
    assert.equal(f.stats.forwarded, 2);
  });

  it("crashAfter(0) crashes the very next call", async () => {
    const f = new FaultInjectingStore(new MemoryStore()).crashAfter(0);
    await assert.rejects(f.head("x"), InjectedCrashError);
  });

  it("failNth fails exactly that call with a generic or given error", async () => {
    const inner = new MemoryStore();
    const f = new FaultInjectingStore(inner);
    await f.put("x", b("1"));
    f.failNth(2);
    await f.get("x");
    await assert.rejects(f.put("y", b("2")), (e: unknown) => e instanceof ObjectStoreError && /injected fault/.test(e.message) && e.key === "y");
    assert.equal(await inner.head("y"), null, "a failed call must not reach the inner store");
    await f.put("y", b("2"));
    const custom = new Error("disk on fire");
    f.failNth(1, custom);
    await assert.rejects(f.get("y"), (e: unknown) => e === custom);
    assert.equal(f.stats.injectedErrors, 2);
  });

  it("rules match op and key predicates, fire a limited number of times, and can delay", async () => {
    const f = new FaultInjectingStore(new MemoryStore());
    f.addRule({ op: ["put", "putIfAbsent"], key: /^sst\//, error: true, times: 2 });
    f.addRule({ op: "get", key: (k) => k.endsWith(".slow"), delayMs: 60 });
    await f.put("wal/1", b("w"));
    await assert.rejects(f.put("sst/1", b("s")), ObjectStoreError);
    await assert.rejects(f.putIfAbsent("sst/2", b("s")), ObjectStoreError);
    await f.put("sst/3", b("s")); // rule exhausted
    await f.put("x.slow", b("z"));
    const t0 = performance.now();
    await f.get("x.slow");
    assert.ok(performance.now() - t0 >= 50, "delay rule not applied");
  });

  it("afterInner rules lose the ack of a write that landed", async () => {
    const inner = new MemoryStore();
    const f = new FaultInjectingStore(inner).addRule({ op: "put", key: "k", error: true, afterInner: true });
    await assert.rejects(f.put("k", b("landed")), ObjectStoreError);
    assert.equal((await inner.get("k")).toString(), "landed");
  });
});
