/**
 * Deferred deletion of file chunks. Removing the last link of a large file only deletes the
 * inode and writes a tombstone T|ino = (from, to) in the request's batch — O(1) whatever the
 * file size. The reclaimer then deletes the chunk keys in bounded batches in the background,
 * each batch also advancing (finally deleting) the tombstone, so the work survives restarts and
 * resumes where it stopped.
 *
 * The chunks to delete are found by a range scan over the inode's stored chunk keys, never by
 * enumerating the indices a file's size allows: a 2^52-byte sparse file with three stored
 * chunks costs three deletes, not 2^36. The scan runs from the tombstone's `from` to the end of
 * the inode's chunk key space (`to` is only informational): nothing may be written at or past
 * `from` while the tombstone exists (the inode is gone, or its truncation holds writers back),
 * so everything found there is garbage.
 */
import type { Logger } from "pino";
import type { Db } from "../lsm/db.ts";
import { WriteBatch } from "../lsm/write-batch.ts";
import { BackgroundPasses } from "./background-passes.ts";
import { TOMBSTONE_RANGE, allChunksRange, allExtentsRange, chunkKey, extentKey, parseChunkKey, parseExtentKey, parseTombstoneKey, tombstoneKey } from "./keys.ts";
import { TombstoneKind, decodeTombstone, encodeTombstone, type Tombstone } from "./records.ts";

export interface ChunkDeletionProgress {
  ino: number;
  /** Chunks below this index are deleted. */
  next: number;
  to: number;
}

export interface DeleteRangeOptions {
  batchKeys: number;
  /** Checked before each batch; returning true leaves the rest (and the tombstone) for later. */
  shouldStop?: () => boolean;
  /** Stop (returning false) after this many batches, so a caller can release locks in between. */
  maxBatches?: number;
  afterBatch?: (p: ChunkDeletionProgress) => void | Promise<void>;
}

/**
 * Deletes the stored chunks (v1) or extent-map blocks (layout 2) of `ino` at indices ≥ t.from,
 * as the tombstone's kind says, in batches of at most `batchKeys` deletes, recording progress
 * in the tombstone and deleting it with the last batch (a DELETED tombstone goes on with the
 * extent map before it is deleted). Cost is proportional to the keys actually stored (plus the
 * deletions the engine has not yet compacted away), never to the file's apparent size.
 * Returns false when stopped early.
 */
export async function deleteChunkRange(db: Db, ino: number, t: Tombstone, opts: DeleteRangeOptions): Promise<boolean> {
  const limit = Math.max(1, opts.batchKeys);
  let cur = t;
  for (let batches = 0; ; batches++) {
    if (opts.shouldStop?.() || batches >= (opts.maxBatches ?? Infinity)) return false;
    const space = keySpace(cur.kind, ino);
    const batch = new WriteBatch();
    let found = 0;
    let last = cur.from - 1;
    for await (const e of db.scan(space.key(cur.from), space.end)) {
      batch.delete(e.key);
      last = space.index(e.key);
      if (++found >= limit) break;
    }
    const done = found < limit;
    let next: Tombstone | undefined;
    if (!done) next = { ...cur, from: last + 1 };
    else if (cur.kind === TombstoneKind.DELETED) next = { kind: TombstoneKind.EXTENTS_DELETED, from: 0, to: 0 };
    if (next) batch.put(tombstoneKey(ino), encodeTombstone(next));
    else batch.delete(tombstoneKey(ino));
    // Not awaited durable: if the batch is lost in a crash the tombstone is still there and the
    // deletes are redone; nothing acknowledged to a client depends on it.
    await db.write(batch, { awaitDurable: false });
    await opts.afterBatch?.({ ino, next: done ? Math.max(cur.to, last + 1) : last + 1, to: Math.max(cur.to, last + 1) });
    // Let other requests run after every batch (a scan of cached blocks never yields by itself);
    // callers that loop over files or re-take locks between batches rely on this one yield.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!next) return true;
    cur = next;
  }
}

/** Which keys a tombstone kind deletes: v1 chunks or layout-2 extent-map blocks of `ino`. */
function keySpace(kind: TombstoneKind, ino: number): { key: (i: number) => Buffer; end: Buffer; index: (k: Buffer) => number } {
  if (kind === TombstoneKind.DELETED || kind === TombstoneKind.TRUNCATED) {
    return { key: (i) => chunkKey(ino, i), end: allChunksRange(ino)[1], index: (k) => parseChunkKey(k).index };
  }
  return { key: (i) => extentKey(ino, i), end: allExtentsRange(ino)[1], index: (k) => parseExtentKey(k).block };
}

/** Pending tombstones of the given kinds, in inode order, at most `limit`. */
export async function listTombstones(db: Db, kinds: readonly TombstoneKind[], limit = Infinity): Promise<{ ino: number; tombstone: Tombstone }[]> {
  const out: { ino: number; tombstone: Tombstone }[] = [];
  for await (const e of db.scan(...TOMBSTONE_RANGE)) {
    const ino = parseTombstoneKey(e.key);
    const tombstone = decodeTombstone(e.value!, ino);
    if (!kinds.includes(tombstone.kind)) continue;
    out.push({ ino, tombstone });
    if (out.length >= limit) break;
  }
  return out;
}

export interface ReclaimerOptions {
  /** Chunk keys deleted per batch. */
  batchKeys: number;
  logger?: Logger;
  /** Test hook, called after every batch. */
  afterBatch?: (p: ChunkDeletionProgress) => void | Promise<void>;
}

export class Reclaimer {
  private readonly db: Db;
  private readonly opts: ReclaimerOptions;
  private readonly passes: BackgroundPasses;
  /** Files fully reclaimed since start (metrics, tests). */
  reclaimedFiles = 0;

  constructor(db: Db, opts: ReclaimerOptions) {
    this.db = db;
    this.opts = opts;
    // A failure is left for the next kick (every large delete kicks); the tombstones are intact.
    this.passes = new BackgroundPasses(
      () => this.pass(),
      (err) => this.opts.logger?.warn({ err }, "chunk reclamation failed; will retry on the next deletion or restart"),
    );
  }

  /** Starts a pass over the tombstones (or schedules another one after the current pass). */
  kick(): void {
    this.passes.kick();
  }

  /** Resolves once no pass is running or scheduled (tests, shutdown). */
  idle(): Promise<void> {
    return this.passes.idle();
  }

  /** Stops after the batch in flight; pending tombstones stay for the next start. */
  stop(): Promise<void> {
    return this.passes.stop();
  }

  private get stopped(): boolean {
    return this.passes.stopped;
  }

  private async pass(): Promise<void> {
    for (;;) {
      const pending = await listTombstones(this.db, [TombstoneKind.DELETED, TombstoneKind.EXTENTS_DELETED], 64);
      if (pending.length === 0 || this.stopped) return;
      for (const { ino, tombstone } of pending) {
        const done = await deleteChunkRange(this.db, ino, tombstone, {
          batchKeys: this.opts.batchKeys,
          shouldStop: () => this.stopped,
          ...(this.opts.afterBatch ? { afterBatch: this.opts.afterBatch } : {}),
        });
        if (!done) return;
        this.reclaimedFiles++;
        this.opts.logger?.debug({ ino, chunks: tombstone.to }, "reclaimed chunks of deleted file");
      }
    }
  }
}
