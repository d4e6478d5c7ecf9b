/**
 * When a Db collects garbage (gc.ts decides what is garbage): on demand, one run at a time,
 * and every gcIntervalMs in the background.
 */
import { logRetry, type DbCore } from "./db-core.ts";
import { collectGarbage, type GcResult } from "./gc.ts";

/** Db.runGc: deletes unreferenced SST, WAL and manifest objects older than gcMinAgeMs. */
export function runGc(db: DbCore, now = Date.now()): Promise<GcResult> {
  db.checkOpen();
  db.gcRunning ??= collectGarbage(db.store, {
    manifest: db.manifest,
    manifestId: db.manifestId,
    pinned: new Set(db.pinned.keys()),
    minAgeMs: db.opts.gcMinAgeMs,
    now,
  }).finally(() => {
    db.gcRunning = undefined;
  });
  return db.gcRunning;
}

/** Starts the periodic GC (when gcIntervalMs > 0); close() stops it. */
export function startGcTimer(db: DbCore): void {
  if (db.opts.gcIntervalMs > 0) {
    db.gcTimer = setInterval(() => {
      runGc(db).catch((err: unknown) => logRetry(db.log, err, {}, "garbage collection failed"));
    }, db.opts.gcIntervalMs);
    db.gcTimer.unref();
  }
}
