/**
 * Cached read handles of the local-directory store (store/read-handles.ts): files of immutable
 * objects stay open between ranged reads, bounded in number; a key written or deleted through
 * the store is never served from the old file's handle.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LocalStore } from "../src/store/local-store.ts";
import { ReadHandleCache, type OpenedFile } from "../src/store/read-handles.ts";

const dirs: string[] = [];
async function freshRoot(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "zerofs-handles-"));
  dirs.push(d);
  return join(d, "root");
}
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const openFds = async (): Promise<number> => (await readdir("/proc/self/fd")).length;

describe("LocalStore cached read handles", () => {
  it("keeps an immutable object's file open between ranged reads (a file unlinked behind its back still reads)", async () => {
    const root = await freshRoot();
    const s = new LocalStore(root, { readHandles: { maxOpen: 4, immutable: (k) => k.startsWith("sst/") } });
    try {
      await s.put("sst/1", Buffer.from("0123456789"));
      await s.put("wal/1", Buffer.from("abcdefghij"));
      assert.equal((await s.get("sst/1", { offset: 2, length: 3 })).toString(), "234");
      assert.equal((await s.get("wal/1", { offset: 2, length: 3 })).toString(), "cde");
      assert.equal(s.openReadHandles, 1, "only the immutable key's handle is kept");
      // Removed by someone else (not through this store): the kept handle still reads it, which
      // proves no open happens per read. Immutable names are never reused, so this is safe.
      await unlink(join(root, "sst", "1"));
      await unlink(join(root, "wal", "1"));
      assert.equal((await s.get("sst/1", { offset: 7, length: 10 })).toString(), "789");
      await assert.rejects(s.get("wal/1", { offset: 0, length: 1 }), /not found/i, "a mutable key is opened per read");
      await assert.rejects(s.get("sst/1"), /not found/i, "whole gets open the file by name");
    } finally {
      await s.close();
    }
  });

  it("a key deleted or rewritten through the store is never served from the old file's handle", async () => {
    const root = await freshRoot();
    const s = new LocalStore(root, { readHandles: { maxOpen: 4, immutable: () => true } });
    try {
      await s.put("seg/a", Buffer.from("old-old-old"));
      assert.equal((await s.get("seg/a", { offset: 0, length: 3 })).toString(), "old");
      await s.delete("seg/a");
      await assert.rejects(s.get("seg/a", { offset: 0, length: 3 }), /not found/i);
      await s.putIfAbsent("seg/a", Buffer.from("new-new-new"));
      assert.equal((await s.get("seg/a", { offset: 0, length: 3 })).toString(), "new", "re-created key reads its new file");
      await s.put("seg/a", Buffer.from("put-put-put"));
      assert.equal((await s.get("seg/a", { offset: 0, length: 3 })).toString(), "put", "overwritten key reads its new file");
      const etag = (await s.head("seg/a"))!.etag;
      await s.putIfMatch("seg/a", Buffer.from("cas-cas-cas"), etag);
      assert.equal((await s.get("seg/a", { offset: 0, length: 3 })).toString(), "cas");
    } finally {
      await s.close();
    }
  });

  it("bounds the open files; close releases them all", async () => {
    const root = await freshRoot();
    const s = new LocalStore(root, { readHandles: { maxOpen: 3, immutable: () => true } });
    for (let i = 0; i < 20; i++) await s.put(`sst/${i}`, Buffer.alloc(100, i));
    const before = await openFds();
    for (let round = 0; round < 2; round++) {
      await Promise.all(Array.from({ length: 20 }, async (_, i) => assert.equal((await s.get(`sst/${i}`, { offset: 10, length: 1 }))[0], i)));
    }
    assert.equal(s.openReadHandles, 3);
    await new Promise((r) => setTimeout(r, 20)); // closes of evicted handles are asynchronous
    assert.ok((await openFds()) <= before + 3, `at most 3 files stay open (before ${before}, now ${await openFds()})`);
    await s.close();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.openReadHandles, 0);
    assert.ok((await openFds()) <= before, "close closes every kept file");
  });
});

/** A stand-in file handle that counts closes and fails reads after close, like a real one. */
function fakeFile(name: string): OpenedFile & { closes: () => number } {
  let closes = 0;
  const fh = { close: async () => void closes++, name } as unknown as FileHandle;
  return { fh, size: 1, closes: () => closes };
}

describe("ReadHandleCache", () => {
  it("an open in progress when the key is invalidated serves only the reads that joined it, then closes", async () => {
    const c = new ReadHandleCache(4);
    const first = fakeFile("old");
    let finishFirst!: () => void;
    const slow = new Promise<void>((r) => (finishFirst = r));
    const a = c.acquire("k", async () => (await slow, first));
    c.invalidate("k"); // e.g. delete("k") completed while the open ran
    const second = fakeFile("new");
    const b = await c.acquire("k", async () => second);
    assert.equal(b.fh, second.fh, "a read after the invalidation opens the file afresh");
    finishFirst();
    const la = await a;
    assert.equal(la.fh, first.fh);
    la.release();
    await Promise.resolve();
    assert.equal(first.closes(), 1, "the stale handle is closed once its read is done");
    const again = await c.acquire("k", async () => assert.fail("the new handle is cached"));
    assert.equal(again.fh, second.fh);
    again.release();
    b.release();
    assert.equal(second.closes(), 0);
  });

  it("a handle evicted while a read uses it closes only when that read releases it", async () => {
    const c = new ReadHandleCache(1);
    const f1 = fakeFile("1");
    const l1 = await c.acquire("1", async () => f1);
    const l2 = await c.acquire("2", async () => fakeFile("2")); // evicts "1"
    assert.equal(f1.closes(), 0, "still in use");
    l1.release();
    l1.release(); // idempotent
    assert.equal(f1.closes(), 1);
    l2.release();
    assert.equal(c.size, 1);
  });

  it("a failed open is not cached and the next read retries", async () => {
    const c = new ReadHandleCache(2);
    await assert.rejects(c.acquire("k", () => Promise.reject(new Error("EMFILE"))), /EMFILE/);
    const f = fakeFile("k");
    const l = await c.acquire("k", async () => f);
    assert.equal(l.fh, f.fh);
    l.release();
  });
});
