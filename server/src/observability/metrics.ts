import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { StoreOp } from "../store/errors.ts";
import type { StoreObserver } from "../store/instrumented-store.ts";

/** Every store operation (a Record, so that a new StoreOp fails to compile until listed). */
const STORE_OPS = Object.keys({ get: 0, put: 0, putIfAbsent: 0, putIfMatch: 0, head: 0, list: 0, delete: 0 } satisfies Record<StoreOp, 0>) as StoreOp[];
/** What the quota gauges need of one claim directory (fs ClaimInfo). */
export interface ClaimStat {
  name: string;
  quota: { bytes: number | null; inodes: number | null };
  usage: { bytes: number; inodes: number };
}

/** Seconds buckets from 50 µs to 10 s: NFS calls span cached GETATTRs to S3 round trips. */
const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

const ratio = (s: { hits: number; misses: number }): number => (s.hits + s.misses === 0 ? 0 : s.hits / (s.hits + s.misses));

/** The server's Prometheus metrics; names are stable (dashboards depend on them). */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly rpcRequests = new Counter({
    name: "zerofs_rpc_requests_total",
    help: "RPC requests by program, procedure and status",
    labelNames: ["program", "procedure", "status"] as const,
    registers: [this.registry],
  });
  readonly rpcDuration = new Histogram({
    name: "zerofs_rpc_request_duration_seconds",
    help: "RPC request latency by procedure",
    labelNames: ["program", "procedure"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly bytesRead = new Counter({ name: "zerofs_nfs_read_bytes_total", help: "file bytes returned by READ", registers: [this.registry] });
  readonly bytesWritten = new Counter({ name: "zerofs_nfs_written_bytes_total", help: "file bytes accepted by WRITE", registers: [this.registry] });
  readonly storeRequests = new Counter({
    name: "zerofs_store_requests_total",
    help: "object store requests by operation and outcome",
    labelNames: ["op", "outcome"] as const,
    registers: [this.registry],
  });
  readonly storeDuration = new Histogram({
    name: "zerofs_store_request_duration_seconds",
    help: "object store request latency by operation",
    labelNames: ["op"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly storeBytes = new Counter({ name: "zerofs_store_bytes_total", help: "bytes moved to and from the object store", labelNames: ["op"] as const, registers: [this.registry] });
  readonly walFlushDuration = new Histogram({
    name: "zerofs_wal_flush_duration_seconds",
    help: "time to make a WAL object durable (group commit)",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  /** Claim directories with their quotas (set by the server); listed once per scrape. */
  claimStats: () => Promise<ClaimStat[]> = () => Promise.resolve([]);
  private claimScrape: { at: number; list: Promise<ClaimStat[]> } | undefined;
  private claims(): Promise<ClaimStat[]> {
    const now = Date.now();
    if (!this.claimScrape || now - this.claimScrape.at > 1000) this.claimScrape = { at: now, list: this.claimStats().catch(() => []) };
    return this.claimScrape.list;
  }
  private quotaGauge(name: string, help: string, value: (c: ClaimStat) => number | null): Gauge<"directory"> {
    const g: Gauge<"directory"> = new Gauge({
      name,
      help,
      labelNames: ["directory"] as const,
      registers: [this.registry],
      collect: async (): Promise<void> => {
        g.reset();
        for (const c of await this.claims()) {
          const v = value(c);
          if (v !== null) g.set({ directory: c.name }, v);
        }
      },
    });
    return g;
  }
  readonly quotaUsedBytes = this.quotaGauge("zerofs_quota_used_bytes", "bytes used by a claim directory (apparent sizes of its files and symlinks)", (c) => c.usage.bytes);
  readonly quotaUsedInodes = this.quotaGauge("zerofs_quota_used_inodes", "inodes used by a claim directory (itself included)", (c) => c.usage.inodes);
  readonly quotaLimitBytes = this.quotaGauge("zerofs_quota_limit_bytes", "byte limit of a claim directory (absent when unlimited)", (c) => c.quota.bytes);
  readonly quotaLimitInodes = this.quotaGauge("zerofs_quota_limit_inodes", "inode limit of a claim directory (absent when unlimited)", (c) => c.quota.inodes);
  /** Set by the server once the engine is open; read at scrape time. */
  cacheStats: () => { block: { hits: number; misses: number }; disk?: { hits: number; misses: number } } = () => ({ block: { hits: 0, misses: 0 } });
  readonly blockCacheHitRatio: Gauge = new Gauge({
    name: "zerofs_block_cache_hit_ratio",
    help: "block cache hits / lookups since start",
    registers: [this.registry],
    collect: (): void => this.blockCacheHitRatio.set(ratio(this.cacheStats().block)),
  });
  readonly diskCacheHitRatio: Gauge = new Gauge({
    name: "zerofs_disk_cache_hit_ratio",
    help: "on-disk cache hits / lookups since start",
    registers: [this.registry],
    collect: (): void => this.diskCacheHitRatio.set(ratio(this.cacheStats().disk ?? { hits: 0, misses: 0 })),
  });
  /** Set by the server once the engine is open: budget and use of the in-memory caches. */
  memoryCache: () => { block: { bytes: number; maxBytes: number }; extent: { bytes: number; maxBytes: number } } = () => ({ block: { bytes: 0, maxBytes: 0 }, extent: { bytes: 0, maxBytes: 0 } });
  readonly memoryCacheLimit: Gauge = new Gauge({
    name: "zerofs_memory_cache_limit_bytes",
    help: "budget of an in-memory cache (ZEROFS_MEMORY_CACHE_MB split): cache=block (SST blocks, metadata) or extent (file data)",
    labelNames: ["cache"] as const,
    registers: [this.registry],
    collect: (): void => {
      const m = this.memoryCache();
      this.memoryCacheLimit.set({ cache: "block" }, m.block.maxBytes);
      this.memoryCacheLimit.set({ cache: "extent" }, m.extent.maxBytes);
    },
  });
  readonly memoryCacheUsed: Gauge = new Gauge({
    name: "zerofs_memory_cache_used_bytes",
    help: "bytes an in-memory cache holds now: cache=block (SST blocks, metadata) or extent (file data)",
    labelNames: ["cache"] as const,
    registers: [this.registry],
    collect: (): void => {
      const m = this.memoryCache();
      this.memoryCacheUsed.set({ cache: "block" }, m.block.bytes);
      this.memoryCacheUsed.set({ cache: "extent" }, m.extent.bytes);
    },
  });
  /** Set by the server once the RPC server exists; read at scrape time. */
  rpcState: () => { connections: number; buffered: { request: number; reply: number }; budget: number } = () => ({ connections: 0, buffered: { request: 0, reply: 0 }, budget: 0 });
  readonly connectionsOpen: Gauge = new Gauge({
    name: "zerofs_rpc_connections_open",
    help: "NFS/RPC connections open now",
    registers: [this.registry],
    collect: (): void => this.connectionsOpen.set(this.rpcState().connections),
  });
  readonly connectionsRejected = new Counter({
    name: "zerofs_rpc_connections_rejected_total",
    help: "connections refused at accept: policy (export CIDRs), limit (max connections, none idle), shutdown",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly connectionsClosed = new Counter({
    name: "zerofs_rpc_connections_closed_total",
    help: "connections closed, by reason: peer, idle, record_timeout, stalled, evicted, protocol, shutdown, error",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly bufferedBytes: Gauge = new Gauge({
    name: "zerofs_rpc_buffered_bytes",
    help: "request and reply bytes buffered by the RPC server now (kind=request|reply)",
    labelNames: ["kind"] as const,
    registers: [this.registry],
    collect: (): void => {
      const b = this.rpcState().buffered;
      this.bufferedBytes.set({ kind: "request" }, b.request);
      this.bufferedBytes.set({ kind: "reply" }, b.reply);
    },
  });
  readonly bufferBudget: Gauge = new Gauge({
    name: "zerofs_rpc_buffer_budget_bytes",
    help: "the server-wide budget of buffered bytes (ZEROFS_MAX_BUFFERED_BYTES)",
    registers: [this.registry],
    collect: (): void => this.bufferBudget.set(this.rpcState().budget),
  });
  readonly ready = new Gauge({ name: "zerofs_ready", help: "1 when the server accepts NFS requests", registers: [this.registry] });
  /** Set by the server once the engine is open; read at scrape time. */
  fenced: () => boolean = () => false;
  readonly writerFenced: Gauge = new Gauge({
    name: "zerofs_writer_fenced",
    help: "1 once another server opened this volume and fenced this one out (it writes nothing more; restart it or stop the other)",
    registers: [this.registry],
    collect: (): void => this.writerFenced.set(this.fenced() ? 1 : 0),
  });
  /** Set by the server once the engine is open: the on-disk cache's use and budget (0 and 0 without one). */
  diskCache: () => { bytes: number; maxBytes: number } = () => ({ bytes: 0, maxBytes: 0 });
  readonly diskCacheUsed: Gauge = new Gauge({
    name: "zerofs_disk_cache_used_bytes",
    help: "bytes the on-disk cache (SLATEDB_CACHE_DIR) holds now, files being written included",
    registers: [this.registry],
    collect: (): void => this.diskCacheUsed.set(this.diskCache().bytes),
  });
  readonly diskCacheLimit: Gauge = new Gauge({
    name: "zerofs_disk_cache_limit_bytes",
    help: "budget of the on-disk cache (SLATEDB_CACHE_SIZE_GB); 0 without an on-disk cache",
    registers: [this.registry],
    collect: (): void => this.diskCacheLimit.set(this.diskCache().maxBytes),
  });
  readonly storeDegraded = new Gauge({
    name: "zerofs_store_degraded",
    help: "1 while the object store is failing or not answering within its deadline (the server still answers from cache)",
    registers: [this.registry],
  });
  readonly storeTimeouts = new Counter({
    name: "zerofs_store_request_timeouts_total",
    help: "object store requests abandoned at their deadline (stalls), by operation",
    labelNames: ["op"] as const,
    registers: [this.registry],
  });
  readonly storeThrottled = new Counter({
    name: "zerofs_store_throttled_total",
    help: "object store attempts refused for the request rate (S3 503 SlowDown, 429), retried ones included",
    registers: [this.registry],
  });
  readonly storeOutages = new Counter({ name: "zerofs_store_outages_total", help: "times the object store became degraded", registers: [this.registry] });
  /** Set by the server once the filesystem is open; read at scrape time (layout-2 file data). */
  dataStats: () => DataStats = () => EMPTY_DATA_STATS;
  readonly extentCacheHitRatio: Gauge = new Gauge({
    name: "zerofs_extent_cache_hit_ratio",
    help: "file data (extent) cache hits / lookups since start",
    registers: [this.registry],
    collect: (): void => this.extentCacheHitRatio.set(ratio(this.dataStats().extentCache)),
  });
  readonly segmentsWritten: Counter = new Counter({
    name: "zerofs_segments_written_total",
    help: "segment objects (file data) uploaded",
    registers: [this.registry],
    collect: (): void => syncCounter(this.segmentsWritten, this.dataStats().segmentsWritten),
  });
  readonly segmentBytesWritten: Counter = new Counter({
    name: "zerofs_segment_written_bytes_total",
    help: "bytes of segment objects (file data) uploaded",
    registers: [this.registry],
    collect: (): void => syncCounter(this.segmentBytesWritten, this.dataStats().segmentBytesWritten),
  });
  readonly segmentStoredBytes: Gauge = new Gauge({
    name: "zerofs_segment_stored_bytes",
    help: "bytes of all segment objects, as of the last segment GC pass",
    registers: [this.registry],
    collect: (): void => this.segmentStoredBytes.set(this.dataStats().gc.storedBytes),
  });
  readonly segmentLiveBytes: Gauge = new Gauge({
    name: "zerofs_segment_live_bytes",
    help: "estimated bytes of segment objects still referenced by files, as of the last segment GC pass",
    registers: [this.registry],
    collect: (): void => this.segmentLiveBytes.set(this.dataStats().gc.liveBytes),
  });
  readonly spaceAmplification: Gauge = new Gauge({
    name: "zerofs_segment_space_amplification",
    help: "segment bytes stored / live bytes, as of the last segment GC pass (1 = no garbage)",
    registers: [this.registry],
    collect: (): void => {
      const g = this.dataStats().gc;
      this.spaceAmplification.set(g.liveBytes > 0 ? g.storedBytes / g.liveBytes : 1);
    },
  });
  readonly gcDeletedBytes: Counter = new Counter({
    name: "zerofs_segment_gc_deleted_bytes_total",
    help: "bytes of segment objects deleted by the segment GC",
    registers: [this.registry],
    collect: (): void => syncCounter(this.gcDeletedBytes, this.dataStats().gc.deletedBytes),
  });
  readonly gcRewrittenBytes: Counter = new Counter({
    name: "zerofs_segment_gc_rewritten_bytes_total",
    help: "live file bytes moved out of sparse or small segments by the segment GC",
    registers: [this.registry],
    collect: (): void => syncCounter(this.gcRewrittenBytes, this.dataStats().gc.rewrittenBytes),
  });

  constructor() {
    // Exists at 0 from the start: rate() and increase() (the chart's stall alert) cannot see a
    // series' first sample, and dashboards show 0 rather than "no data".
    for (const op of STORE_OPS) this.storeTimeouts.inc({ op }, 0);
    collectDefaultMetrics({ register: this.registry });
  }

  readonly storeObserver: StoreObserver = {
    request: (op, seconds, ok, bytes) => {
      this.storeRequests.inc({ op, outcome: ok ? "ok" : "error" });
      this.storeDuration.observe({ op }, seconds);
      if (bytes > 0) this.storeBytes.inc({ op }, bytes);
    },
  };
}

export interface DataStats {
  extentCache: { hits: number; misses: number };
  segmentsWritten: number;
  segmentBytesWritten: number;
  gc: { storedBytes: number; liveBytes: number; deletedBytes: number; rewrittenBytes: number };
}

const EMPTY_DATA_STATS: DataStats = {
  extentCache: { hits: 0, misses: 0 },
  segmentsWritten: 0,
  segmentBytesWritten: 0,
  gc: { storedBytes: 0, liveBytes: 0, deletedBytes: 0, rewrittenBytes: 0 },
};

const synced = new WeakMap<Counter, number>();

/** Brings a counter up to a running total kept elsewhere (the engine's own statistics). */
function syncCounter(c: Counter, total: number): void {
  const prev = synced.get(c) ?? 0;
  if (total > prev) {
    c.inc(total - prev);
    synced.set(c, total);
  }
}
