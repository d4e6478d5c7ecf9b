/**
 * Volume counters (used bytes, inode count) kept as sharded keys. Each operation folds its
 * deltas into one shard chosen by the inode it is about, so operations on different inodes
 * mostly touch different counter keys and only serialize on a shard's lock for the instant of
 * their commit. The totals are the sums over the shards; all shards are loaded at open and the
 * in-memory copy is authoritative afterwards (this process is the only writer).
 *
 * Capacity: bytes an operation is about to add are reserved synchronously before its commit,
 * so two concurrent writers cannot both squeeze under the limit.
 */
import type { Db } from "../lsm/db.ts";
import type { WriteBatch } from "../lsm/write-batch.ts";
import { COUNTER_SHARDS, CounterKind, counterKey, counterRange, parseCounterKey, type ShardedCounterKind } from "./keys.ts";
import { KeyedMutex } from "./locks.ts";
import { decodeCounter, encodeCounter } from "./records.ts";

export interface CounterDeltas {
  bytes: number;
  inodes: number;
}

export class VolumeCounters {
  private readonly bytes = new Array<number>(COUNTER_SHARDS).fill(0);
  private readonly inodes = new Array<number>(COUNTER_SHARDS).fill(0);
  private readonly shardLocks = new KeyedMutex();
  private reserved = 0;

  static async load(db: Db): Promise<VolumeCounters> {
    const c = new VolumeCounters();
    for (const kind of [CounterKind.USED_BYTES, CounterKind.INODES] as const) {
      const [from, to] = counterRange(kind);
      for await (const e of db.scan(from, to)) {
        const { shard } = parseCounterKey(e.key);
        // A shard ≥ COUNTER_SHARDS (a build with more shards wrote it) still counts in the sums.
        c.array(kind)[shard] = decodeCounter(e.value!, `${kind}/${shard}`);
      }
    }
    return c;
  }

  private array(kind: ShardedCounterKind): number[] {
    return kind === CounterKind.USED_BYTES ? this.bytes : this.inodes;
  }

  get usedBytes(): number {
    return this.bytes.reduce((a, b) => a + b, 0);
  }

  get inodeCount(): number {
    return this.inodes.reduce((a, b) => a + b, 0);
  }

  /** Reserves `n` bytes unless that would exceed `capacity`; false means ENOSPC. */
  tryReserve(n: number, capacity: number | undefined): boolean {
    if (n <= 0) return true;
    if (capacity !== undefined && this.usedBytes + this.reserved + n > capacity) return false;
    this.reserved += n;
    return true;
  }

  release(n: number): void {
    if (n > 0) this.reserved -= n;
  }

  /**
   * Applies `write` (which must put `batch` into the db) with the shard's new values added to
   * the batch, holding the shard lock so shard values are written in the order they were computed.
   */
  async commit(batch: WriteBatch, shardOf: number, deltas: CounterDeltas, write: () => Promise<void>): Promise<void> {
    if (deltas.bytes === 0 && deltas.inodes === 0) return write();
    const shard = shardOf % COUNTER_SHARDS;
    const release = await this.shardLocks.acquire([shard]);
    try {
      const bytes = this.bytes[shard]! + deltas.bytes;
      const inodes = this.inodes[shard]! + deltas.inodes;
      if (deltas.bytes !== 0) batch.put(counterKey(CounterKind.USED_BYTES, shard), encodeCounter(bytes));
      if (deltas.inodes !== 0) batch.put(counterKey(CounterKind.INODES, shard), encodeCounter(inodes));
      await write();
      this.bytes[shard] = bytes;
      this.inodes[shard] = inodes;
    } finally {
      release();
    }
  }

  /** Puts initial values (volume creation). */
  static initialize(batch: WriteBatch, deltas: CounterDeltas): void {
    batch.put(counterKey(CounterKind.USED_BYTES, 0), encodeCounter(deltas.bytes));
    batch.put(counterKey(CounterKind.INODES, 0), encodeCounter(deltas.inodes));
  }
}
