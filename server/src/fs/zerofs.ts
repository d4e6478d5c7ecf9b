/**
 * ZeroFs: a POSIX filesystem over the LSM key-value store, with an API shaped after the NFSv3
 * procedures (RFC 1813) so the NFS layer is a thin translation.
 *
 * Concurrency. The engine is a single writer with atomic batches but no transactions, so each
 * mutating operation holds the locks of the inodes it reads-then-writes (parent directories,
 * the entries it removes or replaces, the file it writes) for the span of its reads plus the
 * in-memory apply of its batch. Locks are per inode, so unrelated files and directories change
 * in parallel; they are taken all at once in ascending order (deadlock-free), and operations
 * that must look an entry up to know what to lock re-check it under the locks and retry if it
 * changed. Cross-directory renames of directories also take a global tree lock (like Linux's
 * rename_lock), which keeps the ancestor walk of the subtree check stable. Reads take no locks.
 *
 * Durability. A batch is applied without waiting for the WAL; the locks are released and only
 * then does the operation wait for durability (db.flush, shared by all concurrent callers:
 * group commit). Holding locks across a WAL PUT would serialize every create in a directory on
 * object-store latency. This is safe because the log is ordered: a later operation that read
 * our not-yet-durable state becomes durable only after we do.
 *
 * Layout. This class is the public facade: the machinery the operations share (locks, the
 * transaction runner, counters, quotas) is FsCore (fs/fs-core.ts), and the operations live in
 * fs/namespace-ops.ts, fs/data-ops.ts and fs/readdir-op.ts; attributes in fs/attrs.ts, options
 * in fs/options.ts, limits in fs/limits.ts.
 */
import { randomBytes } from "node:crypto";
import type { Db } from "../lsm/db.ts";
import { WriteBatch } from "../lsm/write-batch.ts";
import { attrsOf } from "./attrs.ts";
import { VolumeCounters } from "./counters.ts";
import * as dataOps from "./data-ops.ts";
import { FIRST_COOKIE, NAME_MAX, isDot, isDotDot, lookupEntry, showName, toName } from "./directory.ts";
import { fsError } from "./errors.ts";
import { MAX_FILE_SIZE } from "./file-data.ts";
import { FsCore, type FsInternals } from "./fs-core.ts";
import { decodeHandle, encodeHandle } from "./handles.ts";
import { InoAllocator } from "./ino-allocator.ts";
import { encodeInode, type Inode } from "./inode-codec.ts";
import { DATA_LAYOUT_VERSION, SUPERBLOCK_KEY, inodeKey } from "./keys.ts";
import { LINK_MAX, RTMAX, UNLIMITED_BYTES, UNLIMITED_FILES, WTMAX } from "./limits.ts";
import * as namespaceOps from "./namespace-ops.ts";
import type { ZeroFsOptions } from "./options.ts";
import { Perm, accessMask, requirePerm } from "./permissions.ts";
import { Quotas } from "./quota.ts";
import type { ReadAhead } from "./read-ahead.ts";
import { readdir } from "./readdir-op.ts";
import type { Reclaimer } from "./reclaimer.ts";
import { decodeSuperblock, encodeSuperblock } from "./records.ts";
import type { SegmentGc } from "./segment-gc.ts";
import { TreeReclaimer } from "./tree-reclaimer.ts";
import {
  FileType,
  Mode,
  type Attrs,
  type CreateHow,
  type CreateResult,
  type Cred,
  type FsInfo,
  type FsStat,
  type PathConf,
  type ReadResult,
  type ReadvResult,
  type ReaddirLimits,
  type ReaddirResult,
  type Rdev,
  type SetAttrs,
  type StableHow,
  type Time,
  type Wcc,
  type WriteResult,
} from "./types.ts";

// Moved to their own modules; re-exported so importers of "./zerofs.ts" stay as they were.
export { attrsOf, readdirEntryBytes, wccAttr } from "./attrs.ts";
export type { FsInternals } from "./fs-core.ts";
export { LINK_MAX, RTMAX, WTMAX } from "./limits.ts";
export type { ZeroFsOptions } from "./options.ts";

const ROOT_INO = 1;

export class ZeroFs {
  readonly db: Db;
  readonly volumeId: Buffer;
  readonly rootIno: number;
  /** WRITE/COMMIT verifier: differs on every start, so clients resend unstable writes after a restart. */
  readonly writeVerifier: Buffer = randomBytes(8);
  readonly reclaimer: Reclaimer | undefined;
  readonly segmentGc: SegmentGc | undefined;
  readonly readAhead: ReadAhead | undefined;
  /** Directory quotas (fs/quota.ts); the claim directory API (fs/claims.ts) manages them. */
  readonly quotas: Quotas;
  /** Background deletion of detached directory trees (fs/tree-reclaimer.ts). */
  readonly treeReclaimer: TreeReclaimer | undefined;
  private readonly core: FsCore;
  private rootGeneration = 0;

  private constructor(db: Db, volumeId: Buffer, rootIno: number, counters: VolumeCounters, alloc: InoAllocator, quotas: Quotas, options: ZeroFsOptions) {
    this.db = db;
    this.quotas = quotas;
    this.volumeId = volumeId;
    this.rootIno = rootIno;
    // The core builds the read-ahead, segment GC and reclaimer (the operations feed them).
    this.core = new FsCore(db, rootIno, counters, alloc, quotas, options);
    this.readAhead = this.core.readAhead;
    this.segmentGc = this.core.segmentGc;
    this.reclaimer = this.core.reclaimer;
    if (options.reclaimer !== false && !this.core.opts.readOnly) {
      this.treeReclaimer = new TreeReclaimer(this.internals(), { batchEntries: this.core.opts.reclaimBatchKeys, ...(options.logger ? { logger: options.logger } : {}) });
    }
  }

  /** What the quota and claim modules need of the engine's machinery (not for the NFS layer). */
  internals(): FsInternals {
    const core = this.core;
    return {
      db: core.db,
      quotas: core.quotas,
      inodes: core.inodes,
      clock: core.clock,
      mutate: (what, locks, body) => core.mutate(what, locks, core.opts.syncMetadata, body),
      dropLink: (tx, inode, now) => namespaceOps.dropLink(core, tx, inode, now),
      checkWritable: (what) => core.checkWritable(what),
      treeReclaimer: () => this.treeReclaimer,
    };
  }

  /**
   * Opens the filesystem kept in `db`, creating a new volume (superblock, root directory) on
   * first use. Resumes, in the background, truncations a crash interrupted (writes and size
   * changes to those files wait for them) and deferred deletions; opening never waits for them.
   */
  static async open(db: Db, options: ZeroFsOptions = {}): Promise<ZeroFs> {
    let raw = await db.get(SUPERBLOCK_KEY);
    if (!raw) {
      if (options.readOnly) throw fsError("EROFS", "volume is not initialized and the filesystem is opened read-only");
      raw = await ZeroFs.initialize(db, options);
    }
    let sb = decodeSuperblock(raw);
    if (sb.layoutVersion < DATA_LAYOUT_VERSION && !options.readOnly) {
      // From now on files of layout 2 may exist: older servers must refuse the volume.
      sb = { ...sb, layoutVersion: DATA_LAYOUT_VERSION };
      await db.write(new WriteBatch().put(SUPERBLOCK_KEY, encodeSuperblock(sb)), { awaitDurable: true });
      options.logger?.info({ layoutVersion: DATA_LAYOUT_VERSION }, "volume layout upgraded (v1 files stay readable and writable)");
    }
    const counters = await VolumeCounters.load(db);
    const alloc = await InoAllocator.load(db, options.inoRangeSize ?? 1024);
    const fs = new ZeroFs(db, sb.volumeId, sb.rootIno, counters, alloc, await Quotas.load(db), options);
    fs.rootGeneration = (await fs.core.inodes.require(sb.rootIno, "open")).generation;
    if (!fs.core.opts.readOnly) await dataOps.resumeInterruptedTruncations(fs.core);
    fs.reclaimer?.kick();
    fs.treeReclaimer?.kick();
    fs.segmentGc?.start();
    const deletedTreesPending = fs.quotas.all().filter((r) => r.deleting).length;
    fs.core.log?.info({ volumeId: sb.volumeId.toString("hex"), usedBytes: counters.usedBytes, inodes: counters.inodeCount, deletedTreesPending }, "filesystem opened");
    return fs;
  }

  private static async initialize(db: Db, options: ZeroFsOptions): Promise<Buffer> {
    const ms = (options.clock ?? Date.now)();
    const now: Time = { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
    const sb = encodeSuperblock({ layoutVersion: DATA_LAYOUT_VERSION, volumeId: randomBytes(16), createdMs: Math.floor(ms), rootIno: ROOT_INO });
    const root: Inode = {
      ino: ROOT_INO,
      type: FileType.DIR,
      mode: (options.rootAttrs?.mode ?? 0o755) & Mode.PERMS,
      nlink: 2,
      uid: options.rootAttrs?.uid ?? 0,
      gid: options.rootAttrs?.gid ?? 0,
      size: 0,
      atime: now,
      mtime: now,
      ctime: now,
      rdev: { major: 0, minor: 0 },
      generation: namespaceOps.newGeneration(),
      parent: ROOT_INO,
      nextCookie: FIRST_COOKIE,
      verifier: undefined,
      target: undefined,
    };
    const batch = new WriteBatch().put(SUPERBLOCK_KEY, sb).put(inodeKey(ROOT_INO), encodeInode(root));
    VolumeCounters.initialize(batch, { bytes: 0, inodes: 1 });
    InoAllocator.initialize(batch, ROOT_INO + 1);
    await db.write(batch, { awaitDurable: true });
    options.logger?.info("initialized a new volume");
    return sb;
  }

  /** Resolves once background deletions (resumed truncations, the reclaimer) are done (tests). */
  async backgroundIdle(): Promise<void> {
    await Promise.all(this.core.pendingTruncations.values());
    await this.treeReclaimer?.idle();
    await this.reclaimer?.idle();
  }

  /** Stops background work and makes everything durable. The caller closes the Db. */
  async close(): Promise<void> {
    if (this.core.closed) return;
    this.core.closed = true;
    await this.segmentGc?.stop();
    await this.treeReclaimer?.stop();
    await this.reclaimer?.stop();
    await Promise.all(this.core.pendingTruncations.values());
    if (!this.core.opts.readOnly) await this.db.flush();
  }

  // ------------------------------------------------------------------ handles

  handleOf(attrs: Pick<Attrs, "ino" | "generation">): Buffer {
    return encodeHandle(this.volumeId, attrs.ino, attrs.generation);
  }

  rootHandle(): Buffer {
    return encodeHandle(this.volumeId, this.rootIno, this.rootGeneration);
  }

  /**
   * The inode a file handle names. BADHANDLE for bytes this server never issued; ESTALE for a
   * handle of another volume or of an inode that no longer exists.
   */
  async resolveHandle(fh: Uint8Array): Promise<number> {
    const h = decodeHandle(fh);
    if (!h.volumeId.equals(this.volumeId)) {
      throw fsError("ESTALE", `file handle belongs to volume ${h.volumeId.toString("hex")}, not ${this.volumeId.toString("hex")}`);
    }
    const inode = await this.core.inodes.require(h.ino, "file handle");
    if (inode.generation !== h.generation) throw fsError("ESTALE", `file handle generation ${h.generation} does not match inode ${h.ino}`);
    return h.ino;
  }

  // ------------------------------------------------------------------ reads

  async getattr(ino: number): Promise<Attrs> {
    return attrsOf(await this.core.inodes.require(ino, "getattr"));
  }

  async lookup(cred: Cred, dirIno: number, name: string | Uint8Array): Promise<{ attrs: Attrs; dirAttrs: Attrs }> {
    const n = toName(name);
    if (n.length > NAME_MAX) throw fsError("ENAMETOOLONG", `lookup: name of ${n.length} bytes in directory ${dirIno} exceeds ${NAME_MAX}`);
    const dir = await this.core.requireDir(dirIno, "lookup");
    requirePerm(cred, dir, Perm.X, `lookup of ${showName(n)}`);
    if (isDot(n)) return { attrs: attrsOf(dir), dirAttrs: attrsOf(dir) };
    if (isDotDot(n)) return { attrs: attrsOf(await this.core.inodes.require(dir.parent, "lookup of ..")), dirAttrs: attrsOf(dir) };
    const entry = await lookupEntry(this.core.db, dirIno, n);
    // The entry can vanish between the two gets (a concurrent remove): same answer as before it.
    const child = entry && (await this.core.inodes.get(entry.ino));
    if (!child) throw fsError("ENOENT", `lookup: no entry ${showName(n)} in directory ${dirIno}`);
    return { attrs: attrsOf(child), dirAttrs: attrsOf(dir) };
  }

  /** ACCESS: which of the requested ACCESS3 bits the caller holds. */
  async access(cred: Cred, ino: number, requested: number): Promise<{ granted: number; attrs: Attrs }> {
    const inode = await this.core.inodes.require(ino, "access");
    return { granted: accessMask(cred, inode, requested), attrs: attrsOf(inode) };
  }

  async readlink(_cred: Cred, ino: number): Promise<{ target: Buffer; attrs: Attrs }> {
    const inode = await this.core.inodes.require(ino, "readlink");
    if (inode.type !== FileType.LNK) throw fsError("EINVAL", `readlink: inode ${ino} is not a symbolic link`);
    return { target: Buffer.from(inode.target ?? Buffer.alloc(0)), attrs: attrsOf(inode) };
  }

  async read(cred: Cred, ino: number, offset: number, count: number): Promise<ReadResult> {
    return dataOps.read(this.core, cred, ino, offset, count);
  }

  /** READ as pieces in order (views of cached data: never modify them), for writev. */
  async readv(cred: Cred, ino: number, offset: number, count: number): Promise<ReadvResult> {
    return dataOps.readv(this.core, cred, ino, offset, count);
  }

  /**
   * READDIR / READDIRPLUS. Cookie 0 starts a listing; "." and ".." come first (cookies 1 and
   * 2), then the entries in cookie order. Resuming at any cookie handed out is exact across
   * restarts and concurrent changes (entries added later appear later, removed ones vanish).
   */
  async readdir(cred: Cred, dirIno: number, cookie: number, verifier: Uint8Array | undefined, limits: ReaddirLimits): Promise<ReaddirResult> {
    return readdir(this.core, cred, dirIno, cookie, verifier, limits);
  }

  async fsstat(ino: number): Promise<{ stat: FsStat; attrs: Attrs }> {
    const inode = await this.core.inodes.require(ino, "fsstat");
    // Inside a quota project its limits are the size (df on a claim's subdirectory mount).
    const q = this.core.quotas.statOf(inode.project);
    const used = q?.bytes?.used ?? this.core.counters.usedBytes;
    const files = q?.inodes?.used ?? this.core.counters.inodeCount;
    const total = q?.bytes?.total ?? this.core.opts.capacityBytes ?? UNLIMITED_BYTES;
    const totalFiles = q?.inodes?.total ?? UNLIMITED_FILES;
    const free = Math.max(0, total - used);
    const freeFiles = Math.max(0, totalFiles - files);
    return {
      stat: { totalBytes: total, freeBytes: free, availBytes: free, totalFiles, freeFiles, availFiles: freeFiles, usedBytes: used, files },
      attrs: attrsOf(inode),
    };
  }

  async fsinfo(ino: number): Promise<{ info: FsInfo; attrs: Attrs }> {
    const inode = await this.core.inodes.require(ino, "fsinfo");
    return {
      info: {
        rtmax: RTMAX,
        rtpref: RTMAX,
        rtmult: 4096,
        wtmax: WTMAX,
        wtpref: WTMAX,
        wtmult: 4096,
        dtpref: 64 * 1024,
        maxFileSize: MAX_FILE_SIZE,
        timeDelta: { sec: 0, nsec: 1 },
        properties: 0x1 | 0x2 | 0x8 | 0x10, // LINK | SYMLINK | HOMOGENEOUS | CANSETTIME
      },
      attrs: attrsOf(inode),
    };
  }

  async pathconf(ino: number): Promise<{ conf: PathConf; attrs: Attrs }> {
    const inode = await this.core.inodes.require(ino, "pathconf");
    return {
      conf: { linkMax: LINK_MAX, nameMax: NAME_MAX, noTrunc: true, chownRestricted: true, caseInsensitive: false, casePreserving: true },
      attrs: attrsOf(inode),
    };
  }

  // ------------------------------------------------------------------ data

  /**
   * WRITE. UNSTABLE returns once the batch is applied (readable, not yet durable); DATA_SYNC and
   * FILE_SYNC wait until it is durable and report FILE_SYNC (data and attributes are logged
   * together in one batch). `data` may be a view of a buffer the caller reuses later: every byte
   * kept is copied, unless the caller hands it over (`owned`: it never changes `data` again).
   */
  async write(cred: Cred, ino: number, offset: number, data: Buffer, stable: StableHow, owned = false): Promise<WriteResult> {
    return dataOps.write(this.core, cred, ino, offset, data, stable, owned);
  }

  /** COMMIT: everything written so far becomes durable. */
  async commit(ino: number): Promise<Wcc> {
    return dataOps.commit(this.core, ino);
  }

  /** SETATTR, with the optional ctime guard (NOT_SYNC when the file changed meanwhile). */
  async setattr(cred: Cred, ino: number, attrs: SetAttrs, guardCtime?: Time): Promise<Wcc> {
    return dataOps.setattr(this.core, cred, ino, attrs, guardCtime);
  }

  // ------------------------------------------------------------------ namespace

  /** CREATE (regular file): UNCHECKED, GUARDED or EXCLUSIVE with a verifier. */
  async create(cred: Cred, dirIno: number, name: string | Uint8Array, how: CreateHow): Promise<CreateResult> {
    return namespaceOps.create(this.core, cred, dirIno, name, how);
  }

  async mkdir(cred: Cred, dirIno: number, name: string | Uint8Array, attrs: SetAttrs = {}): Promise<CreateResult> {
    return namespaceOps.mkdir(this.core, cred, dirIno, name, attrs);
  }

  async symlink(cred: Cred, dirIno: number, name: string | Uint8Array, target: string | Uint8Array, attrs: SetAttrs = {}): Promise<CreateResult> {
    return namespaceOps.symlink(this.core, cred, dirIno, name, target, attrs);
  }

  /** MKNOD: character/block devices (root only), sockets and FIFOs. */
  async mknod(cred: Cred, dirIno: number, name: string | Uint8Array, type: FileType, attrs: SetAttrs = {}, rdev: Rdev = { major: 0, minor: 0 }): Promise<CreateResult> {
    return namespaceOps.mknod(this.core, cred, dirIno, name, type, attrs, rdev);
  }

  /** REMOVE: unlinks a non-directory. */
  async remove(cred: Cred, dirIno: number, name: string | Uint8Array): Promise<{ dirWcc: Wcc }> {
    return namespaceOps.remove(this.core, cred, dirIno, name);
  }

  /** RMDIR: removes an empty directory. */
  async rmdir(cred: Cred, dirIno: number, name: string | Uint8Array): Promise<{ dirWcc: Wcc }> {
    return namespaceOps.rmdir(this.core, cred, dirIno, name);
  }

  /** RENAME, atomically replacing an existing target of a compatible type. */
  async rename(cred: Cred, fromDirIno: number, fromName: string | Uint8Array, toDirIno: number, toName_: string | Uint8Array): Promise<{ fromDirWcc: Wcc; toDirWcc: Wcc }> {
    return namespaceOps.rename(this.core, cred, fromDirIno, fromName, toDirIno, toName_);
  }

  /** LINK: a new name for a non-directory. */
  async link(cred: Cred, ino: number, dirIno: number, name: string | Uint8Array): Promise<{ attrs: Attrs; dirWcc: Wcc }> {
    return namespaceOps.link(this.core, cred, ino, dirIno, name);
  }

  /** Test/diagnostic view of the volume counters. */
  get usage(): { usedBytes: number; inodes: number } {
    return { usedBytes: this.core.counters.usedBytes, inodes: this.core.counters.inodeCount };
  }
}
