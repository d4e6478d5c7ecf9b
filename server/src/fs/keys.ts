/**
 * Key layout of the filesystem in the KV store (see FORMAT.md). Keys are binary: a one-byte
 * kind, then big-endian u64 ids so that byte order equals numeric order, which makes a
 * directory's cookie index and a file's chunks contiguous, ordered key ranges.
 */
import { fsError } from "./errors.ts";

/**
 * Highest layout version stored in a superblock that this server understands; bump on any
 * incompatible change. 2: file data in segments with per-block piece lists (docs/layout-v2.md);
 * version 1 volumes open and are marked 2 by the first writer. 3: directory quotas (inode
 * project ids, project records; docs/quotas.md), marked only when the first project is made.
 */
export const LAYOUT_VERSION = 3;

/** The version every writable volume is raised to at open (data layout 2). */
export const DATA_LAYOUT_VERSION = 2;

/** Marked in the superblock with the first quota project: older servers must refuse the volume. */
export const QUOTA_LAYOUT_VERSION = 3;

/** Size of a file block of the extent map (layout 2); an extent never crosses one. */
export const BLOCK_SIZE = 32 * 1024;

/** Size of a file data chunk. */
export const CHUNK_SIZE = 64 * 1024;

/** Number of shards of each volume counter. */
export const COUNTER_SHARDS = 16;

export const KeyKind = {
  COOKIE: 0x43, // 'C' dirIno, cookie → (childIno, type, name)
  DIRENT: 0x44, // 'D' dirIno, name → (childIno, cookie, type)
  INODE: 0x49, // 'I' ino → inode record
  PROJECT: 0x51, // 'Q' project id → quota project record (limits, directory, state)
  CHUNK: 0x4b, // 'K' ino, chunkIndex → chunk bytes (trailing zeros trimmed)
  COUNTER: 0x4e, // 'N' counter kind [, shard]
  SUPERBLOCK: 0x53, // 'S' → volume record
  TOMBSTONE: 0x54, // 'T' ino → pending chunk deletion
  EXTENT: 0x58, // 'X' ino, blockIndex → piece list of the block (layout 2)
} as const;

/** Counter kinds under KeyKind.COUNTER. */
export const CounterKind = {
  /** Unsharded: every inode id below this value may have been handed out. */
  INODE_HIGH_WATER: 0x00,
  /** Sharded: sum of apparent sizes of regular files and symlinks. */
  USED_BYTES: 0x01,
  /** Sharded: number of inodes. */
  INODES: 0x02,
  /** Per quota project, sharded: sum of apparent sizes of its regular files and symlinks. */
  PROJECT_BYTES: 0x03,
  /** Per quota project, sharded: number of its inodes. */
  PROJECT_INODES: 0x04,
} as const;
export type ShardedCounterKind = typeof CounterKind.USED_BYTES | typeof CounterKind.INODES;

const TWO32 = 2 ** 32;

/**
 * Writes a non-negative integer < 2^53 as a big-endian u64. Bytes are stored directly: every key,
 * record and handle goes through here, and Buffer's checked writeUInt32BE costs more than the
 * stores (it showed at 8% of a READDIRPLUS page).
 */
export function writeU64(buf: Buffer, n: number, offset: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a u64-representable safe integer: ${n}`);
  if (offset < 0 || offset + 8 > buf.length) throw new RangeError(`u64 at offset ${offset} outside a buffer of ${buf.length} bytes`);
  const hi = Math.floor(n / TWO32);
  const lo = n >>> 0;
  buf[offset] = 0;
  buf[offset + 1] = hi >>> 16;
  buf[offset + 2] = hi >>> 8;
  buf[offset + 3] = hi;
  buf[offset + 4] = lo >>> 24;
  buf[offset + 5] = lo >>> 16;
  buf[offset + 6] = lo >>> 8;
  buf[offset + 7] = lo;
}

/** Reads a big-endian u64 that must fit a safe integer. */
export function readU64(buf: Buffer, offset: number): number {
  if (offset < 0 || offset + 8 > buf.length) throw fsError("EIO", `u64 at offset ${offset} outside a record of ${buf.length} bytes`);
  const hi = ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
  if (hi >= 2 ** 21) throw fsError("EIO", `u64 at offset ${offset} exceeds 2^53 (corrupt record)`);
  const lo = ((buf[offset + 4]! << 24) | (buf[offset + 5]! << 16) | (buf[offset + 6]! << 8) | buf[offset + 7]!) >>> 0;
  return hi * TWO32 + lo;
}

function idKey(kind: number, id: number): Buffer {
  const k = Buffer.allocUnsafe(9);
  k[0] = kind;
  writeU64(k, id, 1);
  return k;
}

function idId(kind: number, a: number, b: number): Buffer {
  const k = Buffer.allocUnsafe(17);
  k[0] = kind;
  writeU64(k, a, 1);
  writeU64(k, b, 9);
  return k;
}

export const SUPERBLOCK_KEY = Buffer.from([KeyKind.SUPERBLOCK]);

export function inodeKey(ino: number): Buffer {
  return idKey(KeyKind.INODE, ino);
}

export function direntKey(dir: number, name: Buffer): Buffer {
  const k = Buffer.allocUnsafe(9 + name.length);
  k[0] = KeyKind.DIRENT;
  writeU64(k, dir, 1);
  name.copy(k, 9);
  return k;
}

export function cookieKey(dir: number, cookie: number): Buffer {
  return idId(KeyKind.COOKIE, dir, cookie);
}

/** [from, to) covering cookies ≥ fromCookie of `dir`. */
export function cookieRange(dir: number, fromCookie: number): [Buffer, Buffer] {
  return [cookieKey(dir, fromCookie), idKey(KeyKind.COOKIE, dir + 1)];
}

export function parseCookieKey(key: Buffer): { dir: number; cookie: number } {
  if (key.length !== 17 || key[0] !== KeyKind.COOKIE) throw fsError("EIO", `not a cookie key: ${key.toString("hex")}`);
  return { dir: readU64(key, 1), cookie: readU64(key, 9) };
}

export function chunkKey(ino: number, index: number): Buffer {
  return idId(KeyKind.CHUNK, ino, index);
}

/** [from, to) covering chunks fromIndex ≤ i < toIndex of `ino`. */
export function chunkRange(ino: number, fromIndex: number, toIndex: number): [Buffer, Buffer] {
  return [chunkKey(ino, fromIndex), chunkKey(ino, toIndex)];
}

/** All chunk keys of `ino`. */
export function allChunksRange(ino: number): [Buffer, Buffer] {
  return [idKey(KeyKind.CHUNK, ino), idKey(KeyKind.CHUNK, ino + 1)];
}

export function parseChunkKey(key: Buffer): { ino: number; index: number } {
  if (key.length !== 17 || key[0] !== KeyKind.CHUNK) throw fsError("EIO", `not a chunk key: ${key.toString("hex")}`);
  return { ino: readU64(key, 1), index: readU64(key, 9) };
}

export function extentKey(ino: number, block: number): Buffer {
  return idId(KeyKind.EXTENT, ino, block);
}

/** [from, to) covering blocks fromBlock ≤ b < toBlock of `ino`. */
export function extentRange(ino: number, fromBlock: number, toBlock: number): [Buffer, Buffer] {
  return [extentKey(ino, fromBlock), extentKey(ino, toBlock)];
}

/** All extent-map keys of `ino`. */
export function allExtentsRange(ino: number): [Buffer, Buffer] {
  return [idKey(KeyKind.EXTENT, ino), idKey(KeyKind.EXTENT, ino + 1)];
}

export function parseExtentKey(key: Buffer): { ino: number; block: number } {
  if (key.length !== 17 || key[0] !== KeyKind.EXTENT) throw fsError("EIO", `not an extent key: ${key.toString("hex")}`);
  return { ino: readU64(key, 1), block: readU64(key, 9) };
}

export function tombstoneKey(ino: number): Buffer {
  return idKey(KeyKind.TOMBSTONE, ino);
}

export const TOMBSTONE_RANGE: [Buffer, Buffer] = [Buffer.from([KeyKind.TOMBSTONE]), Buffer.from([KeyKind.TOMBSTONE + 1])];

export function parseTombstoneKey(key: Buffer): number {
  if (key.length !== 9 || key[0] !== KeyKind.TOMBSTONE) throw fsError("EIO", `not a tombstone key: ${key.toString("hex")}`);
  return readU64(key, 1);
}

export const INODE_HIGH_WATER_KEY = Buffer.from([KeyKind.COUNTER, CounterKind.INODE_HIGH_WATER]);

export function counterKey(kind: ShardedCounterKind, shard: number): Buffer {
  const k = Buffer.allocUnsafe(4);
  k[0] = KeyKind.COUNTER;
  k[1] = kind;
  k.writeUInt16BE(shard, 2);
  return k;
}

/** All sharded counter keys of `kind`. */
export function counterRange(kind: ShardedCounterKind): [Buffer, Buffer] {
  return [Buffer.from([KeyKind.COUNTER, kind]), Buffer.from([KeyKind.COUNTER, kind + 1])];
}

export function parseCounterKey(key: Buffer): { kind: number; shard: number } {
  if (key.length !== 4 || key[0] !== KeyKind.COUNTER) throw fsError("EIO", `not a counter key: ${key.toString("hex")}`);
  return { kind: key[1]!, shard: key.readUInt16BE(2) };
}

/** Quota project ids are u32 (0 = no project). */
export const MAX_PROJECT_ID = 2 ** 32 - 1;

export function projectKey(project: number): Buffer {
  const k = Buffer.allocUnsafe(5);
  k[0] = KeyKind.PROJECT;
  k.writeUInt32BE(project, 1);
  return k;
}

export const PROJECT_RANGE: [Buffer, Buffer] = [Buffer.from([KeyKind.PROJECT]), Buffer.from([KeyKind.PROJECT + 1])];

export function parseProjectKey(key: Buffer): number {
  if (key.length !== 5 || key[0] !== KeyKind.PROJECT) throw fsError("EIO", `not a project key: ${key.toString("hex")}`);
  return key.readUInt32BE(1);
}

export type ProjectCounterKind = typeof CounterKind.PROJECT_BYTES | typeof CounterKind.PROJECT_INODES;

export function projectCounterKey(kind: ProjectCounterKind, project: number, shard: number): Buffer {
  const k = Buffer.allocUnsafe(8);
  k[0] = KeyKind.COUNTER;
  k[1] = kind;
  k.writeUInt32BE(project, 2);
  k.writeUInt16BE(shard, 6);
  return k;
}

/** All counter shards of `kind` (every project). */
export function projectCounterRange(kind: ProjectCounterKind): [Buffer, Buffer] {
  return [Buffer.from([KeyKind.COUNTER, kind]), Buffer.from([KeyKind.COUNTER, kind + 1])];
}

export function parseProjectCounterKey(key: Buffer): { kind: number; project: number; shard: number } {
  if (key.length !== 8 || key[0] !== KeyKind.COUNTER) throw fsError("EIO", `not a project counter key: ${key.toString("hex")}`);
  return { kind: key[1]!, project: key.readUInt32BE(2), shard: key.readUInt16BE(6) };
}
