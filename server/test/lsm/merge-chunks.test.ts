/**
 * The chunked k-way merge (lsm/merge-iterator.ts) against a model: random sorted sources, some
 * synchronous and some asynchronous, with empty chunks, shadowed keys and tombstones. Seeded;
 * the seed is printed.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Entry } from "../../src/lsm/entry.ts";
import { Db } from "../../src/lsm/db.ts";
import { flattenChunks, mergeChunks, type ChunkSource } from "../../src/lsm/merge-iterator.ts";
import { WriteBatch } from "../../src/lsm/write-batch.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { testKeys } from "../../../test/support/test-keys.ts";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const key = (n: number): Buffer => Buffer.from(n.toString(16).padStart(6, "0"));

function chunked(entries: Entry[], rand: () => number, async: boolean): ChunkSource {
  const chunks: Entry[][] = [];
  let i = 0;
  while (i < entries.length) {
    const n = Math.floor(rand() * 5); // 0 = an empty chunk
    chunks.push(entries.slice(i, i + n));
    i += n;
  }
  async function* a(): AsyncGenerator<Entry[]> {
    for (const c of chunks) {
      if (rand() < 0.3) await new Promise((r) => setImmediate(r));
      yield c;
    }
  }
  function* s(): Generator<Entry[]> {
    yield* chunks;
  }
  return async ? a() : s();
}

describe("mergeChunks", () => {
  it("equals the model merge: newest source wins, tombstones dropped on request, chunks bounded", async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 1e9);
    console.log(`mergeChunks seed=${seed}`);
    const rand = rng(seed);
    for (let round = 0; round < 200; round++) {
      const nSources = 1 + Math.floor(rand() * 5);
      const lists: Entry[][] = [];
      for (let s = 0; s < nSources; s++) {
        const keys = new Set<number>();
        const n = Math.floor(rand() * 60);
        for (let i = 0; i < n; i++) keys.add(Math.floor(rand() * 100));
        lists.push([...keys].sort((a, b) => a - b).map((k) => ({ key: key(k), value: rand() < 0.2 ? null : Buffer.from(`s${s}-${k}`) })));
      }
      const drop = rand() < 0.5;
      const model = new Map<string, Buffer | null>();
      for (let s = nSources - 1; s >= 0; s--) for (const e of lists[s]!) model.set(e.key.toString(), e.value);
      const expected = [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).filter(([, v]) => !drop || v !== null);
      const maxChunk = 1 + Math.floor(rand() * 8);
      const got: [string, Buffer | null][] = [];
      for await (const chunk of mergeChunks(lists.map((l) => chunked(l, rand, rand() < 0.5)), drop, maxChunk)) {
        assert.ok(chunk.length > 0, `no empty chunks (seed ${seed})`);
        if (nSources > 1) assert.ok(chunk.length <= maxChunk, `chunk of ${chunk.length} > ${maxChunk} (seed ${seed})`);
        for (const e of chunk) got.push([e.key.toString(), e.value]);
      }
      assert.deepEqual(got, expected, `round ${round} (seed ${seed})`);
    }
  });

  it("synchronous sources merge in large chunks (no promise per entry); early exit closes every source", async () => {
    const mk = (from: number, n: number, step: number): Entry[] => Array.from({ length: n }, (_, i) => ({ key: key(from + i * step), value: Buffer.from("v") }));
    let closed = 0;
    function* src(entries: Entry[]): Generator<Entry[]> {
      try {
        for (let i = 0; i < entries.length; i += 100) yield entries.slice(i, i + 100);
      } finally {
        closed++;
      }
    }
    const sizes: number[] = [];
    for await (const c of mergeChunks([src(mk(0, 1000, 2)), src(mk(1, 1000, 2))], true, 256)) sizes.push(c.length);
    assert.deepEqual(sizes, [256, 256, 256, 256, 256, 256, 256, 208], "2,000 entries in 8 chunks");
    assert.equal(closed, 2);
    closed = 0;
    let seen = 0;
    for await (const e of flattenChunks(mergeChunks([src(mk(0, 1000, 2)), src(mk(1, 1000, 2))], true))) {
      seen++;
      if (e.key.equals(key(10))) break;
    }
    assert.equal(seen, 11);
    assert.equal(closed, 2, "a consumer that stops early closes the sources");
  });
});

describe("scanChunks with a first-chunk bound (one READDIR page)", () => {
  it("the first chunk holds at most firstChunk entries, and the scan still yields everything in order", async () => {
    const db = await Db.open(new MemoryStore(), testKeys(), { gcIntervalMs: 0 });
    try {
      // Half in an SST, half (plus overwrites) in the memtable: both the pass-through and the merge.
      for (let i = 0; i < 600; i += 2) await db.write(new WriteBatch().put(key(i), Buffer.from(`old${i}`)), { awaitDurable: false });
      await db.flushMemtable();
      for (let i = 1; i < 600; i += 2) await db.write(new WriteBatch().put(key(i), Buffer.from(`v${i}`)), { awaitDurable: false });
      for (let i = 1000; i < 1600; i++) await db.write(new WriteBatch().put(key(i), Buffer.from(`m${i}`)), { awaitDurable: false });
      // [0, 600): SST + memtable (merged); [1000, 1600): memtable only (passed through).
      for (const [lo, hi] of [[0, 600], [1000, 1600]] as const) {
        const chunks: Entry[][] = [];
        for await (const c of db.scanChunks(key(lo), key(hi), { firstChunk: 7 })) chunks.push(c);
        assert.ok(chunks[0]!.length <= 7, `[${lo}, ${hi}): first chunk has ${chunks[0]!.length} entries`);
        const all = chunks.flat().map((e) => e.key.toString());
        const expected: string[] = [];
        for await (const e of flattenChunks(db.scanChunks(key(lo), key(hi)))) expected.push(e.key.toString());
        assert.deepEqual(all, expected);
        assert.equal(expected.length, 600);
      }
    } finally {
      await db.close();
    }
  });
});
