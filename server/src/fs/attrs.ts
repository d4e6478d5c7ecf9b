/**
 * Attributes as the NFS layer sees them, derived from inodes, and the XDR size of a READDIR
 * entry (the engine fills pages to the client's byte budget).
 */
import { HANDLE_BYTES } from "./handles.ts";
import type { Inode } from "./inode-codec.ts";
import { CHUNK_SIZE } from "./keys.ts";
import { FileType, type Attrs, type WccAttr } from "./types.ts";

export function wccAttr(i: Inode): WccAttr {
  return { size: i.size, mtime: i.mtime, ctime: i.ctime };
}

/** Space accounting granularity reported to clients (st_blocks is derived from `used`). */
const USED_UNIT = 4096;

/**
 * Bytes a file occupies: the apparent size rounded up to 4 KiB, but never more than its stored
 * chunks, so holes in sparse files are not counted (`du` smaller than the size). Stored chunks
 * are trimmed of trailing zeros, so a chunk counts as at most 64 KiB.
 */
function usedBytes(i: Inode): number {
  if (i.type === FileType.DIR) return USED_UNIT;
  if (i.type !== FileType.REG && i.type !== FileType.LNK) return 0;
  const apparent = Math.ceil(i.size / USED_UNIT) * USED_UNIT;
  if (i.type !== FileType.REG) return apparent;
  if (i.extentBytes !== undefined) return Math.min(apparent, Math.ceil(i.extentBytes / USED_UNIT) * USED_UNIT);
  return i.chunks !== undefined ? Math.min(apparent, i.chunks * CHUNK_SIZE) : apparent;
}

export function attrsOf(i: Inode): Attrs {
  const used = usedBytes(i);
  return {
    ino: i.ino,
    generation: i.generation,
    type: i.type,
    mode: i.mode,
    nlink: i.nlink,
    uid: i.uid,
    gid: i.gid,
    size: i.size,
    used,
    rdev: i.rdev,
    atime: i.atime,
    mtime: i.mtime,
    ctime: i.ctime,
  };
}

/** XDR bytes of one READDIR entry3 (plus=false) or READDIRPLUS entryplus3 (with attrs and handle). */
export function readdirEntryBytes(nameLength: number, plus: boolean): number {
  const dir = 4 + 8 + 4 + Math.ceil(nameLength / 4) * 4 + 8;
  return plus ? dir + 4 + 84 + 4 + 4 + Math.ceil(HANDLE_BYTES / 4) * 4 : dir;
}
