/**
 * Reads frames (docs/layout-v2.md): the plaintext of an extent from the in-memory extent cache
 * (LRU by bytes), else from the writer's not-yet-durable segments, else with a ranged GET of
 * exactly the frame; authenticated and decrypted, then cached. Concurrent misses of one frame
 * share one fetch. `readMany` fetches the missing frames of one request together: frames that
 * are adjacent in a segment (a sequential write's frames are) come with one ranged GET of up to
 * MAX_COALESCED_BYTES, so a 1 MiB read is one request to the store, not 32.
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

/** Largest ranged GET that several adjacent frames are fetched with. */
export const MAX_COALESCED_BYTES = 4 * 1024 * 1024;

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

  /** The plaintexts of several frames (same order), fetching adjacent missing frames together. */
  readMany(refs: readonly FrameRef[]): Promise<Buffer[]> {
    const out: Promise<Buffer>[] = new Array<Promise<Buffer>>(refs.length);
    const missing: { ref: FrameRef; index: number }[] = [];
    refs.forEach((ref, index) => {
      const tag = frameTag(ref);
      const hit = this.cache?.get(tag) ?? this.inflight.get(tag);
      if (hit) {
        this.stats.hits++;
        out[index] = Promise.resolve(hit);
      } else if (this.writer.frame(ref)) out[index] = this.read(ref);
      else missing.push({ ref, index });
    });
    // Group by segment, in offset order; runs of adjacent frames become one GET each.
    missing.sort((a, b) => a.ref.epoch - b.ref.epoch || a.ref.seq - b.ref.seq || a.ref.offset - b.ref.offset);
    let run: { ref: FrameRef; index: number }[] = [];
    const flush = (): void => {
      if (run.length > 0) this.fetchRun(run, out);
      run = [];
    };
    for (const m of missing) {
      const last = run[run.length - 1];
      if (last && frameTag(last.ref) === frameTag(m.ref)) {
        out[m.index] = this.read(m.ref); // the same frame twice in one request
        continue;
      }
      const contiguous = last !== undefined && last.ref.epoch === m.ref.epoch && last.ref.seq === m.ref.seq && last.ref.offset + last.ref.length === m.ref.offset;
      if (!contiguous || m.ref.offset + m.ref.length - run[0]!.ref.offset > MAX_COALESCED_BYTES) flush();
      run.push(m);
    }
    flush();
    return Promise.all(out);
  }

  /** One ranged GET for adjacent frames of one segment; each frame is opened and cached alone. */
  private fetchRun(run: { ref: FrameRef; index: number }[], out: Promise<Buffer>[]): void {
    if (run.length === 1) {
      out[run[0]!.index] = this.read(run[0]!.ref);
      return;
    }
    const first = run[0]!.ref;
    const key = segmentKey(first);
    const length = run[run.length - 1]!.ref.offset + run[run.length - 1]!.ref.length - first.offset;
    this.stats.misses += run.length;
    const body = this.store.get(key, { offset: first.offset, length }).then((b) => {
      this.stats.fetchedBytes += b.length;
      if (b.length !== length) throw new CorruptObjectError(key, `frames at ${first.offset}..${first.offset + length} should be ${length} bytes, the segment returned ${b.length}`);
      return b;
    });
    for (const { ref, index } of run) {
      const tag = frameTag(ref);
      const load = body
        .then((b) => this.open(key, ref, b.subarray(ref.offset - first.offset, ref.offset - first.offset + ref.length)))
        .finally(() => this.inflight.delete(tag));
      this.inflight.set(tag, load);
      out[index] = load.then((plain) => {
        this.cache?.set(tag, plain);
        return plain;
      });
    }
  }

  private async open(key: string, ref: FrameRef, sealed: Buffer): Promise<Buffer> {
    try {
      return await this.sealer.open(sealed, blockAad(key, ref.offset));
    } catch (err) {
      throw new CorruptObjectError(key, `frame at ${ref.offset} (${ref.length} bytes) failed to open: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  private async load(ref: FrameRef): Promise<Buffer> {
    const key = segmentKey(ref);
    const parts = this.writer.frame(ref);
    let sealed: Buffer;
    if (parts) {
      this.stats.memoryReads++;
      sealed = Buffer.concat(await parts);
    } else {
      sealed = await this.store.get(key, { offset: ref.offset, length: ref.length });
      this.stats.fetchedBytes += sealed.length;
      if (sealed.length !== ref.length) throw new CorruptObjectError(key, `frame at ${ref.offset} should be ${ref.length} bytes, the segment returned ${sealed.length}`);
    }
    return this.open(key, ref, sealed);
  }
}
