/**
 * The engine's segment store (docs/layout-v2.md): immutable objects of sealed frames holding
 * file data outside the LSM, which keeps only pointers to them. This facade is what the
 * filesystem layer sees: seal and append frames, read them back, and the primitives the
 * segment GC needs (list, delete, which segments the writer still protects).
 */
import type { Sealer, PreparedBlock } from "../../crypto/sealer.ts";
import type { ObjectMeta, ObjectStore } from "../../store/object-store.ts";
import { SEGMENT_DIR, parseSegmentKey, segmentKey, type SegmentId } from "./names.ts";
import { SegmentReader, type SegmentReaderStats } from "./segment-reader.ts";
import { SegmentWriter, type FrameRef, type SegmentWriterOptions, type SegmentWriterStats } from "./segment-writer.ts";

export type { FrameRef } from "./segment-writer.ts";

export interface SegmentsOptions extends SegmentWriterOptions {
  /** Budget of the in-memory cache of extent plaintext. */
  extentCacheBytes: number;
}

export interface SegmentInfo extends SegmentId {
  key: string;
  size: number;
  lastModified: Date;
}

export class Segments {
  private readonly store: ObjectStore;
  private readonly sealer: Sealer;
  readonly writer: SegmentWriter;
  readonly reader: SegmentReader;

  constructor(store: ObjectStore, sealer: Sealer, epoch: number, opts: SegmentsOptions) {
    this.store = store;
    this.sealer = sealer;
    this.writer = new SegmentWriter(store, epoch, opts);
    this.reader = new SegmentReader(store, sealer, this.writer, opts.extentCacheBytes);
  }

  /** Compresses `plain` (off the event loop); encryption happens at `append`. */
  prepare(plain: Uint8Array): Promise<PreparedBlock> {
    return this.sealer.prepare(plain);
  }

  /**
   * Appends a prepared frame whose plaintext is `plain` (kept in the extent cache when `cache`,
   * so the caller must not modify it afterwards). Call `settle` once the pointer's batch is
   * applied or dropped.
   */
  append(prepared: PreparedBlock, plain: Buffer, cache = true): FrameRef {
    const ref = this.writer.append(prepared);
    if (cache) this.reader.remember(ref, plain);
    return ref;
  }

  settle(ref: FrameRef): void {
    this.writer.settle(ref);
  }

  waitForRoom(): Promise<void> {
    return this.writer.waitForRoom();
  }

  /** Plaintext of a whole frame (shared with the cache: do not modify). */
  read(ref: FrameRef): Promise<Buffer> {
    return this.reader.read(ref);
  }

  /** Plaintexts of several frames, adjacent ones fetched together (see SegmentReader.readMany). */
  readMany(refs: readonly FrameRef[]): Promise<Buffer[]> {
    return this.reader.readMany(refs);
  }

  /** Every segment object in the store, in key order. */
  async list(): Promise<SegmentInfo[]> {
    const out: SegmentInfo[] = [];
    for (const m of await this.store.list(SEGMENT_DIR)) {
      const id = parseSegmentKey(m.key);
      if (id) out.push(info(id, m));
    }
    return out;
  }

  /** Deletes a segment (GC only: the caller has proven nothing points into it). */
  async delete(id: SegmentId): Promise<void> {
    await this.store.delete(segmentKey(id));
  }

  /** Whether the writer may still add pointers into segment `id` (GC must leave it). */
  isProtected(id: SegmentId, p = this.writer.protectedSegments()): boolean {
    if (id.epoch !== this.writer.writerEpoch) return false;
    return id.seq >= p.from || p.seqs.has(id.seq);
  }

  stats(): { writer: SegmentWriterStats; reader: SegmentReaderStats; cachedBytes: number } {
    return { writer: this.writer.stats, reader: this.reader.stats, cachedBytes: this.reader.cachedBytes };
  }
}

function info(id: SegmentId, m: ObjectMeta): SegmentInfo {
  return { ...id, key: m.key, size: m.size, lastModified: m.lastModified };
}
