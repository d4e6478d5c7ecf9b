/**
 * File contents as 64 KiB chunks under K|ino|index. Invariants the read and write paths rely on:
 *  - a chunk that is all zeros is not stored (sparse files; a missing chunk reads as zeros);
 *  - stored chunks have trailing zeros trimmed (a missing tail reads as zeros);
 *  - no chunk exists at or beyond ceil(size / CHUNK_SIZE), and the bytes of the last chunk past
 *    `size` are zero — truncation maintains this, so extending a file never exposes old data
 *    and writes past EOF never need to read the chunks they land in.
 */
import type { Db } from "../lsm/db.ts";
import type { WriteBatch } from "../lsm/write-batch.ts";
import { CHUNK_SIZE, chunkKey, chunkRange, parseChunkKey } from "./keys.ts";

/** Largest file size (and write end offset) accepted; keeps offsets exact in a double. */
export const MAX_FILE_SIZE = 2 ** 52;

/** Truncations dropping at most this many chunks delete them in the operation's own batch. */
export const INLINE_DELETE_CHUNKS = 256;

const ZERO_CHUNK = Buffer.alloc(CHUNK_SIZE);

export function chunkCount(size: number): number {
  return Math.ceil(size / CHUNK_SIZE);
}

/** The stored form of chunk contents: trailing zeros trimmed; undefined when all zero. */
export function storedForm(chunk: Buffer): Buffer | undefined {
  if (chunk.length <= CHUNK_SIZE && chunk.equals(ZERO_CHUNK.subarray(0, chunk.length))) return undefined;
  let end = chunk.length;
  while (end > 0 && chunk[end - 1] === 0) end--;
  return end === 0 ? undefined : chunk.subarray(0, end);
}

/** Reads [offset, offset + count) clipped to `size`; holes and trimmed tails read as zeros. */
export async function readData(db: Db, ino: number, size: number, offset: number, count: number): Promise<{ data: Buffer; eof: boolean }> {
  if (offset >= size || count <= 0) return { data: Buffer.alloc(0), eof: offset + Math.max(count, 0) >= size };
  const end = Math.min(offset + count, size);
  const out = Buffer.alloc(end - offset);
  const first = Math.floor(offset / CHUNK_SIZE);
  const last = Math.floor((end - 1) / CHUNK_SIZE);
  const place = (index: number, value: Buffer): void => {
    const chunkStart = index * CHUNK_SIZE;
    const from = Math.max(offset, chunkStart);
    const to = Math.min(end, chunkStart + value.length);
    if (to > from) value.copy(out, from - offset, from - chunkStart, to - chunkStart);
  };
  if (first === last) {
    // One chunk: a point get (bloom filters skip SSTs that do not hold it).
    const value = await db.get(chunkKey(ino, first));
    if (value) place(first, value);
  } else {
    // Several chunks: one ordered range scan (sequential block reads with read-ahead).
    const [from, to] = chunkRange(ino, first, last + 1);
    for await (const e of db.scan(from, to)) place(parseChunkKey(e.key).index, e.value!);
  }
  return { data: out, eof: end >= size };
}

/**
 * Whether chunk `index` of a file with `chunks` stored chunks and `total` possible indices
 * exists, when the count alone decides it (none stored, or all of them); undefined otherwise.
 */
function existsByCount(chunks: number, total: number, index: number): boolean | undefined {
  if (index >= total || chunks === 0) return false;
  if (chunks >= total) return true;
  return undefined;
}

/** Stored chunks at indices ≥ `from`; scans (the smaller side) only when the count does not decide. */
async function storedFrom(db: Db, ino: number, chunks: number, total: number, from: number): Promise<number> {
  if (from >= total || chunks === 0) return 0;
  if (chunks >= total) return total - from;
  return total - from <= from ? countStored(db, ino, from, total) : chunks - (await countStored(db, ino, 0, from));
}

async function countStored(db: Db, ino: number, from: number, to: number): Promise<number> {
  if (to <= from) return 0;
  let n = 0;
  const [a, b] = chunkRange(ino, from, to);
  for await (const e of db.scan(a, b)) if (e.value) n++;
  return n;
}

/**
 * Adds the chunk puts/deletes that write `data` at `offset` of a file currently `oldSize`
 * bytes long with `chunks` stored chunks, and returns the new count (undefined stays
 * undefined). Chunks covered completely are written without reading their old contents; at
 * most the first and last chunk are read-modify-written, and only when they hold data (start
 * before oldSize).
 */
export async function planWrite(
  db: Db,
  batch: WriteBatch,
  ino: number,
  oldSize: number,
  offset: number,
  data: Buffer,
  chunks: number | undefined,
): Promise<number | undefined> {
  if (data.length === 0) return chunks;
  const end = offset + data.length;
  const first = Math.floor(offset / CHUNK_SIZE);
  const last = Math.floor((end - 1) / CHUNK_SIZE);
  const total = chunkCount(oldSize);
  const partial = (index: number): boolean => {
    const start = index * CHUNK_SIZE;
    return offset > start || end < start + CHUNK_SIZE;
  };
  const needsBase = (index: number): boolean => partial(index) && index * CHUNK_SIZE < oldSize;
  const [firstBase, lastBase] = await Promise.all([
    needsBase(first) ? db.get(chunkKey(ino, first)) : undefined,
    last !== first && needsBase(last) ? db.get(chunkKey(ino, last)) : undefined,
  ]);
  // Change of the stored-chunk count; chunks whose previous existence neither a base read nor
  // the count tells (partly sparse files) are looked up after the loop, together.
  let delta = 0;
  const undecided: { index: number; stored: boolean }[] = [];
  const account = (stored: boolean, existed: boolean): void => {
    delta += (stored ? 1 : 0) - (existed ? 1 : 0);
  };
  for (let index = first; index <= last; index++) {
    const chunkStart = index * CHUNK_SIZE;
    const segStart = Math.max(offset, chunkStart);
    const segEnd = Math.min(end, chunkStart + CHUNK_SIZE);
    let chunk: Buffer;
    let base: Buffer | undefined;
    if (!partial(index)) {
      // Copied: the caller's buffer (an NFS request) may be reused after we return, and the
      // engine keeps values by reference.
      chunk = Buffer.from(data.subarray(segStart - offset, segEnd - offset));
    } else {
      base = index === first ? firstBase : index === last ? lastBase : undefined;
      chunk = Buffer.alloc(Math.max(base?.length ?? 0, segEnd - chunkStart));
      base?.copy(chunk);
      data.copy(chunk, segStart - chunkStart, segStart - offset, segEnd - offset);
    }
    const stored = storedForm(chunk);
    if (stored) batch.put(chunkKey(ino, index), stored);
    else if (chunkStart < oldSize) batch.delete(chunkKey(ino, index));
    if (chunks === undefined) continue;
    const existed = needsBase(index) ? base !== undefined : existsByCount(chunks, total, index);
    if (existed === undefined) undecided.push({ index, stored: stored !== undefined });
    else account(stored !== undefined, existed);
  }
  if (undecided.length > 0) {
    const found = await Promise.all(undecided.map((u) => db.get(chunkKey(ino, u.index))));
    undecided.forEach((u, i) => account(u.stored, found[i] !== undefined));
  }
  return chunks === undefined ? undefined : chunks + delta;
}

/**
 * Adds what shrinking a file from oldSize to newSize needs: zeroing the tail of the new last
 * chunk and deleting the chunks past it. Returns the file's new stored-chunk count and, when
 * more than INLINE_DELETE_CHUNKS chunks go, the range of chunk indices still to delete (the
 * caller deletes those in bounded batches, protected by a truncate tombstone). Growing needs
 * nothing (see invariants).
 */
export async function planTruncate(
  db: Db,
  batch: WriteBatch,
  ino: number,
  oldSize: number,
  newSize: number,
  chunks: number | undefined,
): Promise<{ chunks: number | undefined; rest?: { from: number; to: number } }> {
  if (newSize >= oldSize) return { chunks };
  const keep = chunkCount(newSize);
  const old = chunkCount(oldSize);
  let count = chunks === undefined ? undefined : chunks - (await storedFrom(db, ino, chunks, old, keep));
  const tail = newSize % CHUNK_SIZE;
  if (tail !== 0) {
    const index = keep - 1;
    const value = await db.get(chunkKey(ino, index));
    if (value && value.length > tail) {
      const stored = storedForm(Buffer.from(value.subarray(0, tail)));
      if (stored) batch.put(chunkKey(ino, index), stored);
      else {
        batch.delete(chunkKey(ino, index));
        if (count !== undefined) count--;
      }
    }
  }
  if (old - keep <= INLINE_DELETE_CHUNKS) {
    for (let i = keep; i < old; i++) batch.delete(chunkKey(ino, i));
    return { chunks: count };
  }
  return { chunks: count, rest: { from: keep, to: old } };
}
