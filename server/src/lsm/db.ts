import type { ObjectStore } from "../store/object-store.ts";
import { DbCore } from "./db-core.ts";
import { DEFAULT_DB_OPTIONS, type DbOptions, type DbStats, type SealerSource, type WriteOptions } from "./db-options.ts";
import type { Entry } from "./entry.ts";
import { DbClosedError, FencedError, FlushIncompleteError, type Unflushed } from "./errors.ts";
import { compactAllFlushed } from "./compaction-scheduler.ts";
import type { GcResult } from "./gc.ts";
import * as gcScheduler from "./gc-scheduler.ts";
import type { ManifestState } from "./manifest.ts";
import { flushMemtable, freezeActive } from "./memtable-flush.ts";
import { flattenChunks } from "./merge-iterator.ts";
import * as readPath from "./read-path.ts";
import { claimManifest, recover } from "./recovery.ts";
import type { Segments } from "./segments/segments.ts";
import * as writePath from "./write-path.ts";
import type { WriteBatch } from "./write-batch.ts";

export { DEFAULT_DB_OPTIONS, type DbOptions, type DbStats, type SealerSource, type WriteOptions } from "./db-options.ts";

/**
 * A single-writer LSM key-value store kept in an object store (SlateDB-like).
 *
 * Writes: batch → memtable + WAL group commit; frozen memtables flush to L0 SSTs; a
 * size-tiered compactor merges SSTs into sorted runs; GC removes unreferenced objects after a
 * grace period. Ownership: opening bumps the writer epoch in a new manifest and fences the WAL,
 * so an older writer's next durable write fails with FencedError.
 *
 * Db is the facade: its state lives in a DbCore (db-core.ts) shared with the modules that do
 * the work — recovery.ts (open), write-path.ts, memtable-flush.ts, manifest-commit.ts,
 * compaction-scheduler.ts, read-path.ts and gc-scheduler.ts.
 */
export class Db {
  private readonly core: DbCore;

  private constructor(core: DbCore) {
    this.core = core;
  }

  /**
   * Opens (or creates) the database under the store root and takes ownership of it.
   * Any previous writer is fenced: its next durable write fails.
   */
  static async open(store: ObjectStore, keys: SealerSource, options: Partial<DbOptions> = {}): Promise<Db> {
    const opts: DbOptions = { ...DEFAULT_DB_OPTIONS, ...options };
    const { id, state } = await claimManifest(store, keys.sealer("lsm/manifest"));
    const db = new Db(new DbCore(store, keys, opts, id, state));
    await recover(db.core);
    return db;
  }

  // ---------------------------------------------------------------- writes

  /** Applies a batch atomically. By default resolves once it is durable. */
  write(batch: WriteBatch, opts: WriteOptions = {}): Promise<void> {
    return writePath.write(this.core, batch, opts);
  }

  /** File data kept outside the LSM (layout v2 segments); the LSM holds pointers into it. */
  get segments(): Segments {
    this.core.checkOpen();
    return this.core.segmentStore;
  }

  /** Makes every write so far durable (one shared WAL flush for concurrent callers). */
  flush(): Promise<void> {
    return writePath.flush(this.core);
  }

  /** Forces the memtable into an L0 SST (tests, clean shutdown). */
  flushMemtable(): Promise<void> {
    return flushMemtable(this.core);
  }

  /** Compacts everything into one sorted run (tests, maintenance). */
  async compactAll(): Promise<void> {
    await flushMemtable(this.core);
    await compactAllFlushed(this.core);
  }

  // ---------------------------------------------------------------- reads

  /** The newest value of `key`, or undefined when absent or deleted. */
  get(key: Buffer): Promise<Buffer | undefined> {
    return readPath.get(this.core, key);
  }

  /**
   * Entries with from ≤ key < to in key order, as of the moment of the call (a consistent
   * snapshot: writes made while iterating are not seen). Tombstones are not returned.
   */
  scan(from?: Buffer, to?: Buffer): AsyncGenerator<Entry> {
    return flattenChunks(this.scanChunks(from, to));
  }

  /**
   * `scan` a chunk at a time (never an empty chunk): for readers that take many entries, such
   * as a directory listing, this costs a few promises per chunk instead of several per entry.
   * The snapshot is taken at the first `next()`. `firstChunk` bounds the first chunk from the
   * memtables and the merge, and every chunk read from an SST (a reader that will likely stop
   * early: one READDIR page).
   */
  scanChunks(from?: Buffer, to?: Buffer, opts: { firstChunk?: number } = {}): AsyncGenerator<Entry[]> {
    return readPath.scanChunks(this.core, from, to, opts);
  }

  // ---------------------------------------------------------------- GC, stats, lifecycle

  /** Deletes unreferenced SST, WAL and manifest objects older than gcMinAgeMs. */
  runGc(now = Date.now()): Promise<GcResult> {
    return gcScheduler.runGc(this.core, now);
  }

  stats(): DbStats {
    const bc = this.core.blockCache.stats;
    return {
      walObjects: this.core.wal.stats.objects,
      walBytes: this.core.wal.stats.bytes,
      ...this.core.counters,
      l0: this.core.manifest.l0.length,
      runs: this.core.manifest.runs.length,
      memtableBytes: this.core.active.approximateBytes + this.core.imm.reduce((n, m) => n + m.approximateBytes, 0),
      blockCache: { hits: bc.hits, misses: bc.misses, bytes: this.core.blockCache.size, maxBytes: this.core.blockCache.maxBytes },
    };
  }

  /** The committed manifest (tests and diagnostics). */
  get currentManifest(): Readonly<ManifestState> {
    return this.core.manifest;
  }

  get isFenced(): boolean {
    return this.core.failure instanceof FencedError;
  }

  /**
   * Makes everything durable, flushes the memtable, waits for background work, and closes.
   * When `signal` aborts first (a shutdown deadline), stops waiting and throws
   * FlushIncompleteError saying what had not reached the store.
   */
  async close(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.core.closed) return;
    this.core.closing = true;
    let gaveUp: FlushIncompleteError | undefined;
    try {
      if (!this.core.failure) {
        const step = <T>(p: Promise<T> | undefined): Promise<T | undefined> => untilAborted(p, opts.signal);
        await step(this.core.wal.flush());
        if (!this.core.active.isEmpty) freezeActive(this.core);
        await step(this.core.flushChain);
        await step(this.core.compaction);
        await step(this.core.gcRunning);
      }
    } catch (err) {
      if (!(err instanceof AbortedWait)) throw err;
      gaveUp = new FlushIncompleteError(this.unflushed());
      // Retry loops still running see the failure and stop instead of logging it.
      this.core.failure ??= gaveUp;
    } finally {
      this.core.closed = true;
      if (this.core.gcTimer) clearInterval(this.core.gcTimer);
      this.core.wal.abort(new DbClosedError());
      this.core.segmentStore.writer.abort(new DbClosedError());
      for (const w of this.core.capacityWaiters.splice(0)) w();
    }
    // Every upload has finished or given up by now: nothing waits for the workers any more.
    await this.core.cryptoWorkers?.close();
    if (gaveUp) throw gaveUp;
    if (this.core.failure) throw this.core.failure;
  }

  /** What has not reached the store yet (reported when a close gives up). */
  unflushed(): Unflushed {
    const wal = this.core.wal.pending;
    return {
      notDurableBatches: wal.batches,
      notDurableBytes: wal.bytes,
      memtableBytes: this.core.active.approximateBytes + this.core.imm.reduce((n, m) => n + m.approximateBytes, 0),
    };
  }
}

class AbortedWait extends Error {}

/** `p`, unless `signal` aborts first (then AbortedWait; `p` goes on unobserved). */
function untilAborted<T>(p: Promise<T> | undefined, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (p === undefined) return Promise.resolve(undefined);
  if (!signal) return p;
  p.catch(() => undefined);
  if (signal.aborted) return Promise.reject(new AbortedWait());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedWait());
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
