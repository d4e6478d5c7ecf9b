/**
 * File data of layout 2 (docs/layout-v2.md): sealed frames in segments, piece lists per 32 KiB
 * block in the LSM. Sealed and stored once, no read-modify-write, space accounting, deletion
 * cost, the pointer-after-segment durability rule under crashes, and the v1 → v2 conversion.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Db } from "../../src/lsm/db.ts";
import { decodePieces, encodePieces, overlay, pieceBytes, trimPieces, type Piece } from "../../src/fs/extent-map.ts";
import { BLOCK_SIZE, allExtentsRange, parseExtentKey } from "../../src/fs/keys.ts";
import { CACHED_WRITE_MAX_BYTES } from "../../src/fs/extent-data.ts";
import { StableHow } from "../../src/fs/types.ts";
import { ZeroFs } from "../../src/fs/zerofs.ts";
import { FaultInjectingStore } from "../../src/store/fault-store.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { Rng } from "../../../test/support/random.ts";
import { testKeys } from "../../../test/support/test-keys.ts";
import { KeyKind, SMALL_DB, countKind, openFs, rejectsWith, root, withFs } from "./helpers.ts";

const B = BLOCK_SIZE;

async function newFile(fs: ZeroFs, name = "f"): Promise<number> {
  return (await fs.create(root, fs.rootIno, name, { mode: "guarded" })).attrs.ino;
}

async function blocks(db: Db, ino: number): Promise<Map<number, Piece[]>> {
  const out = new Map<number, Piece[]>();
  for await (const e of db.scan(...allExtentsRange(ino))) out.set(parseExtentKey(e.key).block, decodePieces(e.value!, "test"));
  return out;
}

async function readAll(fs: ZeroFs, ino: number): Promise<Buffer> {
  const size = (await fs.getattr(ino)).size;
  const parts: Buffer[] = [];
  for (let off = 0; off < size; off += 1 << 20) parts.push((await fs.read(root, ino, off, 1 << 20)).data);
  return Buffer.concat(parts);
}

/** Counts the GETs of segment objects. */
class SegmentCountingStore extends MemoryStore {
  segmentGets = 0;
  override get(key: string, range?: { offset: number; length: number }): Promise<Buffer> {
    if (key.startsWith("seg/")) this.segmentGets++;
    return super.get(key, range);
  }
}

const frame = (seq: number) => ({ epoch: 1, seq, offset: seq * 100, length: 50 });

describe("extent map (pure)", () => {
  it("overlays cut old pieces and keep their other parts; trimming cuts at the limit", () => {
    const a: Piece = { start: 0, length: 1000, frame: frame(1), plain: 1000, skip: 0 };
    const { pieces, covered } = overlay([a], 100, 50, { start: 100, length: 50, inline: Buffer.alloc(50, 1) });
    assert.deepEqual(
      pieces.map((p) => [p.start, p.length, p.skip ?? "inline"]),
      [[0, 100, 0], [100, 50, "inline"], [150, 850, 150]],
    );
    assert.equal(pieceBytes(covered), 50);
    const hole = overlay(pieces, 0, 1000, undefined);
    assert.deepEqual(hole.pieces, []);
    assert.equal(pieceBytes(hole.covered), 1000);
    const t = trimPieces(pieces, 120);
    assert.deepEqual(t.pieces.map((p) => [p.start, p.length]), [[0, 100], [100, 20]]);
    assert.equal(pieceBytes(t.covered), 880);
  });

  it("round-trips piece lists and rejects corrupt ones with EIO", () => {
    const pieces: Piece[] = [
      { start: 0, length: 10, inline: Buffer.from("0123456789") },
      { start: 100, length: B - 100, frame: { epoch: 2 ** 33, seq: 2 ** 40, offset: 2 ** 35, length: 33_000 }, plain: B, skip: 17 },
    ];
    assert.deepEqual(decodePieces(encodePieces(pieces), "x"), pieces);
    const bad = encodePieces(pieces);
    for (const b of [bad.subarray(0, bad.length - 1), Buffer.from([9, ...bad.subarray(1)]), encodePieces([pieces[1]!, pieces[0]!])]) {
      assert.throws(() => decodePieces(b, "block 7 of inode 3"), /block 7 of inode 3: corrupt extent map/);
    }
  });

  it("matches a byte model under random overlays and trims (seeded)", () => {
    const rng = Rng.fromEnv("extent map model");
    for (let round = 0; round < 200; round++) {
      let pieces: Piece[] = [];
      const model = Buffer.alloc(B);
      const content = new Map<string, Buffer>();
      const materialize = (ps: Piece[]): Buffer => {
        const out = Buffer.alloc(B);
        for (const p of ps) (p.inline ?? content.get(`${p.frame.seq}`)!).copy(out, p.start, p.inline ? 0 : p.skip, (p.inline ? 0 : p.skip) + p.length);
        return out;
      };
      for (let op = 0; op < 30; op++) {
        const start = rng.int(0, B - 1);
        const length = rng.int(1, B - start);
        if (rng.chance(0.1)) {
          pieces = trimPieces(pieces, start).pieces;
          model.fill(0, start);
        } else if (rng.chance(0.2)) {
          pieces = overlay(pieces, start, length, undefined).pieces;
          model.fill(0, start, start + length);
        } else {
          const data = rng.bytes(length);
          const seq = round * 100 + op;
          content.set(`${seq}`, data);
          const add: Piece = rng.chance(0.3) ? { start, length, inline: data } : { start, length, frame: frame(seq), plain: length, skip: 0 };
          pieces = overlay(pieces, start, length, add).pieces;
          data.copy(model, start);
        }
        assert.ok(materialize(pieces).equals(model), `round ${round} op ${op}`);
        assert.deepEqual(decodePieces(encodePieces(pieces), "x").length, pieces.length);
      }
    }
  });
});

describe("file data, layout 2 (segments)", () => {
  it("seals a sequential write once: frame bytes ≈ data bytes, WAL carries pointers only", () =>
    withFs(async ({ fs, db }) => {
      const f = await newFile(fs);
      const data = new Rng(3).bytes(4 << 20);
      const wal0 = db.stats().walBytes;
      for (let off = 0; off < data.length; off += 1 << 20) await fs.write(root, f, off, data.subarray(off, off + (1 << 20)), StableHow.UNSTABLE);
      await fs.commit(f);
      const seg = db.segments.stats().writer;
      const walBytes = db.stats().walBytes - wal0;
      assert.ok(seg.bytes >= data.length && seg.bytes < data.length * 1.01, `segment bytes ${seg.bytes} for ${data.length}`);
      assert.ok(walBytes < 64 * 1024, `WAL bytes ${walBytes}: pointers, not data`);
      assert.equal((await blocks(db, f)).size, data.length / B);
      assert.ok((await readAll(fs, f)).equals(data));
      assert.equal((await fs.getattr(f)).used, data.length);
    }));

  it("a cold 1 MiB read of sequentially written data is one ranged GET, not one per frame", async () => {
    const store = new SegmentCountingStore();
    const dbOpts = { ...SMALL_DB, extentCacheBytes: 1 };
    let db = await Db.open(store, testKeys(), dbOpts);
    let fs = await ZeroFs.open(db, {});
    const data = new Rng(8).bytes(1 << 20);
    const f = await newFile(fs);
    await fs.write(root, f, 0, data, StableHow.FILE_SYNC);
    await fs.close();
    await db.close();
    db = await Db.open(store, testKeys(), dbOpts);
    fs = await ZeroFs.open(db, {});
    try {
      store.segmentGets = 0;
      assert.ok((await fs.read(root, f, 0, 1 << 20)).data.equals(data));
      assert.equal(store.segmentGets, 1, "32 adjacent frames, one GET");
      store.segmentGets = 0;
      assert.ok((await fs.read(root, f, 100_000, 5000)).data.equals(data.subarray(100_000, 105_000)));
      assert.equal(store.segmentGets, 1);
    } finally {
      await fs.close();
      await db.close();
    }
  });

  it("small WRITEs stay in the extent cache for reads after them; a streaming (1 MiB) WRITE's frames are opened from the segment", async () => {
    const store = new SegmentCountingStore();
    const db = await Db.open(store, testKeys(), SMALL_DB);
    const fs = await ZeroFs.open(db, {});
    try {
      const f = await newFile(fs);
      const rng = new Rng(21);
      const small = rng.bytes(CACHED_WRITE_MAX_BYTES / 2);
      const large = rng.bytes(1 << 20);
      await fs.write(root, f, 1 << 20, small, StableHow.FILE_SYNC);
      await fs.write(root, f, 4 << 20, large, StableHow.FILE_SYNC);
      const hits0 = db.segments.stats().reader.hits;
      assert.ok((await fs.read(root, f, 1 << 20, small.length)).data.equals(small));
      assert.equal(store.segmentGets, 0, "the small write is read from memory");
      assert.equal(db.segments.stats().reader.hits - hits0, small.length / B);
      assert.ok((await fs.read(root, f, 4 << 20, large.length)).data.equals(large));
      assert.ok(store.segmentGets >= 1, "the 1 MiB write was not kept: its frames come from the segment");
      assert.equal(db.segments.stats().reader.hits - hits0, small.length / B);
    } finally {
      await fs.close();
      await db.close();
    }
  });

  it("sequential READs fetch ahead into the cache (fewer, larger GETs); READs elsewhere fetch nothing extra", async () => {
    class CountingStore extends MemoryStore {
      segmentGets = 0;
      segmentBytes = 0;
      override async get(key: string, range?: { offset: number; length: number }): Promise<Buffer> {
        const b = await super.get(key, range);
        if (key.startsWith("seg/")) {
          await new Promise((r) => setTimeout(r, 10)); // a store with latency, as S3 or a cold disk
          this.segmentGets++;
          this.segmentBytes += b.length;
        }
        return b;
      }
    }
    const store = new CountingStore();
    const dbOpts = { ...SMALL_DB, segmentTargetBytes: 64 << 20 };
    let db = await Db.open(store, testKeys(), dbOpts);
    let fs = await ZeroFs.open(db, {});
    const data = new Rng(9).bytes(16 << 20);
    const f = await newFile(fs);
    for (let off = 0; off < data.length; off += 1 << 20) await fs.write(root, f, off, data.subarray(off, off + (1 << 20)), StableHow.UNSTABLE);
    await fs.commit(f);
    await fs.close();
    await db.close();
    for (const readAhead of [false, true]) {
      db = await Db.open(store, testKeys(), dbOpts);
      fs = await ZeroFs.open(db, { readAhead });
      try {
        store.segmentGets = 0;
        store.segmentBytes = 0;
        // One READ at a time, as a single reader does: only read-ahead can overlap the fetches.
        for (let off = 0; off < data.length; off += 1 << 20) assert.ok((await fs.read(root, f, off, 1 << 20)).data.equals(data.subarray(off, off + (1 << 20))), `read at ${off}`);
        await new Promise((r) => setTimeout(r, 50));
        if (!readAhead) assert.equal(store.segmentGets, 16, "one GET per READ");
        else {
          assert.ok(store.segmentGets < 12, `${store.segmentGets} GETs with read-ahead (16 without) ${JSON.stringify(fs.readAhead?.stats)}`);
          assert.ok(store.segmentBytes < data.length * 1.1, `read-ahead fetched ${store.segmentBytes} bytes for ${data.length}: nothing twice`);
          assert.ok(fs.readAhead!.stats.prefetches > 0);
          const before = fs.readAhead!.stats.prefetches;
          const rng = new Rng(10);
          for (let i = 0; i < 20; i++) await fs.read(root, f, rng.int(0, 15) * (1 << 20) + 4096 * rng.int(1, 200), 4096);
          assert.equal(fs.readAhead!.stats.prefetches, before, "random READs prefetch nothing");
        }
      } finally {
        await fs.close();
        await db.close();
      }
    }
  });

  it("a small file lives inline in the LSM: its COMMIT uploads no segment; data past 4 KiB goes to segments", () =>
    withFs(async ({ fs, db }) => {
      const before = db.segments.stats().writer.frames;
      const small = await newFile(fs, "small");
      const body = new Rng(12).bytes(4096);
      await fs.write(root, small, 0, body, StableHow.UNSTABLE);
      await fs.commit(small);
      assert.equal(db.segments.stats().writer.frames, before, "no frame for a 4 KiB file");
      assert.ok((await readAll(fs, small)).equals(body));
      await fs.write(root, small, 4096, body, StableHow.UNSTABLE);
      assert.equal(db.segments.stats().writer.frames, before + 1, "the file's next 4 KiB is a frame");
      assert.equal((await fs.getattr(small)).used, 8192);
    }));

  it("a small overwrite seals only its own bytes and never reads old data", () =>
    withFs(async ({ fs, db }) => {
      const f = await newFile(fs);
      const data = new Rng(4).bytes(256 * 1024);
      await fs.write(root, f, 0, data, StableHow.FILE_SYNC);
      await fs.commit(f);
      const before = structuredClone(db.segments.stats());
      const rng = new Rng(5);
      for (let i = 0; i < 50; i++) {
        const off = rng.int(0, data.length - 4096);
        const patch = rng.bytes(4096);
        await fs.write(root, f, off, patch, StableHow.UNSTABLE);
        patch.copy(data, off);
      }
      const after = db.segments.stats();
      assert.equal(after.reader.misses, before.reader.misses, "no frame was fetched to write");
      const sealed = after.writer.frames - before.writer.frames;
      assert.ok(sealed >= 50 && sealed <= 100, `${sealed} frames for 50 writes of 4 KiB (at most 2 blocks each)`);
      assert.ok((await readAll(fs, f)).equals(data));
    }));

  it("holes and zero writes store nothing; truncation trims pieces; growth shows zeros", () =>
    withFs(async ({ fs, db }) => {
      const f = await newFile(fs);
      await fs.write(root, f, 3 * B + 10, Buffer.from("tail"), StableHow.UNSTABLE);
      assert.deepEqual([...(await blocks(db, f)).keys()], [3]);
      assert.equal((await fs.getattr(f)).used, 4096);
      await fs.write(root, f, 3 * B + 10, Buffer.alloc(4), StableHow.UNSTABLE);
      assert.deepEqual([...(await blocks(db, f)).keys()], [], "zeros over data make a hole");
      assert.equal((await fs.getattr(f)).used, 0);
      const big = new Rng(6).bytes(5 * B);
      await fs.write(root, f, 0, big, StableHow.UNSTABLE);
      await fs.setattr(root, f, { size: 2 * B + 5 });
      assert.deepEqual([...(await blocks(db, f)).keys()], [0, 1, 2]);
      assert.equal(pieceBytes((await blocks(db, f)).get(2)!), 5);
      await fs.setattr(root, f, { size: 6 * B });
      const all = await readAll(fs, f);
      assert.ok(all.subarray(0, 2 * B + 5).equals(big.subarray(0, 2 * B + 5)));
      assert.ok(all.subarray(2 * B + 5).every((b) => b === 0), "no stale byte reappears");
    }));

  it("keeps extentBytes equal to the stored pieces and content equal to a byte model (seeded, with reopen)", async () => {
    const rng = Rng.fromEnv("extent data model");
    const fx = await openFs({ inlineDeleteChunks: 4, reclaimBatchKeys: 3 });
    try {
      const files: { ino: number; model: Buffer }[] = [];
      for (let i = 0; i < 3; i++) files.push({ ino: await newFile(fx.fs, `f${i}`), model: Buffer.alloc(0) });
      for (let op = 0; op < 300; op++) {
        const file = files[rng.int(0, files.length - 1)]!;
        const r = rng.next();
        if (r < 0.6) {
          const off = rng.int(0, 12 * B);
          const len = rng.int(1, rng.chance(0.5) ? 600 : 3 * B);
          const data = rng.chance(0.15) ? Buffer.alloc(len) : rng.bytes(len);
          await fx.fs.write(root, file.ino, off, data, rng.chance(0.3) ? StableHow.FILE_SYNC : StableHow.UNSTABLE);
          if (file.model.length < off + len) file.model = Buffer.concat([file.model, Buffer.alloc(off + len - file.model.length)]);
          data.copy(file.model, off);
        } else if (r < 0.8) {
          const size = rng.int(0, 14 * B);
          await fx.fs.setattr(root, file.ino, { size });
          file.model = size <= file.model.length ? Buffer.from(file.model.subarray(0, size)) : Buffer.concat([file.model, Buffer.alloc(size - file.model.length)]);
        } else if (r < 0.85) {
          await fx.reopen();
        } else {
          const got = await readAll(fx.fs, file.ino);
          assert.ok(got.equals(file.model), `content of inode ${file.ino} after op ${op}`);
        }
        const stored = pieceBytesOf(await blocks(fx.db, file.ino));
        const attrs = await fx.fs.getattr(file.ino);
        assert.equal(attrs.size, file.model.length);
        assert.equal(attrs.used, Math.min(Math.ceil(attrs.size / 4096), Math.ceil(stored / 4096)) * 4096, `used of inode ${file.ino} after op ${op}`);
      }
      for (const file of files) assert.ok((await readAll(fx.fs, file.ino)).equals(file.model));
      for (const [i, file] of files.entries()) {
        await fx.fs.remove(root, fx.fs.rootIno, `f${i}`);
        await fx.fs.backgroundIdle();
        assert.equal((await blocks(fx.db, file.ino)).size, 0, `blocks of removed inode ${file.ino}`);
      }
      assert.equal(await countKind(fx.db, KeyKind.TOMBSTONE), 0);
    } finally {
      await fx.close();
    }
  });

  it("truncating and removing a 2^52-byte sparse file costs its stored blocks", { timeout: 60_000 }, () =>
    withFs(async ({ fs, db }) => {
      const f = await newFile(fs);
      for (let i = 0; i < 300; i++) await fs.write(root, f, i * 2 ** 40 + 7, Buffer.alloc(2000, i + 1), StableHow.UNSTABLE);
      await fs.setattr(root, f, { size: 2 ** 52 });
      await fs.setattr(root, f, { size: 10 });
      assert.deepEqual([...(await blocks(db, f)).keys()], [0]);
      await fs.setattr(root, f, { size: 2 ** 52 });
      await fs.write(root, f, 2 ** 51, Buffer.from("x"), StableHow.UNSTABLE);
      assert.ok((await fs.read(root, f, 2 ** 40 + 7, 10)).data.equals(Buffer.alloc(10)));
      await fs.remove(root, fs.rootIno, "f");
      await fs.backgroundIdle();
      assert.equal((await blocks(db, f)).size, 0);
      await rejectsWith(fs.getattr(f), "ESTALE");
    }));

  it("a v1 file truncated to zero continues in layout 2", async () => {
    const fx = await openFs({ dataLayout: 1 });
    try {
      const f = await newFile(fx.fs);
      await fx.fs.write(root, f, 0, Buffer.alloc(100_000, 7), StableHow.UNSTABLE);
      await fx.reopen({});
      assert.equal((await readAll(fx.fs, f)).length, 100_000);
      await fx.fs.setattr(root, f, { size: 0 });
      await fx.fs.write(root, f, 0, Buffer.alloc(50_000, 9), StableHow.UNSTABLE);
      assert.equal(await countKind(fx.db, KeyKind.CHUNK), 0, "no chunk left");
      assert.equal((await blocks(fx.db, f)).size, 2);
      assert.ok((await readAll(fx.fs, f)).equals(Buffer.alloc(50_000, 9)));
    } finally {
      await fx.close();
    }
  });

  // With crypto worker threads the frames are encrypted after their pointers are in the batch:
  // the same rule must hold (an upload waits for its frames' encryption).
  for (const cryptoThreads of [0, 1]) it(`never makes a pointer durable before its segment: kill at random store calls, every acknowledged write survives (seeded; ${cryptoThreads} crypto threads)`, { timeout: 120_000 }, async () => {
    const rng = Rng.fromEnv("segment crash");
    for (let round = 0; round < 12; round++) {
      const inner = new MemoryStore();
      const store = new FaultInjectingStore(inner);
      const dbOpts = { ...SMALL_DB, flushIntervalMs: 5, segmentTargetBytes: 64 * 1024, cryptoThreads };
      let db = await Db.open(store, testKeys(), dbOpts);
      let fs = await ZeroFs.open(db, {});
      const f = await newFile(fs);
      await fs.commit(f);
      store.crashAfter(rng.int(1, 60), { midPut: rng.chance(0.5) });
      // Each write covers a region of its own: acknowledged FILE_SYNC regions must read back.
      const acked: { off: number; data: Buffer }[] = [];
      const pending: Promise<void>[] = [];
      for (let i = 0; i < 40; i++) {
        const off = i * 20_000;
        const data = rng.bytes(rng.int(1, 20_000));
        const stable = rng.chance(0.5) ? StableHow.FILE_SYNC : StableHow.UNSTABLE;
        pending.push(
          fs.write(root, f, off, data, stable).then(
            () => void (stable === StableHow.FILE_SYNC && acked.push({ off, data })),
            () => undefined,
          ),
        );
        if (rng.chance(0.3)) await Promise.all(pending.splice(0));
      }
      await Promise.all(pending);
      await fs.close().catch(() => undefined);
      await db.close().catch(() => undefined);
      store.reset();
      db = await Db.open(inner, testKeys(), dbOpts);
      fs = await ZeroFs.open(db, {});
      try {
        const size = (await fs.getattr(f)).size;
        const all = await readAll(fs, f); // throws if any pointer dangles
        assert.equal(all.length, size);
        for (const a of acked) assert.ok(all.subarray(a.off, a.off + a.data.length).equals(a.data), `round ${round}: acknowledged write at ${a.off}`);
      } finally {
        await fs.close();
        await db.close();
      }
    }
  });
});

function pieceBytesOf(m: Map<number, Piece[]>): number {
  let n = 0;
  for (const ps of m.values()) n += pieceBytes(ps);
  return n;
}

describe("segment GC", () => {
  const gcOpts = { segmentGc: true, segmentGcOptions: { intervalMs: 0, graceMs: 0, smallSegmentBytes: 0 } };
  const smallSegments = { ...SMALL_DB, segmentTargetBytes: 256 * 1024 };

  async function segmentBytes(db: Db): Promise<number> {
    return (await db.segments.list()).reduce((n, s) => n + s.size, 0);
  }

  it("deletes the segments of overwritten data and keeps the data", () =>
    withFs(
      async ({ fs, db }) => {
        const f = await newFile(fs);
        let data: Buffer = Buffer.alloc(0);
        for (let round = 0; round < 4; round++) {
          data = new Rng(10 + round).bytes(2 << 20);
          for (let off = 0; off < data.length; off += 1 << 20) await fs.write(root, f, off, data.subarray(off, off + (1 << 20)), StableHow.UNSTABLE);
          await fs.commit(f);
        }
        const before = await segmentBytes(db);
        assert.ok(before > 7 << 20, `4 generations stored: ${before}`);
        await fs.segmentGc!.runPass();
        await fs.commit(f);
        const after = await segmentBytes(db);
        assert.ok(after < (2 << 20) * 1.1, `only the live generation remains: ${after} bytes`);
        assert.ok(fs.segmentGc!.spaceAmplification < 1.1);
        assert.ok((await readAll(fs, f)).equals(data));
      },
      gcOpts,
      smallSegments,
    ));

  it("compacts segments that random small overwrites left mostly dead (space ≤ 1.5×), content intact (seeded)", { timeout: 120_000 }, () =>
    withFs(
      async ({ fs, db }) => {
        const rng = Rng.fromEnv("segment GC random overwrites");
        const f = await newFile(fs);
        const data = rng.bytes(1 << 20);
        await fs.write(root, f, 0, data, StableHow.UNSTABLE);
        await fs.commit(f);
        for (let i = 0; i < 600; i++) {
          const off = rng.int(0, (data.length >> 12) - 1) << 12;
          const patch = rng.bytes(4096);
          await fs.write(root, f, off, patch, StableHow.UNSTABLE);
          patch.copy(data, off);
        }
        await fs.commit(f);
        const before = await segmentBytes(db);
        for (let pass = 0; pass < 4; pass++) {
          await fs.segmentGc!.runPass();
          await fs.commit(f);
        }
        await fs.segmentGc!.runPass();
        const after = await segmentBytes(db);
        console.log(`# random 4 KiB overwrites of 1 MiB: ${before} segment bytes before GC, ${after} after (${(after / data.length).toFixed(2)}x)`);
        assert.ok(after <= data.length * 1.5, `space after GC ${after} for ${data.length} live bytes`);
        assert.ok((await readAll(fs, f)).equals(data));
      },
      gcOpts,
      smallSegments,
    ));

  it("collects a crashed writer's unreferenced segments; spares the writer's unsettled frames", async () => {
    const store = new MemoryStore();
    const db1 = await Db.open(store, testKeys(), SMALL_DB);
    // A crashed writer: its frame reached a segment, its pointer never did.
    const s1 = db1.segments;
    s1.append(await s1.prepare(Buffer.alloc(5000, 1)), Buffer.alloc(5000, 1));
    await s1.writer.flushAll();
    // (no close: the process "died"; the next writer fences it)
    const db = await Db.open(store, testKeys(), SMALL_DB);
    const fs = await ZeroFs.open(db, { segmentGcOptions: { intervalMs: 0, graceMs: 0 } });
    try {
      assert.equal((await db.segments.list()).length, 1);
      // This writer's own frame whose pointer batch is not applied yet must survive a pass.
      const frame = db.segments.append(await db.segments.prepare(Buffer.alloc(6000, 2)), Buffer.alloc(6000, 2));
      await db.segments.writer.flushAll();
      await fs.segmentGc!.runPass();
      const left = await db.segments.list();
      assert.deepEqual(left.map((s) => s.epoch), [db.segments.writer.writerEpoch], "the crashed writer's segment is gone, ours stays");
      db.segments.settle(frame);
      await fs.segmentGc!.runPass();
      assert.equal((await db.segments.list()).length, 0, "once settled and unreferenced, it goes too");
    } finally {
      await fs.close();
      await db.close();
      await db1.close().catch(() => undefined);
    }
  });

  it("a fenced writer's file data is never acknowledged, never read, and its segments are collected", async () => {
    const store = new MemoryStore();
    const dbA = await Db.open(store, testKeys(), SMALL_DB);
    const fsA = await ZeroFs.open(dbA, { segmentGc: false });
    const epochA = dbA.segments.writer.writerEpoch;
    const f = await newFile(fsA);
    await fsA.write(root, f, 0, Buffer.alloc(40_000, 1), StableHow.FILE_SYNC);
    // B takes the volume over: A is a zombie from now on.
    const dbB = await Db.open(store, testKeys(), SMALL_DB);
    const fsB = await ZeroFs.open(dbB, { segmentGcOptions: { intervalMs: 0, graceMs: 0 } });
    try {
      await assert.rejects(fsA.write(root, f, 0, Buffer.alloc(40_000, 2), StableHow.FILE_SYNC), /fenced/i);
      const zombieSegments = (await dbB.segments.list()).filter((s) => s.epoch === epochA);
      assert.ok(zombieSegments.length >= 2, "the zombie's second write reached a segment before its WAL write failed");
      assert.ok((await readAll(fsB, f)).equals(Buffer.alloc(40_000, 1)), "B sees only what A had made durable");
      await fsB.segmentGc!.runPass();
      const left = (await dbB.segments.list()).filter((s) => s.epoch === epochA);
      assert.equal(left.length, 1, "only the segment B's pointers use survives");
      assert.ok((await readAll(fsB, f)).equals(Buffer.alloc(40_000, 1)));
    } finally {
      await fsB.close();
      await dbB.close();
      await fsA.close().catch(() => undefined);
      await dbA.close().catch(() => undefined);
    }
  });

  it("waits for the grace period before deleting what it first sees unreferenced", () =>
    withFs(
      async ({ fs, db }) => {
        const f = await newFile(fs);
        await fs.write(root, f, 0, Buffer.alloc(100_000, 3), StableHow.FILE_SYNC);
        await fs.setattr(root, f, { size: 0 });
        await fs.commit(f);
        const t0 = Date.now();
        await fs.segmentGc!.runPass(t0);
        assert.equal((await db.segments.list()).length, 1, "first sight: kept");
        await fs.segmentGc!.runPass(t0 + 59_000);
        assert.equal((await db.segments.list()).length, 1);
        await fs.segmentGc!.runPass(t0 + 61_000);
        assert.equal((await db.segments.list()).length, 0);
      },
      { segmentGcOptions: { intervalMs: 0, graceMs: 60_000 } },
    ));

  it("runs concurrently with writers and reopens without losing a byte (seeded)", { timeout: 120_000 }, async () => {
    const rng = Rng.fromEnv("segment GC concurrency");
    const fx = await openFs({ segmentGcOptions: { intervalMs: 0, graceMs: 0, smallSegmentBytes: 64 * 1024 } }, smallSegments);
    try {
      const f = await newFile(fx.fs);
      let model = Buffer.alloc(0);
      for (let round = 0; round < 6; round++) {
        const writes: Promise<unknown>[] = [];
        for (let i = 0; i < 40; i++) {
          const off = rng.int(0, 300_000);
          const data = rng.bytes(rng.int(1, 40_000));
          if (model.length < off + data.length) model = Buffer.concat([model, Buffer.alloc(off + data.length - model.length)]);
          data.copy(model, off);
          writes.push(fx.fs.write(root, f, off, data, StableHow.UNSTABLE));
          if (i % 10 === 0) writes.push(fx.fs.segmentGc!.runPass());
        }
        await Promise.all(writes);
        assert.ok((await readAll(fx.fs, f)).equals(model), `round ${round}`);
        if (round % 2 === 1) await fx.reopen();
      }
    } finally {
      await fx.close();
    }
  });
});
