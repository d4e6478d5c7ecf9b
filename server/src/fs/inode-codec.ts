/**
 * The inode record: fixed-size binary header, then the optional exclusive-create verifier and
 * the inline symlink target. A leading version byte lets the layout evolve record by record.
 *
 *   off size field
 *   0   1    version (2; version 1 records are still read)
 *   1   1    type (ftype3 numbering)
 *   2   2    mode (12 permission bits)
 *   4   4    nlink
 *   8   4    uid
 *   12  4    gid
 *   16  8    size
 *   24  12   atime: i32 sec high, u32 sec low, u32 nsec
 *   36  12   mtime
 *   48  12   ctime
 *   60  4    rdev major
 *   64  4    rdev minor
 *   68  4    generation (random, non-zero; file handles and the readdir cookie verifier)
 *   72  8    parent (directories: the ".." inode; 0 otherwise)
 *   80  8    nextCookie (directories: next READDIR cookie to hand out)
 *   88  1    flags: bit 0 = exclusive-create verifier present,
 *                   bit 1 = stored-chunk count known (version 2),
 *                   bit 2 = data in the extent map (layout 2; never with bit 1)
 *                   bit 3 = quota project id present
 *   89  8    bit 1: stored-chunk count, how many K|ino|index chunks exist;
 *            bit 2: stored bytes, the sum of the file's extent-map piece lengths
 *   ..  4    project id u32 (only when flag bit 3; absent = project 0, no quota)
 *   ..  8    verifier (only when flag bit 0)
 *   ..  2    symlink target length, then the target bytes
 *
 * Version 1 records (no chunk count) decode with `chunks` undefined: their space is reported
 * as the apparent size, as before. The count lets GETATTR report the space a sparse file really
 * takes (st_blocks / du) without scanning its chunks.
 */
import { fsError } from "./errors.ts";
import { readU64, writeU64 } from "./keys.ts";
import { isFileType, type FileType, type Rdev, type Time } from "./types.ts";

export const INODE_VERSION = 2;
const HEADER_V1 = 89;
const HEADER = 97;
const FLAG_VERIFIER = 1;
const FLAG_CHUNKS = 2;
const FLAG_EXTENTS = 4;
const FLAG_PROJECT = 8;
export const MAX_SYMLINK_TARGET = 4096;

/**
 * A decoded inode. Instances are shared with the inode cache: treat them as immutable and
 * copy (`{ ...inode }`) before changing anything.
 */
export interface Inode {
  readonly ino: number;
  type: FileType;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  atime: Time;
  mtime: Time;
  ctime: Time;
  rdev: Rdev;
  generation: number;
  parent: number;
  nextCookie: number;
  verifier: Buffer | undefined;
  target: Buffer | undefined;
  /**
   * Regular files: number of stored data chunks (holes and all-zero chunks are not stored);
   * undefined when unknown (records written by version 1).
   */
  chunks?: number | undefined;
  /**
   * Regular files of layout 2: their data is in the extent map (X|ino|block), and this is the
   * number of bytes stored there (holes excluded). Undefined for v1 files (data in chunks).
   */
  extentBytes?: number | undefined;
  /**
   * Quota project (docs/quotas.md): inherited from the parent directory at creation; 0 or
   * undefined = none. Records without it (everything written before quotas) are project 0.
   */
  project?: number | undefined;
}

const TWO32 = 2 ** 32;

function writeTime(buf: Buffer, t: Time, off: number): void {
  const hi = Math.floor(t.sec / TWO32);
  buf.writeInt32BE(hi, off);
  buf.writeUInt32BE(t.sec - hi * TWO32, off + 4);
  buf.writeUInt32BE(t.nsec, off + 8);
}

function readTime(buf: Buffer, off: number): Time {
  return { sec: buf.readInt32BE(off) * TWO32 + buf.readUInt32BE(off + 4), nsec: buf.readUInt32BE(off + 8) };
}

export function encodeInode(inode: Inode): Buffer {
  const target = inode.target ?? Buffer.alloc(0);
  if (target.length > MAX_SYMLINK_TARGET) throw new RangeError(`symlink target of inode ${inode.ino} is ${target.length} bytes`);
  const verLen = inode.verifier ? 8 : 0;
  const project = inode.project ?? 0;
  const projLen = project > 0 ? 4 : 0;
  const buf = Buffer.alloc(HEADER + projLen + verLen + 2 + target.length);
  buf[0] = INODE_VERSION;
  buf[1] = inode.type;
  buf.writeUInt16BE(inode.mode & 0o7777, 2);
  buf.writeUInt32BE(inode.nlink, 4);
  buf.writeUInt32BE(inode.uid, 8);
  buf.writeUInt32BE(inode.gid, 12);
  writeU64(buf, inode.size, 16);
  writeTime(buf, inode.atime, 24);
  writeTime(buf, inode.mtime, 36);
  writeTime(buf, inode.ctime, 48);
  buf.writeUInt32BE(inode.rdev.major, 60);
  buf.writeUInt32BE(inode.rdev.minor, 64);
  buf.writeUInt32BE(inode.generation, 68);
  writeU64(buf, inode.parent, 72);
  writeU64(buf, inode.nextCookie, 80);
  if (inode.chunks !== undefined && inode.extentBytes !== undefined) throw new RangeError(`inode ${inode.ino} has both a chunk count and extent bytes`);
  buf[88] = (inode.verifier ? FLAG_VERIFIER : 0) | (inode.chunks !== undefined ? FLAG_CHUNKS : 0) | (inode.extentBytes !== undefined ? FLAG_EXTENTS : 0) | (projLen ? FLAG_PROJECT : 0);
  writeU64(buf, inode.chunks ?? inode.extentBytes ?? 0, 89);
  if (projLen) buf.writeUInt32BE(project, HEADER);
  if (inode.verifier) {
    if (inode.verifier.length !== 8) throw new RangeError(`create verifier of inode ${inode.ino} must be 8 bytes`);
    inode.verifier.copy(buf, HEADER + projLen);
  }
  buf.writeUInt16BE(target.length, HEADER + projLen + verLen);
  target.copy(buf, HEADER + projLen + verLen + 2);
  return buf;
}

export function decodeInode(ino: number, buf: Buffer): Inode {
  const bad = (why: string): Error => fsError("EIO", `inode ${ino}: corrupt record (${why})`);
  const version = buf[0];
  if (version !== 1 && version !== INODE_VERSION) throw bad(`unknown version ${version}`);
  const header = version === 1 ? HEADER_V1 : HEADER;
  if (buf.length < header + 2) throw bad(`${buf.length} bytes`);
  const type = buf[1]!;
  if (!isFileType(type)) throw bad(`unknown type ${type}`);
  const flags = buf[88]!;
  const chunks = version !== 1 && flags & FLAG_CHUNKS ? readU64(buf, 89) : undefined;
  const extentBytes = version !== 1 && flags & FLAG_EXTENTS ? readU64(buf, 89) : undefined;
  if (chunks !== undefined && extentBytes !== undefined) throw bad("both chunk count and extent bytes");
  let off = header;
  let project: number | undefined;
  if (version !== 1 && flags & FLAG_PROJECT) {
    if (buf.length < off + 4) throw bad("truncated project id");
    project = buf.readUInt32BE(off);
    off += 4;
  }
  let verifier: Buffer | undefined;
  if (flags & FLAG_VERIFIER) {
    verifier = Buffer.from(buf.subarray(off, off + 8));
    off += 8;
  }
  if (buf.length < off + 2) throw bad("truncated");
  const targetLen = buf.readUInt16BE(off);
  off += 2;
  if (buf.length !== off + targetLen) throw bad(`length ${buf.length}, expected ${off + targetLen}`);
  return {
    ino,
    type,
    mode: buf.readUInt16BE(2) & 0o7777,
    nlink: buf.readUInt32BE(4),
    uid: buf.readUInt32BE(8),
    gid: buf.readUInt32BE(12),
    size: readU64(buf, 16),
    atime: readTime(buf, 24),
    mtime: readTime(buf, 36),
    ctime: readTime(buf, 48),
    rdev: { major: buf.readUInt32BE(60), minor: buf.readUInt32BE(64) },
    generation: buf.readUInt32BE(68),
    parent: readU64(buf, 72),
    nextCookie: readU64(buf, 80),
    verifier,
    target: targetLen > 0 ? Buffer.from(buf.subarray(off, off + targetLen)) : undefined,
    chunks,
    extentBytes,
    ...(project !== undefined ? { project } : {}),
  };
}
