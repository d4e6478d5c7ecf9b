import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DiskCacheStore, type DiskCacheOptions } from "../src/store/disk-cache-store.ts";
import { MemoryStore } from "../src/store/memory-store.ts";
import type { ByteRange } from "../src/store/object-store.ts";

const P = 1024; // small parts keep the tests fast while exercising the same paths

class CountingStore extends MemoryStore {
  gets: (ByteRange | undefined)[] = [];
  override async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets.push(range ? { ...range } : undefined);
    return super.get(key, range);
  }
}

function tempDir(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), "zerofs-cache-test-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function openCache(inner: MemoryStore, dir: string, extra: Partial<DiskCacheOptions> = {}): Promise<DiskCacheStore> {
  return DiskCacheStore.open(inner, { dir, maxBytes: 64 * P, partSize: P, isCacheable: (k) => k.startsWith("sst/"), ...extra });
}

/** Part files (and their sizes) under the cache dir, excluding the layout file. */
function partFiles(dir: string): { name: string; size: number; path: string }[] {
  const out: { name: string; size: number; path: string }[] = [];
  for (const shard of readdirSync(dir)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const name of readdirSync(join(dir, shard))) {
      const path = join(dir, shard, name);
      out.push({ name, size: statSync(path).size, path });
    }
  }
  return out;
}

function expected(body: Buffer, r?: ByteRange): Buffer {
  if (!r) return body;
  const s = Math.min(r.offset, body.length);
  return body.subarray(s, Math.min(s + r.length, body.length));
}

test("hit/miss accounting, coalesced fetches, and pass-through of uncacheable keys", async (t) => {
  const inner = new CountingStore();
  const body = randomBytes(5 * P + 100);
  await inner.put("sst/a", body);
  await inner.put("manifest/1", Buffer.from("m"));
  const cache = await openCache(inner, tempDir(t));

  assert.ok((await cache.get("sst/a", { offset: 2 * P + 10, length: 3 * P })).equals(expected(body, { offset: 2 * P + 10, length: 3 * P })));
  assert.deepEqual(inner.gets, [{ offset: 2 * P, length: 4 * P }], "parts 2..5 fetched by one ranged GET");
  await cache.flush();
  assert.ok((await cache.get("sst/a", { offset: 3 * P, length: 50 })).equals(expected(body, { offset: 3 * P, length: 50 })));
  assert.equal(inner.gets.length, 1, "served from disk");
  assert.deepEqual([cache.stats.hits, cache.stats.misses], [1, 1]);

  // Parts 0,1 missing, 2..5 cached: one GET for the missing run; the end is known (part 5 short).
  inner.gets = [];
  assert.ok((await cache.get("sst/a")).equals(body));
  assert.deepEqual(inner.gets, [{ offset: 0, length: 2 * P }]);
  await cache.flush();
  inner.gets = [];
  assert.ok((await cache.get("sst/a")).equals(body));
  assert.ok((await cache.get("sst/a", { offset: 5 * P + 100, length: 10 })).equals(Buffer.alloc(0)));
  assert.ok((await cache.get("sst/a", { offset: 99 * P, length: 10 })).equals(Buffer.alloc(0)));
  assert.deepEqual(inner.gets, [], "whole object and past-the-end reads need no inner GET once cached");

  const before = cache.stats;
  assert.equal((await cache.get("manifest/1")).toString(), "m");
  assert.deepEqual(inner.gets, [undefined]);
  assert.deepEqual(cache.stats, before, "uncacheable reads are not counted");
  await assert.rejects(cache.get("sst/missing", { offset: 0, length: 10 }), { name: "ObjectNotFoundError" });
  await cache.close();
});

test("byte-exact ranges across part boundaries, for awkward object sizes", async (t) => {
  const inner = new CountingStore();
  const dir = tempDir(t);
  const cache = await openCache(inner, dir, { maxBytes: 8 * P }); // small: eviction happens too
  const bodies = new Map<string, Buffer>([
    ["sst/empty", Buffer.alloc(0)],
    ["sst/one", randomBytes(1)],
    ["sst/exact", randomBytes(4 * P)],
    ["sst/odd", randomBytes(7 * P + 37)],
  ]);
  for (const [k, b] of bodies) await inner.put(k, b);
  let seed = 12345;
  const rnd = (n: number) => {
    // mulberry32: deterministic, and unlike a small LCG its low bits are not periodic
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), seed | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
  for (let i = 0; i < 400; i++) {
    const keys = [...bodies.keys()];
    const key = keys[rnd(keys.length)]!;
    const b = bodies.get(key)!;
    const r: ByteRange | undefined =
      rnd(10) === 0 ? undefined : { offset: rnd(b.length + 2 * P + 1), length: [1, P - 1, P, P + 1, rnd(3 * P) + 1][rnd(5)]! };
    if (r && rnd(4) === 0) r.offset = Math.floor(r.offset / P) * P; // part-aligned starts
    const got = await cache.get(key, r);
    assert.ok(got.equals(expected(b, r)), `${key} ${JSON.stringify(r)}: got ${got.length} bytes`);
    if (rnd(3) === 0) await cache.flush();
  }
  await cache.flush();
  // Exact-multiple size: the end marker lets whole and past-end reads skip the inner store.
  for (let i = 0; i < 2; i++) {
    inner.gets = [];
    assert.ok((await cache.get("sst/exact")).equals(bodies.get("sst/exact")!));
    await cache.flush();
  }
  assert.deepEqual(inner.gets, []);
  const s = cache.stats;
  assert.ok(s.evictions > 0 && s.hits > 50 && s.misses > 20, JSON.stringify(s));
  assert.equal(s.diskErrors, 0);
  await cache.close();
});

test("the byte budget holds under eviction (files on disk ≤ budget)", async (t) => {
  const inner = new CountingStore();
  const dir = tempDir(t);
  const maxBytes = 10 * P;
  const cache = await openCache(inner, dir, { maxBytes });
  const bodies: Buffer[] = [];
  for (let o = 0; o < 5; o++) {
    bodies.push(randomBytes(8 * P + 3));
    await inner.put(`sst/${o}`, bodies[o]!);
  }
  for (let round = 0; round < 3; round++) {
    for (let o = 0; o < 5; o++) {
      const r = { offset: round * 2 * P, length: 3 * P };
      assert.ok((await cache.get(`sst/${o}`, r)).equals(expected(bodies[o]!, r)));
    }
    const onDisk = partFiles(dir).reduce((n, f) => n + f.size, 0);
    assert.ok(onDisk <= maxBytes, `${onDisk} bytes on disk > budget ${maxBytes}`);
  }
  await cache.flush();
  const files = partFiles(dir);
  const onDisk = files.reduce((n, f) => n + f.size, 0);
  assert.ok(onDisk <= maxBytes && onDisk >= maxBytes - P, `on disk ${onDisk}`);
  assert.equal(cache.stats.bytes, onDisk);
  assert.equal(cache.stats.files, files.length);
  assert.ok(cache.stats.evictions >= 30 - 10);
  await cache.close();
});

test("survives a restart: parts are re-registered, temp files deleted, newest kept when the budget shrinks", async (t) => {
  const inner = new CountingStore();
  const dir = tempDir(t);
  const body = randomBytes(4 * P + 10);
  await inner.put("sst/x", body);
  const c1 = await openCache(inner, dir);
  assert.ok((await c1.get("sst/x")).equals(body));
  await c1.close();
  assert.equal(partFiles(dir).length, 5);

  // A crash mid-write leaves a temp file; it must be removed and never served.
  const hash = createHash("sha256").update("sst/x").digest("hex");
  const shardDir = join(dir, hash.slice(0, 2));
  writeFileSync(join(shardDir, `${hash}.7.tmp-deadbeef`), "torn");
  writeFileSync(join(shardDir, "unrelated-file"), "left alone");

  inner.gets = [];
  const c2 = await openCache(inner, dir);
  assert.equal(c2.stats.files, 5);
  assert.ok((await c2.get("sst/x")).equals(body));
  assert.ok((await c2.get("sst/x", { offset: P - 5, length: 2 * P })).equals(expected(body, { offset: P - 5, length: 2 * P })));
  assert.deepEqual(inner.gets, [], "served from the previous run's parts");
  assert.equal(c2.stats.hits, 2);
  const names = readdirSync(shardDir);
  assert.ok(!names.some((n) => n.includes(".tmp-")), "temp file deleted");
  assert.ok(names.includes("unrelated-file"));
  await c2.close();

  // Give parts distinct ages (part i older than part i+1), then reopen with room for two parts.
  for (const f of partFiles(dir)) {
    const m = /\.(\d+)$/.exec(f.name);
    if (m) utimesSync(f.path, 1_000_000 + Number(m[1]), 1_000_000 + Number(m[1]));
  }
  const c3 = await openCache(inner, dir, { maxBytes: 2 * P });
  assert.deepEqual(partFiles(dir).filter((f) => f.name.startsWith(hash)).map((f) => f.name).sort(), [`${hash}.3`, `${hash}.4`]);
  inner.gets = [];
  assert.ok((await c3.get("sst/x", { offset: 3 * P, length: P + 10 })).equals(expected(body, { offset: 3 * P, length: P + 10 })));
  assert.deepEqual(inner.gets, []);
  await c3.close();

  // A different part size makes old parts meaningless: they are wiped, reads stay correct.
  const c4 = await openCache(inner, dir, { partSize: 2 * P });
  assert.equal(c4.stats.files, 0);
  assert.ok((await c4.get("sst/x")).equals(body));
  await c4.close();
});

test("disk trouble never fails a read: unusable dir, files vanishing behind our back", async (t) => {
  const inner = new CountingStore();
  const body = randomBytes(3 * P + 1);
  await inner.put("sst/y", body);
  const base = tempDir(t);
  const notADir = join(base, "file");
  writeFileSync(notADir, "x");
  // A cache dir under a regular file cannot be created even by root (unlike chmod tricks).
  const broken = await openCache(inner, join(notADir, "cache"));
  for (let i = 0; i < 3; i++) {
    assert.ok((await broken.get("sst/y", { offset: 100, length: 2 * P })).equals(expected(body, { offset: 100, length: 2 * P })));
    await broken.flush();
  }
  assert.ok(broken.stats.diskErrors > 0);
  assert.equal(broken.stats.hits, 0);
  assert.equal(broken.stats.files, 0, "failed writes release their budget");
  await broken.close();

  const dir = join(base, "ok");
  const cache = await openCache(inner, dir);
  assert.ok((await cache.get("sst/y")).equals(body));
  await cache.flush();
  for (const f of partFiles(dir)) unlinkSync(f.path);
  inner.gets = [];
  assert.ok((await cache.get("sst/y", { offset: 0, length: 3 * P })).equals(expected(body, { offset: 0, length: 3 * P })));
  assert.equal(inner.gets.length, 1, "fell back to one inner GET");
  await cache.flush();
  assert.ok((await cache.get("sst/y")).equals(body));
  await cache.close();
});

test("put and delete through the cache invalidate the key's parts", async (t) => {
  const inner = new CountingStore();
  const cache = await openCache(inner, tempDir(t));
  const v1 = randomBytes(2 * P + 5);
  const v2 = randomBytes(P + 9);
  await cache.put("sst/z", v1);
  assert.ok((await cache.get("sst/z")).equals(v1));
  await cache.flush();
  await cache.put("sst/z", v2);
  assert.ok((await cache.get("sst/z")).equals(v2));
  await cache.flush();
  assert.ok((await cache.get("sst/z", { offset: P, length: 100 })).equals(expected(v2, { offset: P, length: 100 })));
  await cache.delete("sst/z");
  await assert.rejects(cache.get("sst/z", { offset: 0, length: 1 }), { name: "ObjectNotFoundError" });
  assert.equal(cache.stats.files, 0);
  await cache.close();
});

test("concurrent reads, background writes and overwrites stay byte-exact", async (t) => {
  const inner = new CountingStore();
  const dir = tempDir(t);
  const cache = await openCache(inner, dir, { maxBytes: 12 * P });
  const current = new Map<string, Buffer>();
  for (let o = 0; o < 4; o++) {
    current.set(`sst/c${o}`, randomBytes(3 * P + o * 300));
    await cache.put(`sst/c${o}`, current.get(`sst/c${o}`)!);
  }
  for (let round = 0; round < 30; round++) {
    const reads: Promise<void>[] = [];
    for (let i = 0; i < 12; i++) {
      const key = `sst/c${(round + i) % 4}`;
      const body = current.get(key)!;
      const r = i % 5 === 0 ? undefined : { offset: (i * 397 + round * 131) % (body.length + 1), length: 1 + ((i * 733) % (2 * P)) };
      reads.push(cache.get(key, r).then((got) => assert.ok(got.equals(expected(body, r)), `${key} ${JSON.stringify(r)}`)));
    }
    await Promise.all(reads);
    if (round % 7 === 6) {
      const key = `sst/c${round % 4}`;
      current.set(key, randomBytes(2 * P + round));
      await cache.put(key, current.get(key)!); // no flush: pending writes of old parts must not win
    }
  }
  await cache.flush();
  for (const [key, body] of current) assert.ok((await cache.get(key)).equals(body));
  const onDisk = partFiles(dir).reduce((n, f) => n + f.size, 0);
  assert.ok(onDisk <= 12 * P);
  assert.equal(cache.stats.diskErrors, 0);
  await cache.close();
});

test("cache files are created 0600 and folders 0700", async (t) => {
  const inner = new MemoryStore();
  await inner.put("sst/a", randomBytes(3 * P));
  const dir = join(tempDir(t), "cache");
  const cache = await openCache(inner, dir);
  await cache.get("sst/a");
  await cache.flush();
  const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8);
  assert.equal(mode(dir), "700", "the cache folder");
  const parts = partFiles(dir);
  assert.ok(parts.length > 0, "parts were written");
  for (const p of parts) {
    assert.equal(mode(p.path), "600", p.path);
    assert.equal(mode(join(p.path, "..")), "700", `shard of ${p.path}`);
  }
  for (const name of readdirSync(dir)) if (!/^[0-9a-f]{2}$/.test(name)) assert.equal(mode(join(dir, name)), "600", name);
  await cache.close();
});

test("parts are not fdatasynced one by one: a session from another boot that never closed loses its parts, a same-boot crash or a clean close keeps them", async (t) => {
  const inner = new CountingStore();
  const dir = tempDir(t);
  const boot = join(tempDir(t), "boot_id");
  const body = randomBytes(3 * P + 7);
  await inner.put("sst/y", body);
  const session = join(dir, "zerofs-disk-cache.session");
  const reopen = async (id: string) => {
    writeFileSync(boot, `${id}\n`);
    return openCache(inner, dir, { bootIdPath: boot });
  };

  const c1 = await reopen("boot-a");
  assert.ok((await c1.get("sst/y")).equals(body));
  await c1.flush(); // parts on disk, the process then dies (no close)
  assert.equal(readFileSync(session, "utf8").trim(), "boot-a");

  inner.gets = [];
  const c2 = await reopen("boot-a"); // the same boot: the page cache held everything
  assert.equal(c2.stats.files, 4);
  assert.ok((await c2.get("sst/y")).equals(body));
  assert.deepEqual(inner.gets, [], "a process crash keeps the parts");

  inner.gets = [];
  const c3 = await reopen("boot-b"); // c2 never closed, and the machine rebooted: parts may be torn
  assert.equal(c3.stats.files, 0, "parts of an unclean session before a reboot are dropped");
  assert.equal(partFiles(dir).length, 0);
  assert.ok((await c3.get("sst/y")).equals(body));
  assert.equal(inner.gets.length, 1);
  await c3.close(); // a clean close syncs and ends the session
  assert.ok(!existsSync(session));

  inner.gets = [];
  const c4 = await reopen("boot-c");
  assert.equal(c4.stats.files, 4, "a clean close keeps the parts across a reboot");
  assert.ok((await c4.get("sst/y")).equals(body));
  assert.deepEqual(inner.gets, []);
  await c4.close();

  const c5 = await openCache(inner, dir, { bootIdPath: null }); // no boot id: every part synced, no session file
  assert.ok((await c5.get("sst/y")).equals(body));
  assert.ok(!existsSync(session));
  await c5.close();
});
