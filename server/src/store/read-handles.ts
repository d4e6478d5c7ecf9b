/**
 * An LRU of open read-only file handles for the local-directory store's ranged reads of
 * immutable objects. Bounded in count; a handle in use by a read is closed only once that read
 * releases it (eviction or invalidation just takes it out of the cache). Invalidation (the key
 * was written or deleted through the store) also detaches an open in progress, so that a read
 * starting after the write never gets a handle on the old file.
 */
import type { FileHandle } from "node:fs/promises";
import { LRUCache } from "lru-cache";

export interface OpenedFile {
  fh: FileHandle;
  size: number;
}

export interface Lease {
  readonly fh: FileHandle;
  readonly size: number;
  release(): void;
}

class Entry {
  refs = 0;
  cached = true;
  readonly file: OpenedFile;
  constructor(file: OpenedFile) {
    this.file = file;
  }

  lease(): Lease {
    this.refs++;
    let released = false;
    return {
      fh: this.file.fh,
      size: this.file.size,
      release: () => {
        if (released) return;
        released = true;
        this.refs--;
        this.closeIfUnused();
      },
    };
  }

  detach(): void {
    this.cached = false;
    this.closeIfUnused();
  }

  private closeIfUnused(): void {
    // A close failure of a read-only descriptor loses nothing; there is no one to tell.
    if (!this.cached && this.refs === 0) this.file.fh.close().catch(() => undefined);
  }
}

export class ReadHandleCache {
  private readonly lru: LRUCache<string, Entry>;
  /** Opens in progress; an invalidated one is removed so later reads open afresh. */
  private readonly opening = new Map<string, Promise<Entry>>();
  /** Opens that were invalidated while in progress: their handle serves only their own callers. */
  private readonly staleOpens = new WeakSet<Promise<Entry>>();
  private closed = false;

  constructor(maxOpen: number) {
    if (!Number.isSafeInteger(maxOpen) || maxOpen < 1) throw new RangeError(`maxOpen must be a positive integer, got ${maxOpen}`);
    this.lru = new LRUCache<string, Entry>({ max: maxOpen, dispose: (e) => e.detach() });
  }

  /** Handles held by the cache now. */
  get size(): number {
    return this.lru.size;
  }

  /** A handle on `key`'s file: cached, joined from an open in progress, or opened by `open`. */
  async acquire(key: string, open: () => Promise<OpenedFile>): Promise<Lease> {
    const hit = this.lru.get(key);
    if (hit) return hit.lease();
    let pending = this.opening.get(key);
    if (!pending) {
      const p: Promise<Entry> = open().then(
        (file) => {
          if (this.opening.get(key) === p) this.opening.delete(key);
          const e = new Entry(file);
          if (this.closed || this.staleOpens.has(p)) e.cached = false;
          else this.lru.set(key, e);
          return e;
        },
        (err: unknown) => {
          if (this.opening.get(key) === p) this.opening.delete(key);
          throw err;
        },
      );
      this.opening.set(key, p);
      pending = p;
    }
    const e = await pending;
    const lease = e.lease();
    // An uncached entry (stale or closed) is closed when its last lease is released; when this
    // was its only caller, that is now. (`detach` is idempotent in effect.)
    if (!e.cached) e.detach();
    return lease;
  }

  /** The key's file was replaced or deleted: forget its handle and any open in progress. */
  invalidate(key: string): void {
    const p = this.opening.get(key);
    if (p) {
      this.staleOpens.add(p);
      this.opening.delete(key);
    }
    this.lru.delete(key);
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    for (const p of this.opening.values()) this.staleOpens.add(p);
    this.opening.clear();
    this.lru.clear();
  }
}
