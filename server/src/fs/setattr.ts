/**
 * SETATTR semantics (chmod, chown, truncate, utimes) as Linux applies them, which is what
 * pjdfstest checks. Pure: computes the new inode or throws; the caller handles the data side
 * of a size change and commits.
 */
import { fsError } from "./errors.ts";
import { MAX_FILE_SIZE } from "./file-data.ts";
import type { Inode } from "./inode-codec.ts";
import { Perm, hasPerm, inGroup, isRoot, modeAfterUnprivilegedWrite, requireDataPerm } from "./permissions.ts";
import { FileType, Mode, type Cred, type SetAttrs, type Time } from "./types.ts";

export function hasAnyAttr(a: SetAttrs): boolean {
  return a.mode !== undefined || a.uid !== undefined || a.gid !== undefined || a.size !== undefined || a.atime !== undefined || a.mtime !== undefined;
}

export function validTime(t: Time): boolean {
  return Number.isSafeInteger(t.sec) && Number.isInteger(t.nsec) && t.nsec >= 0 && t.nsec < 1e9;
}

/** Returns a new inode with `attrs` applied by `cred` at time `now`, or throws. */
export function applySetattr(cred: Cred, inode: Inode, attrs: SetAttrs, now: Time): Inode {
  const next: Inode = { ...inode };
  const root = isRoot(cred);
  const owner = cred.uid === inode.uid;
  const ctx = `setattr of inode ${inode.ino} by uid ${cred.uid}`;

  if (attrs.size !== undefined) {
    if (inode.type === FileType.DIR) throw fsError("EISDIR", `${ctx}: cannot change the size of a directory`);
    if (inode.type !== FileType.REG) throw fsError("EINVAL", `${ctx}: size applies to regular files only`);
    if (!Number.isSafeInteger(attrs.size) || attrs.size < 0) throw fsError("EINVAL", `${ctx}: invalid size ${attrs.size}`);
    if (attrs.size > MAX_FILE_SIZE) throw fsError("EFBIG", `${ctx}: size ${attrs.size} exceeds the maximum file size ${MAX_FILE_SIZE}`);
    requireDataPerm(cred, inode, Perm.W, ctx);
  }
  if (attrs.uid !== undefined && !root && !(owner && attrs.uid === inode.uid)) {
    throw fsError("EPERM", `${ctx}: only root may change the owner (to ${attrs.uid})`);
  }
  if (attrs.gid !== undefined && !root && !(owner && (attrs.gid === inode.gid || inGroup(cred, attrs.gid)))) {
    throw fsError("EPERM", `${ctx}: only the owner may change the group, and only to a group they belong to (gid ${attrs.gid})`);
  }
  if (attrs.mode !== undefined) {
    if (!root && !owner) throw fsError("EPERM", `${ctx}: only the owner or root may change the mode`);
    if (!Number.isInteger(attrs.mode) || attrs.mode < 0) throw fsError("EINVAL", `${ctx}: invalid mode ${attrs.mode}`);
  }
  const explicitTime = (attrs.atime !== undefined && attrs.atime !== "server") || (attrs.mtime !== undefined && attrs.mtime !== "server");
  if (attrs.atime !== undefined || attrs.mtime !== undefined) {
    for (const t of [attrs.atime, attrs.mtime]) {
      if (t !== undefined && t !== "server" && !validTime(t)) throw fsError("EINVAL", `${ctx}: invalid time ${JSON.stringify(t)}`);
    }
    if (explicitTime) {
      if (!root && !owner) throw fsError("EPERM", `${ctx}: only the owner or root may set explicit times`);
    } else if (!root && !owner && !hasPerm(cred, inode, Perm.W)) {
      throw fsError("EACCES", `${ctx}: setting times to the current time needs ownership or write permission`);
    }
  }

  // Ownership first: a mode in the same request is checked against the new group.
  if (attrs.uid !== undefined) next.uid = attrs.uid;
  if (attrs.gid !== undefined) next.gid = attrs.gid;
  if ((attrs.uid !== undefined || attrs.gid !== undefined) && inode.type !== FileType.DIR) {
    // chown drops set-user-ID and (with group execute) set-group-ID, whoever calls it.
    next.mode = modeAfterUnprivilegedWrite(next.mode);
  }
  if (attrs.mode !== undefined) {
    let mode = attrs.mode & Mode.PERMS;
    // A non-member cannot make a file set-group-ID to a group they are not in: dropped silently.
    if (!root && mode & Mode.SGID && !inGroup(cred, next.gid)) mode &= ~Mode.SGID;
    next.mode = mode;
  }
  if (attrs.size !== undefined) {
    next.size = attrs.size;
    if (!root) next.mode = modeAfterUnprivilegedWrite(next.mode);
    // truncate(2) updates mtime and ctime even when the size does not change.
    next.mtime = now;
  }
  if (attrs.atime !== undefined) next.atime = attrs.atime === "server" ? now : attrs.atime;
  if (attrs.mtime !== undefined) next.mtime = attrs.mtime === "server" ? now : attrs.mtime;
  if (hasAnyAttr(attrs)) next.ctime = now;
  return next;
}
