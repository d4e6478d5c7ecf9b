/**
 * Opening a Db: taking ownership with a new manifest (a higher writer epoch), replaying the WAL
 * objects not yet flushed to SSTs up to the first gap, and fencing the WAL beyond it, then
 * starting the WAL writer, the segment store and the periodic GC.
 */
import { CryptoWorkers } from "../crypto/crypto-workers.ts";
import type { Sealer } from "../crypto/sealer.ts";
import { ObjectNotFoundError, PreconditionFailedError } from "../store/errors.ts";
import type { ObjectStore } from "../store/object-store.ts";
import { Progress } from "../observability/progress.ts";
import { logRetry, type DbCore } from "./db-core.ts";
import { CorruptObjectError, FencedError } from "./errors.ts";
import { startGcTimer } from "./gc-scheduler.ts";
import { emptyManifest, encodeManifest, readLatestManifest, tryWriteManifest, type ManifestState } from "./manifest.ts";
import { verifyOwnership } from "./manifest-commit.ts";
import { WAL_DIR, parseId, walKey } from "./object-names.ts";
import { openWal, sealWal, WAL_WINDOW, type WalContents } from "./wal-format.ts";
import { WalWriter } from "./wal-writer.ts";
import { Segments } from "./segments/segments.ts";

/**
 * Takes ownership of the database under the store root (creating it when there is none): writes
 * the next manifest with the writer epoch bumped, starting over when another writer takes that
 * manifest id first. Returns the manifest this writer now owns.
 */
export async function claimManifest(store: ObjectStore, manifestSealer: Sealer): Promise<{ id: number; state: ManifestState }> {
  for (let attempt = 0; ; attempt++) {
    const latest = await readLatestManifest(store, manifestSealer);
    const state: ManifestState = latest ? { ...latest.state, epoch: latest.state.epoch + 1 } : { ...emptyManifest(), epoch: 1 };
    const id = latest ? latest.id + 1 : 1;
    if (await tryWriteManifest(store, id, await encodeManifest(id, state, manifestSealer))) return { id, state };
    // Another writer wrote manifest `id` between our read and write: start over.
    if (attempt >= 20) throw new FencedError(`could not take ownership of ${store.description}: manifest ${id} keeps being taken by another writer`);
  }
}

/**
 * Replays WAL objects after the last flushed one up to the first gap, then fences the WAL:
 * claims the gap's id and the WAL_WINDOW - 1 ids after it (deleting strays there), so that
 * nothing above the gap — never acknowledged — is ever read, and a zombie writer can neither
 * acknowledge nor land anything where this writer will write (wal-format.ts, "Ids, gaps and
 * fencing").
 */
export async function recover(db: DbCore): Promise<void> {
  const ids: number[] = [];
  for (const m of await db.store.list(WAL_DIR)) {
    const id = parseId(WAL_DIR, m.key);
    if (id !== undefined && id > db.manifest.walFlushedUpto) ids.push(id);
  }
  ids.sort((a, b) => a - b);
  let expected = db.manifest.walFlushedUpto + 1;
  let replayed = 0;
  let newestEpoch = 0;
  // A volume whose writer died with a big memtable replays many objects: say how far it got.
  const progress = new Progress(ids.length > 0 ? db.log : undefined, {
    task: "wal-replay",
    label: "WAL replay",
    unit: "objects",
    total: ids.length,
    intervalMs: db.opts.progressIntervalMs,
  });
  try {
    for (const id of ids) {
      if (id !== expected) break;
      const body = await db.store.get(walKey(id));
      const contents = await openWal(walKey(id), body, db.walSealer);
      // Writers follow each other in epoch order. An older writer's object after a newer one's
      // is a stray that landed late in the newer writer's space: never acknowledged, and
      // replaying it would resurrect old values over newer ones. Treat it as the end.
      if (contents.epoch < newestEpoch) break;
      newestEpoch = contents.epoch;
      applyWal(db, contents);
      replayed++;
      expected = id + 1;
      progress.add(1, contents.batches.reduce((n, b) => n + b.entries.length, 0), body.length);
    }
  } catch (err) {
    progress.fail(err);
    throw err;
  }
  // A quick replay of nothing but a predecessor's empty fence objects is not news.
  progress.finish({ replayed, lastSeq: db.lastSeq }, progress.records > 0 ? "info" : "debug");
  const strays = ids.filter((id) => id >= expected);
  // A crash leaves strays only within the window after the gap (wal-format.ts). An object
  // further on means the gap is a lost object, not an unfinished upload: refuse, naming it.
  const beyond = strays.find((id) => id >= expected + WAL_WINDOW);
  if (beyond !== undefined) {
    throw new CorruptObjectError(walKey(expected), `missing WAL object (found ${walKey(beyond)}, beyond the ${WAL_WINDOW} uploads a writer has in flight) in ${db.store.description}`);
  }
  if (strays.length > 0) {
    db.log?.warn({ gap: walKey(expected), strays: strays.length, firstStray: walKey(strays[0]!) }, "WAL has a gap (a crash with several uploads in flight): the objects after it were never acknowledged and are discarded");
  }
  // Fence: claim the next WAL id with an empty object. An older writer that raced us into
  // that id has its batch replayed (it may have acknowledged it) and we try the next one.
  let fenceId = expected;
  const epoch = db.manifest.epoch;
  for (;;) {
    const key = walKey(fenceId);
    const body = await sealWal(key, epoch, 0, [], 0, db.walSealer);
    try {
      await db.store.putIfAbsent(key, body);
      break;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      const existing = await db.store.get(key);
      if (existing.equals(body)) break;
      const contents = await openWal(key, existing, db.walSealer);
      if (contents.epoch > epoch) throw new FencedError(`WAL object ${key} in ${db.store.description} belongs to a newer writer (epoch ${contents.epoch}, this writer's ${epoch})`);
      if (contents.epoch < newestEpoch) {
        // A stray in a newer writer's space (see above): never acknowledged.
        await deleteStrayWal(db, fenceId, existing, epoch);
        continue;
      }
      newestEpoch = contents.epoch;
      applyWal(db, contents);
      replayed++;
      fenceId++;
    }
  }
  // We own fenceId: nothing above it was or can be acknowledged. Claim the window after it.
  await Promise.all(Array.from({ length: WAL_WINDOW - 1 }, (_, k) => claimWalId(db, fenceId + 1 + k, epoch)));
  const nextWalId = fenceId + WAL_WINDOW;
  if (db.opts.cryptoThreads > 0) db.cryptoWorkers = new CryptoWorkers(db.opts.cryptoThreads);
  const segmentSealer = db.keys.sealer("lsm/segment", db.cryptoWorkers ? { workers: db.cryptoWorkers } : {});
  db.segmentStore = new Segments(db.store, segmentSealer, epoch, {
    targetBytes: db.opts.segmentTargetBytes,
    maxBufferedBytes: db.opts.segmentMaxBufferedBytes,
    extentCacheBytes: db.opts.extentCacheBytes,
    ...(db.log ? { logger: db.log } : {}),
  });
  const segWriter = db.segmentStore.writer;
  db.wal = new WalWriter(db.store, db.walSealer, epoch, nextWalId, {
    barrier: { mark: () => segWriter.mark(), durableThrough: (m) => segWriter.durableThrough(m) },
    flushIntervalMs: db.opts.flushIntervalMs,
    maxSegmentBytes: db.opts.walMaxSegmentBytes,
    maxInFlight: db.opts.walMaxInFlight,
    parallelAfterMs: db.opts.walParallelAfterMs,
    lingerMs: db.opts.walLingerMs,
    ownershipCheckMs: Math.max(1000, db.opts.gcMinAgeMs / 4),
    verifyOwnership: () => verifyOwnership(db),
    onError: (err, ctx) => logRetry(db.log, err, { objectKey: ctx.objectKey, attempt: ctx.attempt }, "WAL write failed; retrying"),
    onDurable: db.opts.onWalFlush,
  });
  startGcTimer(db);
  db.log?.info({ epoch, manifestId: db.manifestId, replayedWal: replayed, lastSeq: db.lastSeq }, "database opened");
}

/**
 * Deletes a WAL object above this writer's fence: an older writer's, never acknowledged. One
 * of a newer writer means this one has been fenced while it recovered: nothing is deleted.
 */
async function deleteStrayWal(db: DbCore, id: number, data: Buffer, epoch: number): Promise<void> {
  const key = walKey(id);
  const stray = await openWal(key, data, db.walSealer);
  if (stray.epoch > epoch) throw new FencedError(`WAL object ${key} in ${db.store.description} belongs to a newer writer (epoch ${stray.epoch}, this writer's ${epoch})`);
  db.log?.warn({ objectKey: key, epoch: stray.epoch, batches: stray.batches.length }, "deleting a WAL object above the fence (never acknowledged)");
  await db.store.delete(key);
}

/**
 * Claims a WAL id above this writer's fence with an empty object. An object already there is
 * a stray of an older writer, never acknowledged (its id is above our fence): deleted, then
 * the id is claimed again.
 */
async function claimWalId(db: DbCore, id: number, epoch: number): Promise<void> {
  const key = walKey(id);
  const body = await sealWal(key, epoch, 0, [], 0, db.walSealer);
  for (let attempt = 1; ; attempt++) {
    try {
      await db.store.putIfAbsent(key, body);
      return;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      const existing = await db.store.get(key).catch((e: unknown) => {
        if (e instanceof ObjectNotFoundError) return undefined; // deleted meanwhile: claim again
        throw e;
      });
      if (existing?.equals(body)) return;
      if (existing) await deleteStrayWal(db, id, existing, epoch);
      if (attempt >= 5) throw new FencedError(`could not claim WAL object ${key} in ${db.store.description}: another writer keeps writing it`);
    }
  }
}

/** Replays a WAL object's batches into the memtable. */
function applyWal(db: DbCore, contents: WalContents): void {
  for (const batch of contents.batches) {
    for (const e of batch.entries) db.active.put(e.key, e.value, batch.seq, Infinity);
    if (batch.seq > db.lastSeq) db.lastSeq = batch.seq;
  }
}

