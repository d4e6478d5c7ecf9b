/**
 * Byte-budgeted LRU of decoded SST data: data blocks (`${objectKey}#${offset}`) and per-SST
 * handles — decoded footer + index + bloom (`${objectKey}#sst`). Each value is charged its
 * decoded size (`byteSize`). Loads are deduplicated: concurrent requests for a key that is
 * being fetched share one promise, so a block is fetched and decrypted once.
 */
import { LRUCache } from "lru-cache";

export interface Cacheable {
  /** Bytes charged against the cache budget. */
  readonly byteSize: number;
}

export interface BlockCacheStats {
  /** Demand lookups served from memory (including joins of an in-flight load). */
  hits: number;
  /** Demand lookups that started a load. */
  misses: number;
  /** Of the hits: joins of a load already in flight. */
  inflightJoins: number;
  /** Loads started by read-ahead (not counted as hits or misses). */
  prefetches: number;
}

export const DEFAULT_BLOCK_CACHE_BYTES = 64 * 1024 * 1024;

export function blockCacheKey(objectKey: string, offset: number): string {
  return `${objectKey}#${offset}`;
}

export function handleCacheKey(objectKey: string): string {
  return `${objectKey}#sst`;
}

export class BlockCache {
  private readonly lru: LRUCache<string, Cacheable>;
  private readonly inflight = new Map<string, Promise<Cacheable>>();
  readonly stats: BlockCacheStats = { hits: 0, misses: 0, inflightJoins: 0, prefetches: 0 };

  constructor(maxBytes: number = DEFAULT_BLOCK_CACHE_BYTES) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`BlockCache maxBytes must be a positive integer, got ${maxBytes}`);
    // Values larger than the whole budget are simply not retained (lru-cache's maxEntrySize
    // defaults to maxSize); they are still returned to the caller that loaded them.
    this.lru = new LRUCache<string, Cacheable>({ maxSize: maxBytes, sizeCalculation: (v) => Math.max(1, v.byteSize) });
  }

  /** Bytes currently charged. */
  get size(): number {
    return this.lru.calculatedSize;
  }

  get maxBytes(): number {
    return this.lru.maxSize;
  }

  /**
   * Synchronous lookup of a resident value (counts a hit when found, nothing otherwise).
   * The caller names the key, so it knows the value's type; keys are namespaced per kind.
   */
  peek<T extends Cacheable>(key: string): T | undefined {
    const v = this.lru.get(key);
    if (v !== undefined) this.stats.hits++;
    return v as T | undefined;
  }

  /**
   * Returns the resident value synchronously, or a promise of it: joining a load in flight, or
   * starting `load()`. Only successful loads are cached; a failed load is forgotten (the next
   * request retries) and its error goes to every waiter.
   */
  getOrLoad<T extends Cacheable>(key: string, load: () => Promise<T>): T | Promise<T> {
    const v = this.lru.get(key);
    if (v !== undefined) {
      this.stats.hits++;
      return v as T; // keys are namespaced per kind: the caller that names the key knows T
    }
    const pending = this.inflight.get(key);
    if (pending !== undefined) {
      this.stats.hits++;
      this.stats.inflightJoins++;
      return pending as Promise<T>;
    }
    this.stats.misses++;
    return this.startLoad(key, load);
  }

  /** True when `key` is resident or being loaded (does not touch recency or the stats). */
  has(key: string): boolean {
    return this.lru.has(key) || this.inflight.has(key);
  }

  /** Starts loading `key` in the background unless it is resident or in flight. */
  prefetch<T extends Cacheable>(key: string, load: () => Promise<T>): void {
    if (this.lru.has(key) || this.inflight.has(key)) return;
    this.stats.prefetches++;
    // Read-ahead nobody ends up waiting for must not become an unhandled rejection; a real
    // read of the block retries the load and reports the error.
    this.startLoad(key, load).catch(() => {});
  }

  private startLoad<T extends Cacheable>(key: string, load: () => Promise<T>): Promise<T> {
    let loading: Promise<T>;
    try {
      loading = load();
    } catch (err) {
      loading = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const p = loading.then(
      (value) => {
        this.inflight.delete(key);
        this.lru.set(key, value);
        return value;
      },
      (err: unknown) => {
        this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  /** Drops everything cached for one object (e.g. after compaction deleted the SST). */
  evictObject(objectKey: string): void {
    const prefix = `${objectKey}#`;
    for (const k of [...this.lru.keys()]) if (k.startsWith(prefix)) this.lru.delete(k);
  }

  clear(): void {
    this.lru.clear();
  }
}
