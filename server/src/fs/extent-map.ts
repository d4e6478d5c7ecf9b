/**
 * The piece list of one 32 KiB file block (layout 2, docs/layout-v2.md): the value of
 * X|ino|block. Pure functions: encoding, overlaying a write, trimming at a truncation.
 *
 * Value format, version 1:
 *   u8 version (1) · varint piece count · pieces in ascending `start` order, each:
 *     varint start · varint length · u8 kind
 *     kind 0 (frame):  varint epoch · varint seq · varint frame offset · varint frame length ·
 *                      varint plain (plaintext length of the whole frame) ·
 *                      varint skip (offset of the piece's first byte in the frame's plaintext)
 *     kind 1 (inline): the piece's `length` bytes
 * Pieces never overlap and lie inside [0, BLOCK_SIZE); bytes in no piece read as zeros.
 */
import { ByteReader, varintSize, writeVarint } from "../lsm/sst/varint.ts";
import type { FrameRef } from "../lsm/segments/segments.ts";
import { fsError } from "./errors.ts";
import { BLOCK_SIZE } from "./keys.ts";

const VERSION = 1;
const KIND_FRAME = 0;
const KIND_INLINE = 1;

/** A run of bytes of a block: from a sealed frame (at `skip` in its plaintext), or inline. */
export type Piece =
  | { start: number; length: number; frame: FrameRef; plain: number; skip: number; inline?: undefined }
  | { start: number; length: number; inline: Buffer; frame?: undefined; skip?: undefined };

export function encodePieces(pieces: readonly Piece[]): Buffer {
  let size = 1 + varintSize(pieces.length);
  for (const p of pieces) {
    size += varintSize(p.start) + varintSize(p.length) + 1;
    if (p.frame) size += varintSize(p.frame.epoch) + varintSize(p.frame.seq) + varintSize(p.frame.offset) + varintSize(p.frame.length) + varintSize(p.plain) + varintSize(p.skip);
    else size += p.length;
  }
  const buf = Buffer.allocUnsafe(size);
  buf[0] = VERSION;
  let pos = writeVarint(buf, 1, pieces.length);
  for (const p of pieces) {
    pos = writeVarint(buf, pos, p.start);
    pos = writeVarint(buf, pos, p.length);
    if (p.frame) {
      buf[pos++] = KIND_FRAME;
      pos = writeVarint(buf, pos, p.frame.epoch);
      pos = writeVarint(buf, pos, p.frame.seq);
      pos = writeVarint(buf, pos, p.frame.offset);
      pos = writeVarint(buf, pos, p.frame.length);
      pos = writeVarint(buf, pos, p.plain);
      pos = writeVarint(buf, pos, p.skip);
    } else {
      buf[pos++] = KIND_INLINE;
      p.inline.copy(buf, pos);
      pos += p.length;
    }
  }
  return buf;
}

/** Decodes a piece list; `where` names the block in errors. Inline bytes are copied out. */
export function decodePieces(buf: Buffer, where: string): Piece[] {
  try {
    const r = new ByteReader(buf);
    const version = r.u8();
    if (version !== VERSION) throw new Error(`unknown version ${version}`);
    const n = r.varint();
    if (n > BLOCK_SIZE) throw new Error(`${n} pieces`);
    const out: Piece[] = [];
    let end = 0;
    for (let i = 0; i < n; i++) {
      const start = r.varint();
      const length = r.varint();
      if (start < end || length === 0 || start + length > BLOCK_SIZE) throw new Error(`piece ${i} [${start}, +${length}) out of order or range`);
      end = start + length;
      const kind = r.u8();
      if (kind === KIND_FRAME) {
        const frame: FrameRef = { epoch: r.varint(), seq: r.varint(), offset: r.varint(), length: r.varint() };
        const plain = r.varint();
        const skip = r.varint();
        if (skip + length > plain) throw new Error(`piece ${i} reads past its frame's ${plain} bytes`);
        out.push({ start, length, frame, plain, skip });
      } else if (kind === KIND_INLINE) {
        out.push({ start, length, inline: Buffer.from(r.bytes(length)) });
      } else throw new Error(`piece ${i} has unknown kind ${kind}`);
    }
    if (r.remaining !== 0) throw new Error(`${r.remaining} trailing bytes`);
    return out;
  } catch (err) {
    throw fsError("EIO", `${where}: corrupt extent map (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Stored bytes of a piece list (sum of lengths). */
export function pieceBytes(pieces: readonly Piece[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}

/** The part [from, to) of a piece (from/to block-relative, inside the piece). */
function slice(p: Piece, from: number, to: number): Piece {
  if (p.frame) return { start: from, length: to - from, frame: p.frame, plain: p.plain, skip: p.skip + (from - p.start) };
  return { start: from, length: to - from, inline: p.inline.subarray(from - p.start, to - p.start) };
}

/**
 * Pieces after writing [start, start + length) of the block: overlapped pieces are cut (their
 * other parts stay), then `add` is inserted (undefined: the range becomes a hole, e.g. a write
 * of zeros). Also returns the pieces' parts that were covered (for space accounting).
 */
export function overlay(pieces: readonly Piece[], start: number, length: number, add: Piece | undefined): { pieces: Piece[]; covered: Piece[] } {
  const end = start + length;
  const out: Piece[] = [];
  const covered: Piece[] = [];
  let inserted = add === undefined;
  for (const p of pieces) {
    const pEnd = p.start + p.length;
    if (pEnd <= start) {
      out.push(p);
      continue;
    }
    if (p.start >= end) {
      if (!inserted) {
        out.push(add!);
        inserted = true;
      }
      out.push(p);
      continue;
    }
    if (p.start < start) out.push(slice(p, p.start, start));
    covered.push(slice(p, Math.max(p.start, start), Math.min(pEnd, end)));
    if (!inserted) {
      out.push(add!);
      inserted = true;
    }
    if (pEnd > end) out.push(slice(p, end, pEnd));
  }
  if (!inserted) out.push(add!);
  return { pieces: out, covered };
}

/** Pieces of a block cut at `limit` (block-relative): everything at or past it goes. */
export function trimPieces(pieces: readonly Piece[], limit: number): { pieces: Piece[]; covered: Piece[] } {
  return overlay(pieces, limit, BLOCK_SIZE - limit, undefined);
}

/** The parts of [from, to) (block-relative) that pieces hold, in order; the rest reads as zeros. */
export function pieceRanges(pieces: readonly Piece[], from: number, to: number): { piece: Piece; from: number; to: number }[] {
  const out: { piece: Piece; from: number; to: number }[] = [];
  for (const p of pieces) {
    const a = Math.max(from, p.start);
    const b = Math.min(to, p.start + p.length);
    if (b > a) out.push({ piece: p, from: a, to: b });
  }
  return out;
}
