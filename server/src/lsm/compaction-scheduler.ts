/**
 * When and how a Db compacts: background compaction after memtable flushes (with a backoff
 * while the store fails), compaction of everything on demand, and committing a compaction's
 * output run to the manifest (compactor.ts picks the jobs and writes the SSTs).
 */
import { pickCompaction, runCompaction, trivialMoves, type CompactionJob } from "./compactor.ts";
import { isFatal, logRetry, sleep, type DbCore } from "./db-core.ts";
import type { SortedRun, SstRef } from "./manifest.ts";
import { commitManifest } from "./manifest-commit.ts";
import { flattenChunks, mergeChunks, type ChunkSource } from "./merge-iterator.ts";
import { sstKey } from "./object-names.ts";
import { runSource, sstSource } from "./read-path.ts";
import { SstBuilder } from "./sst/sst-builder.ts";

export function maybeCompact(db: DbCore): void {
  if (!db.opts.autoCompact || db.compaction || db.closing || db.failure) return;
  const job = pickCompaction(db.manifest, db.opts);
  if (!job) return;
  db.compaction = compact(db, job)
    .then(
      () => {
        db.compactionBackoffMs = 0;
      },
      async (err: unknown) => {
        if (isFatal(err)) return db.fail(err, "compaction failed");
        // Inputs stay in place; try again later rather than hammer a failing store.
        db.compactionBackoffMs = Math.min(30_000, Math.max(200, db.compactionBackoffMs * 2));
        logRetry(db.log, err, { retryInMs: db.compactionBackoffMs }, "compaction failed; will retry");
        await sleep(db.compactionBackoffMs);
      },
    )
    .finally(() => {
      db.compaction = undefined;
      maybeCompact(db);
    });
}

/** The part of Db.compactAll after the memtable flush: everything into one sorted run. */
export async function compactAllFlushed(db: DbCore): Promise<void> {
  while (db.compaction) await db.compaction;
  const m = db.manifest;
  if (m.l0.length === 0 && m.runs.length <= 1) return;
  const job: CompactionJob = { l0: [...m.l0], runIds: m.runs.map((r) => r.id), bottom: true };
  db.compaction = compact(db, job).finally(() => {
    db.compaction = undefined;
  });
  await db.compaction;
}

async function compact(db: DbCore, job: CompactionJob): Promise<void> {
  const runsById = new Map(db.manifest.runs.map((r) => [r.id, r]));
  const inputRuns = job.runIds.map((id) => runsById.get(id)).filter((r): r is SortedRun => r !== undefined);
  const inputs = [...job.l0, ...inputRuns.flatMap((r) => r.ssts)];
  // Inputs that overlap no other input move into the output run as they are.
  const moves = trivialMoves(inputs, db.opts.trivialMoveMinBytes);
  const rewrite = (ref: SstRef): boolean => !moves.has(ref.key);
  for (const ref of inputs) db.pin(ref.key);
  try {
    const sources: ChunkSource[] = [
      ...job.l0.filter(rewrite).map((ref) => sstSource(db, ref, undefined, undefined)),
      ...inputRuns.map((run) => runSource(db, { id: run.id, ssts: run.ssts.filter(rewrite) }, undefined, undefined)),
    ];
    const outputs = await runCompaction(flattenChunks(mergeChunks(sources, job.bottom)), {
      targetBytes: db.opts.sstTargetBytes,
      newBuilder: () => {
        const key = sstKey(db.nextSstId++, db.manifest.epoch);
        return new SstBuilder(key, db.sstSealer, { blockSize: db.opts.sstBlockBytes });
      },
      upload: async (key, body) => {
        db.checkOpen(true);
        await db.store.put(key, body);
        db.counters.sstObjects++;
        db.counters.sstBytes += body.length;
        db.counters.compactionBytes += body.length;
      },
    }, inputs.filter((ref) => moves.has(ref.key)));
    const run: SortedRun = { id: db.nextRunId++, ssts: outputs };
    const l0Keys = new Set(job.l0.map((r) => r.key));
    const runIds = new Set(job.runIds);
    await commitManifest(db, (s) => {
      s.l0 = s.l0.filter((r) => !l0Keys.has(r.key));
      const firstIdx = s.runs.findIndex((r) => runIds.has(r.id));
      const rest = s.runs.filter((r) => !runIds.has(r.id));
      // L0 data is newer than every run; merged runs take the place of the newest input.
      const at = job.runIds.length === 0 || firstIdx < 0 ? 0 : firstIdx;
      if (run.ssts.length > 0) rest.splice(at, 0, run);
      s.runs = rest;
    });
    db.counters.compactions++;
    for (const ref of inputs.filter(rewrite)) {
      db.readers.delete(ref.key);
      db.blockCache.evictObject(ref.key);
    }
    db.log?.debug({ inputs: inputs.length, moved: moves.size, outputs: outputs.length, run: run.id }, "compaction done");
  } finally {
    for (const ref of inputs) db.unpin(ref.key);
  }
}
