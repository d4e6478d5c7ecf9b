import type { Sealer } from "../crypto/sealer.ts";
import { InjectedCrashError, PreconditionFailedError } from "../store/errors.ts";
import type { ObjectStore } from "../store/object-store.ts";
import { FencedError } from "./errors.ts";
import { walKey } from "./object-names.ts";
import { sealWal } from "./wal-format.ts";

/**
 * Group commit into WAL objects.
 *
 * Batches accumulate in an open segment; a segment is closed by the flush timer, by an explicit
 * flush, when it grows past `maxSegmentBytes`, or by `cut()` (the memtable boundary: one WAL
 * object never holds batches of two memtables, so "WAL ids ≤ N are in SSTs" is exact).
 * Closed segments are uploaded one at a time in order with put-if-absent under consecutive
 * ids; while one upload is in flight, later segments that are not separated by a cut are merged
 * so that concurrent waiters share one PUT. A put-if-absent that loses means another writer owns
 * the store: the writer is fenced and never acknowledges anything again.
 */
export interface WalWriterOptions {
  flushIntervalMs: number;
  maxSegmentBytes: number;
  /** Checks that this writer still owns the store (used after long idle periods). */
  verifyOwnership: () => Promise<void>;
  /** Idle time after which ownership is re-verified before the next WAL write. */
  ownershipCheckMs: number;
  onError?: (err: unknown, context: { objectKey: string; attempt: number }) => void;
  /** Called when a WAL object is durable: seconds from sealing start to the store's ack. */
  onDurable?: (seconds: number, bytes: number) => void;
}

interface Segment {
  parts: Buffer[];
  bytes: number;
  batches: number;
  /** Resolves with the WAL id once durable. */
  done: Promise<number>;
  resolve: (id: number) => void;
  reject: (err: unknown) => void;
  /** A memtable boundary follows this segment: never merge the next one into it. */
  boundary: boolean;
}

function newSegment(): Segment {
  let resolve!: (id: number) => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<number>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting (non-durable writes); the failure is still reported via `failed`.
  done.catch(() => undefined);
  return { parts: [], bytes: 0, batches: 0, done, resolve, reject, boundary: false };
}

export class WalWriter {
  private current: Segment = newSegment();
  private readonly queue: Segment[] = [];
  private uploading = false;
  private timer: NodeJS.Timeout | undefined;
  private nextId: number;
  private lastDurableId: number;
  private lastOwnershipProof = Date.now();
  /** Set once the writer can no longer make anything durable (fenced, crashed, closed). */
  failed: Error | undefined;
  /** Bytes and objects written, for metrics and the benchmark. */
  readonly stats = { objects: 0, bytes: 0, batches: 0 };
  private readonly store: ObjectStore;
  private readonly sealer: Sealer;
  private readonly epoch: number;
  private readonly opts: WalWriterOptions;

  constructor(store: ObjectStore, sealer: Sealer, epoch: number, nextId: number, opts: WalWriterOptions) {
    this.store = store;
    this.sealer = sealer;
    this.epoch = epoch;
    this.nextId = nextId;
    this.lastDurableId = nextId - 1;
    this.opts = opts;
  }

  /** Id of the newest WAL object known to be in the store. */
  get durableId(): number {
    return this.lastDurableId;
  }

  /**
   * Adds an encoded batch; the promise resolves once it is durable. An `urgent` batch (someone
   * waits for it) is uploaded as soon as the store is free instead of at the next interval:
   * batches arriving while a PUT is in flight ride along in the next one (group commit).
   */
  append(parts: Buffer[], bytes: number, urgent = false): Promise<number> {
    if (this.failed) return Promise.reject(this.failed);
    const seg = this.current;
    for (const p of parts) seg.parts.push(p);
    seg.bytes += bytes;
    seg.batches++;
    if (seg.bytes >= this.opts.maxSegmentBytes || (urgent && !this.uploading)) this.closeCurrent(false);
    else if (urgent) this.flushAfterUpload = true;
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.closeCurrent(false);
      }, this.opts.flushIntervalMs);
    }
    return seg.done;
  }

  /**
   * Closes the open segment at a memtable boundary. Resolves with the id of the last WAL object
   * holding anything appended so far, once it is durable.
   */
  cut(): Promise<number> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.current.batches === 0) {
      const last = this.queue[this.queue.length - 1];
      if (last) {
        last.boundary = true;
        return last.done;
      }
      return this.inFlight ?? Promise.resolve(this.lastDurableId);
    }
    const seg = this.current;
    this.closeCurrent(true);
    return seg.done;
  }

  /** Makes everything appended so far durable. */
  async flush(): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.current.batches > 0) this.closeCurrent(false);
    const last = this.queue[this.queue.length - 1];
    if (last) await last.done;
    else if (this.inFlight) await this.inFlight;
  }

  /** Stops the timer; pending segments fail with `reason`. */
  abort(reason: Error): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.fail(reason);
  }

  private inFlight: Promise<number> | undefined;
  private flushAfterUpload = false;

  private closeCurrent(boundary: boolean): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const seg = this.current;
    if (seg.batches === 0) return;
    seg.boundary = boundary;
    this.current = newSegment();
    this.queue.push(seg);
    if (!this.uploading) void this.uploadLoop();
  }

  private async uploadLoop(): Promise<void> {
    this.uploading = true;
    try {
      while (this.queue.length > 0 && !this.failed) {
        const seg = this.queue.shift()!;
        // Group commit: fold queued segments into this upload until a memtable boundary.
        const merged: Segment[] = [];
        while (!seg.boundary && this.queue.length > 0) {
          const next = this.queue.shift()!;
          for (const p of next.parts) seg.parts.push(p);
          seg.bytes += next.bytes;
          seg.batches += next.batches;
          seg.boundary = next.boundary;
          merged.push(next);
        }
        const id = this.nextId;
        this.inFlight = seg.done;
        try {
          await this.upload(id, seg);
        } catch (err) {
          const e = err instanceof Error ? err : new Error(String(err));
          seg.reject(e);
          for (const m of merged) m.reject(e);
          this.fail(e);
          return;
        }
        this.nextId = id + 1;
        this.lastDurableId = id;
        this.stats.objects++;
        this.stats.batches += seg.batches;
        seg.resolve(id);
        for (const m of merged) m.resolve(id);
        if (this.flushAfterUpload && this.queue.length === 0) {
          this.flushAfterUpload = false;
          this.closeCurrent(false);
        }
      }
    } finally {
      this.uploading = false;
      this.inFlight = undefined;
    }
  }

  private async upload(id: number, seg: Segment): Promise<void> {
    const start = performance.now();
    await this.uploadOnce(id, seg);
    this.opts.onDurable?.((performance.now() - start) / 1000, seg.bytes);
  }

  private async uploadOnce(id: number, seg: Segment): Promise<void> {
    const key = walKey(id);
    const body = await sealWal(key, this.epoch, seg.batches, seg.parts, seg.bytes, this.sealer);
    this.stats.bytes += body.length;
    if (Date.now() - this.lastOwnershipProof > this.opts.ownershipCheckMs) {
      // After a long idle period the WAL id we are about to use may have been garbage
      // collected by a newer writer, so put-if-absent alone would not detect fencing.
      await this.opts.verifyOwnership();
    }
    for (let attempt = 1; ; attempt++) {
      if (this.failed) throw this.failed;
      try {
        await this.store.putIfAbsent(key, body);
        this.lastOwnershipProof = Date.now();
        return;
      } catch (err) {
        if (err instanceof PreconditionFailedError) {
          // Either an earlier attempt of ours landed and its reply was lost, or another
          // writer took this id. Random nonces make our body unique, so compare bytes.
          const existing = await this.store.get(key).catch(() => undefined);
          if (existing?.equals(body)) return;
          throw new FencedError(`WAL object ${key} was written by another writer (this writer's epoch ${this.epoch})`, { cause: err });
        }
        if (err instanceof InjectedCrashError) throw err;
        this.opts.onError?.(err, { objectKey: key, attempt });
        await new Promise((r) => setTimeout(r, Math.min(5000, 50 * 2 ** Math.min(attempt, 7))));
      }
    }
  }

  private fail(err: Error): void {
    if (!this.failed) this.failed = err;
    for (const seg of this.queue.splice(0)) seg.reject(err);
    if (this.current.batches > 0) this.current.reject(err);
    this.current = newSegment();
  }
}
