/**
 * Inode ids: monotonic, never reused (a stale file handle can never name a newer file). Ids
 * are reserved in ranges: the persisted high-water mark is raised by `rangeSize` with its own
 * small batch before any id of the new range is handed out. Because the engine applies and
 * logs batches in order, a batch that uses an id can never survive a crash that loses the
 * reservation covering it; after a restart allocation resumes at the high-water mark, skipping
 * the unused rest of the last range.
 */
import type { Db } from "../lsm/db.ts";
import { WriteBatch } from "../lsm/write-batch.ts";
import { INODE_HIGH_WATER_KEY } from "./keys.ts";
import { decodeU64, encodeU64 } from "./records.ts";

export class InoAllocator {
  private readonly db: Db;
  private readonly rangeSize: number;
  private next: number;
  private limit: number;
  private reserving: Promise<void> | undefined;

  private constructor(db: Db, highWater: number, rangeSize: number) {
    this.db = db;
    this.rangeSize = rangeSize;
    this.next = highWater;
    this.limit = highWater;
  }

  static async load(db: Db, rangeSize: number): Promise<InoAllocator> {
    const raw = await db.get(INODE_HIGH_WATER_KEY);
    if (!raw) throw new Error("inode high-water mark missing from an initialized volume");
    return new InoAllocator(db, decodeU64(raw, "inode high-water mark"), rangeSize);
  }

  /** Puts the high-water mark of a new volume whose ids below `firstFree` are taken. */
  static initialize(batch: WriteBatch, firstFree: number): void {
    batch.put(INODE_HIGH_WATER_KEY, encodeU64(firstFree));
  }

  async allocate(): Promise<number> {
    while (this.next >= this.limit) {
      this.reserving ??= this.reserve().finally(() => {
        this.reserving = undefined;
      });
      await this.reserving;
    }
    return this.next++;
  }

  private async reserve(): Promise<void> {
    const limit = this.limit + this.rangeSize;
    // Not awaited durable: ordering in the log is what protects the ids (see above).
    await this.db.write(new WriteBatch().put(INODE_HIGH_WATER_KEY, encodeU64(limit)), { awaitDurable: false });
    this.limit = limit;
  }
}
