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
import { inodeKey, readU64 } from "./keys.ts";

interface ReadToken {
  stale: boolean;
}

/**
 * A batch of misses is read with one range scan over the inode keys when the ids are dense
 * enough (span ≤ this many times the number wanted): files created together get consecutive
 * ids, so a directory's entries usually are. Sparse ids get parallel point reads instead.
 */
const SCAN_DENSITY = 4;
/** Fewer misses than this are read with point gets. */
const MIN_SCAN_BATCH = 8;

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
    const token = this.startRead(ino);
    let raw: Buffer | undefined;
    try {
      raw = await this.db.get(inodeKey(ino));
    } finally {
      this.endRead(ino, token);
    }
    if (!raw) return undefined;
    const inode = decodeInode(ino, raw);
    if (!token.stale) this.cache.set(ino, inode);
    return inode;
  }

  /**
   * Many inodes at once (READDIRPLUS): cache hits without a promise each, and the misses in one
   * pass — a range scan over their inode keys when the ids are dense, else parallel gets.
   */
  async getMany(inos: readonly number[]): Promise<(Inode | undefined)[]> {
    const out = new Array<Inode | undefined>(inos.length);
    const missing = new Map<number, number[]>(); // ino → positions in `inos`
    for (let i = 0; i < inos.length; i++) {
      const ino = inos[i]!;
      const hit = this.cache.get(ino);
      if (hit) out[i] = hit;
      else {
        const at = missing.get(ino);
        if (at) at.push(i);
        else missing.set(ino, [i]);
      }
    }
    if (missing.size === 0) return out;
    const wanted = [...missing.keys()].sort((a, b) => a - b);
    const lo = wanted[0]!;
    const hi = wanted[wanted.length - 1]!;
    if (wanted.length < MIN_SCAN_BATCH || hi - lo + 1 > SCAN_DENSITY * wanted.length) {
      const found = await Promise.all(wanted.map((ino) => this.get(ino)));
      wanted.forEach((ino, k) => {
        for (const i of missing.get(ino)!) out[i] = found[k];
      });
      return out;
    }
    const tokens = wanted.map((ino) => this.startRead(ino));
    try {
      for await (const chunk of this.db.scanChunks(inodeKey(lo), inodeKey(hi + 1))) {
        for (const e of chunk) {
          const ino = readU64(e.key, 1);
          const at = missing.get(ino);
          if (!at) continue;
          const inode = decodeInode(ino, e.value!);
          for (const i of at) out[i] = inode;
        }
      }
    } finally {
      wanted.forEach((ino, k) => this.endRead(ino, tokens[k]!));
    }
    wanted.forEach((ino, k) => {
      const inode = out[missing.get(ino)![0]!];
      if (inode && !tokens[k]!.stale) this.cache.set(ino, inode);
    });
    return out;
  }

  private startRead(ino: number): ReadToken {
    const token: ReadToken = { stale: false };
    const tokens = this.reading.get(ino);
    if (tokens) tokens.push(token);
    else this.reading.set(ino, [token]);
    return token;
  }

  private endRead(ino: number, token: ReadToken): void {
    const list = this.reading.get(ino)!;
    list.splice(list.indexOf(token), 1);
    if (list.length === 0) this.reading.delete(ino);
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
