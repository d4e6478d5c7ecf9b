/**
 * Reads frames (docs/layout-v2.md): the plaintext of an extent from the in-memory extent cache
 * (LRU by bytes), else from the writer's not-yet-durable segments, else with a ranged GET of
 * exactly the frame; authenticated and decrypted, then cached. Concurrent misses of one frame
 * share one fetch.
 */
import { LRUCache } from "lru-cache";
import { blockAad, type Sealer } from "../../crypto/sealer.ts";
import type { ObjectStore } from "../../store/object-store.ts";
import { CorruptObjectError } from "../errors.ts";
import { segmentKey } from "./names.ts";
import type { FrameRef, SegmentWriter } from "./segment-writer.ts";

export interface SegmentReaderStats {
  hits: number;
  misses: number;
  /** Frames served from segments still in memory (not yet durable). */
  memoryReads: number;
  fetchedBytes: number;
}

const frameTag = (ref: FrameRef): string => `${ref.epoch}-${ref.seq}@${ref.offset}`;

export class SegmentReader {
  private readonly store: ObjectStore;
  private readonly sealer: Sealer;
  private readonly writer: SegmentWriter;
  private readonly cache: LRUCache<string, Buffer> | undefined;
  private readonly inflight = new Map<string, Promise<Buffer>>();
  readonly stats: SegmentReaderStats = { hits: 0, misses: 0, memoryReads: 0, fetchedBytes: 0 };

  constructor(store: ObjectStore, sealer: Sealer, writer: SegmentWriter, cacheBytes: number) {
    this.store = store;
    this.sealer = sealer;
    this.writer = writer;
    this.cache = cacheBytes > 0 ? new LRUCache<string, Buffer>({ maxSize: cacheBytes, sizeCalculation: (b) => Math.max(1, b.length) }) : undefined;
  }

  /** Bytes held by the extent cache. */
  get cachedBytes(): number {
    return this.cache?.calculatedSize ?? 0;
  }

  /** Caches a frame's plaintext (the writer knows it already: read-after-write costs nothing). */
  remember(ref: FrameRef, plain: Buffer): void {
    this.cache?.set(frameTag(ref), plain);
  }

  /** The whole plaintext of a frame. Treat the result as read-only: it is shared with the cache. */
  async read(ref: FrameRef): Promise<Buffer> {
    const tag = frameTag(ref);
    const hit = this.cache?.get(tag);
    if (hit) {
      this.stats.hits++;
      return hit;
    }
    const pending = this.inflight.get(tag);
    if (pending) {
      this.stats.hits++;
      return pending;
    }
    this.stats.misses++;
    const load = this.load(ref).finally(() => this.inflight.delete(tag));
    this.inflight.set(tag, load);
    const plain = await load;
    this.cache?.set(tag, plain);
    return plain;
  }

  private async load(ref: FrameRef): Promise<Buffer> {
    const key = segmentKey(ref);
    const parts = this.writer.frame(ref);
    let sealed: Buffer;
    if (parts) {
      this.stats.memoryReads++;
      sealed = Buffer.concat(parts);
    } else {
      sealed = await this.store.get(key, { offset: ref.offset, length: ref.length });
      this.stats.fetchedBytes += sealed.length;
      if (sealed.length !== ref.length) throw new CorruptObjectError(key, `frame at ${ref.offset} should be ${ref.length} bytes, the segment returned ${sealed.length}`);
    }
    try {
      return await this.sealer.open(sealed, blockAad(key, ref.offset));
    } catch (err) {
      throw new CorruptObjectError(key, `frame at ${ref.offset} (${ref.length} bytes) failed to open: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
}
