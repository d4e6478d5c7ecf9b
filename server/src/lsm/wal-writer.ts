import type { Sealer } from "../crypto/sealer.ts";
import { InjectedCrashError, PreconditionFailedError } from "../store/errors.ts";
import type { ObjectStore } from "../store/object-store.ts";
import { FencedError } from "./errors.ts";
import { walKey } from "./object-names.ts";
import { sealWal, WAL_WINDOW, WalScratch } from "./wal-format.ts";

/**
 * Group commit into WAL objects.
 *
 * Batches accumulate in an open segment; a segment is closed by the flush timer, by an explicit
 * flush, when it grows past `maxSegmentBytes`, or by `cut()` (the memtable boundary: one WAL
 * object never holds batches of two memtables, so "WAL ids ≤ N are in SSTs" is exact).
 * Closed segments become uploads under consecutive ids, PUT with put-if-absent, up to
 * `maxInFlight` (≤ WAL_WINDOW, see wal-format.ts) at once: ids are assigned in order, and an
 * object is acknowledged (its batches' promises resolve, `durableId` advances) only once it
 * and every lower id are in the store, so a crash leaves at most a gap followed by objects
 * nobody was told about, which recovery discards. When all PUT slots are busy, small closed
 * segments that are not separated by a cut wait and are then merged (up to
 * `maxSegmentBytes`) so that concurrent waiters share one PUT. Each object still waits for the
 * segments its batches point into (`barrier`) before its own PUT. A put-if-absent that loses
 * means another writer owns the store: the writer is fenced and never acknowledges anything
 * again.
 *
 * Linger. With n committers in a closed loop (each waits for its commit, then commits again),
 * "start a PUT as soon as the store is free" settles into two alternating groups of n/2: the
 * group acknowledged by a landing PUT returns a moment later and finds the other half's PUT
 * already started. So when a PUT lands, the writer remembers how many committers it saw (those
 * it acknowledged plus those waiting) and, while the store is idle and fewer are waiting, holds
 * the next PUT for at most `lingerMs` until they are all back: one object per round of all n
 * instead of two, half the sealing and PUT work per commit, and no later for them (they would
 * have waited for the other half's PUT anyway). A lone committer never waits: it was the only
 * one seen. Each PUT lingers at most once, and not at all after an idle spell (the count is old).
 * It lingers at most a quarter of what a PUT takes (a running average of the last ones, from
 * forming the object to its landing): longer only adds latency, most of all when the event loop
 * is busy processing the very committers it waits for, whose PUT could have overlapped that work.
 * On a local disk (a WAL PUT ≈ 2 ms as the loop sees it) a fixed 2 ms held every round of 16
 * committers back: 10,000 REMOVEs over the wire took 4.9 s, 3.4 s with the cap; 10,000 small
 * files 7.9 s, 5.1 s (medians of 3, alternated, same CPU per op). Below a millisecond (the
 * timers' resolution) it waits one turn of the event loop, enough for the calls already
 * received to join; on S3 (PUTs of 10 ms and more) it keeps the full `lingerMs`.
 */
export interface WalWriterOptions {
  flushIntervalMs: number;
  maxSegmentBytes: number;
  /** WAL PUTs in flight at once (1..WAL_WINDOW; default WAL_WINDOW). */
  maxInFlight?: number;
  /**
   * Another PUT starts beside those in flight only once the oldest has been outstanding this
   * long (default 0). Below it, waiting batches gather into the next group commit, which costs
   * less than another request while the store answers quickly; a slow (remote) store gets the
   * parallel uploads.
   */
  parallelAfterMs?: number;
  /** Checks that this writer still owns the store (used after long idle periods). */
  verifyOwnership: () => Promise<void>;
  /** Idle time after which ownership is re-verified before the next WAL write. */
  ownershipCheckMs: number;
  onError?: (err: unknown, context: { objectKey: string; attempt: number }) => void;
  /** Called when a WAL object is durable: seconds from sealing start to the store's ack. */
  onDurable?: (seconds: number, bytes: number) => void;
  /**
   * Durability barrier for data kept outside the WAL (segments): `mark()` is taken when a WAL
   * object is formed, and `durableThrough(mark)` must resolve before its PUT, so nothing the
   * object's batches point to can be missing from the store once they are durable.
   */
  barrier?: { mark(): number; durableThrough(mark: number): Promise<void> };
  /** Longest wait for the committers of the previous round before a PUT starts (see Linger; 0 = never). */
  lingerMs?: number;
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

/** A WAL object on its way to the store: formed (id assigned, sealing started), then PUT. */
interface Upload {
  id: number;
  /** The first segment, with the merged ones' batches appended. */
  seg: Segment;
  merged: Segment[];
  body: Promise<Buffer>;
  sealStart: number;
  /** Barrier position when formed (see WalWriterOptions.barrier). */
  mark: number | undefined;
  /** In the store; acknowledged once every lower id is too. */
  landed: boolean;
  /** When its upload started (performance.now()). */
  startedAt: number;
}

export class WalWriter {
  private current: Segment = newSegment();
  /** Closed segments not yet formed into uploads. */
  private readonly queue: Segment[] = [];
  /** Formed, not yet acknowledged uploads in id order (being sealed, PUT, or landed early). */
  private readonly pipeline: Upload[] = [];
  private readonly maxInFlight: number;
  private ownershipCheck: Promise<void> | undefined;
  private readonly parallelAfterMs: number;
  private parallelTimer: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Id of the next upload to form. */
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
  /** Plaintext buffers of finished seals, reused by the next ones. */
  private readonly scratches: WalScratch[] = [];
  private flushAfterUpload = false;
  /** Committers seen at the last landing (segments acknowledged + segments waiting): see Linger. */
  private committers = 0;
  private lastLandingAt = -Infinity;
  private lingerTimer: { cancel(): void } | undefined;
  /** Running average of WAL PUT durations (ms), from forming an object to its landing. */
  private putMs: number | undefined;
  /** The next PUT has lingered already: it starts now. */
  private lingerDone = false;

  constructor(store: ObjectStore, sealer: Sealer, epoch: number, nextId: number, opts: WalWriterOptions) {
    this.store = store;
    this.sealer = sealer;
    this.epoch = epoch;
    this.nextId = nextId;
    this.lastDurableId = nextId - 1;
    this.opts = opts;
    this.maxInFlight = Math.max(1, Math.min(WAL_WINDOW, Math.floor(opts.maxInFlight ?? WAL_WINDOW)));
    this.parallelAfterMs = Math.max(0, opts.parallelAfterMs ?? 0);
  }

  /** Batches (and their bytes) appended but not yet known to be in the store. */
  get pending(): { batches: number; bytes: number } {
    let batches = this.current.batches;
    let bytes = this.current.bytes;
    for (const s of this.queue) {
      batches += s.batches;
      bytes += s.bytes;
    }
    // An upload's first segment already counts the segments merged into it.
    for (const up of this.pipeline) {
      batches += up.seg.batches;
      bytes += up.seg.bytes;
    }
    return { batches, bytes };
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
    if (seg.bytes >= this.opts.maxSegmentBytes || (urgent && this.canStartUpload())) this.closeCurrent(false);
    else if (urgent) {
      this.flushAfterUpload = true;
      this.armParallelTimer();
    }
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
      // A formed upload never takes more segments: it ends at a boundary already.
      const up = this.pipeline[this.pipeline.length - 1];
      return up ? up.seg.done : Promise.resolve(this.lastDurableId);
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
    else {
      const up = this.pipeline[this.pipeline.length - 1];
      if (up) await up.seg.done;
    }
  }

  /** Stops the timer; pending segments fail with `reason`. */
  abort(reason: Error): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.parallelTimer) clearTimeout(this.parallelTimer);
    this.parallelTimer = undefined;
    this.fail(reason);
  }

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
    this.pump();
  }

  /** Forms uploads from closed segments while a PUT slot is free, and starts their PUTs. */
  private pump(): void {
    while (!this.failed && this.queue.length > 0 && this.canStartUpload()) {
      if (this.shouldLinger()) {
        this.lingerTimer ??= this.startLinger();
        break;
      }
      this.stopLinger();
      this.lingerDone = false;
      const up = this.form();
      this.pipeline.push(up);
      void this.upload(up);
    }
    this.armParallelTimer();
  }

  /** The store is idle, but fewer committers wait than the last round had: hold the PUT (see Linger). */
  private shouldLinger(): boolean {
    const lingerMs = this.opts.lingerMs ?? 0;
    if (lingerMs <= 0 || this.lingerDone || this.pipeline.length > 0 || this.queue.length >= this.committers) return false;
    // After an idle spell the count is stale: whoever comes first goes at once.
    if (performance.now() - this.lastLandingAt > 10 * lingerMs) return false;
    let bytes = 0;
    for (const seg of this.queue) {
      // A memtable boundary ends the object anyway; a full object gains nothing by waiting.
      if (seg.boundary) return false;
      bytes += seg.bytes;
    }
    return bytes < this.opts.maxSegmentBytes;
  }

  private startLinger(): { cancel(): void } {
    const wake = (): void => {
      this.lingerTimer = undefined;
      this.lingerDone = true;
      this.pump();
    };
    const ms = Math.min(this.opts.lingerMs ?? 0, (this.putMs ?? Infinity) / 4);
    if (ms < 1) {
      const t = setImmediate(wake);
      return { cancel: () => clearImmediate(t) };
    }
    const t = setTimeout(wake, ms);
    return { cancel: () => clearTimeout(t) };
  }

  private stopLinger(): void {
    this.lingerTimer?.cancel();
    this.lingerTimer = undefined;
  }

  /** Batches wait for a PUT slot: look again when the oldest PUT in flight turns slow. */
  private armParallelTimer(): void {
    const waiting = this.queue.length > 0 || (this.flushAfterUpload && this.current.batches > 0);
    if (this.failed || !waiting || this.parallelTimer !== undefined || this.pipeline.length === 0 || this.pipeline.length >= this.maxInFlight) return;
    const wait = Math.max(1, this.pipeline[0]!.startedAt + this.parallelAfterMs - performance.now());
    this.parallelTimer = setTimeout(() => {
      this.parallelTimer = undefined;
      if (this.failed) return;
      if (this.flushAfterUpload && this.current.batches > 0 && this.queue.length === 0 && this.canStartUpload()) {
        this.flushAfterUpload = false;
        this.closeCurrent(false);
      } else this.pump();
    }, wait);
  }

  /** A PUT slot is free: none in flight, or fewer than the limit and the oldest is slow. */
  private canStartUpload(): boolean {
    const n = this.pipeline.length;
    if (n === 0) return true;
    return n < this.maxInFlight && performance.now() - this.pipeline[0]!.startedAt >= this.parallelAfterMs;
  }

  private async upload(up: Upload): Promise<void> {
    try {
      await this.put(up);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.failed) return; // aborted meanwhile: fail() has settled every waiter
    up.landed = true;
    const took = performance.now() - up.startedAt;
    this.putMs = this.putMs === undefined ? took : this.putMs + (took - this.putMs) / 8;
    this.stats.objects++;
    // Acknowledge in id order: an object is durable for its callers only once every lower id
    // is in the store too (recovery stops at the first gap).
    let acknowledged = 0;
    while (this.pipeline[0]?.landed) {
      const done = this.pipeline.shift()!;
      this.lastDurableId = done.id;
      this.stats.batches += done.seg.batches;
      done.seg.resolve(done.id);
      for (const m of done.merged) m.resolve(done.id);
      acknowledged += 1 + done.merged.length;
    }
    if (acknowledged > 0) {
      this.committers = acknowledged + this.queue.length + (this.flushAfterUpload && this.current.batches > 0 ? 1 : 0);
      this.lastLandingAt = performance.now();
    }
    if (this.flushAfterUpload && this.queue.length === 0) {
      this.flushAfterUpload = false;
      this.closeCurrent(false);
    }
    this.pump();
  }

  private form(): Upload {
    const seg = this.queue.shift()!;
    const merged: Segment[] = [];
    while (!seg.boundary && this.queue.length > 0 && seg.bytes + this.queue[0]!.bytes <= this.opts.maxSegmentBytes) {
      const next = this.queue.shift()!;
      for (const p of next.parts) seg.parts.push(p);
      seg.bytes += next.bytes;
      seg.batches += next.batches;
      seg.boundary = next.boundary;
      merged.push(next);
    }
    const id = this.nextId++;
    const mark = this.opts.barrier?.mark();
    const scratch = this.scratches.pop() ?? new WalScratch();
    const sealStart = performance.now();
    const body = (async () => {
      try {
        return await sealWal(walKey(id), this.epoch, seg.batches, seg.parts, seg.bytes, this.sealer, scratch);
      } finally {
        this.scratches.push(scratch);
      }
    })();
    // Awaited by the PUT loop, which reports a failure; never left unhandled meanwhile.
    body.catch(() => undefined);
    return { id, seg, merged, body, sealStart, mark, landed: false, startedAt: performance.now() };
  }

  private async put(up: Upload): Promise<void> {
    const key = walKey(up.id);
    if (up.mark !== undefined) await this.opts.barrier!.durableThrough(up.mark);
    const body = await up.body;
    this.stats.bytes += body.length;
    if (this.ownershipCheck || Date.now() - this.lastOwnershipProof > this.opts.ownershipCheckMs) {
      // After a long idle period the WAL id we are about to use may have been garbage
      // collected by a newer writer, so put-if-absent alone would not detect fencing. PUTs
      // started meanwhile share the one check.
      this.ownershipCheck ??= this.opts
        .verifyOwnership()
        .then(() => {
          this.lastOwnershipProof = Date.now();
        })
        .finally(() => {
          this.ownershipCheck = undefined;
        });
      await this.ownershipCheck;
    }
    for (let attempt = 1; ; attempt++) {
      if (this.failed) throw this.failed;
      try {
        await this.store.putIfAbsent(key, body);
        this.lastOwnershipProof = Date.now();
        this.opts.onDurable?.((performance.now() - up.sealStart) / 1000, up.seg.bytes);
        return;
      } catch (err) {
        if (err instanceof PreconditionFailedError) {
          // Either an earlier attempt of ours landed and its reply was lost, or another
          // writer took this id. Random nonces make our body unique, so compare bytes.
          const existing = await this.store.get(key).catch(() => undefined);
          if (existing?.equals(body)) {
            this.opts.onDurable?.((performance.now() - up.sealStart) / 1000, up.seg.bytes);
            return;
          }
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
    this.stopLinger();
    if (this.parallelTimer) clearTimeout(this.parallelTimer);
    this.parallelTimer = undefined;
    for (const up of this.pipeline.splice(0)) {
      up.seg.reject(err);
      for (const m of up.merged) m.reject(err);
    }
    for (const seg of this.queue.splice(0)) seg.reject(err);
    if (this.current.batches > 0) this.current.reject(err);
    this.current = newSegment();
  }
}
