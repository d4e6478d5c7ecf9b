/**
 * Namespace operations of ZeroFs (fs/zerofs.ts): CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR,
 * RENAME and LINK, and dropLink, which removes one name of an inode (and the inode and its data
 * with the last).
 */
import { randomInt } from "node:crypto";
import { attrsOf, wccAttr } from "./attrs.ts";
import { addEntry, isDot, isDotDot, isEmptyDir, lookupEntry, removeEntry, showName, toName, validateName, FIRST_COOKIE } from "./directory.ts";
import { setattr } from "./data-ops.ts";
import { fsError } from "./errors.ts";
import { blockCount } from "./extent-data.ts";
import { chunkCount } from "./file-data.ts";
import type { FsCore } from "./fs-core.ts";
import { MAX_SYMLINK_TARGET, type Inode } from "./inode-codec.ts";
import { chunkKey, cookieKey, extentKey, tombstoneKey } from "./keys.ts";
import { LINK_MAX } from "./limits.ts";
import { Perm, hasPerm, inGroup, isRoot, requirePerm, stickyForbids } from "./permissions.ts";
import { Quotas } from "./quota.ts";
import { TombstoneKind, encodeTombstone } from "./records.ts";
import { applySetattr, hasAnyAttr } from "./setattr.ts";
import { LockSetChanged, type Txn } from "./txn.ts";
import { FileType, Mode, type Attrs, type CreateHow, type CreateResult, type Cred, type Rdev, type SetAttrs, type Time, type Wcc } from "./types.ts";

/** Lock key of the tree shape (sorts before every inode id). */
const TREE_LOCK = -1;
const MAX_DEPTH = 100_000;

interface NodeSpec {
  type: FileType;
  mode: number;
  attrs?: SetAttrs;
  target?: Buffer;
  rdev?: Rdev;
  verifier?: Buffer;
}

export function newGeneration(): number {
  return randomInt(1, 2 ** 32);
}

/** CREATE (regular file): UNCHECKED, GUARDED or EXCLUSIVE with a verifier. */
export async function create(core: FsCore, cred: Cred, dirIno: number, name: string | Uint8Array, how: CreateHow): Promise<CreateResult> {
  if (how.mode === "exclusive" && how.verifier.length !== 8) throw fsError("EINVAL", "create: exclusive create verifier must be 8 bytes");
  const attrs = how.mode === "exclusive" ? undefined : how.attrs;
  const spec: NodeSpec = { type: FileType.REG, mode: attrs?.mode ?? 0o644, ...(attrs ? { attrs } : {}), ...(how.mode === "exclusive" ? { verifier: how.verifier } : {}) };
  const r = await createNode(core, cred, dirIno, name, spec, how.mode);
  if ("existing" in r) {
    // UNCHECKED create of an existing file: only a requested truncation applies (as knfsd).
    if (attrs?.size !== undefined) await setattr(core, cred, r.existing.ino, { size: attrs.size });
    return { attrs: attrsOf(await core.inodes.require(r.existing.ino, "getattr")), dirWcc: r.dirWcc };
  }
  return r;
}

export async function mkdir(core: FsCore, cred: Cred, dirIno: number, name: string | Uint8Array, attrs: SetAttrs = {}): Promise<CreateResult> {
  const r = await createNode(core, cred, dirIno, name, { type: FileType.DIR, mode: attrs.mode ?? 0o755, attrs }, "guarded");
  if ("existing" in r) throw new Error("unreachable: guarded mkdir returned an existing entry");
  return r;
}

export async function symlink(core: FsCore, cred: Cred, dirIno: number, name: string | Uint8Array, target: string | Uint8Array, attrs: SetAttrs = {}): Promise<CreateResult> {
  const t = Buffer.from(toName(target));
  if (t.length === 0) throw fsError("ENOENT", `symlink: empty target for ${showName(toName(name))} in directory ${dirIno}`);
  if (t.length > MAX_SYMLINK_TARGET) throw fsError("ENAMETOOLONG", `symlink: target of ${t.length} bytes exceeds ${MAX_SYMLINK_TARGET}`);
  // Symlink permission bits are meaningless; Linux always makes them 0777.
  const { mode: _ignored, size: _size, ...rest } = attrs;
  const r = await createNode(core, cred, dirIno, name, { type: FileType.LNK, mode: 0o777, attrs: rest, target: t }, "guarded");
  if ("existing" in r) throw new Error("unreachable: guarded symlink returned an existing entry");
  return r;
}

/** MKNOD: character/block devices (root only), sockets and FIFOs. */
export async function mknod(core: FsCore, cred: Cred, dirIno: number, name: string | Uint8Array, type: FileType, attrs: SetAttrs = {}, rdev: Rdev = { major: 0, minor: 0 }): Promise<CreateResult> {
  if (type !== FileType.CHR && type !== FileType.BLK && type !== FileType.SOCK && type !== FileType.FIFO) {
    throw fsError("BADTYPE", `mknod: type ${type} is not a device, socket or FIFO`);
  }
  const isDev = type === FileType.CHR || type === FileType.BLK;
  if (isDev && !isRoot(cred)) throw fsError("EPERM", `mknod: only root may create device nodes (uid ${cred.uid})`);
  const spec: NodeSpec = { type, mode: attrs.mode ?? 0o644, attrs, rdev: isDev ? rdev : { major: 0, minor: 0 } };
  const r = await createNode(core, cred, dirIno, name, spec, "guarded");
  if ("existing" in r) throw new Error("unreachable: guarded mknod returned an existing entry");
  return r;
}

async function createNode(
  core: FsCore,
  cred: Cred,
  dirIno: number,
  name: string | Uint8Array,
  spec: NodeSpec,
  how: "unchecked" | "guarded" | "exclusive",
): Promise<CreateResult | { existing: Inode; dirWcc: Wcc }> {
  const n = toName(name);
  const what = `${spec.type === FileType.DIR ? "mkdir" : "create"} of ${showName(n)} in directory ${dirIno}`;
  validateName(n, dirIno, what);
  return core.mutate(what, [dirIno], core.opts.syncMetadata, async (tx) => {
    const dir = await core.requireDir(dirIno, what);
    // Linux order: search permission, then an existing name (EEXIST), then write permission.
    requirePerm(cred, dir, Perm.X, what);
    if (isDot(n) || isDotDot(n)) throw fsError("EEXIST", `${what}: name exists`);
    const existing = await lookupEntry(core.db, dirIno, n);
    if (existing) {
      const child = await core.inodes.get(existing.ino);
      const dirWcc = { before: wccAttr(dir), after: attrsOf(dir) };
      if (child && how === "exclusive" && spec.verifier && child.verifier?.equals(spec.verifier)) return { attrs: attrsOf(child), dirWcc };
      if (child && how === "unchecked" && child.type === FileType.REG) return { existing: child, dirWcc };
      throw fsError("EEXIST", `${what}: an entry with that name exists (inode ${existing.ino})`);
    }
    requirePerm(cred, dir, Perm.W, what);
    if (spec.type === FileType.DIR && dir.nlink >= LINK_MAX) throw fsError("EMLINK", `${what}: directory has ${dir.nlink} links`);
    const initialBytes = spec.target?.length ?? (spec.type === FileType.REG ? (spec.attrs?.size ?? 0) : 0);
    if (core.opts.capacityBytes !== undefined && core.counters.usedBytes >= core.opts.capacityBytes) {
      throw fsError("ENOSPC", `${what}: volume is full (${core.counters.usedBytes} of ${core.opts.capacityBytes} bytes)`);
    }
    core.reserve(tx, initialBytes, what);
    const ino = await core.alloc.allocate();
    const now = core.clock.now();
    let child = newInode(core, cred, dir, ino, spec, now);
    // Owner, group and times requested with the create follow the SETATTR rules (the caller
    // is the owner now); the mode was applied above with the setgid-directory rules.
    const extra: SetAttrs = { ...spec.attrs, mode: undefined };
    if (spec.type !== FileType.REG) extra.size = undefined;
    if (hasAnyAttr(extra)) {
      // The requested mode stands: SETATTR's suid/sgid clearing on chown is for existing files.
      const mode = child.mode;
      child = applySetattr(cred, child, extra, now);
      child.mode = mode;
    }
    child.ctime = now;
    const nextDir: Inode = { ...dir, mtime: now, ctime: now };
    if (spec.type === FileType.DIR) nextDir.nlink++;
    addEntry(tx.batch, nextDir, n, ino, spec.type);
    tx.create(child);
    tx.put(nextDir);
    tx.deltas.inodes += 1;
    tx.deltas.bytes += initialBytes;
    tx.shardIno = ino;
    return { attrs: attrsOf(child), dirWcc: { before: wccAttr(dir), after: attrsOf(nextDir) } };
  });
}

function newInode(core: FsCore, cred: Cred, dir: Inode, ino: number, spec: NodeSpec, now: Time): Inode {
  const sgidDir = (dir.mode & Mode.SGID) !== 0;
  const gid = sgidDir ? dir.gid : cred.gid;
  let mode = spec.mode & Mode.PERMS;
  if (spec.type === FileType.DIR) {
    // New subdirectories of a setgid directory are setgid too (BSD group semantics).
    if (sgidDir) mode |= Mode.SGID;
  } else if ((mode & (Mode.SGID | 0o010)) === (Mode.SGID | 0o010) && !isRoot(cred) && !inGroup(cred, gid)) {
    // Linux: a file inheriting a group the creator is not in must not be set-group-ID.
    mode &= ~Mode.SGID;
  }
  return {
    ino,
    type: spec.type,
    mode,
    nlink: spec.type === FileType.DIR ? 2 : 1,
    uid: cred.uid,
    gid,
    size: spec.target?.length ?? 0,
    atime: now,
    mtime: now,
    ctime: now,
    rdev: spec.rdev ?? { major: 0, minor: 0 },
    generation: newGeneration(),
    parent: spec.type === FileType.DIR ? dir.ino : 0,
    nextCookie: spec.type === FileType.DIR ? FIRST_COOKIE : 0,
    verifier: spec.verifier ? Buffer.from(spec.verifier) : undefined,
    target: spec.target,
    chunks: spec.type === FileType.REG && core.opts.dataLayout === 1 ? 0 : undefined,
    extentBytes: spec.type === FileType.REG && core.opts.dataLayout !== 1 ? 0 : undefined,
    // Everything created below a quota project's directory belongs to the project.
    ...(dir.project ? { project: dir.project } : {}),
  };
}

/** REMOVE: unlinks a non-directory. */
export async function remove(core: FsCore, cred: Cred, dirIno: number, name: string | Uint8Array): Promise<{ dirWcc: Wcc }> {
  const n = toName(name);
  const what = `remove of ${showName(n)} in directory ${dirIno}`;
  if (isDot(n) || isDotDot(n)) throw fsError("EISDIR", `${what}: not a file`);
  validateName(n, dirIno, what);
  return unlinkEntry(core, cred, dirIno, n, what, false);
}

/** RMDIR: removes an empty directory. */
export async function rmdir(core: FsCore, cred: Cred, dirIno: number, name: string | Uint8Array): Promise<{ dirWcc: Wcc }> {
  const n = toName(name);
  const what = `rmdir of ${showName(n)} in directory ${dirIno}`;
  if (isDot(n)) throw fsError("EINVAL", `${what}: cannot remove "."`);
  if (isDotDot(n)) throw fsError("ENOTEMPTY", `${what}: cannot remove ".."`);
  validateName(n, dirIno, what);
  return unlinkEntry(core, cred, dirIno, n, what, true);
}

async function unlinkEntry(core: FsCore, cred: Cred, dirIno: number, n: Buffer, what: string, dir: boolean): Promise<{ dirWcc: Wcc }> {
  // The same lookups find the lock set, then re-check it under the locks.
  const look = async () => {
    const parent = await core.requireDir(dirIno, what);
    requirePerm(cred, parent, Perm.X, what);
    const entry = await lookupEntry(core.db, dirIno, n);
    if (!entry) throw fsError("ENOENT", `${what}: no such entry`);
    return { parent, entry };
  };
  return core.mutateDiscovered(
    what,
    async () => {
      const { entry } = await look();
      return { locks: [dirIno, entry.ino], state: entry.ino };
    },
    async (tx, expectedIno) => {
      const { parent, entry } = await look();
      if (entry.ino !== expectedIno) throw new LockSetChanged();
      requirePerm(cred, parent, Perm.W, what);
      const child = await core.requireEntryInode(entry.ino, what);
      if (dir && child.type !== FileType.DIR) throw fsError("ENOTDIR", `${what}: inode ${child.ino} is not a directory`);
      if (!dir && child.type === FileType.DIR) throw fsError("EISDIR", `${what}: inode ${child.ino} is a directory (use rmdir)`);
      if (stickyForbids(cred, parent, child)) throw fsError("EPERM", `${what}: sticky directory; uid ${cred.uid} owns neither it nor inode ${child.ino}`);
      if (dir && !(await isEmptyDir(core.db, child.ino))) throw fsError("ENOTEMPTY", `${what}: directory ${child.ino} is not empty`);
      const now = core.clock.now();
      removeEntry(tx.batch, dirIno, n, entry);
      const nextParent: Inode = { ...parent, mtime: now, ctime: now };
      if (dir) nextParent.nlink--;
      tx.put(nextParent);
      dropLink(core, tx, child, now);
      return { dirWcc: { before: wccAttr(parent), after: attrsOf(nextParent) } };
    },
  );
}

/**
 * Removes one name of `inode` inside `tx`: the inode goes with its last link (directories
 * have one), together with its data — inline for small files, via a tombstone and the
 * background reclaimer for large ones.
 */
export function dropLink(core: FsCore, tx: Txn, inode: Inode, now: Time): void {
  if (inode.type !== FileType.DIR && inode.nlink > 1) {
    tx.put({ ...inode, nlink: inode.nlink - 1, ctime: now });
    return;
  }
  tx.drop(inode.ino);
  tx.deltas.inodes -= 1;
  if (inode.type === FileType.REG || inode.type === FileType.LNK) tx.deltas.bytes -= inode.size;
  if (tx.shardIno === 0) tx.shardIno = inode.ino;
  if (inode.type !== FileType.REG) return;
  core.segmentGc?.noteFreed(inode.extentBytes ?? 0);
  const chunks = chunkCount(inode.size);
  if (inode.extentBytes !== undefined && blockCount(inode.size) <= core.opts.inlineDeleteChunks) {
    for (let b = 0; b < blockCount(inode.size); b++) tx.batch.delete(extentKey(inode.ino, b));
  } else if (inode.extentBytes === undefined && chunks <= core.opts.inlineDeleteChunks) {
    for (let i = 0; i < chunks; i++) tx.batch.delete(chunkKey(inode.ino, i));
  } else {
    // DELETED covers the v1 chunks and then the extent map: either layout, one tombstone.
    tx.batch.put(tombstoneKey(inode.ino), encodeTombstone({ kind: TombstoneKind.DELETED, from: 0, to: chunks }));
    tx.kickReclaimer = true;
  }
}

/** RENAME, atomically replacing an existing target of a compatible type. */
export async function rename(core: FsCore, cred: Cred, fromDirIno: number, fromName: string | Uint8Array, toDirIno: number, toName_: string | Uint8Array): Promise<{ fromDirWcc: Wcc; toDirWcc: Wcc }> {
  const src = toName(fromName);
  const dst = toName(toName_);
  const what = `rename of ${showName(src)} in directory ${fromDirIno} to ${showName(dst)} in directory ${toDirIno}`;
  validateName(src, fromDirIno, what);
  validateName(dst, toDirIno, what);
  if (isDot(src) || isDotDot(src) || isDot(dst) || isDotDot(dst)) throw fsError("EINVAL", `${what}: "." and ".." cannot be renamed`);
  // The same lookups find the lock set, then re-check it under the locks.
  const look = async () => {
    const fd = await core.requireDir(fromDirIno, what);
    const td = await core.requireDir(toDirIno, what);
    requirePerm(cred, fd, Perm.X, what);
    requirePerm(cred, td, Perm.X, what);
    const s = await lookupEntry(core.db, fromDirIno, src);
    if (!s) throw fsError("ENOENT", `${what}: no such entry`);
    const d = await lookupEntry(core.db, toDirIno, dst);
    return { fd, td, s, d };
  };
  return core.mutateDiscovered(
    what,
    async () => {
      const { s, d } = await look();
      const locks = [fromDirIno, toDirIno, s.ino];
      if (d) locks.push(d.ino);
      // Moving a directory to another parent changes the tree shape: serialize those.
      if (s.type === FileType.DIR && fromDirIno !== toDirIno) locks.push(TREE_LOCK);
      return { locks, state: { src: s.ino, srcIsDir: s.type === FileType.DIR, dst: d?.ino } };
    },
    async (tx, expected) => {
      const { fd, td, s, d } = await look();
      if (s.ino !== expected.src || (s.type === FileType.DIR) !== expected.srcIsDir || d?.ino !== expected.dst) throw new LockSetChanged();
      // Two names of one inode: POSIX says do nothing and succeed (Linux checks this first).
      if (d && d.ino === s.ino) return { fromDirWcc: { before: wccAttr(fd), after: attrsOf(fd) }, toDirWcc: { before: wccAttr(td), after: attrsOf(td) } };
      requirePerm(cred, fd, Perm.W, what);
      requirePerm(cred, td, Perm.W, what);
      const child = await core.requireEntryInode(s.ino, what);
      if (stickyForbids(cred, fd, child)) throw fsError("EPERM", `${what}: sticky source directory; uid ${cred.uid} owns neither it nor inode ${child.ino}`);
      const target = d ? await core.requireEntryInode(d.ino, what) : undefined;
      if (target && stickyForbids(cred, td, target)) throw fsError("EPERM", `${what}: sticky target directory; uid ${cred.uid} owns neither it nor inode ${target.ino}`);
      const isDir = child.type === FileType.DIR;
      const moves = fromDirIno !== toDirIno;
      if (moves) Quotas.checkSameProject(child, td, what);
      if (isDir) {
        if (target && target.type !== FileType.DIR) throw fsError("ENOTDIR", `${what}: cannot replace non-directory ${target.ino} with a directory`);
        if (moves) {
          // The moved directory's ".." changes: that needs write permission on it.
          if (!hasPerm(cred, child, Perm.W)) throw fsError("EACCES", `${what}: moving directory ${child.ino} to another parent needs write permission on it`);
          await checkNotInSubtree(core, child.ino, toDirIno, what);
          if (!target && td.nlink >= LINK_MAX) throw fsError("EMLINK", `${what}: target directory has ${td.nlink} links`);
        }
        if (target && !(await isEmptyDir(core.db, target.ino))) throw fsError("ENOTEMPTY", `${what}: target directory ${target.ino} is not empty`);
      } else if (target?.type === FileType.DIR) {
        throw fsError("EISDIR", `${what}: cannot replace directory ${target.ino} with a non-directory`);
      }
      const now = core.clock.now();
      const nextFrom: Inode = { ...fd, mtime: now, ctime: now };
      const nextTo: Inode = moves ? { ...td, mtime: now, ctime: now } : nextFrom;
      removeEntry(tx.batch, fromDirIno, src, s);
      // The replaced entry's name record is overwritten by addEntry; only its cookie goes.
      if (d) tx.batch.delete(cookieKey(toDirIno, d.cookie));
      addEntry(tx.batch, nextTo, dst, child.ino, child.type);
      tx.put({ ...child, ctime: now, parent: isDir ? toDirIno : child.parent });
      if (target) {
        if (target.type === FileType.DIR) nextTo.nlink--;
        dropLink(core, tx, target, now);
      }
      if (isDir && moves) {
        nextFrom.nlink--;
        nextTo.nlink++;
      }
      tx.put(nextFrom);
      tx.put(nextTo);
      return { fromDirWcc: { before: wccAttr(fd), after: attrsOf(nextFrom) }, toDirWcc: { before: wccAttr(td), after: attrsOf(nextTo) } };
    },
  );
}

/** EINVAL when `dirIno` is `ancestor` or inside it (walks ".." up to the root). */
async function checkNotInSubtree(core: FsCore, ancestor: number, dirIno: number, what: string): Promise<void> {
  let cur = dirIno;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (cur === ancestor) throw fsError("EINVAL", `${what}: cannot move directory ${ancestor} into its own subtree`);
    if (cur === core.rootIno) return;
    cur = (await core.requireEntryInode(cur, what)).parent;
  }
  throw fsError("EIO", `${what}: directory ${dirIno} is more than ${MAX_DEPTH} levels deep (corrupt parent chain?)`);
}

/** LINK: a new name for a non-directory. */
export async function link(core: FsCore, cred: Cred, ino: number, dirIno: number, name: string | Uint8Array): Promise<{ attrs: Attrs; dirWcc: Wcc }> {
  const n = toName(name);
  const what = `link of inode ${ino} as ${showName(n)} in directory ${dirIno}`;
  validateName(n, dirIno, what);
  return core.mutate(what, [ino, dirIno], core.opts.syncMetadata, async (tx) => {
    const target = await core.inodes.require(ino, what);
    if (target.type === FileType.DIR) throw fsError("EPERM", `${what}: hard links to directories are not allowed`);
    const dir = await core.requireDir(dirIno, what);
    requirePerm(cred, dir, Perm.X, what);
    if (isDot(n) || isDotDot(n) || (await lookupEntry(core.db, dirIno, n))) throw fsError("EEXIST", `${what}: an entry with that name exists`);
    requirePerm(cred, dir, Perm.W, what);
    if (target.nlink >= LINK_MAX) throw fsError("EMLINK", `${what}: inode has ${target.nlink} links`);
    Quotas.checkSameProject(target, dir, what);
    const now = core.clock.now();
    const nextDir: Inode = { ...dir, mtime: now, ctime: now };
    addEntry(tx.batch, nextDir, n, ino, target.type);
    const nextTarget: Inode = { ...target, nlink: target.nlink + 1, ctime: now };
    tx.put(nextTarget);
    tx.put(nextDir);
    return { attrs: attrsOf(nextTarget), dirWcc: { before: wccAttr(dir), after: attrsOf(nextDir) } };
  });
}
