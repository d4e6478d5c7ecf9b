/** File data: sparse chunks, truncation, odd offsets, huge offsets, capacity, deferred deletion. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WriteBatch } from "../../src/lsm/write-batch.ts";
import { compareTime } from "../../src/fs/clock.ts";
import { encodeInode } from "../../src/fs/inode-codec.ts";
import { CHUNK_SIZE, allChunksRange, inodeKey, tombstoneKey } from "../../src/fs/keys.ts";
import { TombstoneKind, decodeTombstone, encodeTombstone } from "../../src/fs/records.ts";
import { StableHow } from "../../src/fs/types.ts";
import type { ZeroFs } from "../../src/fs/zerofs.ts";
import { Rng } from "../../../test/support/random.ts";
import { KeyKind, countKind, fsDefaults, openFs, rejectsWith, root, storedChunks, withFs } from "./helpers.ts";

// The v1 chunk code path, which files of layout-1 volumes keep using (extents.test.ts covers
// layout 2, the default for new files).
fsDefaults.dataLayout = 1;

const C = CHUNK_SIZE;
const GiB = 2 ** 30;

async function newFile(fs: ZeroFs, name = "f"): Promise<number> {
  return (await fs.create(root, fs.rootIno, name, { mode: "guarded" })).attrs.ino;
}

async function readAll(fs: ZeroFs, ino: number): Promise<Buffer> {
  const size = (await fs.getattr(ino)).size;
  const parts: Buffer[] = [];
  for (let off = 0; off < size; off += 1 << 20) parts.push((await fs.read(root, ino, off, 1 << 20)).data);
  return Buffer.concat(parts);
}

describe("file data, layout 1 (64 KiB chunks)", () => {
  it("holes read as zeros and all-zero chunks are not stored", () =>
    withFs(async ({ fs, db }) => {
      const f = await newFile(fs);
      await fs.write(root, f, 3 * C + 10, Buffer.from("tail"), StableHow.UNSTABLE);
      assert.equal((await fs.getattr(f)).size, 3 * C + 14);
      assert.deepEqual(await storedChunks(db, f), [3]);
      const all = await readAll(fs, f);
      assert.equal(all.length, 3 * C + 14);
      assert.ok(all.subarray(0, 3 * C + 10).every((b) => b === 0));
      assert.equal(all.subarray(3 * C + 10).toString(), "tail");
      // Writing zeros over data removes the chunk again; writing zeros into a hole stores nothing.
      await fs.write(root, f, 3 * C + 10, Buffer.alloc(4), StableHow.UNSTABLE);
      await fs.write(root, f, C, Buffer.alloc(2 * C), StableHow.UNSTABLE);
      assert.deepEqual(await storedChunks(db, f), []);
      assert.equal((await fs.getattr(f)).size, 3 * C + 14);
      // A full chunk of data followed by zeros is stored trimmed.
      const buf = Buffer.alloc(C);
      buf[100] = 7;
      await fs.write(root, f, 0, buf, StableHow.UNSTABLE);
      for await (const e of db.scan(...allChunksRange(f))) assert.equal(e.value!.length, 101, "trailing zeros trimmed");
    }));

  it("writes spanning chunks at odd offsets and truncation both ways match a byte model", () =>
    withFs(async ({ fs, db }) => {
      const rng = Rng.fromEnv("fs data model");
      const f = await newFile(fs);
      let model = Buffer.alloc(0);
      for (let step = 0; step < 60; step++) {
        const size = model.length;
        if (rng.chance(0.25)) {
          const newSize = rng.chance(0.5) ? rng.int(0, size) : rng.int(size, 6 * C);
          await fs.setattr(root, f, { size: newSize });
          const next = Buffer.alloc(newSize);
          model.copy(next, 0, 0, Math.min(size, newSize));
          model = next;
        } else {
          const offset = rng.int(0, 5 * C);
          const len = rng.int(1, 3 * C);
          const data = rng.chance(0.2) ? Buffer.alloc(len) : rng.bytes(len);
          await fs.write(root, f, offset, data, StableHow.UNSTABLE);
          if (offset + len > model.length) {
            const next = Buffer.alloc(offset + len);
            model.copy(next);
            model = next;
          }
          data.copy(model, offset);
        }
        const attrs = await fs.getattr(f);
        assert.equal(attrs.size, model.length, `size after step ${step}`);
        // Invariant: no stored chunk at or past the end, none all-zero.
        for (const idx of await storedChunks(db, f)) assert.ok(idx < Math.ceil(model.length / C), `chunk ${idx} beyond size ${model.length}`);
        if (step % 10 === 9) assert.ok((await readAll(fs, f)).equals(model), `content after step ${step} (seed ${rng.seed})`);
      }
      assert.ok((await readAll(fs, f)).equals(model));
      // Odd-sized reads across chunk boundaries.
      for (let i = 0; i < 20; i++) {
        const off = rng.int(0, model.length);
        const n = rng.int(0, 3 * C);
        const r = await fs.read(root, f, off, n);
        assert.ok(r.data.equals(model.subarray(off, Math.min(model.length, off + n))));
        assert.equal(r.eof, off + n >= model.length);
      }
    }));

  it("truncate down zeroes the tail of the last chunk so extension never shows old data", () =>
    withFs(async ({ fs, db }) => {
      const f = await newFile(fs);
      await fs.write(root, f, 0, Buffer.alloc(3 * C, 0xaa), StableHow.UNSTABLE);
      await fs.setattr(root, f, { size: C + 5 });
      assert.deepEqual(await storedChunks(db, f), [0, 1]);
      await fs.setattr(root, f, { size: 3 * C });
      const all = await readAll(fs, f);
      assert.ok(all.subarray(0, C + 5).every((b) => b === 0xaa));
      assert.ok(all.subarray(C + 5).every((b) => b === 0), "extended region reads zeros");
      await fs.setattr(root, f, { size: C });
      assert.deepEqual(await storedChunks(db, f), [0]);
      await fs.setattr(root, f, { size: 0 });
      assert.deepEqual(await storedChunks(db, f), []);
    }));

  it("write and truncate update mtime and ctime; read does not touch atime", () =>
    withFs(async ({ fs }) => {
      const f = await newFile(fs);
      const a0 = await fs.getattr(f);
      await fs.write(root, f, 0, Buffer.from("x"), StableHow.UNSTABLE);
      const a1 = await fs.getattr(f);
      assert.ok(compareTime(a1.mtime, a0.mtime) > 0 && compareTime(a1.ctime, a0.ctime) > 0);
      await fs.read(root, f, 0, 1);
      assert.deepEqual((await fs.getattr(f)).atime, a1.atime);
      await fs.setattr(root, f, { size: 1 });
      const a2 = await fs.getattr(f);
      assert.ok(compareTime(a2.mtime, a1.mtime) > 0, "truncate to the same size still updates mtime");
    }));

  it("handles offsets beyond 4 GiB", () =>
    withFs(async ({ fs, db }) => {
      const f = await newFile(fs);
      const off = 5 * GiB + 3;
      await fs.write(root, f, off - 2, Buffer.from("big file"), StableHow.FILE_SYNC);
      const size = off + 6;
      assert.equal((await fs.getattr(f)).size, size);
      assert.equal((await fs.read(root, f, off - 2, 100)).data.toString(), "big file");
      const hole = await fs.read(root, f, 4 * GiB, 1000);
      assert.ok(hole.data.length === 1000 && hole.data.every((b) => b === 0));
      assert.deepEqual(await storedChunks(db, f), [Math.floor((off - 2) / C)]);
      // Shrink to just past 4 GiB: more chunks than fit one batch, so the truncate-tombstone path runs.
      await fs.setattr(root, f, { size: 4 * GiB + 1 });
      assert.equal(await countKind(db, KeyKind.TOMBSTONE), 0, "truncation finished before returning");
      assert.deepEqual(await storedChunks(db, f), []);
      await rejectsWith(fs.write(root, f, 2 ** 52, Buffer.from("x"), StableHow.UNSTABLE), "EFBIG");
      await rejectsWith(fs.setattr(root, f, { size: 2 ** 52 + 1 }), "EFBIG");
    }));

  it("a sequential 1 MiB write is one batch of 16 chunks and reads back", () =>
    withFs(async ({ fs, db }) => {
      const f = await newFile(fs);
      const data = new Rng(7).bytes(1 << 20);
      const before = db.stats().walBytes;
      await fs.write(root, f, 0, data, StableHow.FILE_SYNC);
      await fs.write(root, f, 1 << 20, data, StableHow.FILE_SYNC);
      assert.ok(db.stats().walBytes - before > 2 << 20);
      assert.equal((await storedChunks(db, f)).length, 32);
      assert.ok((await fs.read(root, f, 1 << 20, 1 << 20)).data.equals(data));
      await rejectsWith(fs.write(root, f, 0, Buffer.alloc((1 << 20) + 1), StableHow.UNSTABLE), "EINVAL");
    }));

  it("ENOSPC with a capacity limit; freed space is reusable", () =>
    withFs(
      async ({ fs }) => {
        const a = await newFile(fs, "a");
        await fs.write(root, a, 0, Buffer.alloc(60_000, 1), StableHow.UNSTABLE);
        const b = await newFile(fs, "b");
        await rejectsWith(fs.write(root, b, 0, Buffer.alloc(50_000, 1), StableHow.UNSTABLE), "ENOSPC");
        assert.equal((await fs.getattr(b)).size, 0, "a refused write changes nothing");
        await fs.write(root, a, 0, Buffer.alloc(60_000, 2), StableHow.UNSTABLE); // overwrite: no growth
        await rejectsWith(fs.setattr(root, b, { size: 50_000 }), "ENOSPC");
        await fs.write(root, b, 0, Buffer.alloc(40_000, 1), StableHow.UNSTABLE);
        await rejectsWith(fs.create(root, fs.rootIno, "c", { mode: "guarded" }), "ENOSPC");
        await rejectsWith(fs.symlink(root, fs.rootIno, "s", "x"), "ENOSPC");
        // Concurrent writers cannot jointly overshoot.
        await fs.setattr(root, a, { size: 0 });
        const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => fs.write(root, b, 40_000 + i * 10_000, Buffer.alloc(10_000, 1), StableHow.UNSTABLE)));
        assert.ok(fs.usage.usedBytes <= 100_000);
        assert.ok(results.some((r) => r.status === "rejected"));
        await fs.remove(root, fs.rootIno, "b");
        assert.equal(fs.usage.usedBytes, 0);
        await fs.create(root, fs.rootIno, "c", { mode: "guarded" });
        const { stat } = await fs.fsstat(fs.rootIno);
        assert.equal(stat.totalBytes, 100_000);
      },
      { capacityBytes: 100_000 },
    ));

  it("deleting a large file is O(1); the reclaimer removes its chunks in the background", async () => {
    const fx = await openFs({ reclaimer: false });
    try {
      const f = await newFile(fx.fs);
      // A sparse 1.3 GB file: chunk 0 and chunk 20000 stored, 20001 chunk indices to cover.
      await fx.fs.write(root, f, 0, Buffer.from("head"), StableHow.UNSTABLE);
      await fx.fs.write(root, f, 20_000 * C, Buffer.from("tail"), StableHow.UNSTABLE);
      const small = await newFile(fx.fs, "small");
      await fx.fs.write(root, small, 0, Buffer.alloc(3 * C, 5), StableHow.UNSTABLE);
      const t0 = performance.now();
      await fx.fs.remove(root, fx.fs.rootIno, "f");
      const removeMs = performance.now() - t0;
      await fx.fs.remove(root, fx.fs.rootIno, "small");
      assert.deepEqual(await storedChunks(fx.db, small), [], "small files are deleted inline");
      assert.deepEqual(await storedChunks(fx.db, f), [0, 20_000], "large file chunks are left to the reclaimer");
      const t = await fx.db.get(tombstoneKey(f));
      assert.ok(t);
      assert.deepEqual(decodeTombstone(t, f), { kind: TombstoneKind.DELETED, from: 0, to: 20_001 });
      assert.deepEqual(fx.fs.usage, { usedBytes: 0, inodes: 1 }, "space is accounted free at once");
      await fx.reopen({ reclaimBatchKeys: 8192 });
      const t1 = performance.now();
      await fx.fs.reclaimer!.idle();
      const reclaimMs = performance.now() - t1;
      assert.deepEqual(await storedChunks(fx.db, f), []);
      assert.equal(await countKind(fx.db, KeyKind.TOMBSTONE), 0);
      console.log(`# remove of a 20001-chunk file: ${removeMs.toFixed(1)} ms; background reclaim: ${reclaimMs.toFixed(0)} ms`);
    } finally {
      await fx.close();
    }
  });

  it("reclamation resumes after a restart mid-way", async () => {
    let batches = 0;
    let reachedThird!: () => void;
    const third = new Promise<void>((r) => (reachedThird = r));
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    const fx = await openFs({
      reclaimBatchKeys: 4,
      afterReclaimBatch: async () => {
        if (++batches === 3) {
          reachedThird();
          await gate;
        }
      },
    });
    try {
      const f = await newFile(fx.fs);
      for (let i = 0; i < 40; i++) await fx.fs.write(root, f, i * C, Buffer.from([i + 1]), StableHow.UNSTABLE);
      assert.equal((await storedChunks(fx.db, f)).length, 40);
      await fx.fs.remove(root, fx.fs.rootIno, "f");
      await third;
      const restarting = fx.reopen({ reclaimer: false });
      openGate();
      await restarting;
      const t = decodeTombstone((await fx.db.get(tombstoneKey(f)))!, f);
      assert.equal(t.from, 12, "progress of three batches of 4 was recorded");
      assert.deepEqual(await storedChunks(fx.db, f), Array.from({ length: 28 }, (_, i) => i + 12));
      await fx.reopen({});
      await fx.fs.reclaimer!.idle();
      assert.deepEqual(await storedChunks(fx.db, f), []);
      assert.equal(await fx.db.get(tombstoneKey(f)), undefined);
    } finally {
      await fx.close();
    }
  });

  it("a truncation interrupted by a crash finishes in the background; writes to the file wait for it", async () => {
    const fx = await openFs();
    try {
      const f = await newFile(fx.fs);
      for (let i = 0; i < 10; i++) await fx.fs.write(root, f, i * C, Buffer.from([i + 1]), StableHow.UNSTABLE);
      // What the first batch of a large truncation to 2 chunks commits: the new size and the intent.
      const attrs = await fx.fs.getattr(f);
      const { decodeInode } = await import("../../src/fs/inode-codec.ts");
      const inode = decodeInode(f, (await fx.db.get(inodeKey(f)))!);
      await fx.db.write(
        new WriteBatch().put(inodeKey(f), encodeInode({ ...inode, size: 2 * C, chunks: 2 })).put(tombstoneKey(f), encodeTombstone({ kind: TombstoneKind.TRUNCATED, from: 2, to: 10 })),
      );
      assert.equal(attrs.size, 9 * C + 1);
      await fx.reopen({ reclaimBatchKeys: 2 });
      // Extending at once must not expose the chunks the truncation had not deleted yet.
      await fx.fs.setattr(root, f, { size: 10 * C });
      const all = await readAll(fx.fs, f);
      assert.ok(all.subarray(2 * C).every((b) => b === 0), "no stale chunk reappears");
      assert.deepEqual(await storedChunks(fx.db, f), [0, 1]);
      assert.equal(await fx.db.get(tombstoneKey(f)), undefined);
    } finally {
      await fx.close();
    }
  });

  it("truncating and removing a 2^52-byte sparse file costs its stored chunks, not its size", { timeout: 60_000 }, () =>
    withFs(async ({ fs, db }) => {
      const f = await newFile(fs);
      const offsets = [0, 2 ** 40 + 5, 2 ** 52 - 3];
      for (const off of offsets) await fs.write(root, f, off, Buffer.from("abc"), StableHow.UNSTABLE);
      assert.equal((await fs.getattr(f)).size, 2 ** 52);
      const walBefore = db.stats().walBytes;
      const t0 = performance.now();
      await fs.setattr(root, f, { size: C + 1 });
      const truncMs = performance.now() - t0;
      assert.deepEqual(await storedChunks(db, f), [0]);
      assert.equal(await countKind(db, KeyKind.TOMBSTONE), 0);
      // Grow it back: zeros where the old data was.
      await fs.setattr(root, f, { size: 2 ** 52 });
      for (const off of offsets.slice(1)) assert.ok((await fs.read(root, f, off, 3)).data.equals(Buffer.alloc(3)), `zeros at ${off}`);
      await fs.write(root, f, 2 ** 51, Buffer.from("x"), StableHow.UNSTABLE);
      const t1 = performance.now();
      await fs.remove(root, fs.rootIno, "f");
      await fs.reclaimer!.idle();
      const removeMs = performance.now() - t1;
      assert.deepEqual(await storedChunks(db, f), []);
      assert.equal(await countKind(db, KeyKind.TOMBSTONE), 0);
      const walBytes = db.stats().walBytes - walBefore;
      // A few hundred bytes of keys and records; the old code wrote a delete per possible chunk index.
      assert.ok(walBytes < 64 * 1024, `wrote ${walBytes} WAL bytes`);
      console.log(`# 2^52-byte sparse file: truncate ${truncMs.toFixed(1)} ms, remove + reclaim ${removeMs.toFixed(1)} ms, ${walBytes} WAL bytes`);
    }));

  it("a truncation interrupted by a crash does not hold up opening, and yields to a REMOVE", { timeout: 60_000 }, async () => {
    const fx = await openFs();
    try {
      const f = await newFile(fx.fs);
      for (let i = 0; i < 50; i++) await fx.fs.write(root, f, i * 2 ** 30, Buffer.from([i + 1]), StableHow.UNSTABLE);
      const { decodeInode } = await import("../../src/fs/inode-codec.ts");
      const inode = decodeInode(f, (await fx.db.get(inodeKey(f)))!);
      await fx.db.write(
        new WriteBatch()
          .put(inodeKey(f), encodeInode({ ...inode, size: 1, chunks: 1 }))
          .put(tombstoneKey(f), encodeTombstone({ kind: TombstoneKind.TRUNCATED, from: 1, to: 2 ** 36 })),
      );
      // Block the background truncation after its first batch: open() must not wait for it.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let batches = 0;
      await fx.reopen({ reclaimBatchKeys: 4, afterReclaimBatch: async () => void (++batches === 1 && (await gate)) });
      assert.equal((await fx.fs.getattr(f)).size, 1, "served while the truncation is pending");
      const removing = fx.fs.remove(root, fx.fs.rootIno, "f");
      release();
      await removing;
      await fx.reopen({});
      await fx.fs.backgroundIdle();
      assert.deepEqual(await storedChunks(fx.db, f), []);
      assert.equal(await countKind(fx.db, KeyKind.TOMBSTONE), 0, "no tombstone left behind");
    } finally {
      await fx.close();
    }
  });

  it("reports the space of stored chunks, not of holes (du of a sparse file)", () =>
    withFs(async ({ fs }) => {
      const f = await newFile(fs);
      const used = async (): Promise<number> => (await fs.getattr(f)).used;
      assert.equal(await used(), 0);
      await fs.write(root, f, 0, Buffer.from("x"), StableHow.UNSTABLE);
      assert.equal(await used(), 4096, "a small file counts as one 4 KiB unit");
      await fs.setattr(root, f, { size: GiB });
      assert.equal((await fs.getattr(f)).size, GiB);
      assert.equal(await used(), C, "growing by truncate adds only holes");
      await fs.write(root, f, 512 * 2 ** 20, Buffer.alloc(2 * C, 7), StableHow.UNSTABLE);
      assert.equal(await used(), 3 * C);
      await fs.write(root, f, 512 * 2 ** 20, Buffer.alloc(C), StableHow.UNSTABLE);
      assert.equal(await used(), 2 * C, "zeros written over data free the chunk");
      await fs.write(root, f, 512 * 2 ** 20 + C, Buffer.alloc(C, 9), StableHow.UNSTABLE);
      assert.equal(await used(), 2 * C, "rewriting a stored chunk of a sparse file adds nothing");
      await fs.setattr(root, f, { size: 100 });
      assert.equal(await used(), 4096);
      const dense = await newFile(fs, "dense");
      for (let i = 0; i < 4; i++) await fs.write(root, dense, i * C, Buffer.alloc(C, 1), StableHow.UNSTABLE);
      await fs.write(root, dense, C, Buffer.alloc(C, 2), StableHow.UNSTABLE);
      assert.equal((await fs.getattr(dense)).used, 4 * C);
      await fs.setattr(root, dense, { size: C + 5 });
      assert.equal((await fs.getattr(dense)).used, C + 4096);
    }));

  it("keeps every file's stored-chunk count equal to its stored chunks (randomized)", async () => {
    const rng = Rng.fromEnv("stored-chunk count");
    const fx = await openFs();
    try {
      // A small file that is often dense and a large one that is sparse, so that every way of
      // knowing whether a chunk exists (count says none / all / look it up) is exercised.
      const files = [
        { ino: await newFile(fx.fs, "small"), span: 6 },
        { ino: await newFile(fx.fs, "large"), span: 400 },
      ];
      // Payloads: random bytes, zeros with one marked byte (so a later truncation can leave a
      // chunk all zero), or all zeros.
      const payload = (n: number): Buffer => {
        const k = rng.int(0, 2);
        if (k === 0) return rng.bytes(n);
        const b = Buffer.alloc(n);
        if (k === 1) b[rng.int(0, n - 1)] = rng.int(1, 255);
        return b;
      };
      for (let step = 0; step < 400; step++) {
        const { ino: f, span } = files[rng.int(0, files.length - 1)]!;
        const size = (await fx.fs.getattr(f)).size;
        const r = rng.next();
        const what = r < 0.5 ? "write" : r < 0.65 ? "full chunks" : r < 0.85 ? "shrink" : r < 0.97 ? "grow" : "reopen";
        if (what === "write") await fx.fs.write(root, f, rng.int(0, span * C), payload(rng.int(1, 2 * C)), StableHow.UNSTABLE);
        else if (what === "full chunks") await fx.fs.write(root, f, rng.int(0, span) * C, payload(C * rng.int(1, 3)), StableHow.UNSTABLE);
        else if (what === "shrink") await fx.fs.setattr(root, f, { size: rng.int(0, size) });
        else if (what === "grow") await fx.fs.setattr(root, f, { size: size + rng.int(0, span * C) });
        else await fx.reopen();
        for (const { ino: g } of files) {
          const stored = (await storedChunks(fx.db, g)).length;
          const attrs = await fx.fs.getattr(g);
          const expected = Math.min(Math.ceil(attrs.size / 4096) * 4096, stored * C);
          assert.equal(attrs.used, expected, `seed ${rng.seed}, step ${step} (${what}): file ${g} has ${stored} chunks stored, size ${attrs.size}`);
        }
      }
    } finally {
      await fx.close();
    }
  });
});
