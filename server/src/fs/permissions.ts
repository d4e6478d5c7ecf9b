/**
 * POSIX permission checks against the caller's AUTH_SYS credentials. Only decisions live here;
 * the operations decide which check applies and which error to report.
 */
import { fsError } from "./errors.ts";
import type { Inode } from "./inode-codec.ts";
import { FileType, Mode, type Cred } from "./types.ts";

/** rwx bits of a permission class. */
export const Perm = { R: 4, W: 2, X: 1 } as const;

/** NFSv3 ACCESS3 request/grant bits. */
export const Access3 = {
  READ: 0x01,
  LOOKUP: 0x02,
  MODIFY: 0x04,
  EXTEND: 0x08,
  DELETE: 0x10,
  EXECUTE: 0x20,
} as const;

export function isRoot(cred: Cred): boolean {
  return cred.uid === 0;
}

export function inGroup(cred: Cred, gid: number): boolean {
  return cred.gid === gid || cred.gids.includes(gid);
}

type InodePerms = Pick<Inode, "type" | "mode" | "uid" | "gid">;

/**
 * Whether `cred` holds all of `want` (Perm bits) on the inode. Root holds everything except
 * execute of a non-directory without any x bit. For others exactly one class applies: owner,
 * else group (primary or supplementary), else other — POSIX does not fall back to a wider class.
 */
export function hasPerm(cred: Cred, inode: InodePerms, want: number): boolean {
  if (isRoot(cred)) {
    if (want & Perm.X && inode.type !== FileType.DIR && (inode.mode & 0o111) === 0) return false;
    return true;
  }
  let bits: number;
  if (cred.uid === inode.uid) bits = (inode.mode >> 6) & 7;
  else if (inGroup(cred, inode.gid)) bits = (inode.mode >> 3) & 7;
  else bits = inode.mode & 7;
  return (bits & want) === want;
}

const PERM_NAMES = ["", "x", "w", "wx", "r", "rx", "rw", "rwx"];

/** Throws EACCES unless `cred` holds `want` on the inode. */
export function requirePerm(cred: Cred, inode: Inode, want: number, what: string): void {
  if (!hasPerm(cred, inode, want)) {
    throw fsError("EACCES", `${what}: uid ${cred.uid} lacks ${PERM_NAMES[want]} permission on inode ${inode.ino} (mode ${inode.mode.toString(8)}, owner ${inode.uid}:${inode.gid})`);
  }
}

/**
 * Data access for READ/WRITE/truncate. NFS has no open(): a file created 0444 and still being
 * written through the descriptor its creator opened must stay writable for the owner, so the
 * owner is allowed regardless of the mode bits (as Linux knfsd does). The client enforces the
 * real open() permissions through ACCESS, which does not get this override.
 */
export function requireDataPerm(cred: Cred, inode: Inode, want: number, what: string): void {
  if (cred.uid === inode.uid) return;
  requirePerm(cred, inode, want, what);
}

/** The ACCESS3 bits of `requested` that `cred` is granted on the inode. */
export function accessMask(cred: Cred, inode: Inode, requested: number): number {
  let granted = 0;
  const isDir = inode.type === FileType.DIR;
  if (requested & Access3.READ && hasPerm(cred, inode, Perm.R)) granted |= Access3.READ;
  if (hasPerm(cred, inode, Perm.W)) granted |= requested & (Access3.MODIFY | Access3.EXTEND | (isDir ? Access3.DELETE : 0));
  if (hasPerm(cred, inode, Perm.X)) granted |= requested & (isDir ? Access3.LOOKUP : Access3.EXECUTE);
  return granted;
}

/**
 * Sticky directories: an entry may be removed or renamed away only by the owner of the entry,
 * the owner of the directory, or root.
 */
export function stickyForbids(cred: Cred, dir: Inode, child: Inode): boolean {
  return (dir.mode & Mode.STICKY) !== 0 && !isRoot(cred) && cred.uid !== dir.uid && cred.uid !== child.uid;
}

/**
 * Mode after a non-root write or truncate (Linux should_remove_suid): set-user-ID goes, and
 * set-group-ID goes when group execute is set (without it, S_ISGID marks mandatory locking).
 */
export function modeAfterUnprivilegedWrite(mode: number): number {
  let m = mode & ~Mode.SUID;
  if ((mode & (Mode.SGID | 0o010)) === (Mode.SGID | 0o010)) m &= ~Mode.SGID;
  return m;
}
