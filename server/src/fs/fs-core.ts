/**
 * The engine machinery the operations of a ZeroFs share (fs/zerofs.ts is the public facade; the
 * operations live in fs/namespace-ops.ts, fs/data-ops.ts and fs/readdir-op.ts): the inode table,
 * volume counters, inode allocator, per-inode locks, clock, quotas, the background workers the
 * operations feed, and the transaction runner (mutate/apply) whose locking and group-commit
 * rules the header of fs/zerofs.ts explains.
 */
import type { Logger } from "pino";
import type { Db } from "../lsm/db.ts";
import { Clock } from "./clock.ts";
import type { VolumeCounters } from "./counters.ts";
import { fsError } from "./errors.ts";
import { readExtents } from "./extent-data.ts";
import type { InoAllocator } from "./ino-allocator.ts";
import type { Inode } from "./inode-codec.ts";
import { InodeTable } from "./inode-table.ts";
import { KeyedMutex } from "./locks.ts";
import { resolveOptions, type ResolvedOptions, type ZeroFsOptions } from "./options.ts";
import type { Quotas } from "./quota.ts";
import { ReadAhead } from "./read-ahead.ts";
import { Reclaimer } from "./reclaimer.ts";
import { SegmentGc } from "./segment-gc.ts";
import type { TreeReclaimer } from "./tree-reclaimer.ts";
import { LockSetChanged, Txn } from "./txn.ts";
import { FileType, type Time } from "./types.ts";

export class FsCore {
  readonly db: Db;
  readonly rootIno: number;
  readonly quotas: Quotas;
  readonly reclaimer: Reclaimer | undefined;
  readonly segmentGc: SegmentGc | undefined;
  readonly readAhead: ReadAhead | undefined;
  readonly inodes: InodeTable;
  readonly counters: VolumeCounters;
  readonly alloc: InoAllocator;
  readonly locks = new KeyedMutex();
  readonly clock: Clock;
  readonly opts: ResolvedOptions;
  readonly log: Logger | undefined;
  /** Set by ZeroFs.close(): changes fail with EIO and background truncations stop. */
  closed = false;
  /**
   * Truncations a crash interrupted, finishing in the background after open: data writes and
   * size changes of these inodes wait for them, so stale chunks can never reappear.
   */
  readonly pendingTruncations = new Map<number, Promise<void>>();
  readonly afterReclaimBatch: ZeroFsOptions["afterReclaimBatch"];

  constructor(db: Db, rootIno: number, counters: VolumeCounters, alloc: InoAllocator, quotas: Quotas, options: ZeroFsOptions) {
    this.db = db;
    this.quotas = quotas;
    this.rootIno = rootIno;
    this.counters = counters;
    this.alloc = alloc;
    this.log = options.logger;
    this.afterReclaimBatch = options.afterReclaimBatch;
    this.clock = new Clock(options.clock);
    this.inodes = new InodeTable(db, options.inodeCacheEntries ?? 100_000);
    this.opts = resolveOptions(options);
    if (options.readAhead !== false) {
      this.readAhead = new ReadAhead(async (ino, offset, length) => {
        const inode = await this.inodes.require(ino, "read-ahead");
        if (inode.extentBytes !== undefined) await readExtents(this.db, ino, inode.size, offset, length);
      });
    }
    if (options.segmentGc !== false && !this.opts.readOnly) {
      this.segmentGc = new SegmentGc(db, (ino, fn) => this.withInodeLock(ino, fn), {
        ...options.segmentGcOptions,
        ...(options.logger ? { logger: options.logger.child({ component: "segment-gc" }) } : {}),
      });
    }
    if (options.reclaimer !== false && !this.opts.readOnly) {
      this.reclaimer = new Reclaimer(db, {
        batchKeys: this.opts.reclaimBatchKeys,
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.afterReclaimBatch ? { afterBatch: options.afterReclaimBatch } : {}),
      });
    }
  }

  /** Runs `fn` holding inode `ino`'s lock (background work that changes one file's records). */
  async withInodeLock<T>(ino: number, fn: () => Promise<T>): Promise<T> {
    const release = await this.locks.acquire([ino]);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  checkWritable(what: string): void {
    if (this.closed) throw fsError("EIO", `${what}: filesystem is closed`);
    if (this.opts.readOnly) throw fsError("EROFS", `${what}: filesystem is read-only`);
  }

  reserve(tx: Txn, bytes: number, what: string): void {
    if (bytes <= 0) return;
    if (!this.counters.tryReserve(bytes, this.opts.capacityBytes)) {
      throw fsError("ENOSPC", `${what}: ${bytes} more bytes exceed the capacity of ${this.opts.capacityBytes} (${this.counters.usedBytes} used)`);
    }
    tx.reserved += bytes;
  }

  async requireDir(ino: number, what: string): Promise<Inode> {
    const inode = await this.inodes.require(ino, what);
    if (inode.type !== FileType.DIR) throw fsError("ENOTDIR", `${what}: inode ${ino} is not a directory`);
    return inode;
  }

  /** The inode a directory entry points to; a dangling entry is corruption. */
  async requireEntryInode(ino: number, what: string): Promise<Inode> {
    const inode = await this.inodes.get(ino);
    if (!inode) throw fsError("EIO", `${what}: directory entry points to missing inode ${ino}`);
    return inode;
  }

  /**
   * Runs `body` holding the locks of `lockKeys` (or a lock acquisition already queued), commits its changes as one batch, releases the
   * locks, and then (when `durable`) waits until the batch is durable.
   */
  async mutate<T>(what: string, lockKeys: number[] | Promise<() => void>, durable: boolean, body: (tx: Txn) => Promise<T>): Promise<T> {
    if (Array.isArray(lockKeys)) this.checkWritable(what);
    const release = await (Array.isArray(lockKeys) ? this.locks.acquire(lockKeys) : lockKeys);
    const tx = new Txn(what);
    let result: T;
    try {
      result = await body(tx);
      await this.apply(tx);
      if (tx.afterCommit) await tx.afterCommit();
    } finally {
      this.counters.release(tx.reserved);
      // The locks go even if the db has failed meanwhile (its segments accessor then throws).
      try {
        for (const f of tx.frames) this.db.segments.settle(f);
      } finally {
        release();
      }
    }
    if (durable) await this.db.flush();
    return result;
  }

  /**
   * `mutate` for operations whose locks depend on directory entries: `discover` looks them up
   * without locks; `body` re-checks them under the locks and throws LockSetChanged to retry.
   */
  async mutateDiscovered<S, T>(
    what: string,
    discover: () => Promise<{ locks: number[]; state: S }>,
    body: (tx: Txn, state: S) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.checkWritable(what);
      const { locks, state } = await discover();
      try {
        return await this.mutate(what, locks, this.opts.syncMetadata, (tx) => body(tx, state));
      } catch (err) {
        if (!(err instanceof LockSetChanged)) throw err;
        if (attempt >= 100) throw fsError("EIO", `${what}: entries kept changing while acquiring locks`);
      }
    }
  }

  private async apply(tx: Txn): Promise<void> {
    const changes = tx.seal();
    if (tx.batch.isEmpty) return;
    // Quota usage moved by this batch goes into the batch itself (fs/quota.ts); EDQUOT here
    // leaves nothing written.
    const quota = this.quotas.empty ? undefined : await this.quotas.prepare(changes, tx.fresh, (ino) => this.inodes.get(ino), tx.what);
    try {
      const write = (): Promise<void> => this.db.write(tx.batch, { awaitDurable: false });
      await this.counters.commit(tx.batch, tx.shardIno, tx.deltas, quota ? () => this.quotas.commit(tx.batch, tx.shardIno, quota, write) : write);
    } finally {
      if (quota) this.quotas.release(quota);
    }
    for (const [ino, inode] of changes) {
      if (inode) this.inodes.update(inode);
      else this.inodes.remove(ino);
    }
    if (tx.kickReclaimer) this.reclaimer?.kick();
  }
}

/** The engine machinery the quota, claim and tree-reclaim modules use (ZeroFs.internals()). */
export interface FsInternals {
  db: Db;
  quotas: Quotas;
  inodes: InodeTable;
  clock: Clock;
  /** Runs `body` under the locks of `locks` and applies its batch (with quota accounting) as one. */
  mutate<T>(what: string, locks: number[], body: (tx: Txn) => Promise<T>): Promise<T>;
  /** Removes one link of `inode` inside `tx` (the inode and its data go with the last). */
  dropLink(tx: Txn, inode: Inode, now: Time): void;
  checkWritable(what: string): void;
  treeReclaimer(): TreeReclaimer | undefined;
}
