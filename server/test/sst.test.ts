import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import fc from "fast-check";
import { createBlockSealer } from "../src/crypto/block-sealer.ts";
import { SealError, type Sealer } from "../src/crypto/sealer.ts";
import { compareKeys, type Entry } from "../src/lsm/entry.ts";
import { BlockCache } from "../src/lsm/sst/block-cache.ts";
import { Block } from "../src/lsm/sst/block.ts";
import { BlockBuilder, entryBlockBytes } from "../src/lsm/sst/block-builder.ts";
import { BloomFilter, BloomFilterBuilder } from "../src/lsm/sst/bloom-filter.ts";
import { SstCorruptError } from "../src/lsm/sst/errors.ts";
import { FOOTER_SIZE } from "../src/lsm/sst/footer.ts";
import { SstBuilder, type SstBuilderOptions, type SstInfo } from "../src/lsm/sst/sst-builder.ts";
import { SstReader, TAIL_READ_BYTES } from "../src/lsm/sst/sst-reader.ts";
import { ByteReader, writeVarint, varintSize } from "../src/lsm/sst/varint.ts";
import { MemoryStore } from "../src/store/memory-store.ts";
import type { ByteRange, ObjectStore, PutBody } from "../src/store/object-store.ts";

/**
 * Test-only sealer (ChaCha20-Poly1305 from node:crypto, random 96-bit nonce prefix): real
 * encryption and authentication, no compression, fast. Keeps these tests independent of the
 * production sealer; the plaintext-marker test also runs with the real one.
 */
function testSealer(): Sealer {
  const key = randomBytes(32);
  const sealNow = (plain: Uint8Array, aad: Uint8Array): Buffer => {
    const nonce = randomBytes(12);
    const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    c.setAAD(aad, { plaintextLength: plain.length });
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([nonce, ct, c.getAuthTag()]);
  };
  return {
    async seal(plain, aad) {
      return sealNow(plain, aad);
    },
    async prepare(plain) {
      return { sealedLength: plain.length + 28, sealParts: (aad) => [sealNow(plain, aad)], sealAsync: async (aad) => [sealNow(plain, aad)] };
    },
    async open(sealed, aad) {
      if (sealed.length < 28) throw new SealError(`sealed block too short (${sealed.length} bytes)`);
      const s = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
      const d = createDecipheriv("chacha20-poly1305", key, s.subarray(0, 12), { authTagLength: 16 });
      d.setAAD(aad, { plaintextLength: s.length - 28 });
      d.setAuthTag(s.subarray(s.length - 16));
      try {
        return Buffer.concat([d.update(s.subarray(12, s.length - 16)), d.final()]);
      } catch (err) {
        throw new SealError("authentication failed", { cause: err });
      }
    },
  };
}

/** Delegating store that records every get (to count fetches and their ranges). */
class CountingStore implements ObjectStore {
  readonly inner = new MemoryStore("sst-test");
  readonly gets: { key: string; range?: ByteRange }[] = [];
  get description(): string {
    return this.inner.description;
  }
  get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets.push({ key, range });
    return this.inner.get(key, range);
  }
  put(key: string, body: PutBody) {
    return this.inner.put(key, body);
  }
  putIfAbsent(key: string, body: Uint8Array) {
    return this.inner.putIfAbsent(key, body);
  }
  putIfMatch(key: string, body: Uint8Array, etag: string) {
    return this.inner.putIfMatch(key, body, etag);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  close() {
    return this.inner.close();
  }
}

const sealer = testSealer();
let sstSeq = 0;
function nextKey(): string {
  return `sst/${String(++sstSeq).padStart(20, "0")}.sst`;
}

type Model = [Buffer, Buffer | null][];

async function build(entries: Model, opts?: SstBuilderOptions, s: Sealer = sealer, key = nextKey()): Promise<{ body: Buffer; info: SstInfo }> {
  const b = new SstBuilder(key, s, opts);
  for (const [k, v] of entries) b.add(k, v);
  return b.finish();
}

async function buildAndOpen(
  entries: Model,
  opts?: SstBuilderOptions,
  cacheBytes = 64 << 20,
): Promise<{ reader: SstReader; store: CountingStore; cache: BlockCache; info: SstInfo; body: Buffer }> {
  const { body, info } = await build(entries, opts);
  const store = new CountingStore();
  await store.put(info.key, body);
  const cache = new BlockCache(cacheBytes);
  const reader = await SstReader.open(store, info, sealer, cache);
  return { reader, store, cache, info, body };
}

async function collect(it: AsyncIterable<Entry>): Promise<Model> {
  const out: Model = [];
  for await (const e of it) out.push([Buffer.from(e.key), e.value === null ? null : Buffer.from(e.value)]);
  return out;
}

function keyOf(i: number): Buffer {
  return Buffer.from(`key-${String(i).padStart(8, "0")}`);
}

function sequential(n: number, valueSize = 100): Model {
  const out: Model = [];
  for (let i = 0; i < n; i++) {
    const v = Buffer.alloc(valueSize, i & 0xff);
    v.writeUInt32BE(i, 0);
    out.push([keyOf(i), i % 17 === 5 ? null : v]);
  }
  return out;
}

async function assertCorrupt(p: Promise<unknown>, objectKey: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SstCorruptError, `expected SstCorruptError, got ${String(err)}`);
    assert.equal(err.objectKey, objectKey);
    assert.ok(err.message.includes(objectKey), err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

describe("varint", () => {
  test("round-trips boundaries up to MAX_SAFE_INTEGER", () => {
    const values = [0, 1, 127, 128, 255, 16383, 16384, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 48, Number.MAX_SAFE_INTEGER];
    for (const v of values) {
      const buf = Buffer.alloc(10);
      const end = writeVarint(buf, 0, v);
      assert.equal(end, varintSize(v));
      const r = new ByteReader(buf, 0, end);
      assert.equal(r.varint(), v);
      assert.equal(r.remaining, 0);
    }
  });
  test("truncated varint throws", () => {
    assert.throws(() => new ByteReader(Buffer.from([0x80, 0x80])).varint(), /truncated varint/);
  });
});

describe("block", () => {
  test("seek, get and views without copying", () => {
    const bb = new BlockBuilder(4096);
    const keys = [Buffer.from([]), Buffer.from([0]), Buffer.from([0, 0]), Buffer.from([1]), Buffer.from([0xff])];
    for (const [i, k] of keys.entries()) {
      const v = i === 2 ? null : Buffer.from(`v${i}`);
      bb.add(k, v, entryBlockBytes(k, v));
    }
    const plain = bb.finish();
    const block = Block.decode(plain);
    assert.equal(block.count, 5);
    assert.equal(block.seek(Buffer.from([0, 0, 0])), 3);
    assert.equal(block.seek(Buffer.from([])), 0);
    assert.equal(block.seek(Buffer.from([0xff, 0])), 5);
    assert.equal(block.get(Buffer.from([0, 0]))?.value, null);
    assert.equal(block.get(Buffer.from([2])), undefined);
    const v = block.value(3)!;
    assert.equal(v.toString(), "v3");
    assert.equal(v.buffer, plain.buffer, "values are views of the decoded plaintext");
  });
  test("rejects structural damage", () => {
    const bb = new BlockBuilder(4096);
    for (const k of ["a", "b"]) bb.add(Buffer.from(k), Buffer.from("1"), entryBlockBytes(Buffer.from(k), Buffer.from("1")));
    const plain = bb.finish();
    const bad = Buffer.from(plain);
    bad.writeUInt32LE(99, bad.length - 4);
    assert.throws(() => Block.decode(bad), /claims 99 entries/);
    const bad2 = Buffer.from(plain);
    bad2[0] = 7;
    assert.throws(() => Block.decode(bad2), /unknown kind 7/);
  });
});

describe("bloom filter", () => {
  test("no false negatives; false-positive rate <= 2% for 10k absent keys", () => {
    const b = new BloomFilterBuilder(10);
    for (let i = 0; i < 10_000; i++) b.add(keyOf(i));
    const f = BloomFilter.decode(b.finish());
    assert.equal(f.k, 7);
    for (let i = 0; i < 10_000; i++) assert.ok(f.mayContain(keyOf(i)));
    let fp = 0;
    for (let i = 0; i < 10_000; i++) if (f.mayContain(Buffer.from(`absent-${i}`))) fp++;
    const rate = fp / 10_000;
    assert.ok(rate <= 0.02, `false-positive rate ${rate}`);
    // Also structured absent keys adjacent to present ones (same prefix, one byte different).
    fp = 0;
    for (let i = 10_000; i < 20_000; i++) if (f.mayContain(keyOf(i))) fp++;
    assert.ok(fp / 10_000 <= 0.02, `false-positive rate (adjacent keys) ${fp / 10_000}`);
  });
  test("bits per key 0 disables the filter", () => {
    const b = new BloomFilterBuilder(0);
    b.add(Buffer.from("x"));
    assert.ok(BloomFilter.decode(b.finish()).mayContain(Buffer.from("y")));
  });
});

describe("SstBuilder", () => {
  test("rejects unsorted and duplicate keys, and empty SSTs", async () => {
    const b = new SstBuilder(nextKey(), sealer);
    b.add(Buffer.from("b"), Buffer.from("1"));
    assert.throws(() => b.add(Buffer.from("a"), null), /strictly ascending/);
    assert.throws(() => b.add(Buffer.from("b"), null), /strictly ascending/);
    await assert.rejects(new SstBuilder(nextKey(), sealer).finish(), /empty SST/);
  });
  test("estimatedSize tracks the body size", async () => {
    const b = new SstBuilder(nextKey(), sealer, { blockSize: 4096 });
    for (const [k, v] of sequential(5000)) b.add(k, v);
    const est = b.estimatedSize;
    const { body } = await b.finish();
    assert.ok(Math.abs(est - body.length) / body.length < 0.05, `estimate ${est} vs ${body.length}`);
  });
  test("sealing failures surface from finish()", async () => {
    const failing: Sealer = {
      seal: () => Promise.reject(new Error("boom")),
      prepare: () => Promise.reject(new Error("boom")),
      open: (s, a) => sealer.open(s, a),
    };
    const b = new SstBuilder(nextKey(), failing, { blockSize: 64 });
    for (const [k, v] of sequential(50)) b.add(k, v);
    await assert.rejects(b.finish(), /sealing the region at offset 0 failed/);
  });
});

describe("SstReader round trips", () => {
  test("single entry", async () => {
    const { reader, info } = await buildAndOpen([[Buffer.from("only"), Buffer.from("value")]]);
    assert.equal(info.entryCount, 1);
    assert.deepEqual(info.firstKey, Buffer.from("only"));
    assert.deepEqual(info.lastKey, Buffer.from("only"));
    assert.equal(reader.blockCount, 1);
    assert.deepEqual((await reader.get(Buffer.from("only")))?.value, Buffer.from("value"));
    assert.equal(await reader.get(Buffer.from("onl")), undefined);
    assert.equal(await reader.get(Buffer.from("only\0")), undefined);
    assert.deepEqual(await collect(reader.scan()), [[Buffer.from("only"), Buffer.from("value")]]);
  });

  test("many entries across many blocks, tombstones, point gets", async () => {
    const model = sequential(5000);
    const { reader, info } = await buildAndOpen(model, { blockSize: 2048 });
    assert.equal(info.entryCount, 5000);
    assert.equal(reader.entryCount, 5000);
    assert.ok(reader.blockCount > 100, `blocks: ${reader.blockCount}`);
    for (const [k, v] of model) {
      const e = await reader.get(k);
      assert.ok(e, `missing ${k.toString()}`);
      assert.deepEqual(e.value, v);
    }
    assert.deepEqual(await collect(reader.scan()), model);
    // absent: before first, after last, between keys
    assert.equal(await reader.get(Buffer.from("a")), undefined);
    assert.equal(await reader.get(Buffer.from("key-")), undefined);
    assert.equal(await reader.get(Buffer.from("key-00000010x")), undefined);
    assert.equal(await reader.get(Buffer.from("zzz")), undefined);
    assert.equal(await reader.get(Buffer.from("")), undefined);
  });

  test("values larger than the block size (up to 3 MiB)", async () => {
    const big = randomBytes(3 << 20);
    const chunk = randomBytes(64 << 10);
    const model: Model = [
      [Buffer.from("a"), Buffer.from("small")],
      [Buffer.from("b"), chunk],
      [Buffer.from("c"), big],
      [Buffer.from("d"), null],
      [Buffer.from("e"), Buffer.alloc(0)],
      [Buffer.from("f"), chunk],
    ];
    const { reader } = await buildAndOpen(model, { blockSize: 4096 });
    assert.deepEqual((await reader.get(Buffer.from("c")))?.value, big);
    assert.deepEqual((await reader.get(Buffer.from("b")))?.value, chunk);
    assert.equal((await reader.get(Buffer.from("d")))?.value, null);
    assert.deepEqual((await reader.get(Buffer.from("e")))?.value, Buffer.alloc(0));
    assert.deepEqual(await collect(reader.scan()), model);
  });

  test("binary keys with 0x00 / 0xff and the empty key", async () => {
    const keys = [
      Buffer.from([]),
      Buffer.from([0x00]),
      Buffer.from([0x00, 0x00]),
      Buffer.from([0x00, 0xff]),
      Buffer.from([0x7f]),
      Buffer.from([0xff]),
      Buffer.from([0xff, 0x00]),
      Buffer.from([0xff, 0xff, 0xff]),
    ];
    const model: Model = keys.map((k, i) => [k, i % 3 === 1 ? null : Buffer.from([i, 0, 0xff])]);
    const { reader } = await buildAndOpen(model, { blockSize: 64 });
    for (const [k, v] of model) assert.deepEqual((await reader.get(k))?.value, v, k.toString("hex"));
    assert.equal(await reader.get(Buffer.from([0x00, 0x00, 0x00])), undefined);
    assert.equal(await reader.get(Buffer.from([0xff, 0xff, 0xff, 0x00])), undefined);
    assert.deepEqual(await collect(reader.scan()), model);
    assert.deepEqual(await collect(reader.scan(Buffer.from([0x00, 0x01]), Buffer.from([0xff, 0x00]))), model.slice(3, 6));
  });

  test("scan bounds: from inclusive, to exclusive, absent bounds, empty and inverted ranges", async () => {
    const model = sequential(1000, 20);
    const { reader } = await buildAndOpen(model, { blockSize: 512 });
    const slice = (a: number, b: number) => model.slice(a, b);
    assert.deepEqual(await collect(reader.scan(keyOf(100), keyOf(200))), slice(100, 200));
    assert.deepEqual(await collect(reader.scan(keyOf(999))), slice(999, 1000));
    assert.deepEqual(await collect(reader.scan(undefined, keyOf(3))), slice(0, 3));
    assert.deepEqual(await collect(reader.scan(Buffer.from("key-00000100x"), keyOf(103))), slice(101, 103));
    assert.deepEqual(await collect(reader.scan(Buffer.from("a"), Buffer.from("z"))), model);
    assert.deepEqual(await collect(reader.scan(Buffer.from("z"))), []);
    assert.deepEqual(await collect(reader.scan(undefined, Buffer.from("a"))), []);
    assert.deepEqual(await collect(reader.scan(keyOf(5), keyOf(5))), []);
    assert.deepEqual(await collect(reader.scan(keyOf(6), keyOf(5))), []);
    assert.deepEqual(await collect(reader.scan(keyOf(10), undefined, { readAhead: 0 })), slice(10, 1000));
  });

  test("property: random sorted maps round-trip through get and scan", async () => {
    const keyArb = fc.uint8Array({ minLength: 0, maxLength: 12 }).map((u) => Buffer.from(u));
    const valArb = fc.option(fc.uint8Array({ minLength: 0, maxLength: 300 }).map((u) => Buffer.from(u)), { freq: 5 });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.tuple(keyArb, valArb), { minLength: 1, maxLength: 300, selector: ([k]) => k.toString("hex") }),
        fc.array(keyArb, { maxLength: 20 }),
        fc.integer({ min: 64, max: 2048 }),
        fc.tuple(fc.option(keyArb), fc.option(keyArb)),
        async (pairs, probes, blockSize, [from, to]) => {
          const model = [...pairs].sort((a, b) => compareKeys(a[0], b[0]));
          const { reader } = await buildAndOpen(model, { blockSize });
          const byHex = new Map(model.map(([k, v]) => [k.toString("hex"), v]));
          for (const [k, v] of model) assert.deepEqual((await reader.get(k))?.value, v);
          for (const p of probes) {
            const got = await reader.get(p);
            const hex = p.toString("hex");
            if (byHex.has(hex)) assert.deepEqual(got?.value, byHex.get(hex));
            else assert.equal(got, undefined);
          }
          const expected = model.filter(([k]) => (from == null || compareKeys(k, from) >= 0) && (to == null || compareKeys(k, to) < 0));
          assert.deepEqual(await collect(reader.scan(from ?? undefined, to ?? undefined, { readAhead: blockSize % 4 })), expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("open reads the tail in one GET, a second only when index + bloom exceed it", async () => {
    const small = await buildAndOpen(sequential(2000), { blockSize: 4096 });
    assert.equal(small.store.gets.length, 1);
    assert.deepEqual(small.store.gets[0]!.range, { offset: small.info.size - TAIL_READ_BYTES, length: TAIL_READ_BYTES });

    // 20k keys x 40 bloom bits = 100 KB of bloom: bigger than the tail read.
    const big = await buildAndOpen(sequential(20_000, 8), { blockSize: 4096, bloomBitsPerKey: 40 });
    assert.equal(big.store.gets.length, 2);
    for (let i = 0; i < 20_000; i += 997) assert.ok(await big.reader.get(keyOf(i)));

    const tiny = await buildAndOpen([[Buffer.from("k"), Buffer.from("v")]]);
    assert.deepEqual(tiny.store.gets[0]!.range, { offset: 0, length: tiny.info.size });
  });
});

describe("SstReader corruption and misuse", () => {
  async function corruptSetup() {
    const model = sequential(300, 50);
    const { body, info } = await build(model, { blockSize: 1024 });
    const store = new CountingStore();
    const reader = await (async () => {
      await store.put(info.key, body);
      return SstReader.open(store, info, sealer, new BlockCache(1 << 20));
    })();
    const footer = body.subarray(body.length - FOOTER_SIZE);
    const indexOffset = Number(footer.readBigUInt64LE(5));
    return { model, body, info, store, reader, indexOffset };
  }

  test("a flipped byte in a data block fails that block's reads with its offset", async () => {
    const { body, info, store } = await corruptSetup();
    const bad = Buffer.from(body);
    bad[100]! ^= 0x01; // inside data block 0
    await store.put(info.key, bad);
    const reader = await SstReader.open(store, info, sealer, new BlockCache(1 << 20));
    await assertCorrupt(reader.get(keyOf(0)), info.key, /data block 0\/\d+ at offset 0 .*failed to open/);
    await assertCorrupt(collect(reader.scan()), info.key, /data block 0/);
    // other blocks still read fine
    assert.ok(await reader.get(keyOf(299)));
  });

  test("a flipped byte in the index fails open", async () => {
    const { body, info, store, indexOffset } = await corruptSetup();
    const bad = Buffer.from(body);
    bad[indexOffset + 5]! ^= 0x80;
    await store.put(info.key, bad);
    await assertCorrupt(SstReader.open(store, info, sealer, new BlockCache(1 << 20)), info.key, new RegExp(`index at offset ${indexOffset}`));
  });

  test("a flipped byte in the footer: crc mismatch, bad magic, bad version", async () => {
    const { body, info, store } = await corruptSetup();
    const cases: [number, RegExp][] = [
      [body.length - FOOTER_SIZE + 10, /crc32 mismatch/],
      [body.length - FOOTER_SIZE, /bad footer magic/],
      [body.length - FOOTER_SIZE + 4, /unsupported format version/],
    ];
    for (const [at, re] of cases) {
      const bad = Buffer.from(body);
      bad[at]! ^= 0x04;
      await store.put(info.key, bad);
      await assertCorrupt(SstReader.open(store, info, sealer, new BlockCache(1 << 20)), info.key, re);
    }
  });

  test("truncated object: short read, or footer missing", async () => {
    const { body, info, store } = await corruptSetup();
    await store.put(info.key, body.subarray(0, body.length - 10));
    await assertCorrupt(SstReader.open(store, info, sealer, new BlockCache(1 << 20)), info.key, /short read.*expected \d+ bytes/);
    await assertCorrupt(SstReader.open(store, { key: info.key, size: body.length - 10 }, sealer, new BlockCache(1 << 20)), info.key, /bad footer magic|crc32|tile/);
    await assertCorrupt(SstReader.open(store, { key: info.key, size: 20 }, sealer, new BlockCache(1 << 20)), info.key, /smaller than the 45-byte footer/);
  });

  test("truncation after open surfaces on the block read", async () => {
    const { body, info, store, reader } = await corruptSetup();
    await store.put(info.key, body.subarray(0, 200));
    await assertCorrupt(reader.get(keyOf(299)), info.key, /short read of data block/);
  });

  test("an SST copied under another key fails authentication (AAD binds the key)", async () => {
    const { body, store } = await corruptSetup();
    const otherKey = nextKey();
    await store.put(otherKey, body);
    await assertCorrupt(SstReader.open(store, { key: otherKey, size: body.length }, sealer, new BlockCache(1 << 20)), otherKey, /failed to open/);
  });

  test("a missing object is reported with its key", async () => {
    const store = new CountingStore();
    await assertCorrupt(SstReader.open(store, { key: "sst/nope.sst", size: 1000 }, sealer, new BlockCache(1 << 20)), "sst/nope.sst", /missing/);
  });

  test("a deleted object surfaces on block reads", async () => {
    const { info, store, reader } = await corruptSetup();
    await store.delete(info.key);
    await assertCorrupt(reader.get(keyOf(7)), info.key, /missing/);
  });
});

describe("BlockCache", () => {
  test("hit accounting, handle caching, in-flight dedupe", async () => {
    const model = sequential(2000);
    const { body, info } = await build(model, { blockSize: 4096 });
    const store = new CountingStore();
    await store.put(info.key, body);
    const cache = new BlockCache(8 << 20);
    const r1 = await SstReader.open(store, info, sealer, cache);
    assert.deepEqual([cache.stats.hits, cache.stats.misses], [0, 1]);
    const r2 = await SstReader.open(store, info, sealer, cache);
    assert.equal(store.gets.length, 1, "second open uses the cached handle");
    assert.deepEqual([cache.stats.hits, cache.stats.misses], [1, 1]);

    store.gets.length = 0;
    // Two readers, three concurrent gets in the same cold block: one fetch.
    const [a, b, c] = await Promise.all([r1.get(keyOf(1)), r2.get(keyOf(2)), r1.get(keyOf(1))]);
    assert.deepEqual([a?.key, b?.key, c?.key], [keyOf(1), keyOf(2), keyOf(1)]);
    assert.equal(store.gets.length, 1);
    assert.equal(cache.stats.misses, 2);
    assert.equal(cache.stats.inflightJoins, 2);
    const hitsBefore = cache.stats.hits;
    assert.ok(await r1.get(keyOf(3)));
    assert.equal(store.gets.length, 1, "resident block: no fetch");
    assert.equal(cache.stats.hits, hitsBefore + 1);
    assert.ok(cache.size > 4096 && cache.size < 64 << 10, `charged ${cache.size}`);
  });

  test("byte budget evicts; failed loads are not cached", async () => {
    const model = sequential(2000);
    const { reader, store, cache } = await buildAndOpen(model, { blockSize: 4096 }, 40 << 10);
    for (const [k] of model) await reader.get(k);
    assert.ok(cache.size <= 40 << 10, `cache ${cache.size}`);
    const fetches = store.gets.length;
    await reader.get(keyOf(0)); // long evicted
    assert.equal(store.gets.length, fetches + 1);

    let calls = 0;
    const failing = () => {
      calls++;
      return Promise.reject(new Error("nope"));
    };
    await assert.rejects(Promise.resolve(cache.getOrLoad("x#1", failing)), /nope/);
    await assert.rejects(Promise.resolve(cache.getOrLoad("x#1", failing)), /nope/);
    assert.equal(calls, 2);
    cache.evictObject(reader.objectKey);
    assert.equal(cache.size, 0);
  });
});

describe("scan read-ahead", () => {
  test("while reading block i, blocks i+1..i+readAhead are already requested, and no more", async () => {
    const model = sequential(5000);
    const { body, info } = await build(model, { blockSize: 4096 });
    const store = new CountingStore();
    await store.put(info.key, body);
    // Pass 1 (readAhead 0): each fetch happens exactly when the scan enters a block, which
    // maps every entry to its block ordinal.
    const plain = await SstReader.open(store, info, sealer, new BlockCache(8 << 20));
    const n = plain.blockCount;
    assert.ok(n > 20, `blocks: ${n}`);
    store.gets.length = 0;
    const blockOf: number[] = [];
    for await (const _ of plain.scan(undefined, undefined, { readAhead: 0 })) blockOf.push(store.gets.length - 1);
    assert.equal(blockOf.length, model.length);
    assert.equal(blockOf[blockOf.length - 1], n - 1);

    // Pass 2 (cold cache, readAhead 3): on entering block i, blocks 0..i+3 have been requested.
    const readAhead = 3;
    const reader = await SstReader.open(store, info, sealer, new BlockCache(8 << 20));
    store.gets.length = 0;
    let i = 0;
    for await (const _ of reader.scan(undefined, undefined, { readAhead })) {
      const block = blockOf[i]!;
      if (i === 0 || blockOf[i - 1] !== block) {
        assert.equal(store.gets.length, Math.min(n, block + 1 + readAhead), `requests on entering block ${block}`);
      }
      i++;
    }
    assert.equal(i, model.length);
    const offsets = store.gets.map((g) => g.range!.offset);
    assert.equal(new Set(offsets).size, n, "each block fetched exactly once");
    assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), "fetched in order");
  });

  test("a bounded scan does not prefetch past the block holding its end", async () => {
    const { reader, store } = await buildAndOpen(sequential(3000), { blockSize: 4096 });
    store.gets.length = 0;
    assert.equal((await collect(reader.scan(keyOf(0), keyOf(5), { readAhead: 8 }))).length, 5);
    assert.equal(store.gets.length, 1, "only block 0 is needed for [0, 5)");
  });

  test("abandoning a scan leaves no unhandled rejections from read-ahead", async () => {
    const { body, info } = await build(sequential(3000), { blockSize: 4096 });
    const store = new CountingStore();
    await store.put(info.key, body);
    const reader = await SstReader.open(store, info, sealer, new BlockCache(8 << 20));
    const it = reader.scan(undefined, undefined, { readAhead: 4 });
    await store.delete(info.key); // every prefetch will fail
    await assert.rejects(it.next(), /missing/);
    await new Promise((r) => setTimeout(r, 20)); // an unhandled rejection would fail the test run
  });
});

describe("confidentiality", () => {
  test("no key or value bytes appear in the body (real block sealer and test sealer)", async () => {
    const realSealer = createBlockSealer(randomBytes(32));
    for (const s of [realSealer, sealer]) {
      const model: Model = [];
      for (let i = 0; i < 500; i++) {
        model.push([Buffer.from(`SECRETKEYMARKER-${String(i).padStart(5, "0")}`), Buffer.from(`SECRETVALUEMARKER-${i}-`.repeat(4))]);
      }
      const { body, info } = await build(model, { blockSize: 2048 }, s);
      for (const marker of ["SECRETKEYMARKER", "SECRETVALUEMARKER", "SECRET", "MARKER-00"]) {
        assert.equal(body.indexOf(marker), -1, `body contains ${marker}`);
      }
      const store = new CountingStore();
      await store.put(info.key, body);
      const reader = await SstReader.open(store, info, s, new BlockCache(1 << 20));
      assert.deepEqual(await collect(reader.scan()), model);
    }
  });
});

test("scanChunks with chunkEntries: chunks of at most that many entries, the same entries in order, resumable mid-block", async () => {
  const model = sequential(600, 20);
  const { reader } = await buildAndOpen(model, { blockSize: 16 * 1024 });
  const from = keyOf(100);
  const whole: Entry[] = [];
  const sizes: number[] = [];
  for await (const chunk of reader.scanChunks(from, undefined, { chunkEntries: 7 })) {
    sizes.push(chunk.length);
    whole.push(...chunk);
  }
  assert.ok(sizes.every((n) => n >= 1 && n <= 7), `chunk sizes ${sizes.join(",")}`);
  assert.deepEqual(await collect((async function* () { yield* whole; })()), model.slice(100));
  // Without the option a chunk is the rest of a block: one READDIR page used to take far more than it needed.
  const first = await reader.scanChunks(from).next();
  assert.ok(!first.done && first.value.length > 7, "unbounded chunks are whole blocks");
  // A reader that stops after one page materialized only that page.
  const it = reader.scanChunks(from, undefined, { chunkEntries: 50 });
  const page = await it.next();
  await it.return(undefined);
  assert.equal(page.done ? 0 : page.value.length, 50);
});
