/**
 * Data operations of ZeroFs (fs/zerofs.ts): READ, WRITE, COMMIT and SETATTR (with the data side
 * of a size change), and the background resumption of truncations a crash interrupted.
 */
import { DbClosedError } from "../lsm/errors.ts";
import { attrsOf, wccAttr } from "./attrs.ts";
import { timeEquals } from "./clock.ts";
import { fsError } from "./errors.ts";
import { blockCount, planExtentTruncate, planExtentWrite, prepareWrite, readExtents } from "./extent-data.ts";
import { MAX_FILE_SIZE, planTruncate, planWrite, readData } from "./file-data.ts";
import type { FsCore } from "./fs-core.ts";
import type { Inode } from "./inode-codec.ts";
import { tombstoneKey } from "./keys.ts";
import { RTMAX, WTMAX } from "./limits.ts";
import { Perm, isRoot, modeAfterUnprivilegedWrite, requireDataPerm } from "./permissions.ts";
import { deleteChunkRange, listTombstones } from "./reclaimer.ts";
import { TombstoneKind, decodeTombstone, encodeTombstone, type Tombstone } from "./records.ts";
import { applySetattr, hasAnyAttr } from "./setattr.ts";
import type { Txn } from "./txn.ts";
import { FileType, StableHow, type Cred, type ReadResult, type ReadvResult, type SetAttrs, type Time, type Wcc, type WriteResult } from "./types.ts";

function sameTime(a: Time, b: Time): boolean {
  return timeEquals(a, b);
}

export async function read(core: FsCore, cred: Cred, ino: number, offset: number, count: number): Promise<ReadResult> {
  const r = await readv(core, cred, ino, offset, count);
  return { data: r.parts.length === 1 ? r.parts[0]! : Buffer.concat(r.parts, r.length), eof: r.eof, attrs: r.attrs };
}

/** READ as pieces in order (views of cached data: never modify them), for writev. */
export async function readv(core: FsCore, cred: Cred, ino: number, offset: number, count: number): Promise<ReadvResult> {
  const inode = await core.inodes.require(ino, "read");
  if (inode.type === FileType.DIR) throw fsError("EISDIR", `read: inode ${ino} is a directory`);
  if (inode.type !== FileType.REG) throw fsError("EINVAL", `read: inode ${ino} is not a regular file`);
  requireDataPerm(cred, inode, Perm.R, "read");
  if (!Number.isSafeInteger(offset) || offset < 0) throw fsError("EINVAL", `read: invalid offset ${offset} of inode ${ino}`);
  const n = Math.min(Math.max(0, count), RTMAX);
  if (inode.extentBytes !== undefined) {
    core.readAhead?.note(ino, inode.size, offset, n);
    return { ...(await readExtents(core.db, ino, inode.size, offset, n)), attrs: attrsOf(inode) };
  }
  const { data, eof } = await readData(core.db, ino, inode.size, offset, n);
  return { parts: [data], length: data.length, eof, attrs: attrsOf(inode) };
}

/**
 * WRITE. UNSTABLE returns once the batch is applied (readable, not yet durable); DATA_SYNC and
 * FILE_SYNC wait until it is durable and report FILE_SYNC (data and attributes are logged
 * together in one batch). `data` may be a view of a buffer the caller reuses later: every byte
 * kept is copied, unless the caller hands it over (`owned`: it never changes `data` again).
 */
export async function write(core: FsCore, cred: Cred, ino: number, offset: number, data: Buffer, stable: StableHow, owned = false): Promise<WriteResult> {
  if (!Number.isSafeInteger(offset) || offset < 0) throw fsError("EINVAL", `write: invalid offset ${offset} of inode ${ino}`);
  if (data.length > WTMAX) throw fsError("EINVAL", `write: ${data.length} bytes exceed the maximum of ${WTMAX}`);
  const end = offset + data.length;
  if (end > MAX_FILE_SIZE) throw fsError("EFBIG", `write: end offset ${end} of inode ${ino} exceeds the maximum file size ${MAX_FILE_SIZE}`);
  const durable = stable !== StableHow.UNSTABLE;
  await core.pendingTruncations.get(ino);
  await core.db.segments.waitForRoom();
  core.checkWritable("write");
  // Writes to a file apply in arrival order: the lock is queued for now, while the data is
  // split and compressed outside it (concurrently with other writes); the inode is re-checked
  // under the lock (a file's layout only ever changes from 1 to 2).
  const locked = core.locks.acquire([ino]);
  const early = data.length > 0 && core.inodes.peek(ino)?.extentBytes !== undefined ? prepareWrite(core.db.segments, offset, data, owned) : undefined;
  early?.catch(() => undefined);
  return core.mutate("write", locked, durable, async (tx) => {
    const inode = await core.inodes.require(ino, "write");
    if (inode.type === FileType.DIR) throw fsError("EISDIR", `write: inode ${ino} is a directory`);
    if (inode.type !== FileType.REG) throw fsError("EINVAL", `write: inode ${ino} is not a regular file`);
    requireDataPerm(cred, inode, Perm.W, "write");
    const before = wccAttr(inode);
    if (data.length === 0) return { count: 0, committed: durable ? StableHow.FILE_SYNC : StableHow.UNSTABLE, wcc: { before, after: attrsOf(inode) } };
    const newSize = Math.max(inode.size, end);
    core.quotas.precheck(inode.project, newSize - inode.size, `write of ${data.length} bytes at ${offset} to inode ${ino}`);
    core.reserve(tx, newSize - inode.size, `write of ${data.length} bytes at ${offset} to inode ${ino}`);
    const now = core.clock.now();
    const next: Inode = { ...inode, size: newSize, mtime: now, ctime: now };
    if (inode.extentBytes !== undefined) {
      const prepared = await (early ?? prepareWrite(core.db.segments, offset, data, owned));
      const plan = await planExtentWrite(core.db, tx.batch, ino, inode.size, prepared);
      tx.frames.push(...plan.frames);
      core.segmentGc?.noteFreed(plan.freed);
      next.extentBytes = inode.extentBytes + plan.delta;
    } else next.chunks = await planWrite(core.db, tx.batch, ino, inode.size, offset, data, inode.chunks);
    if (!isRoot(cred)) next.mode = modeAfterUnprivilegedWrite(next.mode);
    tx.put(next);
    tx.deltas.bytes += newSize - inode.size;
    tx.shardIno = ino;
    return { count: data.length, committed: durable ? StableHow.FILE_SYNC : StableHow.UNSTABLE, wcc: { before, after: attrsOf(next) } };
  });
}

/** COMMIT: everything written so far becomes durable. */
export async function commit(core: FsCore, ino: number): Promise<Wcc> {
  const inode = await core.inodes.require(ino, "commit");
  await core.db.flush();
  return { before: wccAttr(inode), after: attrsOf((await core.inodes.get(ino)) ?? inode) };
}

/** SETATTR, with the optional ctime guard (NOT_SYNC when the file changed meanwhile). */
export async function setattr(core: FsCore, cred: Cred, ino: number, attrs: SetAttrs, guardCtime?: Time): Promise<Wcc> {
  if (attrs.size !== undefined) await core.pendingTruncations.get(ino);
  return core.mutate("setattr", [ino], core.opts.syncMetadata, async (tx) => {
    const inode = await core.inodes.require(ino, "setattr");
    if (guardCtime && !sameTime(guardCtime, inode.ctime)) throw fsError("NOT_SYNC", `setattr: ctime guard does not match inode ${ino}`);
    const before = wccAttr(inode);
    if (!hasAnyAttr(attrs)) return { before, after: attrsOf(inode) };
    const now = core.clock.now();
    const next = applySetattr(cred, inode, attrs, now);
    if (attrs.size !== undefined) Object.assign(next, await resize(core, tx, inode, attrs.size));
    tx.put(next);
    return { before, after: attrsOf(next) };
  });
}

/**
 * Data side of a size change; the caller holds the inode lock and puts the new inode with the
 * stored-chunk count returned here.
 */
async function resize(core: FsCore, tx: Txn, inode: Inode, newSize: number): Promise<Pick<Inode, "chunks" | "extentBytes">> {
  const growth = newSize - inode.size;
  core.reserve(tx, growth, `resize of inode ${inode.ino} to ${newSize}`);
  tx.deltas.bytes += growth;
  tx.shardIno = inode.ino;
  if (inode.extentBytes !== undefined) {
    const plan = await planExtentTruncate(core.db, tx.batch, inode.ino, inode.size, newSize);
    core.segmentGc?.noteFreed(plan.freed);
    if (plan.restFrom !== undefined) deleteRestAfterCommit(core, tx, inode.ino, { kind: TombstoneKind.EXTENTS_TRUNCATED, from: plan.restFrom, to: blockCount(inode.size) });
    return { chunks: undefined, extentBytes: inode.extentBytes + plan.delta };
  }
  const { chunks, rest } = await planTruncate(core.db, tx.batch, inode.ino, inode.size, newSize, inode.chunks);
  if (rest) deleteRestAfterCommit(core, tx, inode.ino, { kind: TombstoneKind.TRUNCATED, from: rest.from, to: rest.to });
  // A v1 file emptied by truncation has no chunks left: it continues in layout 2.
  if (newSize === 0 && core.opts.dataLayout !== 1) return { chunks: undefined, extentBytes: 0 };
  return { chunks, extentBytes: undefined };
}

/**
 * Too many keys for one batch: record the intent with the size change, then delete the stored
 * ones (found by a range scan: O(stored keys), not O(size)) in bounded batches before
 * releasing the lock. A crash in between leaves the tombstone, which open() resumes in the
 * background while holding this file's writers back, so stale data can never reappear.
 */
function deleteRestAfterCommit(core: FsCore, tx: Txn, ino: number, tombstone: Tombstone): void {
  tx.batch.put(tombstoneKey(ino), encodeTombstone(tombstone));
  tx.afterCommit = async () => {
    await deleteChunkRange(core.db, ino, tombstone, { batchKeys: core.opts.reclaimBatchKeys });
  };
}

/**
 * Registers the truncations a crash interrupted (listing tombstones is cheap; the deletions are
 * not) and finishes them one after another in the background. Each batch runs under the
 * inode's lock and re-reads the tombstone: a REMOVE meanwhile replaces it with a DELETED one,
 * which the reclaimer then owns.
 */
export async function resumeInterruptedTruncations(core: FsCore): Promise<void> {
  const pending = await listTombstones(core.db, [TombstoneKind.TRUNCATED, TombstoneKind.EXTENTS_TRUNCATED]);
  if (pending.length === 0) return;
  let chain = Promise.resolve();
  for (const { ino, tombstone } of pending) {
    const done = chain.then(() => finishTruncation(core, ino, tombstone));
    chain = done;
    core.pendingTruncations.set(ino, done);
    void done.finally(() => core.pendingTruncations.delete(ino));
  }
}

async function finishTruncation(core: FsCore, ino: number, first: Tombstone): Promise<void> {
  core.log?.info({ ino, from: first.from }, "finishing interrupted truncation in the background");
  for (let attempt = 0; !core.closed; attempt++) {
    try {
      for (;;) {
        if (core.closed) return;
        const release = await core.locks.acquire([ino]);
        try {
          const raw = await core.db.get(tombstoneKey(ino));
          const t = raw ? decodeTombstone(raw, ino) : undefined;
          if (t?.kind !== TombstoneKind.TRUNCATED && t?.kind !== TombstoneKind.EXTENTS_TRUNCATED) return;
          // One batch per lock hold, so other requests for this file interleave.
          const finished = await deleteChunkRange(core.db, ino, t, { batchKeys: core.opts.reclaimBatchKeys, maxBatches: 1, ...(core.afterReclaimBatch ? { afterBatch: core.afterReclaimBatch } : {}) });
          if (finished) return;
        } finally {
          release();
        }
      }
    } catch (err) {
      if (err instanceof DbClosedError || core.closed) return;
      core.log?.warn({ ino, err: err instanceof Error ? err.message : String(err), attempt }, "interrupted truncation failed; retrying in 1 s");
      await new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
    }
  }
}
