/**
 * Segment GC (docs/layout-v2.md, "Segment GC"): gives back the space of overwritten, truncated
 * and deleted file data, and the segments of crashed or fenced writers.
 *
 * A pass:
 *  1. lists the segments, then marks: one scan of every extent map (a consistent snapshot)
 *     estimates the live bytes of each segment (each piece counts its share of its frame's
 *     sealed size). The writer's protected segments (open, uploading, with frames whose pointer
 *     batch is not applied yet, or not created yet) are taken in the same tick as the snapshot,
 *     so no segment can gain a pointer the snapshot does not show unless it is protected;
 *  2. sweeps: a segment no pointer references is deleted once it has been seen unreferenced
 *     for `graceMs` (a read that resolved a pointer just before an overwrite may still be
 *     fetching from it);
 *  3. compacts: segments whose live share is under `minLiveRatio` (and small segments, which
 *     slow writers produce) are rewritten, at most `maxRewriteBytes` of live data per pass: each
 *     live piece's bytes are read and sealed into a new frame outside any lock, then swapped in
 *     under the inode's lock only where the piece is unchanged. The old segment is then
 *     unreferenced and goes in a later pass.
 * Work per pass is proportional to the metadata (one or two scans of the extent maps) plus the
 * bounded rewrite; passes run on a timer and when enough data was freed.
 */
import type { Logger } from "pino";
import type { Db } from "../lsm/db.ts";
import type { SegmentInfo } from "../lsm/segments/segments.ts";
import { segmentTag } from "../lsm/segments/names.ts";
import { WriteBatch } from "../lsm/write-batch.ts";
import { Progress } from "../observability/progress.ts";
import { BackgroundPasses } from "./background-passes.ts";
import { decodePieces, encodePieces, type Piece } from "./extent-map.ts";
import { KeyKind, parseExtentKey } from "./keys.ts";
import type { FrameRef } from "../lsm/segments/segments.ts";

export interface SegmentGcOptions {
  /** Segments whose estimated live share is below this are rewritten. */
  minLiveRatio: number;
  /** Segments smaller than this are merged (rewritten together) when there are several. */
  smallSegmentBytes: number;
  /** Live bytes rewritten per pass at most. */
  maxRewriteBytes: number;
  /** An unreferenced segment is deleted once seen unreferenced for this long. */
  graceMs: number;
  /** Time between passes (0: only when kicked or called). */
  intervalMs: number;
  /** Bytes freed (overwritten, truncated, deleted) that trigger a pass before the timer. */
  kickFreedBytes: number;
  /** Interval of a slow pass's progress lines (default 5 s, observability/progress.ts). */
  progressIntervalMs?: number;
  logger?: Logger;
}

export const DEFAULT_SEGMENT_GC: SegmentGcOptions = {
  minLiveRatio: 0.5,
  smallSegmentBytes: 1024 * 1024,
  maxRewriteBytes: 64 * 1024 * 1024,
  graceMs: 30_000,
  intervalMs: 60_000,
  kickFreedBytes: 256 * 1024 * 1024,
};

export interface SegmentGcStats {
  passes: number;
  deletedSegments: number;
  deletedBytes: number;
  rewrittenBytes: number;
  /** From the last pass: bytes of all segments, and the estimated live bytes in them. */
  storedBytes: number;
  liveBytes: number;
}

/** Runs `fn` holding the lock of inode `ino` (the filesystem's per-inode lock). */
export type InodeLocker = <T>(ino: number, fn: () => Promise<T>) => Promise<T>;

const EXTENT_RANGE: [Buffer, Buffer] = [Buffer.from([KeyKind.EXTENT]), Buffer.from([KeyKind.EXTENT + 1])];

export class SegmentGc {
  private readonly db: Db;
  private readonly lock: InodeLocker;
  private readonly opts: SegmentGcOptions;
  private readonly unreferencedSince = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly passes: BackgroundPasses;
  private freedSincePass = 0;
  readonly stats: SegmentGcStats = { passes: 0, deletedSegments: 0, deletedBytes: 0, rewrittenBytes: 0, storedBytes: 0, liveBytes: 0 };

  constructor(db: Db, lock: InodeLocker, opts: Partial<SegmentGcOptions> = {}) {
    this.db = db;
    this.lock = lock;
    this.opts = { ...DEFAULT_SEGMENT_GC, ...opts };
    this.passes = new BackgroundPasses(
      () => this.runPass(),
      (err) => this.opts.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, "segment GC pass failed; will retry at the next pass"),
    );
  }

  /** Space amplification of the last pass: segment bytes ÷ live bytes (1 when empty). */
  get spaceAmplification(): number {
    return this.stats.liveBytes > 0 ? this.stats.storedBytes / this.stats.liveBytes : 1;
  }

  start(): void {
    if (this.opts.intervalMs > 0 && !this.timer) {
      // A pass lists every segment: only when something was freed since the last one (or none
      // ran yet since start, to collect what a crashed predecessor left).
      this.timer = setInterval(() => {
        if (this.freedSincePass > 0 || this.stats.passes === 0) this.kick();
      }, this.opts.intervalMs);
      this.timer.unref();
    }
  }

  /** Notes bytes of file data no longer referenced; enough of them start a pass. */
  noteFreed(bytes: number): void {
    if (bytes <= 0) return;
    this.freedSincePass += bytes;
    if (this.freedSincePass >= this.opts.kickFreedBytes) this.kick();
  }

  /** Starts a pass (or schedules one after the current pass). */
  kick(): void {
    this.passes.kick();
  }

  /** Resolves once no pass is running or scheduled. */
  idle(): Promise<void> {
    return this.passes.idle();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.passes.stop();
  }

  private get stopped(): boolean {
    return this.passes.stopped;
  }

  /** One pass: mark, sweep, compact. Public for tests and maintenance. */
  async runPass(now = Date.now()): Promise<{ deleted: number; rewritten: number }> {
    this.freedSincePass = 0;
    const segments = this.db.segments;
    const listed = await segments.list();
    // A pass over a big volume scans every extent: slow passes log progress (fast ones only at debug).
    const progress = new Progress(this.opts.logger, { task: "segment-gc", label: "segment GC pass", unit: "segments", total: listed.length, quickLevel: "debug", intervalMs: this.opts.progressIntervalMs });
    try {
      return await this.pass(listed, progress, now);
    } catch (err) {
      progress.fail(err);
      throw err;
    }
  }

  private async pass(listed: SegmentInfo[], progress: Progress, now: number): Promise<{ deleted: number; rewritten: number }> {
    const segments = this.db.segments;
    // Mark. The protected set and the scan's snapshot are taken in the same tick: the
    // generator's body runs synchronously up to its first await inside next().
    const scan = this.db.scan(...EXTENT_RANGE)[Symbol.asyncIterator]();
    const prot = segments.writer.protectedSegments();
    const live = new Map<string, number>();
    for (let r = await scan.next(); !r.done; r = await scan.next()) {
      if (this.stopped) {
        await scan.return?.(undefined);
        progress.finish({ stopped: true }, "debug");
        return { deleted: 0, rewritten: 0 };
      }
      progress.add(0, 1);
      for (const p of decodePieces(r.value.value!, describe(r.value.key))) {
        if (!p.frame) continue;
        const tag = segmentTag(p.frame);
        live.set(tag, (live.get(tag) ?? 0) + (p.length / p.plain) * p.frame.length);
      }
    }
    // Sweep.
    let deleted = 0;
    const stillListed = new Set<string>();
    const candidates: { seg: SegmentInfo; live: number }[] = [];
    let stored = 0;
    let liveTotal = 0;
    // Deletions follow only once every batch that unreferenced a segment is durable: after a
    // crash the volume must never point into a deleted segment.
    let flushed = false;
    for (const seg of listed) {
      progress.add(1, 0, seg.size);
      const tag = segmentTag(seg);
      stillListed.add(tag);
      const l = live.get(tag) ?? 0;
      const isProtected = segments.isProtected(seg, prot);
      if (l === 0 && !isProtected) {
        const since = this.unreferencedSince.get(tag) ?? now;
        this.unreferencedSince.set(tag, since);
        if (now - since >= this.opts.graceMs) {
          if (!flushed) {
            await this.db.flush();
            flushed = true;
          }
          await segments.delete(seg);
          this.unreferencedSince.delete(tag);
          deleted++;
          this.stats.deletedSegments++;
          this.stats.deletedBytes += seg.size;
          continue;
        }
      } else this.unreferencedSince.delete(tag);
      stored += seg.size;
      liveTotal += Math.min(l, seg.size);
      if (l > 0 && !isProtected) candidates.push({ seg, live: Math.min(l, seg.size) });
    }
    for (const tag of this.unreferencedSince.keys()) if (!stillListed.has(tag)) this.unreferencedSince.delete(tag);
    this.stats.storedBytes = stored;
    this.stats.liveBytes = liveTotal;
    // Compact.
    const victims = this.pickVictims(candidates);
    const rewritten = victims.size > 0 ? await this.rewrite(victims) : 0;
    this.stats.passes++;
    this.stats.rewrittenBytes += rewritten;
    progress.finish({ deleted, rewritten, storedBytes: stored, liveBytes: Math.round(liveTotal), victims: victims.size });
    return { deleted, rewritten };
  }

  private pickVictims(candidates: { seg: SegmentInfo; live: number }[]): Set<string> {
    const sparse = candidates.filter((c) => c.live / c.seg.size < this.opts.minLiveRatio);
    const small = candidates.filter((c) => c.seg.size < this.opts.smallSegmentBytes && c.live / c.seg.size >= this.opts.minLiveRatio);
    const chosen = [...sparse.sort((a, b) => a.live / a.seg.size - b.live / b.seg.size), ...(small.length >= 2 ? small : [])];
    const out = new Set<string>();
    let budget = this.opts.maxRewriteBytes;
    for (const c of chosen) {
      if (c.live > budget && out.size > 0) break;
      out.add(segmentTag(c.seg));
      budget -= c.live;
    }
    return out;
  }

  /** Moves every live piece of the victim segments into new frames; returns the bytes moved. */
  private async rewrite(victims: Set<string>): Promise<number> {
    // Which blocks point into a victim (a second scan: the first did not know the victims).
    const blocks: Buffer[] = [];
    for await (const e of this.db.scan(...EXTENT_RANGE)) {
      if (decodePieces(e.value!, describe(e.key)).some((p) => p.frame && victims.has(segmentTag(p.frame)))) blocks.push(e.key);
    }
    let moved = 0;
    for (const key of blocks) {
      if (this.stopped) break;
      moved += await this.rewriteBlock(key, victims);
    }
    return moved;
  }

  private async rewriteBlock(key: Buffer, victims: Set<string>): Promise<number> {
    const segments = this.db.segments;
    const { ino } = parseExtentKey(key);
    const where = describe(key);
    const current = await this.db.get(key);
    if (!current) return 0;
    // Outside the lock: read and seal the live bytes of each piece to move.
    const moves = new Map<string, { bytes: Buffer; prepared: Awaited<ReturnType<typeof segments.prepare>> }>();
    for (const p of decodePieces(current, where)) {
      if (!p.frame || !victims.has(segmentTag(p.frame))) continue;
      const plain = await segments.read(p.frame);
      const bytes = Buffer.from(plain.subarray(p.skip, p.skip + p.length));
      moves.set(pieceId(p), { bytes, prepared: await segments.prepare(bytes) });
    }
    if (moves.size === 0) return 0;
    await segments.waitForRoom();
    // Under the lock: swap only pieces that are still exactly as read.
    return this.lock(ino, async () => {
      const raw = await this.db.get(key);
      if (!raw) return 0;
      const frames: FrameRef[] = [];
      let moved = 0;
      const pieces = decodePieces(raw, where).map((p): Piece => {
        const m = p.frame ? moves.get(pieceId(p)) : undefined;
        if (!m) return p;
        const frame = segments.append(m.prepared, m.bytes);
        frames.push(frame);
        moved += p.length;
        return { start: p.start, length: p.length, frame, plain: p.length, skip: 0 };
      });
      try {
        if (frames.length > 0) await this.db.write(new WriteBatch().put(key, encodePieces(pieces)), { awaitDurable: false });
      } finally {
        for (const f of frames) segments.settle(f);
      }
      return moved;
    });
  }
}

/** A piece's identity for "unchanged since read": position and where its bytes live. */
function pieceId(p: Piece): string {
  return p.frame ? `${p.start}+${p.length}@${segmentTag(p.frame)}:${p.frame.offset}:${p.skip}` : `${p.start}+${p.length}`;
}

function describe(key: Buffer): string {
  const { ino, block } = parseExtentKey(key);
  return `block ${block} of inode ${ino}`;
}
