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
import { DbClosedError } from "../lsm/errors.ts";
import { WriteBatch } from "../lsm/write-batch.ts";
import { TOMBSTONE_RANGE, allChunksRange, chunkKey, parseChunkKey, parseTombstoneKey, tombstoneKey } from "./keys.ts";
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
 * Deletes the stored chunks of `ino` at indices ≥ t.from in batches of at most `batchKeys`
 * deletes, recording progress in the tombstone and deleting it with the last batch. Cost is
 * proportional to the chunks actually stored (plus the deletions the engine has not yet
 * compacted away), never to the file's apparent size. Returns false when stopped early.
 */
export async function deleteChunkRange(db: Db, ino: number, t: Tombstone, opts: DeleteRangeOptions): Promise<boolean> {
  const limit = Math.max(1, opts.batchKeys);
  const end = allChunksRange(ino)[1];
  let from = t.from;
  for (let batches = 0; ; batches++) {
    if (opts.shouldStop?.() || batches >= (opts.maxBatches ?? Infinity)) return false;
    const batch = new WriteBatch();
    let found = 0;
    let last = from - 1;
    for await (const e of db.scan(chunkKey(ino, from), end)) {
      batch.delete(e.key);
      last = parseChunkKey(e.key).index;
      if (++found >= limit) break;
    }
    const done = found < limit;
    from = done ? Math.max(t.to, last + 1) : last + 1;
    if (done) batch.delete(tombstoneKey(ino));
    else batch.put(tombstoneKey(ino), encodeTombstone({ ...t, from }));
    // Not awaited durable: if the batch is lost in a crash the tombstone is still there and the
    // deletes are redone; nothing acknowledged to a client depends on it.
    await db.write(batch, { awaitDurable: false });
    await opts.afterBatch?.({ ino, next: from, to: Math.max(t.to, from) });
    if (done) return true;
  }
}

/** Pending tombstones of `kind`, in inode order, at most `limit`. */
export async function listTombstones(db: Db, kind: TombstoneKind, limit = Infinity): Promise<{ ino: number; tombstone: Tombstone }[]> {
  const out: { ino: number; tombstone: Tombstone }[] = [];
  for await (const e of db.scan(...TOMBSTONE_RANGE)) {
    const ino = parseTombstoneKey(e.key);
    const tombstone = decodeTombstone(e.value!, ino);
    if (tombstone.kind !== kind) continue;
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
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Files fully reclaimed since start (metrics, tests). */
  reclaimedFiles = 0;

  constructor(db: Db, opts: ReclaimerOptions) {
    this.db = db;
    this.opts = opts;
  }

  /** Starts a pass over the tombstones (or schedules another one after the current pass). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves once no pass is running or scheduled (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops after the batch in flight; pending tombstones stay for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (err) {
        if (err instanceof DbClosedError || this.stopped) return;
        // Left for the next kick (every large delete kicks); the tombstones are intact.
        this.opts.logger?.warn({ err }, "chunk reclamation failed; will retry on the next deletion or restart");
        return;
      }
    } while (this.again && !this.stopped);
  }

  private async pass(): Promise<void> {
    for (;;) {
      const pending = await listTombstones(this.db, TombstoneKind.DELETED, 64);
      if (pending.length === 0 || this.stopped) return;
      for (const { ino, tombstone } of pending) {
        const done = await deleteChunkRange(this.db, ino, tombstone, {
          batchKeys: this.opts.batchKeys,
          shouldStop: () => this.stopped,
          afterBatch: async (p) => {
            await this.opts.afterBatch?.(p);
            // Let request handling run between background batches.
            await new Promise<void>((resolve) => setImmediate(resolve));
          },
        });
        if (!done) return;
        this.reclaimedFiles++;
        this.opts.logger?.debug({ ino, chunks: tombstone.to }, "reclaimed chunks of deleted file");
      }
    }
  }
}
