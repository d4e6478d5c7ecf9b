/**
 * A Db's memtables on their way to L0: freezing the active memtable (cutting the WAL there),
 * building and uploading its L0 SSTs at once, and committing them to the manifest in freeze
 * order, retrying while the store fails; writers waiting for room are woken as flushes finish.
 */
import { partitionOf } from "./compactor.ts";
import { isFatal, logRetry, sleep, type DbCore } from "./db-core.ts";
import { maybeCompact } from "./compaction-scheduler.ts";
import type { Entry } from "./entry.ts";
import type { SstRef } from "./manifest.ts";
import { commitManifest } from "./manifest-commit.ts";
import { Memtable } from "./memtable.ts";
import { sstKey } from "./object-names.ts";
import { SstBuilder } from "./sst/sst-builder.ts";

/** Db.flushMemtable: forces the memtable into an L0 SST (tests, clean shutdown). */
export async function flushMemtable(db: DbCore): Promise<void> {
  db.checkOpen();
  if (!db.active.isEmpty) freezeActive(db);
  await db.flushChain;
  db.checkOpen();
}

export function freezeActive(db: DbCore): void {
  const m = db.active;
  m.freeze();
  db.active = new Memtable();
  db.imm = [m, ...db.imm];
  const walDone = db.wal.cut();
  // If the writer has failed, flushImmutable returns without awaiting this; the failure is
  // already reported through `failure`, so don't let it surface as an unhandled rejection.
  walDone.catch(() => undefined);
  // The memtable's SSTs are built and uploaded at once, while the WAL may still be uploading
  // its last batches and while earlier memtables' flushes finish: only the manifest commits,
  // which declare those WAL objects flushed and order L0, wait (in freeze order). A failed
  // build is retried (or reported) by flushImmutable; the catch keeps it from going unhandled.
  const built = writeL0(db, m.entries());
  built.catch(() => undefined);
  db.flushChain = db.flushChain.then(() => flushImmutable(db, m, walDone, built)).catch((err: unknown) => db.fail(err, "memtable flush failed"));
}

async function flushImmutable(db: DbCore, m: Memtable, walDone: Promise<number>, firstBuild: Promise<SstRef[]>): Promise<void> {
  const release = (refs: SstRef[]): void => {
    for (const r of refs) db.unpin(r.key);
  };
  if (db.failure) {
    firstBuild.then(release, () => undefined);
    return;
  }
  let walUpto: number | undefined;
  let refs: SstRef[] = [];
  let pending: Promise<SstRef[]> | undefined = firstBuild;
  for (let attempt = 1; ; attempt++) {
    let built = false;
    try {
      refs = await (pending ?? writeL0(db, m.entries()));
      built = true;
      walUpto ??= await walDone;
      const upto = walUpto;
      await commitManifest(db, (s) => {
        s.l0 = [...refs, ...s.l0];
        s.walFlushedUpto = upto;
        s.lastFlushedSeq = Math.max(s.lastFlushedSeq, m.lastSeq);
      });
      release(refs);
      break;
    } catch (err) {
      pending = undefined;
      // Not committed: the uploaded SSTs are orphans now (a retry builds new ones).
      if (built) release(refs);
      // A failed WAL is final (it failed the writer).
      if (built && walUpto === undefined) throw err;
      // The memtable's data is safe in the WAL; an unreachable store only delays the flush
      // (writers stall once maxImmutableMemtables are waiting). Ownership loss is final.
      if (isFatal(err) || db.failure || db.closed) throw err;
      logRetry(db.log, err, { attempt }, "memtable flush failed; retrying");
      await sleep(Math.min(5000, 100 * 2 ** Math.min(attempt, 6)));
    }
  }
  db.imm = db.imm.filter((x) => x !== m);
  for (const w of db.capacityWaiters.splice(0)) w();
  db.log?.debug({ ssts: refs.map((r) => r.key), entries: refs.reduce((n, r) => n + r.entryCount, 0), walUpto }, "memtable flushed");
  maybeCompact(db);
}

/**
 * Builds and uploads the L0 SSTs of a memtable: one per key partition (see compactor.ts).
 * They stay pinned (GC leaves them alone) until the caller has committed them to the manifest
 * or given up on them, however long that takes.
 */
async function writeL0(db: DbCore, entries: Iterable<Entry>): Promise<SstRef[]> {
  const refs: SstRef[] = [];
  let builder: SstBuilder | undefined;
  let partition = 0;
  const finish = async (): Promise<void> => {
    const b = builder;
    builder = undefined;
    if (!b || b.entryCount === 0) return;
    const { body, info } = await b.finish();
    const ref: SstRef = { key: info.key, size: info.size, firstKey: info.firstKey, lastKey: info.lastKey, entryCount: info.entryCount };
    db.pin(ref.key);
    refs.push(ref);
    await db.store.put(info.key, body);
    db.counters.sstObjects++;
    db.counters.sstBytes += body.length;
  };
  try {
    for (const e of entries) {
      if (builder && partitionOf(e.key) !== partition) await finish();
      if (!builder) {
        builder = new SstBuilder(sstKey(db.nextSstId++, db.manifest.epoch), db.sstSealer, { blockSize: db.opts.sstBlockBytes });
        partition = partitionOf(e.key);
      }
      builder.add(e.key, e.value);
    }
    await finish();
  } catch (err) {
    for (const r of refs) db.unpin(r.key);
    throw err;
  }
  return refs;
}
