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
 */
import { randomBytes, randomInt } from "node:crypto";
import type { Logger } from "pino";
import type { Db } from "../lsm/db.ts";
import { DbClosedError } from "../lsm/errors.ts";
import { WriteBatch } from "../lsm/write-batch.ts";
import { Clock, timeEquals, type TimeSource } from "./clock.ts";
import { VolumeCounters } from "./counters.ts";
import {
  DOTDOT_COOKIE,
  DOT_COOKIE,
  FIRST_COOKIE,
  NAME_MAX,
  addEntry,
  isDot,
  isDotDot,
  isEmptyDir,
  listEntryChunks,
  lookupEntry,
  removeEntry,
  showName,
  toName,
  validateName,
} from "./directory.ts";
import { fsError } from "./errors.ts";
import { MAX_FILE_SIZE, chunkCount, planTruncate, planWrite, readData } from "./file-data.ts";
import { ReadAhead } from "./read-ahead.ts";
import { blockCount, planExtentTruncate, planExtentWrite, prepareWrite, readExtents } from "./extent-data.ts";
import { HANDLE_BYTES, decodeHandle, encodeHandle } from "./handles.ts";
import { InoAllocator } from "./ino-allocator.ts";
import { MAX_SYMLINK_TARGET, encodeInode, type Inode } from "./inode-codec.ts";
import { InodeTable } from "./inode-table.ts";
import { CHUNK_SIZE, DATA_LAYOUT_VERSION, SUPERBLOCK_KEY, chunkKey, cookieKey, extentKey, inodeKey, tombstoneKey } from "./keys.ts";
import { KeyedMutex } from "./locks.ts";
import { Quotas } from "./quota.ts";
import { TreeReclaimer } from "./tree-reclaimer.ts";
import { Perm, accessMask, hasPerm, inGroup, isRoot, modeAfterUnprivilegedWrite, requireDataPerm, requirePerm, stickyForbids } from "./permissions.ts";
import { SegmentGc, type SegmentGcOptions } from "./segment-gc.ts";
import { Reclaimer, deleteChunkRange, listTombstones, type ChunkDeletionProgress } from "./reclaimer.ts";
import { TombstoneKind, decodeSuperblock, decodeTombstone, encodeSuperblock, encodeTombstone, type Tombstone } from "./records.ts";
import { applySetattr, hasAnyAttr } from "./setattr.ts";
import { LockSetChanged, Txn } from "./txn.ts";
import {
  FileType,
  Mode,
  StableHow,
  type Attrs,
  type CreateHow,
  type CreateResult,
  type Cred,
  type DirEntry,
  type FsInfo,
  type FsStat,
  type PathConf,
  type ReadResult,
  type ReadvResult,
  type ReaddirLimits,
  type ReaddirResult,
  type Rdev,
  type SetAttrs,
  type Time,
  type Wcc,
  type WccAttr,
  type WriteResult,
} from "./types.ts";

export const RTMAX = 1024 * 1024;
export const WTMAX = 1024 * 1024;
export const LINK_MAX = 65000;
/** Reported as total size/files when no capacity is configured. */
const UNLIMITED_BYTES = 2 ** 50;
const UNLIMITED_FILES = 2 ** 40;
/** Lock key of the tree shape (sorts before every inode id). */
const TREE_LOCK = -1;
const ROOT_INO = 1;
const MAX_DEPTH = 100_000;

export interface ZeroFsOptions {
  /** Refuse (ENOSPC) to grow the apparent size of all files past this many bytes. */
  capacityBytes?: number;
  /** Every change fails with EROFS. */
  readOnly?: boolean;
  logger?: Logger;
  /** Decoded inodes kept in memory. */
  inodeCacheEntries?: number;
  /** Files with more chunks than this are deleted by the background reclaimer. */
  inlineDeleteChunks?: number;
  /** Chunk keys per background deletion batch. */
  reclaimBatchKeys?: number;
  /** Run the background reclaimer (tests turn it off to look at tombstones). */
  reclaimer?: boolean;
  /**
   * Layout of the data of new regular files: 2 (segments, the default) or 1 (64 KiB chunks in
   * the LSM). Only tests set 1, to keep exercising the code that v1 volumes' files still use.
   */
  dataLayout?: 1 | 2;
  /** Sequential read-ahead into the extent cache (fs/read-ahead.ts; default true). */
  readAhead?: boolean;
  /** Run the segment GC (default true; tests turn it off or drive passes themselves). */
  segmentGc?: boolean;
  /** Segment GC settings (fs/segment-gc.ts). */
  segmentGcOptions?: Partial<SegmentGcOptions>;
  /** Test hook after each background deletion batch. */
  afterReclaimBatch?: (p: ChunkDeletionProgress) => void | Promise<void>;
  /** Wait for durability before metadata operations return (default true). */
  syncMetadata?: boolean;
  /** Inode ids reserved per high-water write. */
  inoRangeSize?: number;
  /** Wall clock in ms (tests). */
  clock?: TimeSource;
  /** Owner and mode of the root directory of a new volume. */
  rootAttrs?: { uid?: number; gid?: number; mode?: number };
}

interface ResolvedOptions {
  capacityBytes: number | undefined;
  readOnly: boolean;
  inlineDeleteChunks: number;
  reclaimBatchKeys: number;
  syncMetadata: boolean;
  dataLayout: 1 | 2;
}

interface NodeSpec {
  type: FileType;
  mode: number;
  attrs?: SetAttrs;
  target?: Buffer;
  rdev?: Rdev;
  verifier?: Buffer;
}

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

function newGeneration(): number {
  return randomInt(1, 2 ** 32);
}

function sameTime(a: Time, b: Time): boolean {
  return timeEquals(a, b);
}

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
  private readonly inodes: InodeTable;
  private readonly counters: VolumeCounters;
  private readonly alloc: InoAllocator;
  private readonly locks = new KeyedMutex();
  private readonly clock: Clock;
  private readonly opts: ResolvedOptions;
  private readonly log: Logger | undefined;
  private rootGeneration = 0;
  private closed = false;
  /**
   * Truncations a crash interrupted, finishing in the background after open: data writes and
   * size changes of these inodes wait for them, so stale chunks can never reappear.
   */
  private readonly pendingTruncations = new Map<number, Promise<void>>();
  private readonly afterReclaimBatch: ZeroFsOptions["afterReclaimBatch"];

  private constructor(db: Db, volumeId: Buffer, rootIno: number, counters: VolumeCounters, alloc: InoAllocator, quotas: Quotas, options: ZeroFsOptions) {
    this.db = db;
    this.quotas = quotas;
    this.volumeId = volumeId;
    this.rootIno = rootIno;
    this.counters = counters;
    this.alloc = alloc;
    this.log = options.logger;
    this.afterReclaimBatch = options.afterReclaimBatch;
    this.clock = new Clock(options.clock);
    this.inodes = new InodeTable(db, options.inodeCacheEntries ?? 100_000);
    this.opts = {
      capacityBytes: options.capacityBytes,
      readOnly: options.readOnly ?? false,
      inlineDeleteChunks: options.inlineDeleteChunks ?? 16,
      reclaimBatchKeys: options.reclaimBatchKeys ?? 256,
      syncMetadata: options.syncMetadata ?? true,
      dataLayout: options.dataLayout ?? 2,
    };
    if (options.readAhead !== false) {
      this.readAhead = new ReadAhead(async (ino, offset, length) => {
        const inode = await this.inodes.require(ino, "read-ahead");
        if (inode.extentBytes !== undefined) await readExtents(this.db, ino, inode.size, offset, length);
      });
    }
    if (options.segmentGc !== false && !this.opts.readOnly) {
      this.segmentGc = new SegmentGc(db, (ino, fn) => this.withInodeLock(ino, fn), {
        ...options.segmentGcOptions,
        ...(options.logger ? { logger: options.logger.child({ component: "segment-gc" }) } : {}),
      });
    }
    if (options.reclaimer !== false && !this.opts.readOnly) {
      this.reclaimer = new Reclaimer(db, {
        batchKeys: this.opts.reclaimBatchKeys,
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.afterReclaimBatch ? { afterBatch: options.afterReclaimBatch } : {}),
      });
      this.treeReclaimer = new TreeReclaimer(this.internals(), { batchEntries: this.opts.reclaimBatchKeys, ...(options.logger ? { logger: options.logger } : {}) });
    }
  }

  /** What the quota and claim modules need of the engine's machinery (not for the NFS layer). */
  internals(): FsInternals {
    return {
      db: this.db,
      quotas: this.quotas,
      inodes: this.inodes,
      clock: this.clock,
      mutate: (what, locks, body) => this.mutate(what, locks, this.opts.syncMetadata, body),
      dropLink: (tx, inode, now) => this.dropLink(tx, inode, now),
      checkWritable: (what) => this.checkWritable(what),
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
    fs.rootGeneration = (await fs.inodes.require(sb.rootIno, "open")).generation;
    if (!fs.opts.readOnly) await fs.resumeInterruptedTruncations();
    fs.reclaimer?.kick();
    fs.treeReclaimer?.kick();
    fs.segmentGc?.start();
    const deletedTreesPending = fs.quotas.all().filter((r) => r.deleting).length;
    fs.log?.info({ volumeId: sb.volumeId.toString("hex"), usedBytes: counters.usedBytes, inodes: counters.inodeCount, deletedTreesPending }, "filesystem opened");
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
      generation: newGeneration(),
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

  /** Runs `fn` holding inode `ino`'s lock (background work that changes one file's records). */
  private async withInodeLock<T>(ino: number, fn: () => Promise<T>): Promise<T> {
    const release = await this.locks.acquire([ino]);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Resolves once background deletions (resumed truncations, the reclaimer) are done (tests). */
  async backgroundIdle(): Promise<void> {
    await Promise.all(this.pendingTruncations.values());
    await this.treeReclaimer?.idle();
    await this.reclaimer?.idle();
  }

  /** Stops background work and makes everything durable. The caller closes the Db. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.segmentGc?.stop();
    await this.treeReclaimer?.stop();
    await this.reclaimer?.stop();
    await Promise.all(this.pendingTruncations.values());
    if (!this.opts.readOnly) await this.db.flush();
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
    const inode = await this.inodes.require(h.ino, "file handle");
    if (inode.generation !== h.generation) throw fsError("ESTALE", `file handle generation ${h.generation} does not match inode ${h.ino}`);
    return h.ino;
  }

  // ------------------------------------------------------------------ reads

  async getattr(ino: number): Promise<Attrs> {
    return attrsOf(await this.inodes.require(ino, "getattr"));
  }

  async lookup(cred: Cred, dirIno: number, name: string | Uint8Array): Promise<{ attrs: Attrs; dirAttrs: Attrs }> {
    const n = toName(name);
    if (n.length > NAME_MAX) throw fsError("ENAMETOOLONG", `lookup: name of ${n.length} bytes in directory ${dirIno} exceeds ${NAME_MAX}`);
    const dir = await this.requireDir(dirIno, "lookup");
    requirePerm(cred, dir, Perm.X, `lookup of ${showName(n)}`);
    if (isDot(n)) return { attrs: attrsOf(dir), dirAttrs: attrsOf(dir) };
    if (isDotDot(n)) return { attrs: attrsOf(await this.inodes.require(dir.parent, "lookup of ..")), dirAttrs: attrsOf(dir) };
    const entry = await lookupEntry(this.db, dirIno, n);
    // The entry can vanish between the two gets (a concurrent remove): same answer as before it.
    const child = entry && (await this.inodes.get(entry.ino));
    if (!child) throw fsError("ENOENT", `lookup: no entry ${showName(n)} in directory ${dirIno}`);
    return { attrs: attrsOf(child), dirAttrs: attrsOf(dir) };
  }

  /** ACCESS: which of the requested ACCESS3 bits the caller holds. */
  async access(cred: Cred, ino: number, requested: number): Promise<{ granted: number; attrs: Attrs }> {
    const inode = await this.inodes.require(ino, "access");
    return { granted: accessMask(cred, inode, requested), attrs: attrsOf(inode) };
  }

  async readlink(_cred: Cred, ino: number): Promise<{ target: Buffer; attrs: Attrs }> {
    const inode = await this.inodes.require(ino, "readlink");
    if (inode.type !== FileType.LNK) throw fsError("EINVAL", `readlink: inode ${ino} is not a symbolic link`);
    return { target: Buffer.from(inode.target ?? Buffer.alloc(0)), attrs: attrsOf(inode) };
  }

  async read(cred: Cred, ino: number, offset: number, count: number): Promise<ReadResult> {
    const r = await this.readv(cred, ino, offset, count);
    return { data: r.parts.length === 1 ? r.parts[0]! : Buffer.concat(r.parts, r.length), eof: r.eof, attrs: r.attrs };
  }

  /** READ as pieces in order (views of cached data: never modify them), for writev. */
  async readv(cred: Cred, ino: number, offset: number, count: number): Promise<ReadvResult> {
    const inode = await this.inodes.require(ino, "read");
    if (inode.type === FileType.DIR) throw fsError("EISDIR", `read: inode ${ino} is a directory`);
    if (inode.type !== FileType.REG) throw fsError("EINVAL", `read: inode ${ino} is not a regular file`);
    requireDataPerm(cred, inode, Perm.R, "read");
    if (!Number.isSafeInteger(offset) || offset < 0) throw fsError("EINVAL", `read: invalid offset ${offset} of inode ${ino}`);
    const n = Math.min(Math.max(0, count), RTMAX);
    if (inode.extentBytes !== undefined) {
      this.readAhead?.note(ino, inode.size, offset, n);
      return { ...(await readExtents(this.db, ino, inode.size, offset, n)), attrs: attrsOf(inode) };
    }
    const { data, eof } = await readData(this.db, ino, inode.size, offset, n);
    return { parts: [data], length: data.length, eof, attrs: attrsOf(inode) };
  }

  /**
   * READDIR / READDIRPLUS. Cookie 0 starts a listing; "." and ".." come first (cookies 1 and
   * 2), then the entries in cookie order. Resuming at any cookie handed out is exact across
   * restarts and concurrent changes (entries added later appear later, removed ones vanish).
   */
  async readdir(cred: Cred, dirIno: number, cookie: number, verifier: Uint8Array | undefined, limits: ReaddirLimits): Promise<ReaddirResult> {
    const dir = await this.requireDir(dirIno, "readdir");
    requirePerm(cred, dir, Perm.R, "readdir");
    const verf = cookieVerifier(dir);
    if (cookie !== 0) {
      const sent = verifier ? Buffer.from(verifier.buffer, verifier.byteOffset, verifier.byteLength) : undefined;
      // All-zero verifiers are accepted: some clients never echo the verifier back.
      if (sent && sent.some((b) => b !== 0) && !sent.equals(verf)) throw fsError("BAD_COOKIE", `readdir: cookie verifier does not match directory ${dirIno}`);
      if (!Number.isSafeInteger(cookie) || cookie < 0 || (cookie > DOTDOT_COOKIE && cookie >= dir.nextCookie)) {
        throw fsError("BAD_COOKIE", `readdir: cookie ${cookie} was never issued by directory ${dirIno}`);
      }
    }
    const plus = limits.plus ?? false;
    const entries: DirEntry[] = [];
    let bytes = 0;
    let dirBytes = 0;
    const fits = (nameLength: number): boolean => {
      const b = readdirEntryBytes(nameLength, plus);
      const d = readdirEntryBytes(nameLength, false);
      if (limits.maxEntries !== undefined && entries.length >= limits.maxEntries) return false;
      if (bytes + b > limits.maxBytes) return false;
      if (limits.dirBytes !== undefined && dirBytes + d > limits.dirBytes) return false;
      bytes += b;
      dirBytes += d;
      return true;
    };
    let eof = true;
    const dotEntries: DirEntry[] = [
      { ino: dir.ino, name: Buffer.from("."), cookie: DOT_COOKIE },
      { ino: dir.parent, name: Buffer.from(".."), cookie: DOTDOT_COOKIE },
    ];
    for (const e of dotEntries) {
      if (cookie >= e.cookie) continue;
      if (!fits(e.name.length)) {
        eof = false;
        break;
      }
      entries.push(e);
    }
    if (eof) {
      // At most this many entries fit the page (each takes at least a 1-byte name's bytes).
      const pageEntries = Math.min(limits.maxEntries ?? Infinity, Math.floor(limits.maxBytes / readdirEntryBytes(1, plus)) + 1);
      listing: for await (const chunk of listEntryChunks(this.db, dirIno, Math.max(cookie + 1, FIRST_COOKIE), pageEntries)) {
        for (const e of chunk) {
          if (!fits(e.name.length)) {
            eof = false;
            break listing;
          }
          entries.push({ ino: e.ino, name: e.name, cookie: e.cookie });
        }
      }
    }
    if (entries.length === 0 && !eof) throw fsError("TOOSMALL", `readdir: a budget of ${limits.maxBytes} bytes does not fit one entry of directory ${dirIno}`);
    if (plus) {
      // The page's inodes in one pass (cache, then one scan of their keys), not one read each.
      const found = await this.inodes.getMany(entries.map((e) => e.ino));
      entries.forEach((e, i) => {
        const inode = found[i];
        if (inode) e.attrs = attrsOf(inode);
      });
    }
    return { entries, eof, verifier: verf, dirAttrs: attrsOf(dir) };
  }

  async fsstat(ino: number): Promise<{ stat: FsStat; attrs: Attrs }> {
    const inode = await this.inodes.require(ino, "fsstat");
    // Inside a quota project its limits are the size (df on a claim's subdirectory mount).
    const q = this.quotas.statOf(inode.project);
    const used = q?.bytes?.used ?? this.counters.usedBytes;
    const files = q?.inodes?.used ?? this.counters.inodeCount;
    const total = q?.bytes?.total ?? this.opts.capacityBytes ?? UNLIMITED_BYTES;
    const totalFiles = q?.inodes?.total ?? UNLIMITED_FILES;
    const free = Math.max(0, total - used);
    const freeFiles = Math.max(0, totalFiles - files);
    return {
      stat: { totalBytes: total, freeBytes: free, availBytes: free, totalFiles, freeFiles, availFiles: freeFiles, usedBytes: used, files },
      attrs: attrsOf(inode),
    };
  }

  async fsinfo(ino: number): Promise<{ info: FsInfo; attrs: Attrs }> {
    const inode = await this.inodes.require(ino, "fsinfo");
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
    const inode = await this.inodes.require(ino, "pathconf");
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
    if (!Number.isSafeInteger(offset) || offset < 0) throw fsError("EINVAL", `write: invalid offset ${offset} of inode ${ino}`);
    if (data.length > WTMAX) throw fsError("EINVAL", `write: ${data.length} bytes exceed the maximum of ${WTMAX}`);
    const end = offset + data.length;
    if (end > MAX_FILE_SIZE) throw fsError("EFBIG", `write: end offset ${end} of inode ${ino} exceeds the maximum file size ${MAX_FILE_SIZE}`);
    const durable = stable !== StableHow.UNSTABLE;
    await this.pendingTruncations.get(ino);
    await this.db.segments.waitForRoom();
    this.checkWritable("write");
    // Writes to a file apply in arrival order: the lock is queued for now, while the data is
    // split and compressed outside it (concurrently with other writes); the inode is re-checked
    // under the lock (a file's layout only ever changes from 1 to 2).
    const locked = this.locks.acquire([ino]);
    const early = data.length > 0 && this.inodes.peek(ino)?.extentBytes !== undefined ? prepareWrite(this.db.segments, offset, data, owned) : undefined;
    early?.catch(() => undefined);
    return this.mutate("write", locked, durable, async (tx) => {
      const inode = await this.inodes.require(ino, "write");
      if (inode.type === FileType.DIR) throw fsError("EISDIR", `write: inode ${ino} is a directory`);
      if (inode.type !== FileType.REG) throw fsError("EINVAL", `write: inode ${ino} is not a regular file`);
      requireDataPerm(cred, inode, Perm.W, "write");
      const before = wccAttr(inode);
      if (data.length === 0) return { count: 0, committed: durable ? StableHow.FILE_SYNC : StableHow.UNSTABLE, wcc: { before, after: attrsOf(inode) } };
      const newSize = Math.max(inode.size, end);
      this.quotas.precheck(inode.project, newSize - inode.size, `write of ${data.length} bytes at ${offset} to inode ${ino}`);
      this.reserve(tx, newSize - inode.size, `write of ${data.length} bytes at ${offset} to inode ${ino}`);
      const now = this.clock.now();
      const next: Inode = { ...inode, size: newSize, mtime: now, ctime: now };
      if (inode.extentBytes !== undefined) {
        const prepared = await (early ?? prepareWrite(this.db.segments, offset, data, owned));
        const plan = await planExtentWrite(this.db, tx.batch, ino, inode.size, prepared);
        tx.frames.push(...plan.frames);
        this.segmentGc?.noteFreed(plan.freed);
        next.extentBytes = inode.extentBytes + plan.delta;
      } else next.chunks = await planWrite(this.db, tx.batch, ino, inode.size, offset, data, inode.chunks);
      if (!isRoot(cred)) next.mode = modeAfterUnprivilegedWrite(next.mode);
      tx.put(next);
      tx.deltas.bytes += newSize - inode.size;
      tx.shardIno = ino;
      return { count: data.length, committed: durable ? StableHow.FILE_SYNC : StableHow.UNSTABLE, wcc: { before, after: attrsOf(next) } };
    });
  }

  /** COMMIT: everything written so far becomes durable. */
  async commit(ino: number): Promise<Wcc> {
    const inode = await this.inodes.require(ino, "commit");
    await this.db.flush();
    return { before: wccAttr(inode), after: attrsOf((await this.inodes.get(ino)) ?? inode) };
  }

  /** SETATTR, with the optional ctime guard (NOT_SYNC when the file changed meanwhile). */
  async setattr(cred: Cred, ino: number, attrs: SetAttrs, guardCtime?: Time): Promise<Wcc> {
    if (attrs.size !== undefined) await this.pendingTruncations.get(ino);
    return this.mutate("setattr", [ino], this.opts.syncMetadata, async (tx) => {
      const inode = await this.inodes.require(ino, "setattr");
      if (guardCtime && !sameTime(guardCtime, inode.ctime)) throw fsError("NOT_SYNC", `setattr: ctime guard does not match inode ${ino}`);
      const before = wccAttr(inode);
      if (!hasAnyAttr(attrs)) return { before, after: attrsOf(inode) };
      const now = this.clock.now();
      const next = applySetattr(cred, inode, attrs, now);
      if (attrs.size !== undefined) Object.assign(next, await this.resize(tx, inode, attrs.size));
      tx.put(next);
      return { before, after: attrsOf(next) };
    });
  }

  /**
   * Data side of a size change; the caller holds the inode lock and puts the new inode with the
   * stored-chunk count returned here.
   */
  private async resize(tx: Txn, inode: Inode, newSize: number): Promise<Pick<Inode, "chunks" | "extentBytes">> {
    const growth = newSize - inode.size;
    this.reserve(tx, growth, `resize of inode ${inode.ino} to ${newSize}`);
    tx.deltas.bytes += growth;
    tx.shardIno = inode.ino;
    if (inode.extentBytes !== undefined) {
      const plan = await planExtentTruncate(this.db, tx.batch, inode.ino, inode.size, newSize);
      this.segmentGc?.noteFreed(plan.freed);
      if (plan.restFrom !== undefined) this.deleteRestAfterCommit(tx, inode.ino, { kind: TombstoneKind.EXTENTS_TRUNCATED, from: plan.restFrom, to: blockCount(inode.size) });
      return { chunks: undefined, extentBytes: inode.extentBytes + plan.delta };
    }
    const { chunks, rest } = await planTruncate(this.db, tx.batch, inode.ino, inode.size, newSize, inode.chunks);
    if (rest) this.deleteRestAfterCommit(tx, inode.ino, { kind: TombstoneKind.TRUNCATED, from: rest.from, to: rest.to });
    // A v1 file emptied by truncation has no chunks left: it continues in layout 2.
    if (newSize === 0 && this.opts.dataLayout !== 1) return { chunks: undefined, extentBytes: 0 };
    return { chunks, extentBytes: undefined };
  }

  /**
   * Too many keys for one batch: record the intent with the size change, then delete the stored
   * ones (found by a range scan: O(stored keys), not O(size)) in bounded batches before
   * releasing the lock. A crash in between leaves the tombstone, which open() resumes in the
   * background while holding this file's writers back, so stale data can never reappear.
   */
  private deleteRestAfterCommit(tx: Txn, ino: number, tombstone: Tombstone): void {
    tx.batch.put(tombstoneKey(ino), encodeTombstone(tombstone));
    tx.afterCommit = async () => {
      await deleteChunkRange(this.db, ino, tombstone, { batchKeys: this.opts.reclaimBatchKeys });
    };
  }

  // ------------------------------------------------------------------ namespace

  /** CREATE (regular file): UNCHECKED, GUARDED or EXCLUSIVE with a verifier. */
  async create(cred: Cred, dirIno: number, name: string | Uint8Array, how: CreateHow): Promise<CreateResult> {
    if (how.mode === "exclusive" && how.verifier.length !== 8) throw fsError("EINVAL", "create: exclusive create verifier must be 8 bytes");
    const attrs = how.mode === "exclusive" ? undefined : how.attrs;
    const spec: NodeSpec = { type: FileType.REG, mode: attrs?.mode ?? 0o644, ...(attrs ? { attrs } : {}), ...(how.mode === "exclusive" ? { verifier: how.verifier } : {}) };
    const r = await this.createNode(cred, dirIno, name, spec, how.mode);
    if ("existing" in r) {
      // UNCHECKED create of an existing file: only a requested truncation applies (as knfsd).
      if (attrs?.size !== undefined) await this.setattr(cred, r.existing.ino, { size: attrs.size });
      return { attrs: await this.getattr(r.existing.ino), dirWcc: r.dirWcc };
    }
    return r;
  }

  async mkdir(cred: Cred, dirIno: number, name: string | Uint8Array, attrs: SetAttrs = {}): Promise<CreateResult> {
    const r = await this.createNode(cred, dirIno, name, { type: FileType.DIR, mode: attrs.mode ?? 0o755, attrs }, "guarded");
    if ("existing" in r) throw new Error("unreachable: guarded mkdir returned an existing entry");
    return r;
  }

  async symlink(cred: Cred, dirIno: number, name: string | Uint8Array, target: string | Uint8Array, attrs: SetAttrs = {}): Promise<CreateResult> {
    const t = Buffer.from(toName(target));
    if (t.length === 0) throw fsError("ENOENT", `symlink: empty target for ${showName(toName(name))} in directory ${dirIno}`);
    if (t.length > MAX_SYMLINK_TARGET) throw fsError("ENAMETOOLONG", `symlink: target of ${t.length} bytes exceeds ${MAX_SYMLINK_TARGET}`);
    // Symlink permission bits are meaningless; Linux always makes them 0777.
    const { mode: _ignored, size: _size, ...rest } = attrs;
    const r = await this.createNode(cred, dirIno, name, { type: FileType.LNK, mode: 0o777, attrs: rest, target: t }, "guarded");
    if ("existing" in r) throw new Error("unreachable: guarded symlink returned an existing entry");
    return r;
  }

  /** MKNOD: character/block devices (root only), sockets and FIFOs. */
  async mknod(cred: Cred, dirIno: number, name: string | Uint8Array, type: FileType, attrs: SetAttrs = {}, rdev: Rdev = { major: 0, minor: 0 }): Promise<CreateResult> {
    if (type !== FileType.CHR && type !== FileType.BLK && type !== FileType.SOCK && type !== FileType.FIFO) {
      throw fsError("BADTYPE", `mknod: type ${type} is not a device, socket or FIFO`);
    }
    const isDev = type === FileType.CHR || type === FileType.BLK;
    if (isDev && !isRoot(cred)) throw fsError("EPERM", `mknod: only root may create device nodes (uid ${cred.uid})`);
    const spec: NodeSpec = { type, mode: attrs.mode ?? 0o644, attrs, rdev: isDev ? rdev : { major: 0, minor: 0 } };
    const r = await this.createNode(cred, dirIno, name, spec, "guarded");
    if ("existing" in r) throw new Error("unreachable: guarded mknod returned an existing entry");
    return r;
  }

  private async createNode(
    cred: Cred,
    dirIno: number,
    name: string | Uint8Array,
    spec: NodeSpec,
    how: "unchecked" | "guarded" | "exclusive",
  ): Promise<CreateResult | { existing: Inode; dirWcc: Wcc }> {
    const n = toName(name);
    const what = `${spec.type === FileType.DIR ? "mkdir" : "create"} of ${showName(n)} in directory ${dirIno}`;
    validateName(n, dirIno, what);
    return this.mutate(what, [dirIno], this.opts.syncMetadata, async (tx) => {
      const dir = await this.requireDir(dirIno, what);
      // Linux order: search permission, then an existing name (EEXIST), then write permission.
      requirePerm(cred, dir, Perm.X, what);
      if (isDot(n) || isDotDot(n)) throw fsError("EEXIST", `${what}: name exists`);
      const existing = await lookupEntry(this.db, dirIno, n);
      if (existing) {
        const child = await this.inodes.get(existing.ino);
        const dirWcc = { before: wccAttr(dir), after: attrsOf(dir) };
        if (child && how === "exclusive" && spec.verifier && child.verifier?.equals(spec.verifier)) return { attrs: attrsOf(child), dirWcc };
        if (child && how === "unchecked" && child.type === FileType.REG) return { existing: child, dirWcc };
        throw fsError("EEXIST", `${what}: an entry with that name exists (inode ${existing.ino})`);
      }
      requirePerm(cred, dir, Perm.W, what);
      if (spec.type === FileType.DIR && dir.nlink >= LINK_MAX) throw fsError("EMLINK", `${what}: directory has ${dir.nlink} links`);
      const initialBytes = spec.target?.length ?? (spec.type === FileType.REG ? (spec.attrs?.size ?? 0) : 0);
      if (this.opts.capacityBytes !== undefined && this.counters.usedBytes >= this.opts.capacityBytes) {
        throw fsError("ENOSPC", `${what}: volume is full (${this.counters.usedBytes} of ${this.opts.capacityBytes} bytes)`);
      }
      this.reserve(tx, initialBytes, what);
      const ino = await this.alloc.allocate();
      const now = this.clock.now();
      let child = this.newInode(cred, dir, ino, spec, now);
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

  private newInode(cred: Cred, dir: Inode, ino: number, spec: NodeSpec, now: Time): Inode {
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
      chunks: spec.type === FileType.REG && this.opts.dataLayout === 1 ? 0 : undefined,
      extentBytes: spec.type === FileType.REG && this.opts.dataLayout !== 1 ? 0 : undefined,
      // Everything created below a quota project's directory belongs to the project.
      ...(dir.project ? { project: dir.project } : {}),
    };
  }

  /** REMOVE: unlinks a non-directory. */
  async remove(cred: Cred, dirIno: number, name: string | Uint8Array): Promise<{ dirWcc: Wcc }> {
    const n = toName(name);
    const what = `remove of ${showName(n)} in directory ${dirIno}`;
    if (isDot(n) || isDotDot(n)) throw fsError("EISDIR", `${what}: not a file`);
    validateName(n, dirIno, what);
    return this.unlinkEntry(cred, dirIno, n, what, false);
  }

  /** RMDIR: removes an empty directory. */
  async rmdir(cred: Cred, dirIno: number, name: string | Uint8Array): Promise<{ dirWcc: Wcc }> {
    const n = toName(name);
    const what = `rmdir of ${showName(n)} in directory ${dirIno}`;
    if (isDot(n)) throw fsError("EINVAL", `${what}: cannot remove "."`);
    if (isDotDot(n)) throw fsError("ENOTEMPTY", `${what}: cannot remove ".."`);
    validateName(n, dirIno, what);
    return this.unlinkEntry(cred, dirIno, n, what, true);
  }

  private async unlinkEntry(cred: Cred, dirIno: number, n: Buffer, what: string, dir: boolean): Promise<{ dirWcc: Wcc }> {
    return this.mutateDiscovered(
      what,
      async () => {
        const d = await this.requireDir(dirIno, what);
        requirePerm(cred, d, Perm.X, what);
        const entry = await lookupEntry(this.db, dirIno, n);
        if (!entry) throw fsError("ENOENT", `${what}: no such entry`);
        return { locks: [dirIno, entry.ino], state: entry.ino };
      },
      async (tx, expectedIno) => {
        const parent = await this.requireDir(dirIno, what);
        requirePerm(cred, parent, Perm.X, what);
        const entry = await lookupEntry(this.db, dirIno, n);
        if (!entry) throw fsError("ENOENT", `${what}: no such entry`);
        if (entry.ino !== expectedIno) throw new LockSetChanged();
        requirePerm(cred, parent, Perm.W, what);
        const child = await this.requireEntryInode(entry.ino, what);
        if (dir && child.type !== FileType.DIR) throw fsError("ENOTDIR", `${what}: inode ${child.ino} is not a directory`);
        if (!dir && child.type === FileType.DIR) throw fsError("EISDIR", `${what}: inode ${child.ino} is a directory (use rmdir)`);
        if (stickyForbids(cred, parent, child)) throw fsError("EPERM", `${what}: sticky directory; uid ${cred.uid} owns neither it nor inode ${child.ino}`);
        if (dir && !(await isEmptyDir(this.db, child.ino))) throw fsError("ENOTEMPTY", `${what}: directory ${child.ino} is not empty`);
        const now = this.clock.now();
        removeEntry(tx.batch, dirIno, n, entry);
        const nextParent: Inode = { ...parent, mtime: now, ctime: now };
        if (dir) nextParent.nlink--;
        tx.put(nextParent);
        this.dropLink(tx, child, now);
        return { dirWcc: { before: wccAttr(parent), after: attrsOf(nextParent) } };
      },
    );
  }

  /**
   * Removes one name of `inode` inside `tx`: the inode goes with its last link (directories
   * have one), together with its data — inline for small files, via a tombstone and the
   * background reclaimer for large ones.
   */
  private dropLink(tx: Txn, inode: Inode, now: Time): void {
    if (inode.type !== FileType.DIR && inode.nlink > 1) {
      tx.put({ ...inode, nlink: inode.nlink - 1, ctime: now });
      return;
    }
    tx.drop(inode.ino);
    tx.deltas.inodes -= 1;
    if (inode.type === FileType.REG || inode.type === FileType.LNK) tx.deltas.bytes -= inode.size;
    if (tx.shardIno === 0) tx.shardIno = inode.ino;
    if (inode.type !== FileType.REG) return;
    this.segmentGc?.noteFreed(inode.extentBytes ?? 0);
    const chunks = chunkCount(inode.size);
    if (inode.extentBytes !== undefined && blockCount(inode.size) <= this.opts.inlineDeleteChunks) {
      for (let b = 0; b < blockCount(inode.size); b++) tx.batch.delete(extentKey(inode.ino, b));
    } else if (inode.extentBytes === undefined && chunks <= this.opts.inlineDeleteChunks) {
      for (let i = 0; i < chunks; i++) tx.batch.delete(chunkKey(inode.ino, i));
    } else {
      // DELETED covers the v1 chunks and then the extent map: either layout, one tombstone.
      tx.batch.put(tombstoneKey(inode.ino), encodeTombstone({ kind: TombstoneKind.DELETED, from: 0, to: chunks }));
      tx.kickReclaimer = true;
    }
  }

  /** RENAME, atomically replacing an existing target of a compatible type. */
  async rename(cred: Cred, fromDirIno: number, fromName: string | Uint8Array, toDirIno: number, toName_: string | Uint8Array): Promise<{ fromDirWcc: Wcc; toDirWcc: Wcc }> {
    const src = toName(fromName);
    const dst = toName(toName_);
    const what = `rename of ${showName(src)} in directory ${fromDirIno} to ${showName(dst)} in directory ${toDirIno}`;
    validateName(src, fromDirIno, what);
    validateName(dst, toDirIno, what);
    if (isDot(src) || isDotDot(src) || isDot(dst) || isDotDot(dst)) throw fsError("EINVAL", `${what}: "." and ".." cannot be renamed`);
    return this.mutateDiscovered(
      what,
      async () => {
        const fd = await this.requireDir(fromDirIno, what);
        const td = await this.requireDir(toDirIno, what);
        requirePerm(cred, fd, Perm.X, what);
        requirePerm(cred, td, Perm.X, what);
        const s = await lookupEntry(this.db, fromDirIno, src);
        if (!s) throw fsError("ENOENT", `${what}: no such entry`);
        const d = await lookupEntry(this.db, toDirIno, dst);
        const locks = [fromDirIno, toDirIno, s.ino];
        if (d) locks.push(d.ino);
        // Moving a directory to another parent changes the tree shape: serialize those.
        if (s.type === FileType.DIR && fromDirIno !== toDirIno) locks.push(TREE_LOCK);
        return { locks, state: { src: s.ino, srcIsDir: s.type === FileType.DIR, dst: d?.ino } };
      },
      async (tx, expected) => {
        const fd = await this.requireDir(fromDirIno, what);
        const td = await this.requireDir(toDirIno, what);
        requirePerm(cred, fd, Perm.X, what);
        requirePerm(cred, td, Perm.X, what);
        const s = await lookupEntry(this.db, fromDirIno, src);
        if (!s) throw fsError("ENOENT", `${what}: no such entry`);
        const d = await lookupEntry(this.db, toDirIno, dst);
        if (s.ino !== expected.src || (s.type === FileType.DIR) !== expected.srcIsDir || d?.ino !== expected.dst) throw new LockSetChanged();
        // Two names of one inode: POSIX says do nothing and succeed (Linux checks this first).
        if (d && d.ino === s.ino) return { fromDirWcc: { before: wccAttr(fd), after: attrsOf(fd) }, toDirWcc: { before: wccAttr(td), after: attrsOf(td) } };
        requirePerm(cred, fd, Perm.W, what);
        requirePerm(cred, td, Perm.W, what);
        const child = await this.requireEntryInode(s.ino, what);
        if (stickyForbids(cred, fd, child)) throw fsError("EPERM", `${what}: sticky source directory; uid ${cred.uid} owns neither it nor inode ${child.ino}`);
        const target = d ? await this.requireEntryInode(d.ino, what) : undefined;
        if (target && stickyForbids(cred, td, target)) throw fsError("EPERM", `${what}: sticky target directory; uid ${cred.uid} owns neither it nor inode ${target.ino}`);
        const isDir = child.type === FileType.DIR;
        const moves = fromDirIno !== toDirIno;
        if (moves) Quotas.checkSameProject(child, td, what);
        if (isDir) {
          if (target && target.type !== FileType.DIR) throw fsError("ENOTDIR", `${what}: cannot replace non-directory ${target.ino} with a directory`);
          if (moves) {
            // The moved directory's ".." changes: that needs write permission on it.
            if (!hasPerm(cred, child, Perm.W)) throw fsError("EACCES", `${what}: moving directory ${child.ino} to another parent needs write permission on it`);
            await this.checkNotInSubtree(child.ino, toDirIno, what);
            if (!target && td.nlink >= LINK_MAX) throw fsError("EMLINK", `${what}: target directory has ${td.nlink} links`);
          }
          if (target && !(await isEmptyDir(this.db, target.ino))) throw fsError("ENOTEMPTY", `${what}: target directory ${target.ino} is not empty`);
        } else if (target?.type === FileType.DIR) {
          throw fsError("EISDIR", `${what}: cannot replace directory ${target.ino} with a non-directory`);
        }
        const now = this.clock.now();
        const nextFrom: Inode = { ...fd, mtime: now, ctime: now };
        const nextTo: Inode = moves ? { ...td, mtime: now, ctime: now } : nextFrom;
        removeEntry(tx.batch, fromDirIno, src, s);
        // The replaced entry's name record is overwritten by addEntry; only its cookie goes.
        if (d) tx.batch.delete(cookieKey(toDirIno, d.cookie));
        addEntry(tx.batch, nextTo, dst, child.ino, child.type);
        tx.put({ ...child, ctime: now, parent: isDir ? toDirIno : child.parent });
        if (target) {
          if (target.type === FileType.DIR) nextTo.nlink--;
          this.dropLink(tx, target, now);
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
  private async checkNotInSubtree(ancestor: number, dirIno: number, what: string): Promise<void> {
    let cur = dirIno;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      if (cur === ancestor) throw fsError("EINVAL", `${what}: cannot move directory ${ancestor} into its own subtree`);
      if (cur === this.rootIno) return;
      cur = (await this.requireEntryInode(cur, what)).parent;
    }
    throw fsError("EIO", `${what}: directory ${dirIno} is more than ${MAX_DEPTH} levels deep (corrupt parent chain?)`);
  }

  /** LINK: a new name for a non-directory. */
  async link(cred: Cred, ino: number, dirIno: number, name: string | Uint8Array): Promise<{ attrs: Attrs; dirWcc: Wcc }> {
    const n = toName(name);
    const what = `link of inode ${ino} as ${showName(n)} in directory ${dirIno}`;
    validateName(n, dirIno, what);
    return this.mutate(what, [ino, dirIno], this.opts.syncMetadata, async (tx) => {
      const target = await this.inodes.require(ino, what);
      if (target.type === FileType.DIR) throw fsError("EPERM", `${what}: hard links to directories are not allowed`);
      const dir = await this.requireDir(dirIno, what);
      requirePerm(cred, dir, Perm.X, what);
      if (isDot(n) || isDotDot(n) || (await lookupEntry(this.db, dirIno, n))) throw fsError("EEXIST", `${what}: an entry with that name exists`);
      requirePerm(cred, dir, Perm.W, what);
      if (target.nlink >= LINK_MAX) throw fsError("EMLINK", `${what}: inode has ${target.nlink} links`);
      Quotas.checkSameProject(target, dir, what);
      const now = this.clock.now();
      const nextDir: Inode = { ...dir, mtime: now, ctime: now };
      addEntry(tx.batch, nextDir, n, ino, target.type);
      const nextTarget: Inode = { ...target, nlink: target.nlink + 1, ctime: now };
      tx.put(nextTarget);
      tx.put(nextDir);
      return { attrs: attrsOf(nextTarget), dirWcc: { before: wccAttr(dir), after: attrsOf(nextDir) } };
    });
  }

  // ------------------------------------------------------------------ machinery

  private checkWritable(what: string): void {
    if (this.closed) throw fsError("EIO", `${what}: filesystem is closed`);
    if (this.opts.readOnly) throw fsError("EROFS", `${what}: filesystem is read-only`);
  }

  private reserve(tx: Txn, bytes: number, what: string): void {
    if (bytes <= 0) return;
    if (!this.counters.tryReserve(bytes, this.opts.capacityBytes)) {
      throw fsError("ENOSPC", `${what}: ${bytes} more bytes exceed the capacity of ${this.opts.capacityBytes} (${this.counters.usedBytes} used)`);
    }
    tx.reserved += bytes;
  }

  private async requireDir(ino: number, what: string): Promise<Inode> {
    const inode = await this.inodes.require(ino, what);
    if (inode.type !== FileType.DIR) throw fsError("ENOTDIR", `${what}: inode ${ino} is not a directory`);
    return inode;
  }

  /** The inode a directory entry points to; a dangling entry is corruption. */
  private async requireEntryInode(ino: number, what: string): Promise<Inode> {
    const inode = await this.inodes.get(ino);
    if (!inode) throw fsError("EIO", `${what}: directory entry points to missing inode ${ino}`);
    return inode;
  }

  /**
   * Runs `body` holding the locks of `lockKeys` (or a lock acquisition already queued), commits its changes as one batch, releases the
   * locks, and then (when `durable`) waits until the batch is durable.
   */
  private async mutate<T>(what: string, lockKeys: number[] | Promise<() => void>, durable: boolean, body: (tx: Txn) => Promise<T>): Promise<T> {
    if (Array.isArray(lockKeys)) this.checkWritable(what);
    const release = await (Array.isArray(lockKeys) ? this.locks.acquire(lockKeys) : lockKeys);
    const tx = new Txn(what);
    let result: T;
    try {
      result = await body(tx);
      await this.apply(tx);
      if (tx.afterCommit) await tx.afterCommit();
    } finally {
      this.counters.release(tx.reserved);
      // The locks go even if the db has failed meanwhile (its segments accessor then throws).
      try {
        for (const f of tx.frames) this.db.segments.settle(f);
      } finally {
        release();
      }
    }
    if (durable) await this.db.flush();
    return result;
  }

  /**
   * `mutate` for operations whose locks depend on directory entries: `discover` looks them up
   * without locks; `body` re-checks them under the locks and throws LockSetChanged to retry.
   */
  private async mutateDiscovered<S, T>(
    what: string,
    discover: () => Promise<{ locks: number[]; state: S }>,
    body: (tx: Txn, state: S) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.checkWritable(what);
      const { locks, state } = await discover();
      try {
        return await this.mutate(what, locks, this.opts.syncMetadata, (tx) => body(tx, state));
      } catch (err) {
        if (!(err instanceof LockSetChanged)) throw err;
        if (attempt >= 100) throw fsError("EIO", `${what}: entries kept changing while acquiring locks`);
      }
    }
  }

  private async apply(tx: Txn): Promise<void> {
    const changes = tx.seal();
    if (tx.batch.isEmpty) return;
    // Quota usage moved by this batch goes into the batch itself (fs/quota.ts); EDQUOT here
    // leaves nothing written.
    const quota = this.quotas.empty ? undefined : await this.quotas.prepare(changes, tx.fresh, (ino) => this.inodes.get(ino), tx.what);
    try {
      const write = (): Promise<void> => this.db.write(tx.batch, { awaitDurable: false });
      await this.counters.commit(tx.batch, tx.shardIno, tx.deltas, quota ? () => this.quotas.commit(tx.batch, tx.shardIno, quota, write) : write);
    } finally {
      if (quota) this.quotas.release(quota);
    }
    for (const [ino, inode] of changes) {
      if (inode) this.inodes.update(inode);
      else this.inodes.remove(ino);
    }
    if (tx.kickReclaimer) this.reclaimer?.kick();
  }

  /**
   * Registers the truncations a crash interrupted (listing tombstones is cheap; the deletions are
   * not) and finishes them one after another in the background. Each batch runs under the
   * inode's lock and re-reads the tombstone: a REMOVE meanwhile replaces it with a DELETED one,
   * which the reclaimer then owns.
   */
  private async resumeInterruptedTruncations(): Promise<void> {
    const pending = await listTombstones(this.db, [TombstoneKind.TRUNCATED, TombstoneKind.EXTENTS_TRUNCATED]);
    if (pending.length === 0) return;
    let chain = Promise.resolve();
    for (const { ino, tombstone } of pending) {
      const done = chain.then(() => this.finishTruncation(ino, tombstone));
      chain = done;
      this.pendingTruncations.set(ino, done);
      void done.finally(() => this.pendingTruncations.delete(ino));
    }
  }

  private async finishTruncation(ino: number, first: Tombstone): Promise<void> {
    this.log?.info({ ino, from: first.from }, "finishing interrupted truncation in the background");
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        for (;;) {
          if (this.closed) return;
          const release = await this.locks.acquire([ino]);
          try {
            const raw = await this.db.get(tombstoneKey(ino));
            const t = raw ? decodeTombstone(raw, ino) : undefined;
            if (t?.kind !== TombstoneKind.TRUNCATED && t?.kind !== TombstoneKind.EXTENTS_TRUNCATED) return;
            // One batch per lock hold, so other requests for this file interleave.
            const finished = await deleteChunkRange(this.db, ino, t, { batchKeys: this.opts.reclaimBatchKeys, maxBatches: 1, ...(this.afterReclaimBatch ? { afterBatch: this.afterReclaimBatch } : {}) });
            if (finished) return;
          } finally {
            release();
          }
        }
      } catch (err) {
        if (err instanceof DbClosedError || this.closed) return;
        this.log?.warn({ ino, err: err instanceof Error ? err.message : String(err), attempt }, "interrupted truncation failed; retrying in 1 s");
        await new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
      }
    }
  }

  /** Test/diagnostic view of the volume counters. */
  get usage(): { usedBytes: number; inodes: number } {
    return { usedBytes: this.counters.usedBytes, inodes: this.counters.inodeCount };
  }

}

/** The engine machinery the quota, claim and tree-reclaim modules use (ZeroFs.internals()). */
export interface FsInternals {
  db: Db;
  quotas: Quotas;
  inodes: InodeTable;
  clock: Clock;
  /** Runs `body` under the locks of `locks` and applies its batch (with quota accounting) as one. */
  mutate<T>(what: string, locks: number[], body: (tx: Txn) => Promise<T>): Promise<T>;
  /** Removes one link of `inode` inside `tx` (the inode and its data go with the last). */
  dropLink(tx: Txn, inode: Inode, now: Time): void;
  checkWritable(what: string): void;
  treeReclaimer(): TreeReclaimer | undefined;
}

/** READDIR cookie verifier: fixed per directory (its cookies are never invalidated). */
function cookieVerifier(dir: Inode): Buffer {
  const v = Buffer.alloc(8);
  v.writeUInt32BE(dir.generation, 4);
  return v;
}

