import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DuplicateRequestCache } from "../../src/nfs/drc.ts";

const body = (s: string) => [Buffer.from(s)];

test("drc: key depends on address, port, credential, xid, proc and argument bytes", () => {
  const caller = { remoteAddress: "10.0.0.1", remotePort: 800, credFlavor: 1, credBody: Buffer.from("uid-1000") };
  const k = DuplicateRequestCache.key(caller, 5, 8, Buffer.from("args"));
  assert.equal(k, DuplicateRequestCache.key({ ...caller, credBody: Buffer.from("uid-1000") }, 5, 8, Buffer.from("args")));
  assert.notEqual(k, DuplicateRequestCache.key({ ...caller, remoteAddress: "10.0.0.2" }, 5, 8, Buffer.from("args")));
  assert.notEqual(k, DuplicateRequestCache.key({ ...caller, remotePort: 801 }, 5, 8, Buffer.from("args")));
  assert.notEqual(k, DuplicateRequestCache.key({ ...caller, credBody: Buffer.from("uid-2000") }, 5, 8, Buffer.from("args")));
  assert.notEqual(k, DuplicateRequestCache.key({ ...caller, credFlavor: 0 }, 5, 8, Buffer.from("args")));
  assert.notEqual(k, DuplicateRequestCache.key(caller, 6, 8, Buffer.from("args")));
  assert.notEqual(k, DuplicateRequestCache.key(caller, 5, 9, Buffer.from("args")));
  assert.notEqual(k, DuplicateRequestCache.key(caller, 5, 8, Buffer.from("argz")));
});

test("drc: concurrent duplicates share one execution; completed ones replay", async () => {
  const drc = new DuplicateRequestCache();
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const exec = async () => {
    runs++;
    await gate;
    return body("reply");
  };
  const a = drc.execute("k", exec);
  const b = drc.execute("k", exec);
  assert.equal(drc.inProgress, 1);
  release();
  assert.deepEqual(await a, body("reply"));
  assert.deepEqual(await b, body("reply"));
  assert.deepEqual(await drc.execute("k", exec), body("reply"));
  assert.equal(runs, 1);
  assert.deepEqual(drc.stats, { misses: 1, joined: 1, hits: 1 });
});

test("drc: failures are not cached", async () => {
  const drc = new DuplicateRequestCache();
  let runs = 0;
  const failing = async (): Promise<Buffer[]> => {
    runs++;
    throw new Error("fs down");
  };
  await assert.rejects(drc.execute("k", failing));
  await assert.rejects(drc.execute("k", failing));
  assert.equal(runs, 2);
  assert.equal(drc.size, 0);
  assert.equal(drc.inProgress, 0);
});

test("drc: bounded by entries, bytes and TTL", async () => {
  const drc = new DuplicateRequestCache({ maxEntries: 10, maxBytes: 4096, ttlMs: 50 });
  for (let i = 0; i < 100; i++) await drc.execute(`k${i}`, async () => body("x".repeat(100)));
  assert.ok(drc.size <= 10);
  const big = new DuplicateRequestCache({ maxEntries: 1000, maxBytes: 4096 });
  for (let i = 0; i < 100; i++) await big.execute(`k${i}`, async () => body("x".repeat(500)));
  assert.ok(big.size <= 4096 / 500);
  await sleep(80);
  let ran = false;
  await drc.execute("k99", async () => {
    ran = true;
    return body("again");
  });
  assert.ok(ran, "expired entries run again");
});
