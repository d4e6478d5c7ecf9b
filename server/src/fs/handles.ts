/**
 * NFS file handles. Opaque to clients, stable across restarts (they hold only persistent ids):
 *
 *   off size
 *   0   1    handle format version (1)
 *   1   16   volume id (from the superblock)
 *   17  8    inode id (u64 BE)
 *   25  4    inode generation
 *
 * 29 bytes, well under the NFSv3 limit of 64. The volume id makes a handle from another volume
 * (say, after the export was re-created) fail as stale instead of naming an unrelated file.
 */
import { fsError } from "./errors.ts";
import { readU64, writeU64 } from "./keys.ts";

export const HANDLE_VERSION = 1;
export const HANDLE_BYTES = 29;
export const VOLUME_ID_BYTES = 16;

export interface DecodedHandle {
  volumeId: Buffer;
  ino: number;
  generation: number;
}

export function encodeHandle(volumeId: Buffer, ino: number, generation = 0): Buffer {
  if (volumeId.length !== VOLUME_ID_BYTES) throw new RangeError(`volume id must be ${VOLUME_ID_BYTES} bytes`);
  const buf = Buffer.allocUnsafe(HANDLE_BYTES);
  buf[0] = HANDLE_VERSION;
  buf.set(volumeId, 1);
  writeU64(buf, ino, 17);
  buf.writeUInt32BE(generation >>> 0, 25);
  return buf;
}

/** Parses a handle's structure; throws BADHANDLE for anything this server never issued. */
export function decodeHandle(buf: Uint8Array): DecodedHandle {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length !== HANDLE_BYTES || b[0] !== HANDLE_VERSION) throw fsError("BADHANDLE", `file handle of ${b.length} bytes is not a ZeroFS v${HANDLE_VERSION} handle`);
  // A u64 beyond 2^53 can only come from a forged handle.
  if (b.readUInt32BE(17) >= 2 ** 21) throw fsError("BADHANDLE", "file handle carries an out-of-range inode id");
  return { volumeId: Buffer.from(b.subarray(1, 17)), ino: readU64(b, 17), generation: b.readUInt32BE(25) };
}
