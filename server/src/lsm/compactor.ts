import { compareKeys, type Entry } from "./entry.ts";
import type { ManifestState, SstRef } from "./manifest.ts";
import type { SstBuilder } from "./sst/sst-builder.ts";

/**
 * Size-tiered compaction.
 *
 * - When L0 holds `l0CompactionTrigger` SSTs of one key partition (below), all L0 SSTs merge
 *   into a new sorted run (the newest run).
 * - When `runMergeWidth` adjacent runs have similar sizes (largest ≤ runSizeRatio × smallest),
 *   they merge into one run in their place. Only adjacent runs merge, so newer data always sits
 *   in a newer run.
 * Tombstones are dropped only when the output is the oldest data there is (`bottom`).
 *
 * Key partitions: the first byte of a key names its partition (the filesystem gives each kind
 * of record its own first byte), and no SST written by a flush or a compaction spans two
 * partitions. So bulk data (file chunks) never shares an SST with the small, constantly
 * rewritten keys (inodes, counters), and the SSTs of data written sequentially do not overlap.
 * A compaction input SST that overlaps no other input holds the newest version of every key in
 * its range already: it is moved into the output run as it is (a trivial move) instead of being
 * decrypted, merged and sealed again — when it is at least `moveMinBytes` (smaller ones are
 * rewritten, so that runs do not collect tiny objects).
 */

/** The partition of a key: its first byte (-1 for the empty key). */
export function partitionOf(key: Uint8Array): number {
  return key.length > 0 ? key[0]! : -1;
}

/** The most L0 SSTs any one partition has (what a read of one key may have to look into). */
export function l0Depth(l0: readonly SstRef[]): number {
  const counts = new Map<number, number>();
  let max = 0;
  for (const ref of l0) {
    // SSTs written before partitioning may span several; count them in each.
    for (let p = partitionOf(ref.firstKey); p <= partitionOf(ref.lastKey); p++) {
      const n = (counts.get(p) ?? 0) + 1;
      counts.set(p, n);
      if (n > max) max = n;
    }
  }
  return max;
}

/**
 * The input SSTs that can move into the output run unchanged: those of at least `minBytes`
 * whose key range overlaps no other input's. (A moved SST keeps its tombstones even in a bottom
 * compaction: they cost space until a later merge, never correctness.)
 */
export function trivialMoves(inputs: readonly SstRef[], minBytes: number): Set<string> {
  const sorted = [...inputs].sort((a, b) => compareKeys(a.firstKey, b.firstKey));
  const moves = new Set<string>();
  let i = 0;
  while (i < sorted.length) {
    // One group of transitively overlapping SSTs: [i, j).
    let lastKey = sorted[i]!.lastKey;
    let j = i + 1;
    while (j < sorted.length && compareKeys(sorted[j]!.firstKey, lastKey) <= 0) {
      if (compareKeys(sorted[j]!.lastKey, lastKey) > 0) lastKey = sorted[j]!.lastKey;
      j++;
    }
    if (j === i + 1 && sorted[i]!.size >= minBytes) moves.add(sorted[i]!.key);
    i = j;
  }
  return moves;
}
export interface CompactionJob {
  l0: SstRef[];
  /** Ids of adjacent runs, newest first. */
  runIds: number[];
  bottom: boolean;
}

export interface CompactionPolicy {
  l0CompactionTrigger: number;
  runMergeWidth: number;
  runSizeRatio: number;
}

const runBytes = (ssts: SstRef[]): number => ssts.reduce((n, s) => n + s.size, 0);

export function pickCompaction(m: ManifestState, policy: CompactionPolicy): CompactionJob | undefined {
  // The second bound keeps the L0 list (checked by every read) short whatever the partitions.
  if (l0Depth(m.l0) >= policy.l0CompactionTrigger || m.l0.length >= 8 * policy.l0CompactionTrigger) {
    return { l0: [...m.l0], runIds: [], bottom: m.runs.length === 0 };
  }
  const width = Math.max(2, policy.runMergeWidth);
  // Prefer the newest window: young runs are small and cheap to merge.
  for (let i = 0; i + width <= m.runs.length; i++) {
    const window = m.runs.slice(i, i + width);
    const sizes = window.map((r) => runBytes(r.ssts));
    if (Math.max(...sizes) <= policy.runSizeRatio * Math.max(1, Math.min(...sizes))) {
      return { l0: [], runIds: window.map((r) => r.id), bottom: i + width === m.runs.length };
    }
  }
  return undefined;
}

export interface CompactionOutput {
  targetBytes: number;
  newBuilder: () => SstBuilder;
  upload: (key: string, body: Buffer) => Promise<void>;
}

/**
 * Writes the merged stream into SSTs split at the target size and at partition boundaries, with
 * the `moved` SSTs (which overlap nothing in the stream) placed in key order between them;
 * returns the output run's SSTs in key order.
 */
export async function runCompaction(merged: AsyncIterable<Entry>, out: CompactionOutput, moved: readonly SstRef[] = []): Promise<SstRef[]> {
  const refs: SstRef[] = [];
  const pending = [...moved].sort((a, b) => compareKeys(a.firstKey, b.firstKey));
  let next = 0;
  let builder: SstBuilder | undefined;
  let partition = 0;
  const finish = async (): Promise<void> => {
    const b = builder;
    builder = undefined;
    if (!b || b.entryCount === 0) return;
    const { body, info } = await b.finish();
    await out.upload(info.key, body);
    refs.push({ key: info.key, size: info.size, firstKey: info.firstKey, lastKey: info.lastKey, entryCount: info.entryCount });
  };
  for await (const e of merged) {
    if (next < pending.length && compareKeys(pending[next]!.firstKey, e.key) < 0) {
      await finish();
      while (next < pending.length && compareKeys(pending[next]!.firstKey, e.key) < 0) refs.push(pending[next++]!);
    }
    if (builder && partitionOf(e.key) !== partition) await finish();
    if (!builder) {
      builder = out.newBuilder();
      partition = partitionOf(e.key);
    }
    builder.add(e.key, e.value);
    if (builder.estimatedSize >= out.targetBytes) await finish();
  }
  await finish();
  while (next < pending.length) refs.push(pending[next++]!);
  return refs;
}
