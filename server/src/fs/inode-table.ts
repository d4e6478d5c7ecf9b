/**
 * Inode reads through an LRU of decoded inodes. Mutations go through `update`/`remove` after
 * their batch is applied (the fs layer holds the inode's lock then), so the cache is
 * write-through. Readers are not serialized: a read that missed the cache fills it only if
 * that inode did not change while its db.get was in flight, so a slow read of an old version
 * can never overwrite a newer cached one.
 */
import { LRUCache } from "lru-cache";
import type { Db } from "../lsm/db.ts";
import { fsError } from "./errors.ts";
import { decodeInode, type Inode } from "./inode-codec.ts";
import { inodeKey } from "./keys.ts";

interface ReadToken {
  stale: boolean;
}

export class InodeTable {
  private readonly db: Db;
  private readonly cache: LRUCache<number, Inode>;
  /** Cache-missing reads in flight, per inode; a change marks them stale. */
  private readonly reading = new Map<number, ReadToken[]>();

  constructor(db: Db, maxEntries: number) {
    this.db = db;
    this.cache = new LRUCache({ max: Math.max(1, maxEntries) });
  }

  /** The cached inode, if any (no I/O; callers must re-check under the inode's lock). */
  peek(ino: number): Inode | undefined {
    return this.cache.peek(ino);
  }

  /** The inode, or undefined when it does not exist. One db.get on a cache miss. */
  async get(ino: number): Promise<Inode | undefined> {
    const hit = this.cache.get(ino);
    if (hit) return hit;
    const token: ReadToken = { stale: false };
    const tokens = this.reading.get(ino);
    if (tokens) tokens.push(token);
    else this.reading.set(ino, [token]);
    let raw: Buffer | undefined;
    try {
      raw = await this.db.get(inodeKey(ino));
    } finally {
      const list = this.reading.get(ino)!;
      list.splice(list.indexOf(token), 1);
      if (list.length === 0) this.reading.delete(ino);
    }
    if (!raw) return undefined;
    const inode = decodeInode(ino, raw);
    if (!token.stale) this.cache.set(ino, inode);
    return inode;
  }

  /**
   * The inode an operation was asked about; absence means the client holds a handle (or id)
   * for an inode that has been deleted: ESTALE.
   */
  async require(ino: number, what: string): Promise<Inode> {
    const inode = await this.get(ino);
    if (!inode) throw fsError("ESTALE", `${what}: inode ${ino} does not exist (deleted)`);
    return inode;
  }

  /** Records the new state of an inode whose change has been applied to the db. */
  update(inode: Inode): void {
    this.invalidateReads(inode.ino);
    this.cache.set(inode.ino, inode);
  }

  /** Records the deletion of an inode that has been applied to the db. */
  remove(ino: number): void {
    this.invalidateReads(ino);
    this.cache.delete(ino);
  }

  private invalidateReads(ino: number): void {
    for (const t of this.reading.get(ino) ?? []) t.stale = true;
  }
}
