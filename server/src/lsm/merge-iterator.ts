import { compareKeys, type Entry } from "./entry.ts";

/** A source of entries in ascending key order, each key at most once, a chunk (array) at a time; chunks may be empty. */
export type ChunkSource = AsyncIterator<Entry[]> | Iterator<Entry[]>;

interface HeapItem {
  entry: Entry;
  /** Lower index = newer source; it wins ties. */
  source: number;
}

function less(a: HeapItem, b: HeapItem): boolean {
  const c = compareKeys(a.entry.key, b.entry.key);
  return c < 0 || (c === 0 && a.source < b.source);
}

/** Binary min-heap of the sources' current entries. */
class SourceHeap {
  private readonly items: HeapItem[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): HeapItem | undefined {
    return this.items[0];
  }

  push(item: HeapItem): void {
    const heap = this.items;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  }

  pop(): HeapItem {
    const heap = this.items;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === "function";
}

/**
 * K-way merge of sorted sources, newest source first. For each key only the newest source's
 * entry comes out; tombstones come out too unless `dropTombstones` (callers merging into the
 * oldest data, or reading, drop them).
 *
 * The output comes a chunk at a time: each chunk holds what could be merged without waiting
 * (entries already in memory), at most `maxChunk` entries. No promise is created per entry —
 * only when a source must fetch its next chunk — so a listing of a directory or a range of
 * inodes costs a few microtasks per chunk instead of several per entry.
 */
export async function* mergeChunks(sources: ChunkSource[], dropTombstones: boolean, maxChunk = 512, firstChunk = maxChunk): AsyncGenerator<Entry[]> {
  try {
    if (sources.length === 1) {
      // One source (e.g. everything is in the memtable): pass its chunks through.
      const s = sources[0]!;
      for (;;) {
        const n = s.next();
        const r = isPromise(n) ? await n : n;
        if (r.done) return;
        const chunk = dropTombstones ? r.value.filter((e) => e.value !== null) : r.value;
        if (chunk.length > 0) yield chunk;
      }
    }
    const heap = new SourceHeap();
    const chunks: Entry[][] = sources.map(() => []);
    const next: number[] = sources.map(() => 0);
    /** Puts the source's next entry on the heap; a promise only when it had to fetch a chunk. */
    const fill = (source: number): Promise<void> | undefined => {
      for (;;) {
        const chunk = chunks[source]!;
        const i = next[source]!;
        if (i < chunk.length) {
          next[source] = i + 1;
          heap.push({ entry: chunk[i]!, source });
          return undefined;
        }
        const n = sources[source]!.next();
        if (isPromise(n)) {
          return n.then((r) => {
            if (r.done) return;
            chunks[source] = r.value;
            next[source] = 0;
            return fill(source);
          });
        }
        if (n.done) return undefined;
        chunks[source] = n.value;
        next[source] = 0;
      }
    };
    const waits: Promise<void>[] = [];
    for (let i = 0; i < sources.length; i++) {
      const p = fill(i);
      if (p) waits.push(p);
    }
    if (waits.length > 0) await Promise.all(waits.splice(0));
    let out: Entry[] = [];
    // A reader that wants only a few entries (one READDIR page) says so: the first chunk stops there.
    let limit = Math.max(1, firstChunk);
    while (heap.size > 0) {
      const top = heap.pop();
      const p = fill(top.source);
      if (p) waits.push(p);
      // Older sources holding the same key are shadowed: skip their entries.
      while (heap.size > 0 && compareKeys(heap.peek()!.entry.key, top.entry.key) === 0) {
        const q = fill(heap.pop().source);
        if (q) waits.push(q);
      }
      if (!(dropTombstones && top.entry.value === null)) out.push(top.entry);
      if (waits.length > 0) {
        await Promise.all(waits.splice(0));
        if (out.length > 0) {
          yield out;
          out = [];
        }
      } else if (out.length >= limit) {
        yield out;
        out = [];
        limit = maxChunk;
      }
    }
    if (out.length > 0) yield out;
  } finally {
    await Promise.all(sources.map(async (s) => { await s.return?.(); }));
  }
}

/** The entries of a chunked stream one at a time (for consumers that go entry by entry). */
export async function* flattenChunks(chunks: AsyncIterable<Entry[]>): AsyncGenerator<Entry> {
  for await (const chunk of chunks) yield* chunk;
}
