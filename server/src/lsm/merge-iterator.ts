import { compareKeys, type Entry } from "./entry.ts";

/** A source of entries in ascending key order, each key at most once. */
export type EntrySource = AsyncIterator<Entry> | Iterator<Entry>;

interface HeapItem {
  entry: Entry;
  /** Lower index = newer source; it wins ties. */
  source: number;
}

function less(a: HeapItem, b: HeapItem): boolean {
  const c = compareKeys(a.entry.key, b.entry.key);
  return c < 0 || (c === 0 && a.source < b.source);
}

/**
 * K-way merge of sorted sources, newest source first. For each key only the newest source's
 * entry comes out; tombstones come out too unless `dropTombstones` (callers merging into the
 * oldest data, or reading, drop them).
 */
export async function* mergeEntries(sources: EntrySource[], dropTombstones: boolean): AsyncGenerator<Entry> {
  const heap: HeapItem[] = [];
  const push = (item: HeapItem): void => {
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const pop = (): HeapItem => {
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
  };
  const advance = async (source: number): Promise<void> => {
    const r = await sources[source]!.next();
    if (!r.done) push({ entry: r.value, source });
  };

  try {
    await Promise.all(sources.map((_, i) => advance(i)));
    while (heap.length > 0) {
      const top = pop();
      const refills = [advance(top.source)];
      // Older sources holding the same key are shadowed: skip their entries.
      while (heap.length > 0 && compareKeys(heap[0]!.entry.key, top.entry.key) === 0) {
        refills.push(advance(pop().source));
      }
      await Promise.all(refills);
      if (dropTombstones && top.entry.value === null) continue;
      yield top.entry;
    }
  } finally {
    await Promise.all(sources.map(async (s) => { await s.return?.(); }));
  }
}
