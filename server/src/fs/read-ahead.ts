/**
 * Sequential read-ahead for layout-2 files: when READs of a file continue where the last one
 * ended, the next window of the file is fetched into the extent cache in the background, so the
 * store's latency (a GET from S3, a cold disk read) overlaps the client's own requests, and
 * adjacent frames come in fewer, larger ranged GETs (segment-reader.ts coalesces up to 4 MiB).
 *
 * The window starts at INITIAL_WINDOW and doubles with each sequential READ up to MAX_WINDOW,
 * and is refilled once less than half of it is left; a READ elsewhere resets it (random reads
 * never trigger anything). Bounded: streams tracked at
 * most MAX_STREAMS (LRU), prefetches in flight at most MAX_IN_FLIGHT (more are skipped, not
 * queued), and what is fetched lands in the extent cache under its byte budget like any read.
 * A prefetch that fails is forgotten: the READ that needs the bytes fetches them and reports.
 */
import { LRUCache } from "lru-cache";

const INITIAL_WINDOW = 1024 * 1024;
const MAX_WINDOW = 8 * 1024 * 1024;
const MAX_STREAMS = 1024;
const MAX_IN_FLIGHT = 8;

interface Stream {
  /** Where the next sequential READ would start. */
  next: number;
  /** Everything below this is fetched or being fetched. */
  ahead: number;
  window: number;
}

export interface ReadAheadStats {
  prefetches: number;
  prefetchedBytes: number;
  skipped: number;
}

export class ReadAhead {
  private readonly streams = new LRUCache<number, Stream>({ max: MAX_STREAMS });
  private inFlight = 0;
  readonly stats: ReadAheadStats = { prefetches: 0, prefetchedBytes: 0, skipped: 0 };
  private readonly fetch: (ino: number, offset: number, length: number) => Promise<unknown>;

  /** `fetch` reads a range of a file into the cache (its result is dropped). */
  constructor(fetch: (ino: number, offset: number, length: number) => Promise<unknown>) {
    this.fetch = fetch;
  }

  /** A READ of [offset, offset + length) of `ino` (size `size`) was served or is being served. */
  note(ino: number, size: number, offset: number, length: number): void {
    const end = offset + length;
    const s = this.streams.get(ino);
    if (!s || s.next !== offset || length === 0) {
      this.streams.set(ino, { next: end, ahead: end, window: INITIAL_WINDOW });
      return;
    }
    s.next = end;
    s.window = Math.min(MAX_WINDOW, s.window * 2);
    const from = Math.max(s.ahead, end);
    const to = Math.min(size, end + s.window);
    // Refill only once less than half a window is left ahead: fetches stay large (adjacent
    // frames come in GETs of up to 4 MiB) instead of one READ's worth each.
    if (to <= from || (from > end && from - end >= s.window / 2 && to < size)) return;
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.stats.skipped++;
      return;
    }
    s.ahead = to;
    this.inFlight++;
    this.stats.prefetches++;
    this.stats.prefetchedBytes += to - from;
    void this.fetch(ino, from, to - from)
      .catch(() => {
        // Forget what was promised: the READs that need these bytes fetch them themselves.
        const cur = this.streams.get(ino);
        if (cur) cur.ahead = Math.min(cur.ahead, from);
      })
      .finally(() => this.inFlight--);
  }

  /** The file changed size or was removed: its stream starts over. */
  forget(ino: number): void {
    this.streams.delete(ino);
  }
}
