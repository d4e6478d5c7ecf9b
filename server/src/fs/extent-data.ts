/**
 * File contents of layout 2 (docs/layout-v2.md): per 32 KiB block, a piece list under
 * X|ino|block pointing into sealed frames of segments (or holding tiny pieces inline).
 * Invariants the read and write paths rely on:
 *  - no piece lies at or past the file's size (truncation trims and deletes them), so growing
 *    a file never exposes old data and writes past EOF never read the blocks they land in;
 *  - bytes in no piece read as zeros (holes); writes of zeros store nothing.
 * Writes never read or rewrite data: a write seals its own bytes into new frames and overlays
 * the block's piece list (small metadata).
 */
import type { PreparedBlock } from "../crypto/sealer.ts";
import type { Db } from "../lsm/db.ts";
import type { FrameRef, Segments } from "../lsm/segments/segments.ts";
import type { WriteBatch } from "../lsm/write-batch.ts";
import { decodePieces, encodePieces, overlay, pieceBytes, pieceRanges, trimPieces, type Piece } from "./extent-map.ts";
import { BLOCK_SIZE, extentKey, extentRange, allExtentsRange, parseExtentKey } from "./keys.ts";

/** Pieces of at most this many bytes are kept inline in the piece list, not in a frame. */
export const INLINE_MAX = 1024;

/**
 * Data in the first SMALL_FILE_BYTES of a file is kept inline too: a small file (a source file,
 * a config, a lock file) then lives in the LSM with its inode, and its COMMIT costs one WAL
 * upload instead of a segment upload followed by a WAL upload. Random writes into large files
 * (past this offset) still go to segments, so the LSM never carries the bulk of the data.
 */
export const SMALL_FILE_BYTES = 4096;

/** Truncations dropping at most this many block records delete them in the operation's batch. */
export const INLINE_DELETE_BLOCKS = 256;

const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE);

export function blockCount(size: number): number {
  return Math.ceil(size / BLOCK_SIZE);
}

/** One block's share of a write: its bytes, and how they will be stored. */
interface WritePart {
  block: number;
  /** Block-relative start. */
  start: number;
  plain: Buffer;
  /** Undefined for zeros (a hole) and for inline pieces. */
  prepared: PreparedBlock | undefined;
  zero: boolean;
}

/** A write split at block boundaries and compressed: everything that needs no lock. */
export interface PreparedWrite {
  offset: number;
  length: number;
  parts: WritePart[];
}

/**
 * WRITEs from this size on (a client's streaming writes come at its wsize, 1 MiB here) do not
 * leave their plaintext in the extent cache; smaller ones (database pages, small files) do.
 * Why: a streamed file is rarely read back at once (and then mostly from the client's own page
 * cache), while keeping it filled the heap with 32 cache entries per MiB that every garbage
 * collection had to mark, and kept each 1 MiB record alive: a sequential write cost 12% more
 * CPU. Reading such data back opens its frames from the segment (the disk or page cache).
 */
export const CACHED_WRITE_MAX_BYTES = 256 * 1024;

/**
 * Splits `data` (written at `offset`) into per-block parts and compresses those that become
 * frames. Runs before the inode lock is taken. The plaintext may stay in the extent cache, so the
 * parts are copies unless the caller hands `data` over (`owned`: never changed afterwards) and
 * it fills most of its backing memory — a view of a small write inside a larger socket chunk
 * would pin that whole chunk in the cache. Copying 1 MiB writes cost 6% of a sequential write.
 */
export async function prepareWrite(segments: Segments, offset: number, data: Buffer, owned = false): Promise<PreparedWrite> {
  const keepViews = owned && data.length * 2 >= data.buffer.byteLength;
  const parts: WritePart[] = [];
  const end = offset + data.length;
  for (let pos = offset; pos < end; ) {
    const block = Math.floor(pos / BLOCK_SIZE);
    const start = pos - block * BLOCK_SIZE;
    const take = Math.min(BLOCK_SIZE - start, end - pos);
    const view = data.subarray(pos - offset, pos - offset + take);
    const zero = view.equals(ZERO_BLOCK.subarray(0, take));
    parts.push({ block, start, plain: zero || keepViews ? view : Buffer.from(view), prepared: undefined, zero });
    pos += take;
  }
  await Promise.all(
    parts.map(async (p) => {
      if (!p.zero && !isInline(p)) p.prepared = await segments.prepare(p.plain);
    }),
  );
  return { offset, length: data.length, parts };
}

function isInline(p: { block: number; start: number; plain: Buffer }): boolean {
  return p.plain.length <= INLINE_MAX || (p.block === 0 && p.start + p.plain.length <= SMALL_FILE_BYTES);
}

/** Reads the piece lists of blocks [first, last] that exist (one scan when several). */
async function loadBlocks(db: Db, ino: number, first: number, last: number): Promise<Map<number, Piece[]>> {
  const out = new Map<number, Piece[]>();
  if (last < first) return out;
  if (first === last) {
    const v = await db.get(extentKey(ino, first));
    if (v) out.set(first, decodePieces(v, `block ${first} of inode ${ino}`));
    return out;
  }
  const [from, to] = extentRange(ino, first, last + 1);
  for await (const e of db.scan(from, to)) {
    const { block } = parseExtentKey(e.key);
    out.set(block, decodePieces(e.value!, `block ${block} of inode ${ino}`));
  }
  return out;
}

export interface ExtentWritePlan {
  /** Change of the file's stored bytes. */
  delta: number;
  /** Frames appended: settle them once the batch is applied (or dropped). */
  frames: FrameRef[];
  /** Bytes of frames no longer referenced by this file (segment GC accounting). */
  freed: number;
}

/**
 * Under the inode lock: appends the write's frames to the open segment and adds the new piece
 * lists of the blocks it touches to `batch`. Only blocks that start before `oldSize` can hold
 * pieces; their lists are read (metadata only), never their data.
 */
export async function planExtentWrite(db: Db, batch: WriteBatch, ino: number, oldSize: number, w: PreparedWrite): Promise<ExtentWritePlan> {
  const plan: ExtentWritePlan = { delta: 0, frames: [], freed: 0 };
  if (w.parts.length === 0) return plan;
  const first = w.parts[0]!.block;
  const lastExisting = Math.min(w.parts[w.parts.length - 1]!.block, blockCount(oldSize) - 1);
  const existing = await loadBlocks(db, ino, first, lastExisting);
  const segments = db.segments;
  for (const part of w.parts) {
    const old = existing.get(part.block) ?? [];
    let add: Piece | undefined;
    if (part.zero) add = undefined;
    else if (part.prepared) {
      const frame = segments.append(part.prepared, part.plain, w.length < CACHED_WRITE_MAX_BYTES);
      plan.frames.push(frame);
      add = { start: part.start, length: part.plain.length, frame, plain: part.plain.length, skip: 0 };
    } else add = { start: part.start, length: part.plain.length, inline: part.plain };
    if (old.length === 0 && add === undefined) continue;
    const { pieces, covered } = overlay(old, part.start, part.plain.length, add);
    plan.delta += (add?.length ?? 0) - pieceBytes(covered);
    for (const c of covered) if (c.frame) plan.freed += c.length;
    if (pieces.length > 0) batch.put(extentKey(ino, part.block), encodePieces(pieces));
    else batch.delete(extentKey(ino, part.block));
  }
  return plan;
}

/** Zeros that holes are read from (never written: replies reference it). */
const ZEROS = Buffer.alloc(1024 * 1024);

/**
 * Reads [offset, offset + count) clipped to `size`; holes read as zeros. The bytes come back as
 * pieces in order — views of cached plaintext, inline data and a shared zero buffer — that the
 * NFS layer hands to writev as they are: assembling a 1 MiB reply cost 10% of a cold read.
 * The pieces are shared: never modify them.
 */
export async function readExtents(db: Db, ino: number, size: number, offset: number, count: number): Promise<{ parts: Buffer[]; length: number; eof: boolean }> {
  if (offset >= size || count <= 0) return { parts: [], length: 0, eof: offset + Math.max(count, 0) >= size };
  const end = Math.min(offset + count, size);
  const first = Math.floor(offset / BLOCK_SIZE);
  const last = Math.floor((end - 1) / BLOCK_SIZE);
  const blocks = await loadBlocks(db, ino, first, last);
  // Stored ranges, by file position: inline bytes now, frame bytes once fetched.
  const found: { at: number; n: number; data?: Buffer; frame?: FrameRef; skip: number }[] = [];
  for (const [block, pieces] of blocks) {
    const base = block * BLOCK_SIZE;
    const from = Math.max(offset, base) - base;
    const to = Math.min(end, base + BLOCK_SIZE) - base;
    for (const r of pieceRanges(pieces, from, to)) {
      const p = r.piece;
      const at = base + r.from;
      if (p.inline) found.push({ at, n: r.to - r.from, data: p.inline.subarray(r.from - p.start, r.to - p.start), skip: 0 });
      else found.push({ at, n: r.to - r.from, frame: p.frame, skip: p.skip + (r.from - p.start) });
    }
  }
  const wanted = found.filter((f) => f.frame !== undefined);
  if (wanted.length > 0) {
    const plains = await db.segments.readMany(wanted.map((w) => w.frame!));
    wanted.forEach((w, i) => {
      const plain = plains[i]!;
      if (w.skip + w.n > plain.length) throw new Error(`frame ${w.frame!.epoch}-${w.frame!.seq}@${w.frame!.offset} of inode ${ino} holds ${plain.length} bytes, a piece needs ${w.skip + w.n}`);
      w.data = plain.subarray(w.skip, w.skip + w.n);
    });
  }
  found.sort((a, b) => a.at - b.at);
  const parts: Buffer[] = [];
  let pos = offset;
  const zeros = (n: number) => {
    for (let left = n; left > 0; left -= ZEROS.length) parts.push(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
  };
  for (const f of found) {
    if (f.at > pos) zeros(f.at - pos);
    parts.push(f.data!);
    pos = f.at + f.n;
  }
  if (end > pos) zeros(end - pos);
  return { parts, length: end - offset, eof: end >= size };
}

export interface ExtentTruncatePlan {
  delta: number;
  freed: number;
  /** Set when too many block records go for one batch: delete blocks ≥ this after commit. */
  restFrom?: number;
}

/**
 * Adds what shrinking a file from oldSize to newSize needs: trimming the new last block's
 * pieces and deleting the block records past it. Cost: the records that exist (one range
 * scan), never the apparent size. Growing needs nothing (see invariants).
 */
export async function planExtentTruncate(db: Db, batch: WriteBatch, ino: number, oldSize: number, newSize: number): Promise<ExtentTruncatePlan> {
  const plan: ExtentTruncatePlan = { delta: 0, freed: 0 };
  if (newSize >= oldSize) return plan;
  const keep = blockCount(newSize);
  const tail = newSize % BLOCK_SIZE;
  if (tail !== 0) {
    const v = await db.get(extentKey(ino, keep - 1));
    if (v) {
      const { pieces, covered } = trimPieces(decodePieces(v, `block ${keep - 1} of inode ${ino}`), tail);
      if (covered.length > 0) {
        plan.delta -= pieceBytes(covered);
        for (const c of covered) if (c.frame) plan.freed += c.length;
        if (pieces.length > 0) batch.put(extentKey(ino, keep - 1), encodePieces(pieces));
        else batch.delete(extentKey(ino, keep - 1));
      }
    }
  }
  const doomed: Buffer[] = [];
  const [from, to] = [extentKey(ino, keep), allExtentsRange(ino)[1]];
  for await (const e of db.scan(from, to)) {
    const { block } = parseExtentKey(e.key);
    const pieces = decodePieces(e.value!, `block ${block} of inode ${ino}`);
    const bytes = pieceBytes(pieces);
    plan.delta -= bytes;
    for (const p of pieces) if (p.frame) plan.freed += p.length;
    if (doomed.length <= INLINE_DELETE_BLOCKS) doomed.push(e.key);
  }
  if (doomed.length <= INLINE_DELETE_BLOCKS) for (const k of doomed) batch.delete(k);
  else plan.restFrom = keep;
  return plan;
}
