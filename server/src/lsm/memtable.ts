import btree from "sorted-btree";
import { compareKeys, type Entry } from "./entry.ts";

// sorted-btree is CommonJS with `exports.default`; under Node's ESM loader the default
// import is the module object, so the class sits one level down.
const BTree = btree.default;

/** One value of a key, stamped with the sequence number of the batch that wrote it. */
interface Version {
  seq: number;
  value: Buffer | null;
}

/** Per-entry bookkeeping charged to the memtable's size besides key and value bytes. */
const ENTRY_OVERHEAD = 48;

/**
 * The in-memory sorted write buffer.
 *
 * Keys map to a short chain of versions (oldest first) so that a scan holding a snapshot
 * sequence keeps seeing what it started with while writes go on. Chains stay one long unless
 * a snapshot older than the newest version is open; `minSnapshotSeq` tells the memtable which
 * versions can still be read.
 *
 * Once frozen (immutable), a memtable is never mutated again: readers that captured it keep a
 * stable view even after it has been flushed to an SST and dropped from the engine's state.
 */
export class Memtable {
  private readonly tree = new BTree<Buffer, Version[]>(undefined, compareKeys);
  private bytes = 0;
  private frozen = false;
  /** Highest sequence number applied. */
  lastSeq = 0;
  /** Id of the last WAL object holding batches of this memtable (set when it is frozen). */
  walUpto = 0;

  get approximateBytes(): number {
    return this.bytes;
  }

  get isEmpty(): boolean {
    return this.tree.size === 0;
  }

  get size(): number {
    return this.tree.size;
  }

  freeze(): void {
    this.frozen = true;
  }

  /**
   * @param minSnapshotSeq the oldest snapshot an open reader holds (Infinity when none);
   *        versions older than the newest one at or below it can no longer be read.
   */
  put(key: Buffer, value: Buffer | null, seq: number, minSnapshotSeq: number): void {
    if (this.frozen) throw new Error("memtable is frozen; writes go to the active memtable");
    const chain = this.tree.get(key);
    const v: Version = { seq, value };
    const added = (value?.length ?? 0) + ENTRY_OVERHEAD;
    if (chain === undefined) {
      this.tree.set(key, [v]);
      this.bytes += key.length + added;
    } else {
      // Keep only what an open snapshot can still see: the newest version at or below
      // minSnapshotSeq, and everything after it.
      let keepFrom = 0;
      for (let i = chain.length - 1; i >= 0; i--) {
        if (chain[i]!.seq <= minSnapshotSeq) {
          keepFrom = i;
          break;
        }
      }
      for (let i = 0; i < keepFrom; i++) this.bytes -= (chain[i]!.value?.length ?? 0) + ENTRY_OVERHEAD;
      if (keepFrom > 0) chain.splice(0, keepFrom);
      if (chain.length === 1 && minSnapshotSeq >= seq) {
        // Common case, no open snapshot predates this write: replace in place.
        this.bytes -= (chain[0]!.value?.length ?? 0) + ENTRY_OVERHEAD;
        chain[0] = v;
      } else {
        chain.push(v);
      }
      this.bytes += added;
    }
    if (seq > this.lastSeq) this.lastSeq = seq;
  }

  /** Newest version at or below `snapshotSeq`: an Entry (value null = tombstone) or undefined. */
  get(key: Buffer, snapshotSeq = Number.MAX_SAFE_INTEGER): Entry | undefined {
    const chain = this.tree.get(key);
    if (chain === undefined) return undefined;
    const v = pick(chain, snapshotSeq);
    return v === undefined ? undefined : { key, value: v.value };
  }

  /**
   * Entries with from ≤ key < to as seen at `snapshotSeq`, tombstones included.
   *
   * The tree is read in bounded synchronous chunks, re-seeking after the last key, so that
   * writes interleaved between chunks (the active memtable keeps changing during an async scan)
   * never invalidate a live tree iterator.
   */
  *scan(from: Buffer | undefined, to: Buffer | undefined, snapshotSeq: number, chunk = 256): Generator<Entry> {
    for (const batch of this.scanChunks(from, to, snapshotSeq, chunk)) yield* batch;
  }

  /**
   * `scan` a chunk at a time: each array is read from the tree in one synchronous pass. The
   * first chunk holds at most `firstChunk` entries (a reader that needs only a few, like one
   * READDIR page, does not walk and copy 256).
   */
  *scanChunks(from: Buffer | undefined, to: Buffer | undefined, snapshotSeq: number, chunk = 256, firstChunk = chunk): Generator<Entry[]> {
    let cursor: Buffer | undefined = from;
    let size = Math.max(1, firstChunk);
    let inclusive = true;
    const pair: (Buffer | Version[])[] = [];
    for (;;) {
      const batch: Entry[] = [];
      let more = false;
      let visited = 0;
      // One in-order walk per chunk (no re-seek per key); the iterator never outlives the chunk.
      for (const [k, chain] of this.tree.entries(cursor, pair)) {
        if (!inclusive && cursor !== undefined && compareKeys(k, cursor) === 0) continue;
        if (to !== undefined && compareKeys(k, to) >= 0) break;
        if (visited++ >= size) {
          more = true;
          break;
        }
        const v = pick(chain, snapshotSeq);
        if (v !== undefined) batch.push({ key: k, value: v.value });
        cursor = k;
        inclusive = false;
      }
      if (batch.length > 0) yield batch;
      if (!more) return;
      size = chunk;
    }
  }

  /** All newest versions in key order (for flushing a frozen memtable). */
  *entries(): Generator<Entry> {
    for (const [k, chain] of this.tree.entries()) {
      yield { key: k, value: chain[chain.length - 1]!.value };
    }
  }
}

function pick(chain: Version[], snapshotSeq: number): Version | undefined {
  for (let i = chain.length - 1; i >= 0; i--) {
    if (chain[i]!.seq <= snapshotSeq) return chain[i];
  }
  return undefined;
}
