/** Key layout and record codecs: byte order = numeric order, round trips, corruption detection. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isFsError } from "../../src/fs/errors.ts";
import { decodeHandle, encodeHandle, HANDLE_BYTES } from "../../src/fs/handles.ts";
import { decodeInode, encodeInode, type Inode } from "../../src/fs/inode-codec.ts";
import {
  INODE_HIGH_WATER_KEY,
  KeyKind,
  SUPERBLOCK_KEY,
  CounterKind,
  allChunksRange,
  chunkKey,
  cookieKey,
  cookieRange,
  counterKey,
  direntKey,
  inodeKey,
  parseChunkKey,
  parseCookieKey,
  parseTombstoneKey,
  readU64,
  tombstoneKey,
  writeU64,
} from "../../src/fs/keys.ts";
import { KeyedMutex } from "../../src/fs/locks.ts";
import { Clock, compareTime } from "../../src/fs/clock.ts";
import {
  TombstoneKind,
  decodeCookieEntry,
  decodeCounter,
  decodeDirent,
  decodeSuperblock,
  decodeTombstone,
  encodeCookieValue,
  encodeCounter,
  encodeDirent,
  encodeSuperblock,
  encodeTombstone,
} from "../../src/fs/records.ts";
import { storedForm } from "../../src/fs/file-data.ts";
import { FileType } from "../../src/fs/types.ts";

const cmp = (a: Buffer, b: Buffer): number => Buffer.compare(a, b);

describe("key layout", () => {
  it("uses a one-byte kind prefix and big-endian ids", () => {
    assert.deepEqual([...inodeKey(0x0102)], [KeyKind.INODE, 0, 0, 0, 0, 0, 0, 0x01, 0x02]);
    assert.deepEqual([...chunkKey(1, 2)], [KeyKind.CHUNK, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
    assert.equal(direntKey(5, Buffer.from("ab")).toString("hex"), "440000000000000005" + "6162");
    assert.equal(cookieKey(5, 7).length, 17);
    assert.equal(tombstoneKey(9)[0], KeyKind.TOMBSTONE);
    assert.deepEqual([...SUPERBLOCK_KEY], [KeyKind.SUPERBLOCK]);
    assert.deepEqual([...INODE_HIGH_WATER_KEY], [KeyKind.COUNTER, CounterKind.INODE_HIGH_WATER]);
    assert.deepEqual([...counterKey(CounterKind.USED_BYTES, 3)], [KeyKind.COUNTER, 1, 0, 3]);
  });

  it("orders keys numerically, including ids above 2^32", () => {
    const ids = [0, 1, 255, 256, 65535, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, 2 ** 53 - 1];
    for (let i = 1; i < ids.length; i++) {
      assert.ok(cmp(inodeKey(ids[i - 1]!), inodeKey(ids[i]!)) < 0, `inode ${ids[i - 1]} < ${ids[i]}`);
      assert.ok(cmp(chunkKey(7, ids[i - 1]!), chunkKey(7, ids[i]!)) < 0);
      assert.ok(cmp(cookieKey(7, ids[i - 1]!), cookieKey(7, ids[i]!)) < 0);
    }
    // A file's chunks sort between the previous and next inode's chunks.
    assert.ok(cmp(chunkKey(6, 2 ** 40), chunkKey(7, 0)) < 0);
    assert.ok(cmp(chunkKey(7, 2 ** 40), chunkKey(8, 0)) < 0);
    const [from, to] = allChunksRange(7);
    assert.ok(cmp(from, chunkKey(7, 0)) <= 0 && cmp(chunkKey(7, 2 ** 52), to) < 0);
    const [cf, ct] = cookieRange(7, 3);
    assert.ok(cmp(cf, cookieKey(7, 3)) === 0 && cmp(cookieKey(7, 2 ** 52), ct) < 0 && cmp(cookieKey(8, 0), ct) >= 0);
  });

  it("parses what it builds", () => {
    assert.deepEqual(parseChunkKey(chunkKey(2 ** 45, 12345)), { ino: 2 ** 45, index: 12345 });
    assert.deepEqual(parseCookieKey(cookieKey(42, 2 ** 33)), { dir: 42, cookie: 2 ** 33 });
    assert.equal(parseTombstoneKey(tombstoneKey(77)), 77);
    assert.throws(() => parseChunkKey(inodeKey(1)), (e: unknown) => isFsError(e, "EIO"));
    assert.throws(() => inodeKey(-1), RangeError);
    assert.throws(() => inodeKey(2 ** 53), RangeError);
  });
});

describe("record codecs", () => {
  const inode: Inode = {
    ino: 99,
    type: FileType.LNK,
    mode: 0o7755,
    nlink: 3,
    uid: 65534,
    gid: 4_000_000_000,
    size: 2 ** 50 + 1,
    atime: { sec: -5, nsec: 999_999_999 },
    mtime: { sec: 2 ** 33, nsec: 1 },
    ctime: { sec: 1_700_000_000, nsec: 123 },
    rdev: { major: 8, minor: 17 },
    generation: 0xdeadbeef,
    parent: 0,
    nextCookie: 12,
    verifier: Buffer.from("01234567"),
    target: Buffer.from("../some/where"),
    chunks: undefined,
    extentBytes: undefined,
  };

  it("round-trips inodes, with and without optional parts", () => {
    assert.deepEqual(decodeInode(99, encodeInode(inode)), inode);
    const plain = { ...inode, type: FileType.DIR, verifier: undefined, target: undefined, parent: 4 };
    assert.deepEqual(decodeInode(99, encodeInode(plain)), plain);
    assert.equal(encodeInode(plain)[0], 2, "version byte");
    const file = { ...inode, type: FileType.REG, target: undefined, chunks: 2 ** 40 + 3 };
    assert.deepEqual(decodeInode(99, encodeInode(file)), file);
    const zero = { ...file, chunks: 0 };
    assert.deepEqual(decodeInode(99, encodeInode(zero)), zero);
    const ext = { ...file, chunks: undefined, extentBytes: 2 ** 45 + 1 };
    assert.deepEqual(decodeInode(99, encodeInode(ext)), ext);
    assert.equal(encodeInode(ext)[88]! & 6, 4, "flag bit 2 marks layout-2 data, bit 1 stays clear");
    assert.throws(() => encodeInode({ ...ext, chunks: 1 }), /both/);
    const both = encodeInode(ext);
    both[88] = both[88]! | 2;
    assert.throws(() => decodeInode(99, both), (e: unknown) => isFsError(e, "EIO"));
  });

  it("reads version 1 inode records (no stored-chunk count)", () => {
    // Version 1 is version 2 without the 8-byte count at offset 89 and without flag bit 1.
    const file = { ...inode, type: FileType.REG, target: undefined, chunks: 7 };
    const v2 = encodeInode(file);
    const v1 = Buffer.concat([v2.subarray(0, 89), v2.subarray(97)]);
    v1[0] = 1;
    v1[88] = v1[88]! & 1;
    assert.deepEqual(decodeInode(99, v1), { ...file, chunks: undefined });
    const link = Buffer.concat([encodeInode(inode).subarray(0, 89), encodeInode(inode).subarray(97)]);
    link[0] = 1;
    link[88] = link[88]! & 1;
    assert.deepEqual(decodeInode(99, link), { ...inode, chunks: undefined });
  });

  it("rejects corrupt inode records with EIO and context", () => {
    const buf = encodeInode(inode);
    for (const bad of [buf.subarray(0, 20), Buffer.concat([buf, Buffer.from([0])]), Buffer.from([9, ...buf.subarray(1)]), Buffer.from([2, 42, ...buf.subarray(2)]), Buffer.from([1, ...buf.subarray(1)])]) {
      assert.throws(() => decodeInode(99, bad), (e: unknown) => isFsError(e, "EIO") && /inode 99/.test((e as Error).message));
    }
  });

  it("round-trips the small records", () => {
    const volumeId = Buffer.alloc(16, 7);
    assert.deepEqual(decodeSuperblock(encodeSuperblock({ layoutVersion: 1, volumeId, createdMs: 1234, rootIno: 1 })), { layoutVersion: 1, volumeId, createdMs: 1234, rootIno: 1 });
    assert.deepEqual(decodeSuperblock(encodeSuperblock({ layoutVersion: 2, volumeId, createdMs: 1, rootIno: 1 })).layoutVersion, 2);
    assert.deepEqual(decodeSuperblock(encodeSuperblock({ layoutVersion: 3, volumeId, createdMs: 1, rootIno: 1 })).layoutVersion, 3, "3: quota projects");
    assert.throws(() => decodeSuperblock(encodeSuperblock({ layoutVersion: 4, volumeId, createdMs: 1, rootIno: 1 })), /layout version 4/);
    assert.throws(() => decodeSuperblock(encodeSuperblock({ layoutVersion: 0, volumeId, createdMs: 1, rootIno: 1 })), /layout version 0/);
    for (const kind of [TombstoneKind.TRUNCATED, TombstoneKind.EXTENTS_DELETED, TombstoneKind.EXTENTS_TRUNCATED]) {
      assert.deepEqual(decodeTombstone(encodeTombstone({ kind, from: 1, to: 2 }), 1), { kind, from: 1, to: 2 });
    }
    assert.throws(() => decodeTombstone(Buffer.from([5, ...Buffer.alloc(16)]), 1), /corrupt/);
    assert.deepEqual(decodeDirent(encodeDirent({ ino: 5, cookie: 9, type: FileType.FIFO }), "x"), { ino: 5, cookie: 9, type: FileType.FIFO });
    assert.deepEqual(decodeCookieEntry(3, encodeCookieValue({ ino: 5, type: FileType.REG, name: Buffer.from("n") }), 1), { cookie: 3, ino: 5, type: FileType.REG, name: Buffer.from("n") });
    assert.deepEqual(decodeTombstone(encodeTombstone({ kind: TombstoneKind.DELETED, from: 3, to: 2 ** 40 }), 1), { kind: TombstoneKind.DELETED, from: 3, to: 2 ** 40 });
    for (const n of [0, 1, -1, 2 ** 53 - 1, -(2 ** 53 - 1)]) assert.equal(decodeCounter(encodeCounter(n), "c"), n);
  });

  it("u64 fields: big-endian, safe integers only, a short or oversized record is EIO", () => {
    const b = Buffer.alloc(10, 0xee);
    for (const n of [0, 1, 0xffff_ffff, 2 ** 32, 2 ** 40 + 12345, 2 ** 53 - 1]) {
      writeU64(b, n, 1);
      assert.equal(b.readBigUInt64BE(1), BigInt(n));
      assert.equal(readU64(b, 1), n);
    }
    assert.equal(b[0], 0xee, "bytes before the field untouched");
    assert.equal(b[9], 0xee, "bytes after the field untouched");
    assert.throws(() => writeU64(b, 2 ** 53, 0), RangeError);
    assert.throws(() => writeU64(b, 1, 3), RangeError);
    const short = (f: () => unknown) => assert.throws(f, (e: unknown) => isFsError(e) && e.code === "EIO" && /offset 3/.test(String((e as Error).message)));
    short(() => readU64(b, 3));
    b.writeBigUInt64BE(1n << 53n, 0);
    assert.throws(() => readU64(b, 0), (e: unknown) => isFsError(e) && e.code === "EIO");
  });

  it("listed cookie entries: cookie, inode, type and the name (a view of the record)", () => {
    const rec = encodeCookieValue({ ino: 77, type: FileType.DIR, name: Buffer.from("sub") });
    const e = decodeCookieEntry(9, rec, 4);
    assert.deepEqual({ ...e, name: Buffer.from(e.name) }, { cookie: 9, ino: 77, type: FileType.DIR, name: Buffer.from("sub") });
    assert.equal(e.name.buffer, rec.buffer, "no copy");
    assert.throws(() => decodeCookieEntry(9, rec.subarray(0, 9), 4), /cookie 9 in directory 4: corrupt record/);
  });

  it("file handles carry the volume and inode, and reject foreign bytes", () => {
    const vol = Buffer.alloc(16, 0xab);
    const h = encodeHandle(vol, 2 ** 40 + 5, 77);
    assert.equal(h.length, HANDLE_BYTES);
    assert.ok(h.length <= 64);
    assert.deepEqual(decodeHandle(h), { volumeId: vol, ino: 2 ** 40 + 5, generation: 77 });
    for (const bad of [Buffer.alloc(0), h.subarray(0, 28), Buffer.concat([h, Buffer.alloc(1)]), Buffer.from([2, ...h.subarray(1)]), Buffer.alloc(HANDLE_BYTES, 0xff)]) {
      assert.throws(() => decodeHandle(bad), (e: unknown) => isFsError(e, "BADHANDLE"));
    }
  });

  it("stores chunks with trailing zeros trimmed and all-zero chunks not at all", () => {
    assert.equal(storedForm(Buffer.alloc(65536)), undefined);
    assert.equal(storedForm(Buffer.alloc(0)), undefined);
    const b = Buffer.alloc(100);
    b[10] = 1;
    assert.equal(storedForm(b)?.length, 11);
  });
});

describe("support pieces", () => {
  it("the keyed mutex serializes per key, orders multi-key acquisition and never deadlocks", async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const task = async (name: string, keys: number[], ms: number): Promise<void> => {
      const release = await m.acquire(keys);
      log.push(`+${name}`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`-${name}`);
      release();
    };
    // Opposite key orders would deadlock with naive acquisition.
    await Promise.all([task("a", [1, 2], 5), task("b", [2, 1], 5), task("c", [3], 1), task("d", [1], 1)]);
    assert.equal(log.length, 8);
    for (const [x, y] of [["a", "b"], ["a", "d"]] as const) {
      const ix = log.indexOf(`+${x}`);
      const iy = log.indexOf(`+${y}`);
      // Whichever started first finished before the other started.
      if (ix < iy) assert.ok(log.indexOf(`-${x}`) < iy);
      else assert.ok(log.indexOf(`-${y}`) < ix);
    }
    assert.equal(m.size, 0, "no lock left behind");
  });

  it("the clock is strictly increasing even when the wall clock stands still or goes back", () => {
    let ms = 1000.5;
    const c = new Clock(() => ms);
    const a = c.now();
    const b = c.now();
    ms = 500;
    const d = c.now();
    assert.ok(compareTime(a, b) < 0 && compareTime(b, d) < 0);
    assert.deepEqual(a, { sec: 1, nsec: 500_000 });
  });
});

describe("inode cache", () => {
  it("a slow read of an old version never overwrites a newer cached inode", async () => {
    const { InodeTable } = await import("../../src/fs/inode-table.ts");
    const old = encodeInode({ ...baseInode(5), size: 1 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fakeDb = { get: async () => (await gate, old) } as unknown as import("../../src/lsm/db.ts").Db; // only get() is used
    const table = new InodeTable(fakeDb, 10);
    const slow = table.get(5);
    table.update({ ...baseInode(5), size: 2 });
    release();
    assert.equal((await slow)?.size, 1, "the slow reader sees what it read");
    assert.equal((await table.get(5))?.size, 2, "the cache keeps the newer version");
  });
});

function baseInode(ino: number): Inode {
  return {
    ino,
    type: FileType.REG,
    mode: 0o644,
    nlink: 1,
    uid: 0,
    gid: 0,
    size: 0,
    atime: { sec: 0, nsec: 0 },
    mtime: { sec: 0, nsec: 0 },
    ctime: { sec: 0, nsec: 0 },
    rdev: { major: 0, minor: 0 },
    generation: 1,
    parent: 0,
    nextCookie: 0,
    verifier: undefined,
    target: undefined,
  };
}
