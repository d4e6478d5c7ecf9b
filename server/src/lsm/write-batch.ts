import type { Entry } from "./entry.ts";

/**
 * An atomic group of puts and deletes: after a crash either all of it is there or none.
 * Keys and values are held by reference; callers must not mutate them after adding.
 */
export class WriteBatch {
  readonly ops: Entry[] = [];
  /** Key + value bytes, for memtable and WAL sizing. */
  bytes = 0;

  put(key: Buffer, value: Buffer): this {
    this.ops.push({ key, value });
    this.bytes += key.length + value.length;
    return this;
  }

  delete(key: Buffer): this {
    this.ops.push({ key, value: null });
    this.bytes += key.length;
    return this;
  }

  get isEmpty(): boolean {
    return this.ops.length === 0;
  }
}
