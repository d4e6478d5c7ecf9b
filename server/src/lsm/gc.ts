import type { ObjectStore } from "../store/object-store.ts";
import type { ManifestState } from "./manifest.ts";
import { MANIFEST_DIR, SST_DIR, WAL_DIR, parseId } from "./object-names.ts";

/**
 * Garbage collection of objects the current manifest no longer needs:
 * - SSTs not referenced (replaced by compaction, or orphaned by a crashed/fenced writer),
 * - WAL objects fully flushed into SSTs (id ≤ walFlushedUpto),
 * - manifests older than the newest `keepManifests`.
 * Only objects older than `minAgeMs` go: an SST being uploaded by a flush is not yet in the
 * manifest, and a reader may still be using an SST a compaction just replaced.
 */
export interface GcInput {
  manifest: ManifestState;
  manifestId: number;
  /** SSTs in use by open scans. */
  pinned: Set<string>;
  minAgeMs: number;
  now: number;
  keepManifests?: number;
}

export interface GcResult {
  sst: number;
  wal: number;
  manifest: number;
}

export async function collectGarbage(store: ObjectStore, input: GcInput): Promise<GcResult> {
  const { manifest, minAgeMs, now } = input;
  const oldEnough = (d: Date): boolean => now - d.getTime() >= minAgeMs;
  const live = new Set<string>([...manifest.l0.map((r) => r.key), ...manifest.runs.flatMap((r) => r.ssts.map((s) => s.key))]);
  const result: GcResult = { sst: 0, wal: 0, manifest: 0 };

  for (const o of await store.list(SST_DIR)) {
    if (live.has(o.key) || input.pinned.has(o.key) || !oldEnough(o.lastModified)) continue;
    await store.delete(o.key);
    result.sst++;
  }
  for (const o of await store.list(WAL_DIR)) {
    const id = parseId(WAL_DIR, o.key);
    if (id === undefined || id > manifest.walFlushedUpto || !oldEnough(o.lastModified)) continue;
    await store.delete(o.key);
    result.wal++;
  }
  const keep = input.keepManifests ?? 10;
  for (const o of await store.list(MANIFEST_DIR)) {
    const id = parseId(MANIFEST_DIR, o.key);
    if (id === undefined || id > input.manifestId - keep || !oldEnough(o.lastModified)) continue;
    await store.delete(o.key);
    result.manifest++;
  }
  return result;
}
