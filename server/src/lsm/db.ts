import type { Logger } from "pino";
import { CryptoWorkers } from "../crypto/crypto-workers.ts";
import type { Sealer } from "../crypto/sealer.ts";
import { InjectedCrashError, ObjectNotFoundError, PreconditionFailedError, StoreUnavailableError, isStoreUnavailable } from "../store/errors.ts";
import type { ObjectStore } from "../store/object-store.ts";
import { Progress } from "../observability/progress.ts";
import { partitionOf, pickCompaction, runCompaction, trivialMoves, type CompactionJob } from "./compactor.ts";
import { compareKeys, type Entry } from "./entry.ts";
import { CorruptObjectError, DbClosedError, FencedError, FlushIncompleteError, type Unflushed } from "./errors.ts";
import { collectGarbage, type GcResult } from "./gc.ts";
import {
  emptyManifest,
  encodeManifest,
  listManifestIds,
  readLatestManifest,
  tryWriteManifest,
  type ManifestState,
  type SortedRun,
  type SstRef,
} from "./manifest.ts";
import { Memtable } from "./memtable.ts";
import { flattenChunks, mergeChunks, type ChunkSource } from "./merge-iterator.ts";
import { SST_DIR, WAL_DIR, parseId, sstKey, walKey } from "./object-names.ts";
import { BlockCache } from "./sst/block-cache.ts";
import { SstBuilder } from "./sst/sst-builder.ts";
import { SstReader } from "./sst/sst-reader.ts";
import { encodeBatch, openWal, sealWal, WAL_WINDOW, type WalContents } from "./wal-format.ts";
import { WalWriter } from "./wal-writer.ts";
import type { WriteBatch } from "./write-batch.ts";
import { Segments } from "./segments/segments.ts";

/** Source of per-purpose sealers (the keyring): WAL, SST blocks and manifests use distinct subkeys. */
export interface SealerSource {
  /** The sealer for `purpose`; with `workers`, one that encrypts and opens on those threads. */
  sealer(purpose: string, opts?: { workers?: CryptoWorkers }): Sealer;
}

export interface DbOptions {
  /** Group-commit interval of the WAL (ms). */
  flushIntervalMs: number;
  /** Memtable size that triggers a flush to an L0 SST. */
  memtableBytes: number;
  /** Writes stall while this many frozen memtables wait to be flushed. */
  maxImmutableMemtables: number;
  /** A WAL object is closed early once its batches exceed this. */
  walMaxSegmentBytes: number;
  /**
   * WAL PUTs in flight at once (1..8, wal-format.ts WAL_WINDOW). More hide the latency of a
   * remote store; on a local disk, whose PUTs are bound by fsync, one at a time batches more
   * per PUT and is faster (openDatabase picks 1 there).
   */
  walMaxInFlight: number;
  /**
   * A WAL PUT starts beside others in flight only once the oldest has been outstanding this
   * long: quick stores keep one PUT at a time with bigger group commits (measured faster on a
   * local disk and on a loopback S3 server), slow remote ones get parallel uploads.
   */
  walParallelAfterMs: number;
  /**
   * Longest a WAL PUT waits, when the store is idle, for the committers of the previous group
   * commit to come back (wal-writer.ts, Linger): concurrent committers then share one object
   * per round instead of splitting into two alternating halves. 0 turns it off.
   */
  walLingerMs: number;
  /** Target plaintext size of SST data blocks. */
  sstBlockBytes: number;
  /** Compaction splits output SSTs at this size. */
  sstTargetBytes: number;
  /** L0 SSTs of one key partition that trigger compaction into a sorted run. */
  l0CompactionTrigger: number;
  /**
   * Compaction inputs of at least this many bytes that overlap no other input move into the
   * output run unchanged instead of being rewritten (Infinity: always rewrite).
   */
  trivialMoveMinBytes: number;
  /** Number of similar-sized adjacent sorted runs merged together (size-tiered). */
  runMergeWidth: number;
  /** Runs count as similar when the biggest is at most this multiple of the smallest. */
  runSizeRatio: number;
  /** Run compaction in the background after flushes. */
  autoCompact: boolean;
  /** In-memory cache of decoded blocks and SST indexes. */
  blockCacheBytes: number;
  /** Blocks fetched ahead of a sequential scan. */
  scanReadAhead: number;
  /** Adjacent blocks a scan needs are fetched with one ranged GET of up to this many bytes (0: one GET per block). */
  scanCoalesceBytes: number;
  /** How often garbage collection runs (0 = only on demand). */
  gcIntervalMs: number;
  /** Objects become garbage only once unreferenced and older than this. */
  gcMinAgeMs: number;
  /** A segment (file data, layout v2) is closed and uploaded at this size. */
  segmentTargetBytes: number;
  /** Writers of file data wait while this many bytes of closed segments are still uploading. */
  segmentMaxBufferedBytes: number;
  /** In-memory cache of file data (extent plaintext). */
  extentCacheBytes: number;
  /** Worker threads sealing and opening file data frames (0: on the event loop). */
  cryptoThreads: number;
  /**
   * Longest a caller waits for durability (write with awaitDurable, flush) or for room in a
   * full set of memtables; past it the caller gets StoreUnavailableError while the work goes on
   * (the batch stays queued for the WAL and is retried). Infinity: wait as long as it takes.
   */
  durableWaitMs: number;
  logger?: Logger;
  /** Interval of the progress lines of long work (WAL replay); default 5 s (observability/progress.ts). */
  progressIntervalMs?: number;
  /** Observes WAL flush latency (metrics). */
  onWalFlush?: (seconds: number, bytes: number) => void;
}

/** Entries per chunk of a memtable scan and of the k-way merge (their defaults). */
const MEMTABLE_CHUNK = 256;
const MERGE_CHUNK = 512;

export const DEFAULT_DB_OPTIONS: DbOptions = {
  flushIntervalMs: 100,
  memtableBytes: 64 * 1024 * 1024,
  maxImmutableMemtables: 2,
  walMaxSegmentBytes: 8 * 1024 * 1024,
  walMaxInFlight: 8,
  walParallelAfterMs: 50,
  walLingerMs: 2,
  sstBlockBytes: 16 * 1024,
  sstTargetBytes: 64 * 1024 * 1024,
  l0CompactionTrigger: 4,
  trivialMoveMinBytes: 4 * 1024 * 1024,
  runMergeWidth: 4,
  runSizeRatio: 4,
  autoCompact: true,
  blockCacheBytes: 256 * 1024 * 1024,
  scanReadAhead: 4,
  scanCoalesceBytes: 2 * 1024 * 1024,
  gcIntervalMs: 60_000,
  gcMinAgeMs: 10 * 60_000,
  segmentTargetBytes: 8 * 1024 * 1024,
  segmentMaxBufferedBytes: 64 * 1024 * 1024,
  extentCacheBytes: 256 * 1024 * 1024,
  cryptoThreads: 0,
  durableWaitMs: Infinity,
};

export interface WriteOptions {
  /** Resolve only once the batch is in a WAL object in the store (default true). */
  awaitDurable?: boolean;
}

export interface DbStats {
  walObjects: number;
  walBytes: number;
  sstObjects: number;
  sstBytes: number;
  compactions: number;
  compactionBytes: number;
  l0: number;
  runs: number;
  memtableBytes: number;
  /** Block cache lookups and the bytes it holds now, of maxBytes. */
  blockCache: { hits: number; misses: number; bytes: number; maxBytes: number };
}

/**
 * A single-writer LSM key-value store kept in an object store (SlateDB-like).
 *
 * Writes: batch → memtable + WAL group commit; frozen memtables flush to L0 SSTs; a
 * size-tiered compactor merges SSTs into sorted runs; GC removes unreferenced objects after a
 * grace period. Ownership: opening bumps the writer epoch in a new manifest and fences the WAL,
 * so an older writer's next durable write fails with FencedError.
 */
export class Db {
  private readonly store: ObjectStore;
  private readonly opts: DbOptions;
  private readonly walSealer: Sealer;
  private readonly sstSealer: Sealer;
  private readonly manifestSealer: Sealer;
  private readonly blockCache: BlockCache;
  private readonly log: Logger | undefined;

  private manifest: ManifestState;
  private manifestId: number;
  private active = new Memtable();
  /** Frozen memtables waiting for their L0 flush, newest first. Replaced, never mutated. */
  private imm: Memtable[] = [];
  private lastSeq: number;
  private nextSstId: number;
  private nextRunId: number;
  private wal!: WalWriter;
  private segmentStore!: Segments;
  private readonly keys: SealerSource;
  private cryptoWorkers: CryptoWorkers | undefined;

  private readonly readers = new Map<string, Promise<SstReader>>();
  /** Open scan snapshots (seq → count), so the memtable keeps what they can see. */
  private readonly snapshots = new Map<number, number>();
  /** SSTs in use by open scans; GC leaves them alone. */
  private readonly pinned = new Map<string, number>();

  private manifestLock: Promise<unknown> = Promise.resolve();
  private flushChain: Promise<void> = Promise.resolve();
  private compaction: Promise<void> | undefined;
  private compactionBackoffMs = 0;
  private capacityWaiters: (() => void)[] = [];
  private gcTimer: NodeJS.Timeout | undefined;
  private gcRunning: Promise<GcResult> | undefined;
  private closed = false;
  private closing = false;
  private failure: Error | undefined;
  private lastOwnershipProof = Date.now();
  private readonly counters = { sstObjects: 0, sstBytes: 0, compactions: 0, compactionBytes: 0 };

  private constructor(store: ObjectStore, keys: SealerSource, opts: DbOptions, manifestId: number, manifest: ManifestState) {
    this.store = store;
    this.opts = opts;
    this.keys = keys;
    this.walSealer = keys.sealer("lsm/wal");
    this.sstSealer = keys.sealer("lsm/sst");
    this.manifestSealer = keys.sealer("lsm/manifest");
    this.blockCache = new BlockCache(opts.blockCacheBytes);
    this.log = opts.logger;
    this.manifestId = manifestId;
    this.manifest = manifest;
    this.lastSeq = manifest.lastFlushedSeq;
    this.nextSstId = manifest.nextSstId;
    this.nextRunId = manifest.nextRunId;
  }

  /**
   * Opens (or creates) the database under the store root and takes ownership of it.
   * Any previous writer is fenced: its next durable write fails.
   */
  static async open(store: ObjectStore, keys: SealerSource, options: Partial<DbOptions> = {}): Promise<Db> {
    const opts: DbOptions = { ...DEFAULT_DB_OPTIONS, ...options };
    const manifestSealer = keys.sealer("lsm/manifest");
    for (let attempt = 0; ; attempt++) {
      const latest = await readLatestManifest(store, manifestSealer);
      const state: ManifestState = latest ? { ...latest.state, epoch: latest.state.epoch + 1 } : { ...emptyManifest(), epoch: 1 };
      const id = latest ? latest.id + 1 : 1;
      if (await tryWriteManifest(store, id, await encodeManifest(id, state, manifestSealer))) {
        const db = new Db(store, keys, opts, id, state);
        await db.recover();
        return db;
      }
      // Another writer wrote manifest `id` between our read and write: start over.
      if (attempt >= 20) throw new FencedError(`could not take ownership of ${store.description}: manifest ${id} keeps being taken by another writer`);
    }
  }

  /**
   * Replays WAL objects after the last flushed one up to the first gap, then fences the WAL:
   * claims the gap's id and the WAL_WINDOW - 1 ids after it (deleting strays there), so that
   * nothing above the gap — never acknowledged — is ever read, and a zombie writer can neither
   * acknowledge nor land anything where this writer will write (wal-format.ts, "Ids, gaps and
   * fencing").
   */
  private async recover(): Promise<void> {
    const ids: number[] = [];
    for (const m of await this.store.list(WAL_DIR)) {
      const id = parseId(WAL_DIR, m.key);
      if (id !== undefined && id > this.manifest.walFlushedUpto) ids.push(id);
    }
    ids.sort((a, b) => a - b);
    let expected = this.manifest.walFlushedUpto + 1;
    let replayed = 0;
    let newestEpoch = 0;
    // A volume whose writer died with a big memtable replays many objects: say how far it got.
    const progress = new Progress(ids.length > 0 ? this.log : undefined, {
      task: "wal-replay",
      label: "WAL replay",
      unit: "objects",
      total: ids.length,
      intervalMs: this.opts.progressIntervalMs,
    });
    try {
      for (const id of ids) {
        if (id !== expected) break;
        const body = await this.store.get(walKey(id));
        const contents = await openWal(walKey(id), body, this.walSealer);
        // Writers follow each other in epoch order. An older writer's object after a newer one's
        // is a stray that landed late in the newer writer's space: never acknowledged, and
        // replaying it would resurrect old values over newer ones. Treat it as the end.
        if (contents.epoch < newestEpoch) break;
        newestEpoch = contents.epoch;
        this.applyWal(contents);
        replayed++;
        expected = id + 1;
        progress.add(1, contents.batches.reduce((n, b) => n + b.entries.length, 0), body.length);
      }
    } catch (err) {
      progress.fail(err);
      throw err;
    }
    // A quick replay of nothing but a predecessor's empty fence objects is not news.
    progress.finish({ replayed, lastSeq: this.lastSeq }, progress.records > 0 ? "info" : "debug");
    const strays = ids.filter((id) => id >= expected);
    // A crash leaves strays only within the window after the gap (wal-format.ts). An object
    // further on means the gap is a lost object, not an unfinished upload: refuse, naming it.
    const beyond = strays.find((id) => id >= expected + WAL_WINDOW);
    if (beyond !== undefined) {
      throw new CorruptObjectError(walKey(expected), `missing WAL object (found ${walKey(beyond)}, beyond the ${WAL_WINDOW} uploads a writer has in flight) in ${this.store.description}`);
    }
    if (strays.length > 0) {
      this.log?.warn({ gap: walKey(expected), strays: strays.length, firstStray: walKey(strays[0]!) }, "WAL has a gap (a crash with several uploads in flight): the objects after it were never acknowledged and are discarded");
    }
    // Fence: claim the next WAL id with an empty object. An older writer that raced us into
    // that id has its batch replayed (it may have acknowledged it) and we try the next one.
    let fenceId = expected;
    const epoch = this.manifest.epoch;
    for (;;) {
      const key = walKey(fenceId);
      const body = await sealWal(key, epoch, 0, [], 0, this.walSealer);
      try {
        await this.store.putIfAbsent(key, body);
        break;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
        const existing = await this.store.get(key);
        if (existing.equals(body)) break;
        const contents = await openWal(key, existing, this.walSealer);
        if (contents.epoch > epoch) throw new FencedError(`WAL object ${key} in ${this.store.description} belongs to a newer writer (epoch ${contents.epoch}, this writer's ${epoch})`);
        if (contents.epoch < newestEpoch) {
          // A stray in a newer writer's space (see above): never acknowledged.
          await this.deleteStrayWal(fenceId, existing, epoch);
          continue;
        }
        newestEpoch = contents.epoch;
        this.applyWal(contents);
        replayed++;
        fenceId++;
      }
    }
    // We own fenceId: nothing above it was or can be acknowledged. Claim the window after it.
    await Promise.all(Array.from({ length: WAL_WINDOW - 1 }, (_, k) => this.claimWalId(fenceId + 1 + k, epoch)));
    const nextWalId = fenceId + WAL_WINDOW;
    if (this.opts.cryptoThreads > 0) this.cryptoWorkers = new CryptoWorkers(this.opts.cryptoThreads);
    const segmentSealer = this.keys.sealer("lsm/segment", this.cryptoWorkers ? { workers: this.cryptoWorkers } : {});
    this.segmentStore = new Segments(this.store, segmentSealer, epoch, {
      targetBytes: this.opts.segmentTargetBytes,
      maxBufferedBytes: this.opts.segmentMaxBufferedBytes,
      extentCacheBytes: this.opts.extentCacheBytes,
      ...(this.log ? { logger: this.log } : {}),
    });
    const segWriter = this.segmentStore.writer;
    this.wal = new WalWriter(this.store, this.walSealer, epoch, nextWalId, {
      barrier: { mark: () => segWriter.mark(), durableThrough: (m) => segWriter.durableThrough(m) },
      flushIntervalMs: this.opts.flushIntervalMs,
      maxSegmentBytes: this.opts.walMaxSegmentBytes,
      maxInFlight: this.opts.walMaxInFlight,
      parallelAfterMs: this.opts.walParallelAfterMs,
      lingerMs: this.opts.walLingerMs,
      ownershipCheckMs: Math.max(1000, this.opts.gcMinAgeMs / 4),
      verifyOwnership: () => this.verifyOwnership(),
      onError: (err, ctx) => logRetry(this.log, err, { objectKey: ctx.objectKey, attempt: ctx.attempt }, "WAL write failed; retrying"),
      onDurable: this.opts.onWalFlush,
    });
    if (this.opts.gcIntervalMs > 0) {
      this.gcTimer = setInterval(() => {
        this.runGc().catch((err: unknown) => logRetry(this.log, err, {}, "garbage collection failed"));
      }, this.opts.gcIntervalMs);
      this.gcTimer.unref();
    }
    this.log?.info({ epoch, manifestId: this.manifestId, replayedWal: replayed, lastSeq: this.lastSeq }, "database opened");
  }

  /**
   * Deletes a WAL object above this writer's fence: an older writer's, never acknowledged. One
   * of a newer writer means this one has been fenced while it recovered: nothing is deleted.
   */
  private async deleteStrayWal(id: number, data: Buffer, epoch: number): Promise<void> {
    const key = walKey(id);
    const stray = await openWal(key, data, this.walSealer);
    if (stray.epoch > epoch) throw new FencedError(`WAL object ${key} in ${this.store.description} belongs to a newer writer (epoch ${stray.epoch}, this writer's ${epoch})`);
    this.log?.warn({ objectKey: key, epoch: stray.epoch, batches: stray.batches.length }, "deleting a WAL object above the fence (never acknowledged)");
    await this.store.delete(key);
  }

  /**
   * Claims a WAL id above this writer's fence with an empty object. An object already there is
   * a stray of an older writer, never acknowledged (its id is above our fence): deleted, then
   * the id is claimed again.
   */
  private async claimWalId(id: number, epoch: number): Promise<void> {
    const key = walKey(id);
    const body = await sealWal(key, epoch, 0, [], 0, this.walSealer);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.store.putIfAbsent(key, body);
        return;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
        const existing = await this.store.get(key).catch((e: unknown) => {
          if (e instanceof ObjectNotFoundError) return undefined; // deleted meanwhile: claim again
          throw e;
        });
        if (existing?.equals(body)) return;
        if (existing) await this.deleteStrayWal(id, existing, epoch);
        if (attempt >= 5) throw new FencedError(`could not claim WAL object ${key} in ${this.store.description}: another writer keeps writing it`);
      }
    }
  }

  /** Replays a WAL object's batches into the memtable. */
  private applyWal(contents: WalContents): void {
    for (const batch of contents.batches) {
      for (const e of batch.entries) this.active.put(e.key, e.value, batch.seq, Infinity);
      if (batch.seq > this.lastSeq) this.lastSeq = batch.seq;
    }
  }

  // ---------------------------------------------------------------- writes

  /** Applies a batch atomically. By default resolves once it is durable. */
  async write(batch: WriteBatch, opts: WriteOptions = {}): Promise<void> {
    this.checkOpen();
    if (batch.isEmpty) return;
    while (this.imm.length >= this.opts.maxImmutableMemtables) {
      await this.bounded(new Promise<void>((resolve) => this.capacityWaiters.push(resolve)), "put", SST_DIR, `room for writes (${this.imm.length} memtables wait for their upload)`);
      this.checkOpen();
    }
    const seq = ++this.lastSeq;
    const minSnap = this.minSnapshot();
    for (const op of batch.ops) this.active.put(op.key, op.value, seq, minSnap);
    const { parts, bytes } = encodeBatch(seq, batch);
    const durable = this.wal.append(parts, bytes, opts.awaitDurable !== false);
    if (this.active.approximateBytes >= this.opts.memtableBytes) this.freezeActive();
    if (opts.awaitDurable !== false) await this.bounded(durable, "putIfAbsent", WAL_DIR, "durability (the WAL upload)");
  }

  /** File data kept outside the LSM (layout v2 segments); the LSM holds pointers into it. */
  get segments(): Segments {
    this.checkOpen();
    return this.segmentStore;
  }

  /** Makes every write so far durable (one shared WAL flush for concurrent callers). */
  async flush(): Promise<void> {
    this.checkOpen();
    await this.bounded(this.wal.flush(), "putIfAbsent", WAL_DIR, "durability (the WAL upload)");
  }

  /** Waits for `p` at most durableWaitMs; the work behind it goes on after a timeout. */
  private async bounded<T>(p: Promise<T>, op: "put" | "putIfAbsent", key: string, what: string): Promise<T> {
    const ms = this.opts.durableWaitMs;
    if (!Number.isFinite(ms)) return p;
    // Abandoned on timeout: its later rejection (e.g. at close) must not go unhandled.
    p.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new StoreUnavailableError(this.store.description, op, key, "timeout", `waited ${ms / 1000} s for ${what}; the write stays queued and is retried`));
      }, ms);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Forces the memtable into an L0 SST (tests, clean shutdown). */
  async flushMemtable(): Promise<void> {
    this.checkOpen();
    if (!this.active.isEmpty) this.freezeActive();
    await this.flushChain;
    this.checkOpen();
  }

  private freezeActive(): void {
    const m = this.active;
    m.freeze();
    this.active = new Memtable();
    this.imm = [m, ...this.imm];
    const walDone = this.wal.cut();
    // If the writer has failed, flushImmutable returns without awaiting this; the failure is
    // already reported through `failure`, so don't let it surface as an unhandled rejection.
    walDone.catch(() => undefined);
    // The memtable's SSTs are built and uploaded at once, while the WAL may still be uploading
    // its last batches and while earlier memtables' flushes finish: only the manifest commits,
    // which declare those WAL objects flushed and order L0, wait (in freeze order). A failed
    // build is retried (or reported) by flushImmutable; the catch keeps it from going unhandled.
    const built = this.writeL0(m.entries());
    built.catch(() => undefined);
    this.flushChain = this.flushChain.then(() => this.flushImmutable(m, walDone, built)).catch((err: unknown) => this.fail(err, "memtable flush failed"));
  }

  private async flushImmutable(m: Memtable, walDone: Promise<number>, firstBuild: Promise<SstRef[]>): Promise<void> {
    const release = (refs: SstRef[]): void => {
      for (const r of refs) this.unpin(r.key);
    };
    if (this.failure) {
      firstBuild.then(release, () => undefined);
      return;
    }
    let walUpto: number | undefined;
    let refs: SstRef[] = [];
    let pending: Promise<SstRef[]> | undefined = firstBuild;
    for (let attempt = 1; ; attempt++) {
      let built = false;
      try {
        refs = await (pending ?? this.writeL0(m.entries()));
        built = true;
        walUpto ??= await walDone;
        const upto = walUpto;
        await this.commitManifest((s) => {
          s.l0 = [...refs, ...s.l0];
          s.walFlushedUpto = upto;
          s.lastFlushedSeq = Math.max(s.lastFlushedSeq, m.lastSeq);
        });
        release(refs);
        break;
      } catch (err) {
        pending = undefined;
        // Not committed: the uploaded SSTs are orphans now (a retry builds new ones).
        if (built) release(refs);
        // A failed WAL is final (it failed the writer).
        if (built && walUpto === undefined) throw err;
        // The memtable's data is safe in the WAL; an unreachable store only delays the flush
        // (writers stall once maxImmutableMemtables are waiting). Ownership loss is final.
        if (isFatal(err) || this.failure || this.closed) throw err;
        logRetry(this.log, err, { attempt }, "memtable flush failed; retrying");
        await sleep(Math.min(5000, 100 * 2 ** Math.min(attempt, 6)));
      }
    }
    this.imm = this.imm.filter((x) => x !== m);
    for (const w of this.capacityWaiters.splice(0)) w();
    this.log?.debug({ ssts: refs.map((r) => r.key), entries: refs.reduce((n, r) => n + r.entryCount, 0), walUpto }, "memtable flushed");
    this.maybeCompact();
  }

  /**
   * Builds and uploads the L0 SSTs of a memtable: one per key partition (see compactor.ts).
   * They stay pinned (GC leaves them alone) until the caller has committed them to the manifest
   * or given up on them, however long that takes.
   */
  private async writeL0(entries: Iterable<Entry>): Promise<SstRef[]> {
    const refs: SstRef[] = [];
    let builder: SstBuilder | undefined;
    let partition = 0;
    const finish = async (): Promise<void> => {
      const b = builder;
      builder = undefined;
      if (!b || b.entryCount === 0) return;
      const { body, info } = await b.finish();
      const ref: SstRef = { key: info.key, size: info.size, firstKey: info.firstKey, lastKey: info.lastKey, entryCount: info.entryCount };
      this.pin(ref.key);
      refs.push(ref);
      await this.store.put(info.key, body);
      this.counters.sstObjects++;
      this.counters.sstBytes += body.length;
    };
    try {
      for (const e of entries) {
        if (builder && partitionOf(e.key) !== partition) await finish();
        if (!builder) {
          builder = new SstBuilder(sstKey(this.nextSstId++, this.manifest.epoch), this.sstSealer, { blockSize: this.opts.sstBlockBytes });
          partition = partitionOf(e.key);
        }
        builder.add(e.key, e.value);
      }
      await finish();
    } catch (err) {
      for (const r of refs) this.unpin(r.key);
      throw err;
    }
    return refs;
  }

  /** Serialized manifest update; losing the put-if-absent means we were fenced. */
  private commitManifest(mutate: (s: ManifestState) => void): Promise<void> {
    const run = async (): Promise<void> => {
      this.checkOpen(true);
      const next: ManifestState = { ...this.manifest, l0: [...this.manifest.l0], runs: [...this.manifest.runs] };
      mutate(next);
      next.nextSstId = this.nextSstId;
      next.nextRunId = this.nextRunId;
      const id = this.manifestId + 1;
      if (Date.now() - this.lastOwnershipProof > Math.max(1000, this.opts.gcMinAgeMs / 4)) await this.verifyOwnership();
      const body = await encodeManifest(id, next, this.manifestSealer);
      let ok: boolean;
      for (let attempt = 1; ; attempt++) {
        try {
          ok = await tryWriteManifest(this.store, id, body);
          break;
        } catch (err) {
          // The put may or may not have landed; retrying the same bytes at the same id
          // settles it (identical bytes found = ours), where a new body would look like a
          // rival writer.
          if (isFatal(err) || this.failure) throw err;
          logRetry(this.log, err, { attempt, manifestId: id }, "manifest write failed; retrying");
          await sleep(Math.min(5000, 50 * 2 ** Math.min(attempt, 7)));
        }
      }
      if (!ok) {
        const err = new FencedError(`manifest ${id} in ${this.store.description} was written by another writer (this writer's epoch ${this.manifest.epoch})`);
        this.fail(err, "fenced");
        throw err;
      }
      this.lastOwnershipProof = Date.now();
      this.manifest = next;
      this.manifestId = id;
    };
    const p = this.manifestLock.then(run);
    this.manifestLock = p.catch(() => undefined);
    return p;
  }

  /** Fails with FencedError when a newer manifest than ours exists. */
  private async verifyOwnership(): Promise<void> {
    const ids = await listManifestIds(this.store);
    const latest = ids[ids.length - 1] ?? 0;
    if (latest > this.manifestId) {
      const err = new FencedError(`manifest ${latest} in ${this.store.description} is newer than this writer's ${this.manifestId}`);
      this.fail(err, "fenced");
      throw err;
    }
    this.lastOwnershipProof = Date.now();
  }

  // ---------------------------------------------------------------- compaction

  private maybeCompact(): void {
    if (!this.opts.autoCompact || this.compaction || this.closing || this.failure) return;
    const job = pickCompaction(this.manifest, this.opts);
    if (!job) return;
    this.compaction = this.compact(job)
      .then(
        () => {
          this.compactionBackoffMs = 0;
        },
        async (err: unknown) => {
          if (isFatal(err)) return this.fail(err, "compaction failed");
          // Inputs stay in place; try again later rather than hammer a failing store.
          this.compactionBackoffMs = Math.min(30_000, Math.max(200, this.compactionBackoffMs * 2));
          logRetry(this.log, err, { retryInMs: this.compactionBackoffMs }, "compaction failed; will retry");
          await sleep(this.compactionBackoffMs);
        },
      )
      .finally(() => {
        this.compaction = undefined;
        this.maybeCompact();
      });
  }

  /** Compacts everything into one sorted run (tests, maintenance). */
  async compactAll(): Promise<void> {
    await this.flushMemtable();
    while (this.compaction) await this.compaction;
    const m = this.manifest;
    if (m.l0.length === 0 && m.runs.length <= 1) return;
    const job: CompactionJob = { l0: [...m.l0], runIds: m.runs.map((r) => r.id), bottom: true };
    this.compaction = this.compact(job).finally(() => {
      this.compaction = undefined;
    });
    await this.compaction;
  }

  private async compact(job: CompactionJob): Promise<void> {
    const runsById = new Map(this.manifest.runs.map((r) => [r.id, r]));
    const inputRuns = job.runIds.map((id) => runsById.get(id)).filter((r): r is SortedRun => r !== undefined);
    const inputs = [...job.l0, ...inputRuns.flatMap((r) => r.ssts)];
    // Inputs that overlap no other input move into the output run as they are.
    const moves = trivialMoves(inputs, this.opts.trivialMoveMinBytes);
    const rewrite = (ref: SstRef): boolean => !moves.has(ref.key);
    for (const ref of inputs) this.pin(ref.key);
    try {
      const sources: ChunkSource[] = [
        ...job.l0.filter(rewrite).map((ref) => this.sstSource(ref, undefined, undefined)),
        ...inputRuns.map((run) => this.runSource({ id: run.id, ssts: run.ssts.filter(rewrite) }, undefined, undefined)),
      ];
      const outputs = await runCompaction(flattenChunks(mergeChunks(sources, job.bottom)), {
        targetBytes: this.opts.sstTargetBytes,
        newBuilder: () => {
          const key = sstKey(this.nextSstId++, this.manifest.epoch);
          return new SstBuilder(key, this.sstSealer, { blockSize: this.opts.sstBlockBytes });
        },
        upload: async (key, body) => {
          this.checkOpen(true);
          await this.store.put(key, body);
          this.counters.sstObjects++;
          this.counters.sstBytes += body.length;
          this.counters.compactionBytes += body.length;
        },
      }, inputs.filter((ref) => moves.has(ref.key)));
      const run: SortedRun = { id: this.nextRunId++, ssts: outputs };
      const l0Keys = new Set(job.l0.map((r) => r.key));
      const runIds = new Set(job.runIds);
      await this.commitManifest((s) => {
        s.l0 = s.l0.filter((r) => !l0Keys.has(r.key));
        const firstIdx = s.runs.findIndex((r) => runIds.has(r.id));
        const rest = s.runs.filter((r) => !runIds.has(r.id));
        // L0 data is newer than every run; merged runs take the place of the newest input.
        const at = job.runIds.length === 0 || firstIdx < 0 ? 0 : firstIdx;
        if (run.ssts.length > 0) rest.splice(at, 0, run);
        s.runs = rest;
      });
      this.counters.compactions++;
      for (const ref of inputs.filter(rewrite)) {
        this.readers.delete(ref.key);
        this.blockCache.evictObject(ref.key);
      }
      this.log?.debug({ inputs: inputs.length, moved: moves.size, outputs: outputs.length, run: run.id }, "compaction done");
    } finally {
      for (const ref of inputs) this.unpin(ref.key);
    }
  }

  // ---------------------------------------------------------------- reads

  /** The newest value of `key`, or undefined when absent or deleted. */
  async get(key: Buffer): Promise<Buffer | undefined> {
    this.checkOpen();
    const hit = this.active.get(key);
    if (hit) return hit.value ?? undefined;
    for (const m of this.imm) {
      const e = m.get(key);
      if (e) return e.value ?? undefined;
    }
    const { l0, runs } = this.manifest;
    for (const ref of l0) {
      if (compareKeys(key, ref.firstKey) < 0 || compareKeys(key, ref.lastKey) > 0) continue;
      const e = await this.sstGet(ref, key);
      if (e) return e.value ?? undefined;
    }
    for (const run of runs) {
      const ref = findInRun(run, key);
      if (!ref) continue;
      const e = await this.sstGet(ref, key);
      if (e) return e.value ?? undefined;
    }
    return undefined;
  }

  private async sstGet(ref: SstRef, key: Buffer): Promise<Entry | undefined> {
    const reader = await this.reader(ref);
    if (!reader.mayContain(key)) return undefined;
    return reader.get(key);
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
   * memtables and the merge (a reader that will likely stop early: one READDIR page).
   */
  async *scanChunks(from?: Buffer, to?: Buffer, opts: { firstChunk?: number } = {}): AsyncGenerator<Entry[]> {
    this.checkOpen();
    const snap = this.lastSeq;
    const active = this.active;
    const imm = this.imm;
    const { l0, runs } = this.manifest;
    const refs = [...l0, ...runs.flatMap((r) => r.ssts)];
    this.snapshots.set(snap, (this.snapshots.get(snap) ?? 0) + 1);
    for (const ref of refs) this.pin(ref.key);
    try {
      const sources: ChunkSource[] = [
        active.scanChunks(from, to, snap, MEMTABLE_CHUNK, opts.firstChunk),
        ...imm.map((m) => m.scanChunks(from, to, Number.MAX_SAFE_INTEGER, MEMTABLE_CHUNK, opts.firstChunk)),
        ...l0.filter((ref) => overlaps(ref, from, to)).map((ref) => this.sstSource(ref, from, to)),
        ...runs.map((run) => this.runSource(run, from, to)),
      ];
      for await (const chunk of mergeChunks(sources, true, MERGE_CHUNK, opts.firstChunk)) {
        this.checkOpen();
        yield chunk;
      }
    } finally {
      const n = this.snapshots.get(snap)! - 1;
      if (n === 0) this.snapshots.delete(snap);
      else this.snapshots.set(snap, n);
      for (const ref of refs) this.unpin(ref.key);
    }
  }

  private async *sstSource(ref: SstRef, from: Buffer | undefined, to: Buffer | undefined): AsyncGenerator<Entry[]> {
    const reader = await this.reader(ref);
    yield* reader.scanChunks(from, to, { readAhead: this.opts.scanReadAhead, coalesceBytes: this.opts.scanCoalesceBytes });
  }

  private async *runSource(run: SortedRun, from: Buffer | undefined, to: Buffer | undefined): AsyncGenerator<Entry[]> {
    let i = from === undefined ? 0 : run.ssts.findIndex((r) => compareKeys(r.lastKey, from) >= 0);
    if (i < 0) return;
    for (; i < run.ssts.length; i++) {
      const ref = run.ssts[i]!;
      if (to !== undefined && compareKeys(ref.firstKey, to) >= 0) return;
      yield* this.sstSource(ref, from, to);
    }
  }

  private reader(ref: SstRef): Promise<SstReader> {
    let r = this.readers.get(ref.key);
    if (!r) {
      r = SstReader.open(this.store, { key: ref.key, size: ref.size }, this.sstSealer, this.blockCache);
      this.readers.set(ref.key, r);
      // A failed open must not stay cached: the next read retries (and reports) it.
      r.catch(() => this.readers.delete(ref.key));
    }
    return r;
  }

  // ---------------------------------------------------------------- GC, stats, lifecycle

  /** Deletes unreferenced SST, WAL and manifest objects older than gcMinAgeMs. */
  runGc(now = Date.now()): Promise<GcResult> {
    this.checkOpen();
    this.gcRunning ??= collectGarbage(this.store, {
      manifest: this.manifest,
      manifestId: this.manifestId,
      pinned: new Set(this.pinned.keys()),
      minAgeMs: this.opts.gcMinAgeMs,
      now,
    }).finally(() => {
      this.gcRunning = undefined;
    });
    return this.gcRunning;
  }

  stats(): DbStats {
    const bc = this.blockCache.stats;
    return {
      walObjects: this.wal.stats.objects,
      walBytes: this.wal.stats.bytes,
      ...this.counters,
      l0: this.manifest.l0.length,
      runs: this.manifest.runs.length,
      memtableBytes: this.active.approximateBytes + this.imm.reduce((n, m) => n + m.approximateBytes, 0),
      blockCache: { hits: bc.hits, misses: bc.misses, bytes: this.blockCache.size, maxBytes: this.blockCache.maxBytes },
    };
  }

  /** The committed manifest (tests and diagnostics). */
  get currentManifest(): Readonly<ManifestState> {
    return this.manifest;
  }

  get isFenced(): boolean {
    return this.failure instanceof FencedError;
  }

  /**
   * Makes everything durable, flushes the memtable, waits for background work, and closes.
   * When `signal` aborts first (a shutdown deadline), stops waiting and throws
   * FlushIncompleteError saying what had not reached the store.
   */
  async close(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    let gaveUp: FlushIncompleteError | undefined;
    try {
      if (!this.failure) {
        const step = <T>(p: Promise<T> | undefined): Promise<T | undefined> => untilAborted(p, opts.signal);
        await step(this.wal.flush());
        if (!this.active.isEmpty) this.freezeActive();
        await step(this.flushChain);
        await step(this.compaction);
        await step(this.gcRunning);
      }
    } catch (err) {
      if (!(err instanceof AbortedWait)) throw err;
      gaveUp = new FlushIncompleteError(this.unflushed());
      // Retry loops still running see the failure and stop instead of logging it.
      this.failure ??= gaveUp;
    } finally {
      this.closed = true;
      if (this.gcTimer) clearInterval(this.gcTimer);
      this.wal.abort(new DbClosedError());
      this.segmentStore.writer.abort(new DbClosedError());
      for (const w of this.capacityWaiters.splice(0)) w();
    }
    // Every upload has finished or given up by now: nothing waits for the workers any more.
    await this.cryptoWorkers?.close();
    if (gaveUp) throw gaveUp;
    if (this.failure) throw this.failure;
  }

  /** What has not reached the store yet (reported when a close gives up). */
  unflushed(): Unflushed {
    const wal = this.wal.pending;
    return {
      notDurableBatches: wal.batches,
      notDurableBytes: wal.bytes,
      memtableBytes: this.active.approximateBytes + this.imm.reduce((n, m) => n + m.approximateBytes, 0),
    };
  }

  private fail(err: unknown, what: string): void {
    const e = err instanceof Error ? err : new Error(String(err));
    if (!this.failure) {
      this.failure = e;
      if (!(e instanceof InjectedCrashError)) this.log?.error({ err: e }, what);
      this.wal.abort(e);
      this.segmentStore?.writer.abort(e);
      for (const w of this.capacityWaiters.splice(0)) w();
    }
  }

  private checkOpen(allowClosing = false): void {
    if (this.failure) throw this.failure;
    if (this.closed && !allowClosing) throw new DbClosedError();
    if (this.wal?.failed && !(this.wal.failed instanceof DbClosedError)) {
      this.fail(this.wal.failed, "WAL failed");
      throw this.wal.failed;
    }
  }

  private minSnapshot(): number {
    if (this.snapshots.size === 0) return Infinity;
    let min = Infinity;
    for (const s of this.snapshots.keys()) if (s < min) min = s;
    return min;
  }

  private pin(key: string): void {
    this.pinned.set(key, (this.pinned.get(key) ?? 0) + 1);
  }

  private unpin(key: string): void {
    const n = (this.pinned.get(key) ?? 1) - 1;
    if (n <= 0) this.pinned.delete(key);
    else this.pinned.set(key, n);
  }
}

/** Errors after which this writer must stop: another writer owns the store, or (tests) it died. */
function isFatal(err: unknown): boolean {
  return err instanceof FencedError || err instanceof InjectedCrashError || err instanceof DbClosedError;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Store outages are reported once per state change by the store's health tracker (see
 * store/health.ts), so the retries they cause log at debug only; anything else stays a warning.
 */
function logRetry(log: Logger | undefined, err: unknown, fields: Record<string, unknown>, msg: string): void {
  if (isStoreUnavailable(err)) log?.debug({ err, ...fields }, msg);
  else log?.warn({ err, ...fields }, msg);
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
