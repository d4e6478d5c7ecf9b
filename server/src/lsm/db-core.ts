/**
 * The state a Db (lsm/db.ts, the public facade) shares with the modules that do its work —
 * recovery.ts, write-path.ts, memtable-flush.ts, manifest-commit.ts, compaction-scheduler.ts,
 * read-path.ts, gc-scheduler.ts — and the rules they all follow: how the writer fails (once,
 * for good), checks that it is still open, pins SSTs against GC and tracks scan snapshots, and
 * which errors its retry loops give up on.
 */
import type { Logger } from "pino";
import type { CryptoWorkers } from "../crypto/crypto-workers.ts";
import type { Sealer } from "../crypto/sealer.ts";
import { InjectedCrashError, isStoreUnavailable } from "../store/errors.ts";
import type { ObjectStore } from "../store/object-store.ts";
import type { DbOptions, SealerSource } from "./db-options.ts";
import { DbClosedError, FencedError } from "./errors.ts";
import type { GcResult } from "./gc.ts";
import type { ManifestState } from "./manifest.ts";
import { Memtable } from "./memtable.ts";
import type { Segments } from "./segments/segments.ts";
import { BlockCache } from "./sst/block-cache.ts";
import type { SstReader } from "./sst/sst-reader.ts";
import type { WalWriter } from "./wal-writer.ts";

export class DbCore {
  readonly store: ObjectStore;
  readonly opts: DbOptions;
  readonly walSealer: Sealer;
  readonly sstSealer: Sealer;
  readonly manifestSealer: Sealer;
  readonly blockCache: BlockCache;
  readonly log: Logger | undefined;

  manifest: ManifestState;
  manifestId: number;
  active = new Memtable();
  /** Frozen memtables waiting for their L0 flush, newest first. Replaced, never mutated. */
  imm: Memtable[] = [];
  lastSeq: number;
  nextSstId: number;
  nextRunId: number;
  wal!: WalWriter;
  segmentStore!: Segments;
  readonly keys: SealerSource;
  cryptoWorkers: CryptoWorkers | undefined;

  readonly readers = new Map<string, Promise<SstReader>>();
  /** Open scan snapshots (seq → count), so the memtable keeps what they can see. */
  readonly snapshots = new Map<number, number>();
  /** SSTs in use by open scans; GC leaves them alone. */
  readonly pinned = new Map<string, number>();

  manifestLock: Promise<unknown> = Promise.resolve();
  flushChain: Promise<void> = Promise.resolve();
  compaction: Promise<void> | undefined;
  compactionBackoffMs = 0;
  capacityWaiters: (() => void)[] = [];
  gcTimer: NodeJS.Timeout | undefined;
  gcRunning: Promise<GcResult> | undefined;
  closed = false;
  closing = false;
  failure: Error | undefined;
  lastOwnershipProof = Date.now();
  readonly counters = { sstObjects: 0, sstBytes: 0, compactions: 0, compactionBytes: 0 };

  constructor(store: ObjectStore, keys: SealerSource, opts: DbOptions, manifestId: number, manifest: ManifestState) {
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

  fail(err: unknown, what: string): void {
    const e = err instanceof Error ? err : new Error(String(err));
    if (!this.failure) {
      this.failure = e;
      if (!(e instanceof InjectedCrashError)) this.log?.error({ err: e }, what);
      this.wal.abort(e);
      this.segmentStore?.writer.abort(e);
      for (const w of this.capacityWaiters.splice(0)) w();
    }
  }

  checkOpen(allowClosing = false): void {
    if (this.failure) throw this.failure;
    if (this.closed && !allowClosing) throw new DbClosedError();
    if (this.wal?.failed && !(this.wal.failed instanceof DbClosedError)) {
      this.fail(this.wal.failed, "WAL failed");
      throw this.wal.failed;
    }
  }

  minSnapshot(): number {
    if (this.snapshots.size === 0) return Infinity;
    let min = Infinity;
    for (const s of this.snapshots.keys()) if (s < min) min = s;
    return min;
  }

  pin(key: string): void {
    this.pinned.set(key, (this.pinned.get(key) ?? 0) + 1);
  }

  unpin(key: string): void {
    const n = (this.pinned.get(key) ?? 1) - 1;
    if (n <= 0) this.pinned.delete(key);
    else this.pinned.set(key, n);
  }
}

/** Errors after which this writer must stop: another writer owns the store, or (tests) it died. */
export function isFatal(err: unknown): boolean {
  return err instanceof FencedError || err instanceof InjectedCrashError || err instanceof DbClosedError;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Store outages are reported once per state change by the store's health tracker (see
 * store/health.ts), so the retries they cause log at debug only; anything else stays a warning.
 */
export function logRetry(log: Logger | undefined, err: unknown, fields: Record<string, unknown>, msg: string): void {
  if (isStoreUnavailable(err)) log?.debug({ err, ...fields }, msg);
  else log?.warn({ err, ...fields }, msg);
}
