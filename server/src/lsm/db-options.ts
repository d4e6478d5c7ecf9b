/** The options of a Db (lsm/db.ts), their defaults, and the shapes its API takes and returns. */
import type { Logger } from "pino";
import type { CryptoWorkers } from "../crypto/crypto-workers.ts";
import type { Sealer } from "../crypto/sealer.ts";

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
   * per round instead of splitting into two alternating halves. Capped at a quarter of the
   * store's recent PUT time (one event-loop turn on a fast local disk). 0 turns it off.
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
