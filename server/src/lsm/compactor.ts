import type { Entry } from "./entry.ts";
import type { ManifestState, SstRef } from "./manifest.ts";
import type { SstBuilder } from "./sst/sst-builder.ts";

/**
 * Size-tiered compaction.
 *
 * - When L0 holds `l0CompactionTrigger` SSTs, all of them merge into a new sorted run (the
 *   newest run).
 * - When `runMergeWidth` adjacent runs have similar sizes (largest ≤ runSizeRatio × smallest),
 *   they merge into one run in their place. Only adjacent runs merge, so newer data always sits
 *   in a newer run.
 * Tombstones are dropped only when the output is the oldest data there is (`bottom`).
 */
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
  if (m.l0.length >= policy.l0CompactionTrigger) {
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

/** Writes the merged stream into SSTs split at the target size; returns them in key order. */
export async function runCompaction(merged: AsyncIterable<Entry>, out: CompactionOutput): Promise<SstRef[]> {
  const refs: SstRef[] = [];
  let builder: SstBuilder | undefined;
  const finish = async (b: SstBuilder): Promise<void> => {
    const { body, info } = await b.finish();
    await out.upload(info.key, body);
    refs.push({ key: info.key, size: info.size, firstKey: info.firstKey, lastKey: info.lastKey, entryCount: info.entryCount });
  };
  for await (const e of merged) {
    builder ??= out.newBuilder();
    builder.add(e.key, e.value);
    if (builder.estimatedSize >= out.targetBytes) {
      await finish(builder);
      builder = undefined;
    }
  }
  if (builder && builder.entryCount > 0) await finish(builder);
  return refs;
}
