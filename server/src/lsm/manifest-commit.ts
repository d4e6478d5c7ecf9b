/**
 * Committing a Db's manifest updates (memtable flushes, compactions) one at a time, and the
 * ownership check behind them: a manifest id taken by someone else, or a newer manifest than
 * ours in the store, means another writer owns the database and this one is fenced.
 */
import { isFatal, logRetry, sleep, type DbCore } from "./db-core.ts";
import { FencedError } from "./errors.ts";
import { encodeManifest, listManifestIds, tryWriteManifest, type ManifestState } from "./manifest.ts";

/** Serialized manifest update; losing the put-if-absent means we were fenced. */
export function commitManifest(db: DbCore, mutate: (s: ManifestState) => void): Promise<void> {
  const run = async (): Promise<void> => {
    db.checkOpen(true);
    const next: ManifestState = { ...db.manifest, l0: [...db.manifest.l0], runs: [...db.manifest.runs] };
    mutate(next);
    next.nextSstId = db.nextSstId;
    next.nextRunId = db.nextRunId;
    const id = db.manifestId + 1;
    if (Date.now() - db.lastOwnershipProof > Math.max(1000, db.opts.gcMinAgeMs / 4)) await verifyOwnership(db);
    const body = await encodeManifest(id, next, db.manifestSealer);
    let ok: boolean;
    for (let attempt = 1; ; attempt++) {
      try {
        ok = await tryWriteManifest(db.store, id, body);
        break;
      } catch (err) {
        // The put may or may not have landed; retrying the same bytes at the same id
        // settles it (identical bytes found = ours), where a new body would look like a
        // rival writer.
        if (isFatal(err) || db.failure) throw err;
        logRetry(db.log, err, { attempt, manifestId: id }, "manifest write failed; retrying");
        await sleep(Math.min(5000, 50 * 2 ** Math.min(attempt, 7)));
      }
    }
    if (!ok) {
      const err = new FencedError(`manifest ${id} in ${db.store.description} was written by another writer (this writer's epoch ${db.manifest.epoch})`);
      db.fail(err, "fenced");
      throw err;
    }
    db.lastOwnershipProof = Date.now();
    db.manifest = next;
    db.manifestId = id;
  };
  const p = db.manifestLock.then(run);
  db.manifestLock = p.catch(() => undefined);
  return p;
}

/** Fails with FencedError when a newer manifest than ours exists. */
export async function verifyOwnership(db: DbCore): Promise<void> {
  const ids = await listManifestIds(db.store);
  const latest = ids[ids.length - 1] ?? 0;
  if (latest > db.manifestId) {
    const err = new FencedError(`manifest ${latest} in ${db.store.description} is newer than this writer's ${db.manifestId}`);
    db.fail(err, "fenced");
    throw err;
  }
  db.lastOwnershipProof = Date.now();
}
