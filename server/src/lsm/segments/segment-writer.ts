/**
 * Appends sealed frames to the writer's open segment and uploads closed segments
 * (docs/layout-v2.md). Appending is synchronous (the frame's place is known at once, so the
 * caller can put its pointer in the same batch); uploads run in the background, bounded by
 * `maxBufferedBytes` (callers of `waitForRoom` wait beyond it).
 *
 * The durability barrier: a WAL object records `mark()` when it is formed and calls
 * `durableThrough(mark)` before its PUT, so every frame appended before its batches is in the
 * store before any pointer to it can be. Frames of segments not yet durable are served from
 * memory (`frame`).
 */
import type { Logger } from "pino";
import { blockAad, type PreparedBlock } from "../../crypto/sealer.ts";
import { InjectedCrashError } from "../../store/errors.ts";
import type { ObjectStore } from "../../store/object-store.ts";
import { segmentKey, type SegmentId } from "./names.ts";

/** Where a sealed frame lives: segment, byte offset and sealed length. */
export interface FrameRef {
  epoch: number;
  seq: number;
  offset: number;
  length: number;
}

export interface SegmentWriterOptions {
  /** A segment is closed and uploaded once it holds this many bytes. */
  targetBytes: number;
  /** Bytes of closed segments not yet durable beyond which `waitForRoom` waits. */
  maxBufferedBytes: number;
  logger?: Logger;
  /** Observes each segment upload (metrics). */
  onUploaded?: (bytes: number, seconds: number) => void;
}

interface Segment {
  id: SegmentId;
  key: string;
  parts: Buffer[];
  bytes: number;
  /** Sealed parts of each frame by offset, for reads before the segment is durable. */
  frames: Map<number, Buffer[]>;
}

export interface SegmentWriterStats {
  segments: number;
  bytes: number;
  frames: number;
}

export class SegmentWriter {
  private readonly store: ObjectStore;
  private readonly epoch: number;
  private readonly opts: SegmentWriterOptions;
  private open: Segment | undefined;
  private nextSeq = 1;
  /** Closed segments whose upload is not acknowledged yet, by sequence. */
  private readonly uploading = new Map<number, { seg: Segment; done: Promise<void> }>();
  private bufferedBytes = 0;
  private roomWaiters: (() => void)[] = [];
  /** Frames appended whose pointer batches are not yet applied (segment GC must spare them). */
  private readonly unsettled = new Map<number, number>();
  private failed: Error | undefined;
  private outage = false;
  readonly stats: SegmentWriterStats = { segments: 0, bytes: 0, frames: 0 };

  constructor(store: ObjectStore, epoch: number, opts: SegmentWriterOptions) {
    this.store = store;
    this.epoch = epoch;
    this.opts = opts;
  }

  get writerEpoch(): number {
    return this.epoch;
  }

  /**
   * Seals `prepared` into the open segment. The returned frame counts as unsettled until
   * `settle(ref)`: call it once the batch holding the frame's pointer is applied (or dropped).
   */
  append(prepared: PreparedBlock): FrameRef {
    if (this.failed) throw this.failed;
    let seg = this.open;
    if (!seg) {
      const id = { epoch: this.epoch, seq: this.nextSeq++ };
      seg = { id, key: segmentKey(id), parts: [], bytes: 0, frames: new Map() };
      this.open = seg;
    }
    const offset = seg.bytes;
    const parts = prepared.sealParts(blockAad(seg.key, offset));
    let length = 0;
    for (const p of parts) {
      seg.parts.push(p);
      length += p.length;
    }
    seg.bytes += length;
    seg.frames.set(offset, parts);
    this.unsettled.set(seg.id.seq, (this.unsettled.get(seg.id.seq) ?? 0) + 1);
    this.stats.frames++;
    const ref: FrameRef = { epoch: this.epoch, seq: seg.id.seq, offset, length };
    if (seg.bytes >= this.opts.targetBytes) this.closeOpen();
    return ref;
  }

  /** The frame's pointer batch is applied (or will never be): GC may judge its segment. */
  settle(ref: FrameRef): void {
    if (ref.epoch !== this.epoch) return;
    const n = (this.unsettled.get(ref.seq) ?? 1) - 1;
    if (n <= 0) this.unsettled.delete(ref.seq);
    else this.unsettled.set(ref.seq, n);
  }

  /** Waits while too many bytes of closed segments are still uploading (backpressure). */
  async waitForRoom(): Promise<void> {
    while (!this.failed && this.bufferedBytes > this.opts.maxBufferedBytes) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    if (this.failed) throw this.failed;
  }

  /** Position reached so far: every segment with a sequence ≤ the mark holds frames appended before. */
  mark(): number {
    return this.open && this.open.bytes > 0 ? this.open.id.seq : this.nextSeq - 1;
  }

  /** Resolves once every segment up to `mark` is in the store (closing the open one if needed). */
  async durableThrough(mark: number): Promise<void> {
    if (this.open && this.open.id.seq <= mark) this.closeOpen();
    const waits: Promise<void>[] = [];
    for (const [seq, u] of this.uploading) if (seq <= mark) waits.push(u.done);
    await Promise.all(waits);
    if (this.failed) throw this.failed;
  }

  /** Sealed parts of a frame whose segment is not yet durable (undefined otherwise). */
  frame(ref: FrameRef): Buffer[] | undefined {
    if (ref.epoch !== this.epoch) return undefined;
    const seg = this.open?.id.seq === ref.seq ? this.open : this.uploading.get(ref.seq)?.seg;
    return seg?.frames.get(ref.offset);
  }

  /**
   * Segments this writer may still add pointers to: the open one, those uploading, and any
   * with unsettled frames; plus every sequence ≥ the returned `from` (not yet created).
   */
  protectedSegments(): { seqs: Set<number>; from: number } {
    const seqs = new Set<number>(this.unsettled.keys());
    if (this.open) seqs.add(this.open.id.seq);
    for (const seq of this.uploading.keys()) seqs.add(seq);
    return { seqs, from: this.nextSeq };
  }

  /** Closes the open segment and waits for every upload. */
  async flushAll(): Promise<void> {
    await this.durableThrough(Number.MAX_SAFE_INTEGER);
  }

  /** Stops: uploads give up, waiters fail with `reason`. */
  abort(reason: Error): void {
    if (!this.failed) this.failed = reason;
    for (const w of this.roomWaiters.splice(0)) w();
  }

  private closeOpen(): void {
    const seg = this.open;
    this.open = undefined;
    if (!seg || seg.bytes === 0) return;
    this.bufferedBytes += seg.bytes;
    const done = this.upload(seg).finally(() => {
      this.uploading.delete(seg.id.seq);
      this.bufferedBytes -= seg.bytes;
      for (const w of this.roomWaiters.splice(0)) w();
    });
    // Awaited by durableThrough; a failure also surfaces there (and through `failed`).
    done.catch(() => undefined);
    this.uploading.set(seg.id.seq, { seg, done });
  }

  private async upload(seg: Segment): Promise<void> {
    // The frames go to the store as they are (one writev locally): joining 8 MiB of them into
    // one buffer first cost 9% of a sequential write's CPU.
    const body = seg.parts;
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      if (this.failed) throw this.failed;
      try {
        await this.store.put(seg.key, body);
        break;
      } catch (err) {
        if (err instanceof InjectedCrashError) {
          this.abort(err);
          throw err;
        }
        // Outages are reported once by the store's health tracker; this is detail.
        if (!this.outage) this.opts.logger?.debug({ objectKey: seg.key, attempt, err: err instanceof Error ? err.message : String(err) }, "segment upload failed; retrying");
        this.outage = true;
        await new Promise((r) => setTimeout(r, Math.min(5000, 50 * 2 ** Math.min(attempt, 7))));
      }
    }
    if (this.outage) this.opts.logger?.debug({ objectKey: seg.key }, "segment uploads recovered");
    this.outage = false;
    this.stats.segments++;
    this.stats.bytes += seg.bytes;
    this.opts.onUploaded?.(seg.bytes, (performance.now() - started) / 1000);
  }
}
