/**
 * Assembles a running ZeroFS server from a validated configuration: store → engine → filesystem
 * → NFSv3/MOUNT/PORTMAP on one port, plus the metrics/health endpoint. `main.ts` is the CLI
 * around it; tests and benchmarks start servers in-process with it too.
 */
import { BlockList, isIPv4 } from "node:net";
import type { Server as HttpServer } from "node:http";
import type { Logger } from "pino";
import type { Config } from "./config/config.ts";
import { adminApi } from "./admin/admin-api.ts";
import { ClaimDirectories, FileType, isFsError, ROOT, ZeroFs, type Attrs } from "./fs/index.ts";
import { FencedError, FlushIncompleteError, type Unflushed } from "./lsm/errors.ts";
import { openDatabase, type OpenDatabase } from "./lsm/open-database.ts";
import { callLabels } from "./nfs/call-labels.ts";
import { mountProgram } from "./nfs/mount.ts";
import { nfs3Program } from "./nfs/nfs3-dispatch.ts";
import { portmapProgram } from "./nfs/portmap.ts";
import { RpcServer } from "./nfs/rpc-server.ts";
import { ZeroFsNfs3Handler } from "./nfs/zerofs-handler.ts";
import { startHttpEndpoint } from "./observability/http-endpoint.ts";
import { ServerMetrics } from "./observability/metrics.ts";
import type { OpenStoreOptions } from "./store/index.ts";
import { DiskCacheStore } from "./store/disk-cache-store.ts";
import { isStoreUnavailable } from "./store/errors.ts";
import { GuardedStore } from "./store/guarded-store.ts";
import { StoreHealth } from "./store/health.ts";
import { InstrumentedStore } from "./store/instrumented-store.ts";
import type { DbOptions } from "./lsm/db.ts";
import { defaultCryptoThreads } from "./config/cpu.ts";
import { containerMemoryLimit, memoryCacheBudget } from "./config/memory.ts";

export interface RunningServer {
  readonly nfsPort: number;
  readonly httpPort: number | undefined;
  readonly fs: ZeroFs;
  readonly metrics: ServerMetrics;
  /** The object store's health (degraded during an outage). */
  readonly storeHealth: StoreHealth;
  /**
   * Stops accepting, finishes in-flight requests, makes everything durable, closes. With a
   * deadline, gives up when it passes and throws ShutdownIncompleteError saying what was not
   * flushed (the store being unavailable is the usual reason).
   */
  close(opts?: { deadlineMs?: number }): Promise<void>;
}

/** A graceful stop reached its deadline before everything reached the store. */
export class ShutdownIncompleteError extends Error {
  readonly unflushed: Unflushed;
  constructor(deadlineMs: number, unflushed: Unflushed, store: string, options?: { cause?: unknown }) {
    const lost = unflushed.notDurableBatches > 0
      ? `${unflushed.notDurableBatches} buffered write batches (${unflushed.notDurableBytes} bytes) never reached the object store and are lost; ` +
        "none had been acknowledged as durable (acknowledged writes are already in the store, and NFS clients re-send uncommitted UNSTABLE writes when they see the new write verifier)"
      : "every acknowledged and every buffered write is durable in the WAL";
    super(
      `shutdown deadline of ${deadlineMs / 1000} s passed before the flush finished (${store}): ${lost}; ` +
        `${unflushed.memtableBytes} bytes of memtable were not flushed to SSTs and are replayed from the WAL at the next start`,
      options,
    );
    this.name = "ShutdownIncompleteError";
    this.unflushed = unflushed;
  }
}

export function storeOptions(config: Config): OpenStoreOptions {
  return {
    s3: {
      region: config.s3.region,
      allowHttp: config.s3.allowHttp,
      ...(config.s3.endpoint ? { endpoint: config.s3.endpoint } : {}),
      ...(config.s3.accessKeyId ? { accessKeyId: config.s3.accessKeyId } : {}),
      ...(config.s3.secretAccessKey ? { secretAccessKey: config.s3.secretAccessKey } : {}),
    },
  };
}

function withThrottleCount(o: OpenStoreOptions, onThrottled: () => void): OpenStoreOptions {
  return o.s3 ? { ...o, s3: { ...o.s3, onThrottled } } : o;
}

/** Allowed-client check from CIDRs (node's BlockList does the matching). */
export function clientFilter(cidrs: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr = "", bits] = c.split("/");
    const type = isIPv4(addr) ? "ipv4" : "ipv6";
    list.addSubnet(addr, bits === undefined ? (type === "ipv4" ? 32 : 128) : Number(bits), type);
  }
  return (address) => {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const a = mapped ? mapped[1]! : address;
    return list.check(a, isIPv4(a) ? "ipv4" : "ipv6");
  };
}

export async function startServer(config: Config, log: Logger, dbOptions: Partial<DbOptions> = {}): Promise<RunningServer> {
  const metrics = new ServerMetrics();
  let vol: OpenDatabase | undefined;
  let fs: ZeroFs | undefined;
  let rpc: RpcServer | undefined;
  let http: HttpServer | undefined;
  let ready = false;
  let stopping = false;
  let health: StoreHealth | undefined;
  const cacheBudget = memoryCacheBudget(config.memoryCacheBytes, containerMemoryLimit());
  if (cacheBudget.warning !== undefined) log.warn({ memoryCacheBytes: cacheBudget.totalBytes, containerLimitBytes: cacheBudget.containerLimitBytes }, cacheBudget.warning);
  const mib = (n: number): number => Math.round(n / 2 ** 20);
  log.info(
    { memoryCacheMiB: mib(cacheBudget.totalBytes), blockCacheMiB: mib(cacheBudget.blockCacheBytes), extentCacheMiB: mib(cacheBudget.extentCacheBytes), source: cacheBudget.source, ...(cacheBudget.containerLimitBytes !== undefined ? { containerLimitMiB: mib(cacheBudget.containerLimitBytes) } : {}) },
    "memory cache budget",
  );
  try {
    vol = await openDatabase({
      url: config.url,
      password: config.password,
      store: withThrottleCount(storeOptions(config), () => metrics.storeThrottled.inc()),
      cache: { dir: config.cacheDir, maxBytes: config.cacheBytes },
      keyring: {
        create: !config.noCreate,
        // A mistyped location silently becomes a new empty volume otherwise: say it loudly.
        onCreate: (store) => log.warn({ url: config.url, store }, `initialized a NEW, EMPTY volume at ${config.url}: if a volume was expected there, check the location (ZEROFS_NO_CREATE=true refuses to create one)`),
      },
      // Deadlines and health tracking outermost, so that one guarded request (retries
      // included) is one deadline; each attempt is still counted by the instrumentation.
      wrapStore: (s) => {
        health = new StoreHealth({
          store: s.description,
          logger: log.child({ component: "store" }),
          onChange: (state) => {
            metrics.storeDegraded.set(state === "degraded" ? 1 : 0);
            if (state === "degraded") metrics.storeOutages.inc();
          },
          onTimeout: (op) => metrics.storeTimeouts.inc({ op }),
        });
        return new GuardedStore(new InstrumentedStore(s, metrics.storeObserver), { timeoutMs: config.storeTimeoutMs, health });
      },
      db: {
        logger: log.child({ component: "lsm" }),
        onWalFlush: (seconds) => metrics.walFlushDuration.observe(seconds),
        // A durable write may queue behind an upload in flight: two request deadlines.
        durableWaitMs: 2 * config.storeTimeoutMs,
        blockCacheBytes: cacheBudget.blockCacheBytes,
        extentCacheBytes: cacheBudget.extentCacheBytes,
        cryptoThreads: config.cryptoThreads ?? defaultCryptoThreads(),
        ...dbOptions,
      },
    });
    const storeHealth = health!;
    const storeDetail = (): string | undefined => {
      const h = storeHealth.status();
      return h.state === "degraded" ? `degraded: object store ${vol!.store.description} unavailable since ${h.since.toISOString()} (${h.reason ?? "failing"})` : undefined;
    };
    const db = vol.db;
    fs = await ZeroFs.open(db, {
      logger: log.child({ component: "fs" }),
      readOnly: config.readOnly,
      ...(config.capacityBytes !== undefined ? { capacityBytes: config.capacityBytes } : {}),
    });
    const zfs = fs;
    const handler = new ZeroFsNfs3Handler(zfs, {
      identity: { squash: config.squash, anonUid: config.anonUid, anonGid: config.anonGid },
      readOnly: config.readOnly,
      logger: log.child({ component: "nfs" }),
      onRead: (n) => metrics.bytesRead.inc(n),
      onWritten: (n) => metrics.bytesWritten.inc(n),
    });
    const server = new RpcServer({
      logger: log.child({ component: "rpc" }),
      allowClient: clientFilter(config.allowedClients),
      ...config.limits,
      insecure: config.insecure,
      hooks: {
        onConnection: (event, _addr, reason) => {
          if (event === "refused") metrics.connectionsRejected.inc({ reason: reason ?? "policy" });
          else if (event === "close") metrics.connectionsClosed.inc({ reason: reason ?? "peer" });
        },
        onCall: (ev) => {
          const { program, procedure } = callLabels(ev.prog, ev.proc);
          metrics.rpcRequests.inc({ program, procedure, status: ev.outcome });
          metrics.rpcDuration.observe({ program, procedure }, ev.durationMs / 1000);
        },
      },
    });
    rpc = server;
    metrics.rpcState = () => ({ connections: server.connectionCount, buffered: server.bufferedBytes, budget: server.budget.limit });
    server.register(portmapProgram({ port: () => server.port }));
    server.register(
      mountProgram(
        {
          exportPath: "/",
          rootHandle: () => zfs.rootHandle(),
          // Like mountd, resolve subdirectory mounts with root's view of the tree.
          subdirHandle: async (components) => {
            let ino = zfs.rootIno;
            let attrs: Attrs | undefined;
            for (const name of components) {
              try {
                attrs = (await zfs.lookup(ROOT, ino, name)).attrs;
              } catch (err) {
                if (isFsError(err)) return undefined;
                throw err;
              }
              ino = attrs.ino;
            }
            return attrs && attrs.type === FileType.DIR ? zfs.handleOf(attrs) : undefined;
          },
        },
        { logger: log.child({ component: "mount" }), groups: config.allowedClients },
      ),
    );
    server.register(nfs3Program(handler));
    const nfsPort = await server.listen(config.port, config.listen);
    let httpPort: number | undefined;
    const claims = new ClaimDirectories(zfs, config.claimsDir);
    metrics.claimStats = () => claims.list();
    const admin = config.adminTokenFile === undefined
      ? undefined
      : adminApi({
          claims,
          tokenFile: config.adminTokenFile,
          logger: log.child({ component: "admin" }),
          unavailable: () => (config.readOnly ? "the export is read-only" : db.isFenced ? "fenced: another server opened this volume" : storeDetail()),
        });
    if (config.httpPort !== 0) {
      http = await startHttpEndpoint(config.httpListen, config.httpPort, metrics.registry, {
        // A store outage fails neither: restarting the server cannot fix the store, and taking
        // it out of its Service would cut clients off the answers the cache can still give
        // (docs/DESIGN.md, "Object store outages"). It shows as a "degraded: ..." body instead.
        healthy: () => (db.isFenced ? { ok: false, reason: "fenced: another server opened this volume" } : withDetail({ ok: true }, storeDetail())),
        ready: () =>
          ready && !db.isFenced ? withDetail({ ok: true }, storeDetail()) : { ok: false, reason: db.isFenced ? "fenced" : stopping ? "stopping" : "starting" },
      }, log.child({ component: "http" }), clientFilter(config.httpAllowedClients), admin);
      const addr = http.address();
      httpPort = typeof addr === "object" && addr ? addr.port : undefined;
    }
    const diskCache = vol.store instanceof DiskCacheStore ? vol.store : undefined;
    metrics.cacheStats = () => ({
      block: db.stats().blockCache,
      ...(diskCache ? { disk: { hits: diskCache.stats.hits, misses: diskCache.stats.misses } } : {}),
    });
    metrics.fenced = () => db.isFenced;
    if (diskCache) metrics.diskCache = () => ({ bytes: diskCache.stats.bytes, maxBytes: config.cacheBytes });
    // Taken once: db.segments refuses once the engine failed (fenced), and /metrics must keep
    // answering then (zerofs_writer_fenced is what says so).
    const segments = db.segments;
    metrics.dataStats = () => {
      const seg = segments.stats();
      const gc = fs?.segmentGc?.stats;
      return {
        extentCache: { hits: seg.reader.hits, misses: seg.reader.misses },
        segmentsWritten: seg.writer.segments,
        segmentBytesWritten: seg.writer.bytes,
        gc: { storedBytes: gc?.storedBytes ?? 0, liveBytes: gc?.liveBytes ?? 0, deletedBytes: gc?.deletedBytes ?? 0, rewrittenBytes: gc?.rewrittenBytes ?? 0 },
      };
    };
    const extentCacheBytes = dbOptions.extentCacheBytes ?? cacheBudget.extentCacheBytes;
    metrics.memoryCache = () => {
      const bc = db.stats().blockCache;
      return { block: { bytes: bc.bytes, maxBytes: bc.maxBytes }, extent: { bytes: segments.stats().cachedBytes, maxBytes: extentCacheBytes } };
    };
    ready = true;
    metrics.ready.set(1);
    log.info(
      {
        nfsPort,
        httpPort,
        listen: config.listen,
        url: config.url,
        allowedClients: config.allowedClients,
        squash: config.squash,
        insecure: config.insecure,
        ...(httpPort !== undefined ? { httpListen: config.httpListen, httpAllowedClients: config.httpAllowedClients } : {}),
      },
      "zerofs serving",
    );
    const openVol = vol;
    let closing: Promise<void> | undefined;
    return {
      nfsPort,
      httpPort,
      fs: zfs,
      metrics,
      storeHealth,
      close(opts = {}) {
        closing ??= (async () => {
          ready = false;
          stopping = true;
          metrics.ready.set(0);
          const deadline = new AbortController();
          const timer = opts.deadlineMs === undefined ? undefined : setTimeout(() => deadline.abort(), opts.deadlineMs);
          try {
            // Past the deadline, requests still waiting on the store are left unanswered and
            // the engine reports what it could not flush.
            await untilAborted(server.close(), deadline.signal);
            try {
              await untilAborted(zfs.close(), deadline.signal);
            } catch (err) {
              // Its flush waited its durability bound; the engine's close below keeps trying
              // until the deadline and reports what it could not flush.
              if (!isStoreUnavailable(err)) throw err;
            }
            await openVol.close({ signal: deadline.signal });
          } catch (err) {
            if (err instanceof FlushIncompleteError) {
              const h = storeHealth.status();
              const store = h.state === "degraded" ? `object store unavailable since ${h.since.toISOString()}` : "the object store did not answer in time";
              throw new ShutdownIncompleteError(opts.deadlineMs ?? 0, err.unflushed, store, { cause: err });
            }
            throw err;
          } finally {
            clearTimeout(timer);
            await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
            // Anything still in flight is gone with the process; idle keep-alive sockets of the
            // HTTP endpoint must not hold it open.
            http?.closeAllConnections();
          }
          log.info("zerofs stopped; everything acknowledged is durable");
        })();
        return closing;
      },
    };
  } catch (err) {
    await rpc?.close().catch(() => undefined);
    await fs?.close().catch(() => undefined);
    await vol?.close().catch(() => undefined);
    http?.close();
    if (err instanceof FencedError) log.error({ err }, "another server owns this volume");
    throw err;
  }
}

function withDetail(check: { ok: true }, detail: string | undefined): { ok: true; detail?: string } {
  return detail === undefined ? check : { ...check, detail };
}

/** Resolves with `p`, or stops waiting (resolves undefined) once `signal` aborts. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  p.catch(() => undefined);
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = (): void => resolve(undefined);
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
