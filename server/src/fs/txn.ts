/**
 * The changes of one filesystem operation, collected while its locks are held and applied as
 * ONE atomic write batch. Inode changes are kept by id until commit so an inode touched twice
 * (rename within one directory) is written once with its final state.
 */
import type { FrameRef } from "../lsm/segments/segments.ts";
import { WriteBatch } from "../lsm/write-batch.ts";
import type { CounterDeltas } from "./counters.ts";
import { encodeInode, type Inode } from "./inode-codec.ts";
import { inodeKey } from "./keys.ts";

export class Txn {
  /** The operation, for error messages. */
  readonly what: string;
  readonly batch = new WriteBatch();
  readonly deltas: CounterDeltas = { bytes: 0, inodes: 0 };
  /** Capacity reserved for this operation (released once committed or abandoned). */
  reserved = 0;
  /** The inode whose counter shard takes the deltas. */
  shardIno = 0;
  /** A tombstone was written: wake the reclaimer after commit. */
  kickReclaimer = false;
  /** Runs after the commit while the locks are still held (chunk deletion of a big truncate). */
  afterCommit: (() => Promise<void>) | undefined;
  /** Segment frames appended for this operation: settled once it is applied or abandoned. */
  readonly frames: FrameRef[] = [];
  private readonly inodes = new Map<number, Inode | null>();
  /** Inodes this operation creates (they have no earlier state to account quota usage against). */
  readonly fresh = new Set<number>();

  constructor(what = "operation") {
    this.what = what;
  }

  put(inode: Inode): void {
    this.inodes.set(inode.ino, inode);
  }

  /** Puts a new inode. */
  create(inode: Inode): void {
    this.fresh.add(inode.ino);
    this.inodes.set(inode.ino, inode);
  }

  drop(ino: number): void {
    this.inodes.set(ino, null);
  }

  /** Adds the inode records to the batch; returns the changes for the inode cache. */
  seal(): ReadonlyMap<number, Inode | null> {
    for (const [ino, inode] of this.inodes) {
      if (inode) this.batch.put(inodeKey(ino), encodeInode(inode));
      else this.batch.delete(inodeKey(ino));
    }
    return this.inodes;
  }
}

/** Thrown inside an operation when the entries it locked changed before it got the locks. */
export class LockSetChanged extends Error {
  constructor() {
    super("directory entries changed while acquiring locks; retrying");
    this.name = "LockSetChanged";
  }
}
