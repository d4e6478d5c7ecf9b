import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { WorkQueue } from "../src/controller/workqueue.ts";

describe("WorkQueue", () => {
  it("deduplicates queued keys", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("a");
    q.add("b");
    assert.equal(q.depth, 2);
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), "b");
    q.shutDown();
  });

  it("never hands one key to two workers; an add during processing requeues it after done()", async () => {
    const q = new WorkQueue();
    q.add("a");
    const k = await q.get();
    q.add("a");
    assert.equal(q.depth, 0, "dirty while processing, not queued");
    const next = q.get();
    q.done(k!);
    assert.equal(await next, "a");
    q.shutDown();
  });

  it("backs off exponentially per key and forget() resets it", async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 1000 });
    const d1 = q.addRateLimited("a");
    const d2 = q.addRateLimited("a");
    const d3 = q.addRateLimited("a");
    assert.ok(d1 >= 8 && d1 <= 12, `first ${d1}`);
    assert.ok(d2 >= 16 && d2 <= 24, `second ${d2}`);
    assert.ok(d3 >= 32 && d3 <= 48, `third ${d3}`);
    assert.equal(q.failuresOf("a"), 3);
    q.forget("a");
    assert.equal(q.failuresOf("a"), 0);
    const t0 = Date.now();
    assert.equal(await q.get(), "a", "delivered after the (earliest) delay");
    assert.ok(Date.now() - t0 < 200);
    q.shutDown();
  });

  it("caps the backoff", () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000 });
    for (let i = 0; i < 200; i++) assert.ok(q.addRateLimited("k") <= 1000);
    q.shutDown();
  });

  it("addAfter keeps the earliest time", async () => {
    const q = new WorkQueue();
    q.addAfter("a", 10_000);
    q.addAfter("a", 20);
    const t0 = Date.now();
    assert.equal(await q.get(), "a");
    assert.ok(Date.now() - t0 < 1000);
    q.shutDown();
  });

  it("shutDown releases waiting workers", async () => {
    const q = new WorkQueue();
    const w = q.get();
    await sleep(5);
    q.shutDown();
    assert.equal(await w, undefined);
    q.add("x");
    assert.equal(await q.get(), undefined);
  });
});
