/**
 * Codecs of the small records beside inodes: superblock, directory entries (by name and by
 * cookie), tombstones and counter values. Each starts with a version byte where it may evolve.
 */
import { fsError } from "./errors.ts";
import { LAYOUT_VERSION, readU64, writeU64 } from "./keys.ts";
import { isFileType, type FileType } from "./types.ts";

// ---------------------------------------------------------------- superblock

export interface Superblock {
  layoutVersion: number;
  /** Random 128-bit volume identity; carried in every file handle. */
  volumeId: Buffer;
  createdMs: number;
  rootIno: number;
}

const SUPERBLOCK_MAGIC = Buffer.from("ZFSV", "ascii");

export function encodeSuperblock(sb: Superblock): Buffer {
  const buf = Buffer.alloc(4 + 2 + 16 + 8 + 8);
  SUPERBLOCK_MAGIC.copy(buf, 0);
  buf.writeUInt16BE(sb.layoutVersion, 4);
  sb.volumeId.copy(buf, 6);
  writeU64(buf, sb.createdMs, 22);
  writeU64(buf, sb.rootIno, 30);
  return buf;
}

export function decodeSuperblock(buf: Buffer): Superblock {
  if (buf.length < 6 || !buf.subarray(0, 4).equals(SUPERBLOCK_MAGIC)) throw fsError("EIO", "superblock: bad magic (not a ZeroFS volume or corrupt)");
  const layoutVersion = buf.readUInt16BE(4);
  if (layoutVersion < 1 || layoutVersion > LAYOUT_VERSION) {
    throw fsError("EIO", `superblock: volume has layout version ${layoutVersion}, this server understands 1 to ${LAYOUT_VERSION}`);
  }
  if (buf.length !== 38) throw fsError("EIO", `superblock: ${buf.length} bytes, expected 38`);
  return { layoutVersion, volumeId: Buffer.from(buf.subarray(6, 22)), createdMs: readU64(buf, 22), rootIno: readU64(buf, 30) };
}

// ---------------------------------------------------------------- directory entries

/** Value of D|dir|name. */
export interface DirentValue {
  ino: number;
  cookie: number;
  type: FileType;
}

export function encodeDirent(v: DirentValue): Buffer {
  const buf = Buffer.allocUnsafe(17);
  writeU64(buf, v.ino, 0);
  writeU64(buf, v.cookie, 8);
  buf[16] = v.type;
  return buf;
}

export function decodeDirent(buf: Buffer, context: string): DirentValue {
  const type = buf[16];
  if (buf.length !== 17 || type === undefined || !isFileType(type)) throw fsError("EIO", `directory entry ${context}: corrupt record`);
  return { ino: readU64(buf, 0), cookie: readU64(buf, 8), type };
}

/** Value of C|dir|cookie. */
export interface CookieValue {
  ino: number;
  type: FileType;
  name: Buffer;
}

export function encodeCookieValue(v: CookieValue): Buffer {
  const buf = Buffer.allocUnsafe(9 + v.name.length);
  writeU64(buf, v.ino, 0);
  buf[8] = v.type;
  v.name.copy(buf, 9);
  return buf;
}

/** A C|dir|cookie pair as a listing yields it. */
export interface CookieEntry extends CookieValue {
  cookie: number;
}

/**
 * Decodes the value of C|dir|cookie. Listings decode thousands of entries a page: the object is
 * built in one go with its cookie, the error's context only on error, and the name is a view of
 * `buf` (a listing's entries live for one reply; copy the name to keep it).
 */
export function decodeCookieEntry(cookie: number, buf: Buffer, dirIno: number): CookieEntry {
  const type = buf[8];
  if (buf.length < 10 || type === undefined || !isFileType(type)) {
    throw fsError("EIO", `directory cookie entry: cookie ${cookie} in directory ${dirIno}: corrupt record`);
  }
  return { cookie, ino: readU64(buf, 0), type, name: buf.subarray(9) };
}

// ---------------------------------------------------------------- tombstones

export const TombstoneKind = {
  /**
   * The inode is gone: its v1 chunks at index ≥ from are garbage, and then all its extent-map
   * blocks (the reclaimer continues as EXTENTS_DELETED from 0). Reclaimed in the background.
   */
  DELETED: 1,
  /**
   * A live v1 file was truncated; chunks at index ≥ from are garbage. Deleted in the request
   * path under the inode lock; only left behind by a crash, and then finished in the background
   * while the file's writers wait.
   */
  TRUNCATED: 2,
  /** The inode is gone; its extent-map blocks ≥ from are garbage (layout 2). */
  EXTENTS_DELETED: 3,
  /** A live layout-2 file was truncated; its extent-map blocks ≥ from are garbage (as TRUNCATED). */
  EXTENTS_TRUNCATED: 4,
} as const;
export type TombstoneKind = (typeof TombstoneKind)[keyof typeof TombstoneKind];

const TOMBSTONE_KINDS: ReadonlySet<number> = new Set(Object.values(TombstoneKind));

export interface Tombstone {
  kind: TombstoneKind;
  /** Next chunk (or block) index to delete (advanced as batches complete). */
  from: number;
  /** Informational: the file's chunk (or block) count when the tombstone was written. */
  to: number;
}

export function encodeTombstone(t: Tombstone): Buffer {
  const buf = Buffer.allocUnsafe(17);
  buf[0] = t.kind;
  writeU64(buf, t.from, 1);
  writeU64(buf, t.to, 9);
  return buf;
}

export function decodeTombstone(buf: Buffer, ino: number): Tombstone {
  const kind = buf[0];
  if (buf.length !== 17 || kind === undefined || !TOMBSTONE_KINDS.has(kind)) throw fsError("EIO", `tombstone of inode ${ino}: corrupt record`);
  return { kind: kind as TombstoneKind, from: readU64(buf, 1), to: readU64(buf, 9) };
}

// ---------------------------------------------------------------- counters

/** A signed 64-bit counter value (a shard holds the sum of the deltas applied through it). */
export function encodeCounter(n: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeBigInt64BE(BigInt(n));
  return buf;
}

export function decodeCounter(buf: Buffer, context: string): number {
  if (buf.length !== 8) throw fsError("EIO", `counter ${context}: corrupt record`);
  const n = Number(buf.readBigInt64BE());
  if (!Number.isSafeInteger(n)) throw fsError("EIO", `counter ${context}: value out of range`);
  return n;
}

export function encodeU64(n: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  writeU64(buf, n, 0);
  return buf;
}

export function decodeU64(buf: Buffer, context: string): number {
  if (buf.length !== 8) throw fsError("EIO", `${context}: corrupt record`);
  return readU64(buf, 0);
}
