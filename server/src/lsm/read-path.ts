/**
 * A Db's reads: point lookups and snapshot scans over the memtables, L0 and the sorted runs,
 * and the cache of open SST readers they (and compaction) read through.
 */
import type { DbCore } from "./db-core.ts";
import { compareKeys, type Entry } from "./entry.ts";
import type { SortedRun, SstRef } from "./manifest.ts";
import { mergeChunks, type ChunkSource } from "./merge-iterator.ts";
import { SstReader } from "./sst/sst-reader.ts";

/** Entries per chunk of a memtable scan and of the k-way merge (their defaults). */
const MEMTABLE_CHUNK = 256;
const MERGE_CHUNK = 512;

/** Db.get: the newest value of `key`, or undefined when absent or deleted. */
export async function get(db: DbCore, key: Buffer): Promise<Buffer | undefined> {
  db.checkOpen();
  const hit = db.active.get(key);
  if (hit) return hit.value ?? undefined;
  for (const m of db.imm) {
    const e = m.get(key);
    if (e) return e.value ?? undefined;
  }
  const { l0, runs } = db.manifest;
  for (const ref of l0) {
    if (compareKeys(key, ref.firstKey) < 0 || compareKeys(key, ref.lastKey) > 0) continue;
    const e = await sstGet(db, ref, key);
    if (e) return e.value ?? undefined;
  }
  for (const run of runs) {
    const ref = findInRun(run, key);
    if (!ref) continue;
    const e = await sstGet(db, ref, key);
    if (e) return e.value ?? undefined;
  }
  return undefined;
}

async function sstGet(db: DbCore, ref: SstRef, key: Buffer): Promise<Entry | undefined> {
  const r = await reader(db, ref);
  if (!r.mayContain(key)) return undefined;
  return r.get(key);
}

/** Db.scanChunks: a snapshot scan, a chunk at a time. */
export async function* scanChunks(db: DbCore, from?: Buffer, to?: Buffer, opts: { firstChunk?: number } = {}): AsyncGenerator<Entry[]> {
  db.checkOpen();
  const snap = db.lastSeq;
  const active = db.active;
  const imm = db.imm;
  const { l0, runs } = db.manifest;
  const refs = [...l0, ...runs.flatMap((r) => r.ssts)];
  db.snapshots.set(snap, (db.snapshots.get(snap) ?? 0) + 1);
  for (const ref of refs) db.pin(ref.key);
  try {
    const sources: ChunkSource[] = [
      active.scanChunks(from, to, snap, MEMTABLE_CHUNK, opts.firstChunk),
      ...imm.map((m) => m.scanChunks(from, to, Number.MAX_SAFE_INTEGER, MEMTABLE_CHUNK, opts.firstChunk)),
      ...l0.filter((ref) => overlaps(ref, from, to)).map((ref) => sstSource(db, ref, from, to, opts.firstChunk)),
      ...runs.map((run) => runSource(db, run, from, to, opts.firstChunk)),
    ];
    for await (const chunk of mergeChunks(sources, true, MERGE_CHUNK, opts.firstChunk)) {
      db.checkOpen();
      yield chunk;
    }
  } finally {
    const n = db.snapshots.get(snap)! - 1;
    if (n === 0) db.snapshots.delete(snap);
    else db.snapshots.set(snap, n);
    for (const ref of refs) db.unpin(ref.key);
  }
}

/** One SST's entries in [from, to); `chunkEntries` bounds each chunk (a reader that wants a page). */
export async function* sstSource(db: DbCore, ref: SstRef, from: Buffer | undefined, to: Buffer | undefined, chunkEntries?: number): AsyncGenerator<Entry[]> {
  const r = await reader(db, ref);
  yield* r.scanChunks(from, to, { readAhead: db.opts.scanReadAhead, coalesceBytes: db.opts.scanCoalesceBytes, ...(chunkEntries !== undefined ? { chunkEntries } : {}) });
}

export async function* runSource(db: DbCore, run: SortedRun, from: Buffer | undefined, to: Buffer | undefined, chunkEntries?: number): AsyncGenerator<Entry[]> {
  let i = from === undefined ? 0 : run.ssts.findIndex((r) => compareKeys(r.lastKey, from) >= 0);
  if (i < 0) return;
  for (; i < run.ssts.length; i++) {
    const ref = run.ssts[i]!;
    if (to !== undefined && compareKeys(ref.firstKey, to) >= 0) return;
    yield* sstSource(db, ref, from, to, chunkEntries);
  }
}

function reader(db: DbCore, ref: SstRef): Promise<SstReader> {
  let r = db.readers.get(ref.key);
  if (!r) {
    r = SstReader.open(db.store, { key: ref.key, size: ref.size }, db.sstSealer, db.blockCache);
    db.readers.set(ref.key, r);
    // A failed open must not stay cached: the next read retries (and reports) it.
    r.catch(() => db.readers.delete(ref.key));
  }
  return r;
}

function findInRun(run: SortedRun, key: Buffer): SstRef | undefined {
  let lo = 0;
  let hi = run.ssts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareKeys(run.ssts[mid]!.lastKey, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  const ref = run.ssts[lo];
  return ref && compareKeys(ref.firstKey, key) <= 0 ? ref : undefined;
}

function overlaps(ref: SstRef, from: Buffer | undefined, to: Buffer | undefined): boolean {
  if (from !== undefined && compareKeys(ref.lastKey, from) < 0) return false;
  if (to !== undefined && compareKeys(ref.firstKey, to) >= 0) return false;
  return true;
}
