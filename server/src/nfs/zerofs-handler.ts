/**
 * NFSv3 procedures answered by the ZeroFS filesystem: translates wire types (bigint sizes,
 * nfstime3, sattr3, wcc_data) to the fs layer's and maps FsError codes to nfsstat3. Export
 * policy that concerns identities (root/all squash, read-only) is applied here.
 */
import type { Logger } from "pino";
import { isStoreUnavailable } from "../store/errors.ts";
import {
  FsError,
  isFsError,
  MAX_FILE_SIZE,
  RTMAX,
  WTMAX,
  type Attrs,
  type Cred,
  type SetAttrs,
  type Time,
  type Wcc,
  type WccAttr as FsWccAttr,
  type ZeroFs,
} from "../fs/index.ts";
import {
  Access3,
  CreateMode,
  Ftype3,
  Nfs3Status,
  TimeHow,
  type AccessArgs,
  type AccessResult,
  type CommitArgs,
  type CommitResult,
  type CreateArgs,
  type CreateResult,
  type Fattr3,
  type FsinfoArgs,
  type FsinfoResult,
  type FsstatArgs,
  type FsstatResult,
  type GetattrArgs,
  type GetattrResult,
  type LinkArgs,
  type LinkResult,
  type LookupArgs,
  type LookupResult,
  type MkdirArgs,
  type MknodArgs,
  type Nfs3Credentials,
  type Nfs3ErrorCode,
  type Nfs3Handler,
  type NfsTime3,
  type PathconfArgs,
  type PathconfResult,
  type ReadArgs,
  type ReaddirArgs,
  type ReaddirResult,
  type ReaddirplusArgs,
  type ReaddirplusResult,
  type ReadlinkArgs,
  type ReadlinkResult,
  type ReadReply,
  type RemoveArgs,
  type RemoveResult,
  type RenameArgs,
  type RenameResult,
  type Sattr3,
  type SetattrArgs,
  type SetattrResult,
  type SymlinkArgs,
  type WccAttr,
  type WccData,
  type WriteArgs,
  type WriteResult,
} from "./nfs3-types.ts";
import { DEFAULT_IDENTITY_POLICY, squashIdentity, type IdentityPolicy } from "./identity.ts";

export type { IdentityPolicy } from "./identity.ts";

export interface ZeroFsHandlerOptions {
  /** Default: root squash to 65534 (exports(5)). */
  identity?: IdentityPolicy;
  /** A read-only export: ACCESS never grants MODIFY, EXTEND or DELETE. */
  readOnly?: boolean;
  logger?: Logger;
  /** Observes file bytes moved by READ and WRITE (metrics). */
  onRead?: (bytes: number) => void;
  onWritten?: (bytes: number) => void;
}

/** READDIR(PLUS) reply bytes outside the entries: status, dir post_op_attr, verifier, eof. */
const READDIR_REPLY_OVERHEAD = 4 + 4 + 84 + 8 + 4 + 4;
/** ACCESS3 bits that mean changing something (RFC 1813 §3.3.4). */
const ACCESS_WRITE_BITS = Access3.MODIFY | Access3.EXTEND | Access3.DELETE;
/** Largest READDIR(PLUS) reply we build, whatever count the client asks for: rtmax (like knfsd). */
const READDIR_MAX_REPLY = RTMAX;

const toTime3 = (t: Time): NfsTime3 => ({ seconds: t.sec, nseconds: t.nsec });
const fromTime3 = (t: NfsTime3): Time => ({ sec: t.seconds, nsec: t.nseconds });

export class ZeroFsNfs3Handler implements Nfs3Handler {
  private readonly fs: ZeroFs;
  private readonly fsid: bigint;
  private readonly identity: IdentityPolicy;
  private readonly log: Logger | undefined;
  private readonly opts: ZeroFsHandlerOptions;

  constructor(fs: ZeroFs, opts: ZeroFsHandlerOptions = {}) {
    this.fs = fs;
    // fsid must be stable across restarts and differ between volumes: take it from the volume id.
    this.fsid = fs.volumeId.readBigUInt64BE(0);
    this.identity = opts.identity ?? DEFAULT_IDENTITY_POLICY;
    this.log = opts.logger;
    this.opts = opts;
  }

  // ---------------------------------------------------------------- conversions

  private cred(c: Nfs3Credentials): Cred {
    return squashIdentity(c, this.identity);
  }

  fattr(a: Attrs): Fattr3 {
    return {
      type: a.type,
      mode: a.mode,
      nlink: a.nlink,
      uid: a.uid,
      gid: a.gid,
      size: a.size,
      used: a.used,
      rdev: { specdata1: a.rdev.major, specdata2: a.rdev.minor },
      fsid: this.fsid,
      fileid: a.ino,
      atime: toTime3(a.atime),
      mtime: toTime3(a.mtime),
      ctime: toTime3(a.ctime),
    };
  }

  private wccAttr(w: FsWccAttr): WccAttr {
    return { size: w.size, mtime: toTime3(w.mtime), ctime: toTime3(w.ctime) };
  }

  private wcc(w: Wcc | undefined): WccData {
    if (!w) return {};
    const out: WccData = {};
    if (w.before) out.before = this.wccAttr(w.before);
    if (w.after) out.after = this.fattr(w.after);
    return out;
  }

  private sattr(s: Sattr3): SetAttrs {
    const out: SetAttrs = {};
    if (s.mode !== undefined) out.mode = s.mode;
    if (s.uid !== undefined) out.uid = s.uid;
    if (s.gid !== undefined) out.gid = s.gid;
    if (s.size !== undefined) out.size = this.offset(s.size);
    if (s.atime.how === TimeHow.SET_TO_SERVER_TIME) out.atime = "server";
    else if (s.atime.how === TimeHow.SET_TO_CLIENT_TIME) out.atime = fromTime3(s.atime.time);
    if (s.mtime.how === TimeHow.SET_TO_SERVER_TIME) out.mtime = "server";
    else if (s.mtime.how === TimeHow.SET_TO_CLIENT_TIME) out.mtime = fromTime3(s.mtime.time);
    return out;
  }

  /** Sizes and offsets past what the volume can hold are EFBIG, not silently rounded. */
  private offset(v: bigint): number {
    if (v > BigInt(MAX_FILE_SIZE)) throw new FsError("EFBIG", `offset or size ${v} exceeds the maximum file size ${MAX_FILE_SIZE}`);
    return Number(v);
  }

  /**
   * Maps a failure to an nfsstat3. The object store not answering in time is NFS3ERR_JUKEBOX
   * (RFC 1813: "could not complete in a timely fashion", the client retries later with a new
   * xid), logged at debug only since the store's health tracker reports the outage once;
   * other unexpected errors (fenced, corrupt) are NFS3ERR_IO.
   */
  private status(err: unknown, proc: string): Nfs3ErrorCode {
    if (isFsError(err)) return err.nfsStatus as Nfs3ErrorCode;
    if (isStoreUnavailable(err)) {
      this.log?.debug({ err, proc }, "NFS procedure waits for the object store: NFS3ERR_JUKEBOX");
      return Nfs3Status.NFS3ERR_JUKEBOX;
    }
    this.log?.error({ err, proc }, "NFS procedure failed");
    return Nfs3Status.NFS3ERR_IO;
  }

  /** Post-op attributes for a failure reply, when the object still exists. */
  private async attrsIfAny(fh: Buffer): Promise<Fattr3 | undefined> {
    try {
      return this.fattr(await this.fs.getattr(await this.fs.resolveHandle(fh)));
    } catch {
      return undefined;
    }
  }

  // ---------------------------------------------------------------- procedures

  async getattr(_c: Nfs3Credentials, a: GetattrArgs): Promise<GetattrResult> {
    try {
      const attrs = await this.fs.getattr(await this.fs.resolveHandle(a.object));
      return { status: Nfs3Status.NFS3_OK, objAttributes: this.fattr(attrs) };
    } catch (err) {
      return { status: this.status(err, "GETATTR") };
    }
  }

  async setattr(c: Nfs3Credentials, a: SetattrArgs): Promise<SetattrResult> {
    try {
      const ino = await this.fs.resolveHandle(a.object);
      const wcc = await this.fs.setattr(this.cred(c), ino, this.sattr(a.newAttributes), a.guard ? fromTime3(a.guard) : undefined);
      return { status: Nfs3Status.NFS3_OK, objWcc: this.wcc(wcc) };
    } catch (err) {
      const after = await this.attrsIfAny(a.object);
      return { status: this.status(err, "SETATTR"), objWcc: after ? { after } : {} };
    }
  }

  async lookup(c: Nfs3Credentials, a: LookupArgs): Promise<LookupResult> {
    let dir: number | undefined;
    try {
      dir = await this.fs.resolveHandle(a.what.dir);
      const { attrs, dirAttrs } = await this.fs.lookup(this.cred(c), dir, a.what.name);
      return { status: Nfs3Status.NFS3_OK, object: this.fs.handleOf(attrs), objAttributes: this.fattr(attrs), dirAttributes: this.fattr(dirAttrs) };
    } catch (err) {
      const dirAttributes = dir === undefined ? undefined : await this.attrsIfAny(a.what.dir);
      return dirAttributes ? { status: this.status(err, "LOOKUP"), dirAttributes } : { status: this.status(err, "LOOKUP") };
    }
  }

  async access(c: Nfs3Credentials, a: AccessArgs): Promise<AccessResult> {
    try {
      const { granted, attrs } = await this.fs.access(this.cred(c), await this.fs.resolveHandle(a.object), a.access);
      // Mode bits may allow writing, but a read-only export refuses it: say so up front.
      const access = this.opts.readOnly ? granted & ~ACCESS_WRITE_BITS : granted;
      return { status: Nfs3Status.NFS3_OK, objAttributes: this.fattr(attrs), access };
    } catch (err) {
      return { status: this.status(err, "ACCESS") };
    }
  }

  async readlink(c: Nfs3Credentials, a: ReadlinkArgs): Promise<ReadlinkResult> {
    try {
      const { target, attrs } = await this.fs.readlink(this.cred(c), await this.fs.resolveHandle(a.symlink));
      return { status: Nfs3Status.NFS3_OK, symlinkAttributes: this.fattr(attrs), data: target };
    } catch (err) {
      return { status: this.status(err, "READLINK") };
    }
  }

  async read(c: Nfs3Credentials, a: ReadArgs): Promise<ReadReply> {
    try {
      const ino = await this.fs.resolveHandle(a.file);
      // RFC 1813 has no FBIG for READ: past the largest possible file there is just nothing to
      // read. Reading 0 bytes at the maximum size still checks the handle, type and permission.
      const beyond = a.offset >= BigInt(MAX_FILE_SIZE);
      const r = await this.fs.readv(this.cred(c), ino, beyond ? MAX_FILE_SIZE : this.offset(a.offset), beyond ? 0 : Math.min(a.count, RTMAX));
      this.opts.onRead?.(r.length);
      return { status: Nfs3Status.NFS3_OK, fileAttributes: this.fattr(r.attrs), eof: r.eof, data: r.parts };
    } catch (err) {
      const fileAttributes = await this.attrsIfAny(a.file);
      return fileAttributes ? { status: this.status(err, "READ"), fileAttributes } : { status: this.status(err, "READ") };
    }
  }

  async write(c: Nfs3Credentials, a: WriteArgs): Promise<WriteResult> {
    try {
      if (a.data.length > WTMAX) throw new FsError("EINVAL", `WRITE of ${a.data.length} bytes exceeds wtmax ${WTMAX}`);
      const ino = await this.fs.resolveHandle(a.file);
      // The data is a view of the request record, handed over uncopied: records are views of
      // the socket's freshly allocated read buffers (or one buffer joined from them) that
      // nothing reuses, so the engine may keep them by reference.
      const r = await this.fs.write(this.cred(c), ino, this.offset(a.offset), a.data, a.stable, true);
      this.opts.onWritten?.(r.count);
      return { status: Nfs3Status.NFS3_OK, fileWcc: this.wcc(r.wcc), count: r.count, committed: r.committed, verf: this.fs.writeVerifier };
    } catch (err) {
      const after = await this.attrsIfAny(a.file);
      return { status: this.status(err, "WRITE"), fileWcc: after ? { after } : {} };
    }
  }

  private async created(proc: string, dirFh: Buffer, run: (dir: number) => Promise<{ attrs: Attrs; dirWcc: Wcc }>): Promise<CreateResult> {
    try {
      const dir = await this.fs.resolveHandle(dirFh);
      const r = await run(dir);
      return { status: Nfs3Status.NFS3_OK, obj: this.fs.handleOf(r.attrs), objAttributes: this.fattr(r.attrs), dirWcc: this.wcc(r.dirWcc) };
    } catch (err) {
      const after = await this.attrsIfAny(dirFh);
      return { status: this.status(err, proc), dirWcc: after ? { after } : {} };
    }
  }

  create(c: Nfs3Credentials, a: CreateArgs): Promise<CreateResult> {
    return this.created("CREATE", a.where.dir, (dir) => {
      const how = a.how;
      return this.fs.create(
        this.cred(c),
        dir,
        a.where.name,
        how.mode === CreateMode.EXCLUSIVE
          ? { mode: "exclusive", verifier: Buffer.from(how.verf) }
          : { mode: how.mode === CreateMode.GUARDED ? "guarded" : "unchecked", attrs: this.sattr(how.attributes) },
      );
    });
  }

  mkdir(c: Nfs3Credentials, a: MkdirArgs): Promise<CreateResult> {
    return this.created("MKDIR", a.where.dir, (dir) => this.fs.mkdir(this.cred(c), dir, a.where.name, this.sattr(a.attributes)));
  }

  symlink(c: Nfs3Credentials, a: SymlinkArgs): Promise<CreateResult> {
    return this.created("SYMLINK", a.where.dir, (dir) =>
      this.fs.symlink(this.cred(c), dir, a.where.name, Buffer.from(a.symlinkData), this.sattr(a.symlinkAttributes)),
    );
  }

  mknod(c: Nfs3Credentials, a: MknodArgs): Promise<CreateResult> {
    return this.created("MKNOD", a.where.dir, async (dir) => {
      const what = a.what;
      if (what.type !== Ftype3.NF3CHR && what.type !== Ftype3.NF3BLK && what.type !== Ftype3.NF3SOCK && what.type !== Ftype3.NF3FIFO) {
        throw new FsError("BADTYPE", `MKNOD cannot create file type ${what.type}`);
      }
      const rdev = "spec" in what ? { major: what.spec.specdata1, minor: what.spec.specdata2 } : { major: 0, minor: 0 };
      return this.fs.mknod(this.cred(c), dir, a.where.name, what.type, this.sattr(what.attributes), rdev);
    });
  }

  private async removal(proc: string, a: RemoveArgs, rmdir: boolean, c: Nfs3Credentials): Promise<RemoveResult> {
    try {
      const dir = await this.fs.resolveHandle(a.object.dir);
      const r = rmdir ? await this.fs.rmdir(this.cred(c), dir, a.object.name) : await this.fs.remove(this.cred(c), dir, a.object.name);
      return { status: Nfs3Status.NFS3_OK, dirWcc: this.wcc(r.dirWcc) };
    } catch (err) {
      const after = await this.attrsIfAny(a.object.dir);
      return { status: this.status(err, proc), dirWcc: after ? { after } : {} };
    }
  }

  remove(c: Nfs3Credentials, a: RemoveArgs): Promise<RemoveResult> {
    return this.removal("REMOVE", a, false, c);
  }

  rmdir(c: Nfs3Credentials, a: RemoveArgs): Promise<RemoveResult> {
    return this.removal("RMDIR", a, true, c);
  }

  async rename(c: Nfs3Credentials, a: RenameArgs): Promise<RenameResult> {
    try {
      const from = await this.fs.resolveHandle(a.from.dir);
      const to = await this.fs.resolveHandle(a.to.dir);
      const r = await this.fs.rename(this.cred(c), from, a.from.name, to, a.to.name);
      return { status: Nfs3Status.NFS3_OK, fromdirWcc: this.wcc(r.fromDirWcc), todirWcc: this.wcc(r.toDirWcc) };
    } catch (err) {
      const fromAfter = await this.attrsIfAny(a.from.dir);
      const toAfter = await this.attrsIfAny(a.to.dir);
      return { status: this.status(err, "RENAME"), fromdirWcc: fromAfter ? { after: fromAfter } : {}, todirWcc: toAfter ? { after: toAfter } : {} };
    }
  }

  async link(c: Nfs3Credentials, a: LinkArgs): Promise<LinkResult> {
    try {
      const ino = await this.fs.resolveHandle(a.file);
      const dir = await this.fs.resolveHandle(a.link.dir);
      const r = await this.fs.link(this.cred(c), ino, dir, a.link.name);
      return { status: Nfs3Status.NFS3_OK, fileAttributes: this.fattr(r.attrs), linkdirWcc: this.wcc(r.dirWcc) };
    } catch (err) {
      const fileAttributes = await this.attrsIfAny(a.file);
      const dirAfter = await this.attrsIfAny(a.link.dir);
      const fail = { status: this.status(err, "LINK"), linkdirWcc: dirAfter ? { after: dirAfter } : {} };
      return fileAttributes ? { ...fail, fileAttributes } : fail;
    }
  }

  async readdir(c: Nfs3Credentials, a: ReaddirArgs): Promise<ReaddirResult> {
    try {
      const dir = await this.fs.resolveHandle(a.dir);
      const r = await this.fs.readdir(this.cred(c), dir, this.cookie(a.cookie), a.cookieverf, { maxBytes: Math.max(0, Math.min(a.count, READDIR_MAX_REPLY) - READDIR_REPLY_OVERHEAD) });
      return {
        status: Nfs3Status.NFS3_OK,
        dirAttributes: this.fattr(r.dirAttrs),
        cookieverf: r.verifier,
        entries: r.entries.map((e) => ({ fileid: e.ino, name: e.name, cookie: e.cookie })),
        eof: r.eof,
      };
    } catch (err) {
      const dirAttributes = await this.attrsIfAny(a.dir);
      return dirAttributes ? { status: this.status(err, "READDIR"), dirAttributes } : { status: this.status(err, "READDIR") };
    }
  }

  async readdirplus(c: Nfs3Credentials, a: ReaddirplusArgs): Promise<ReaddirplusResult> {
    try {
      const dir = await this.fs.resolveHandle(a.dir);
      const r = await this.fs.readdir(this.cred(c), dir, this.cookie(a.cookie), a.cookieverf, {
        maxBytes: Math.max(0, Math.min(a.maxcount, READDIR_MAX_REPLY) - READDIR_REPLY_OVERHEAD),
        dirBytes: Math.min(a.dircount, READDIR_MAX_REPLY),
        plus: true,
      });
      return {
        status: Nfs3Status.NFS3_OK,
        dirAttributes: this.fattr(r.dirAttrs),
        cookieverf: r.verifier,
        // One object per entry, in one shape (no spread): a page holds hundreds.
        entries: r.entries.map((e) =>
          e.attrs
            ? { fileid: e.ino, name: e.name, cookie: e.cookie, nameAttributes: this.fattr(e.attrs), nameHandle: this.fs.handleOf(e.attrs) }
            : { fileid: e.ino, name: e.name, cookie: e.cookie, nameAttributes: undefined, nameHandle: undefined },
        ),
        eof: r.eof,
      };
    } catch (err) {
      const dirAttributes = await this.attrsIfAny(a.dir);
      return dirAttributes ? { status: this.status(err, "READDIRPLUS"), dirAttributes } : { status: this.status(err, "READDIRPLUS") };
    }
  }

  private cookie(c: bigint): number {
    if (c > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsError("BAD_COOKIE", `cookie ${c} was never issued by this server`);
    return Number(c);
  }

  async fsstat(_c: Nfs3Credentials, a: FsstatArgs): Promise<FsstatResult> {
    try {
      const { stat, attrs } = await this.fs.fsstat(await this.fs.resolveHandle(a.fsroot));
      return {
        status: Nfs3Status.NFS3_OK,
        objAttributes: this.fattr(attrs),
        tbytes: BigInt(stat.totalBytes),
        fbytes: BigInt(stat.freeBytes),
        abytes: BigInt(stat.availBytes),
        tfiles: BigInt(stat.totalFiles),
        ffiles: BigInt(stat.freeFiles),
        afiles: BigInt(stat.availFiles),
        invarsec: 0,
      };
    } catch (err) {
      return { status: this.status(err, "FSSTAT") };
    }
  }

  async fsinfo(_c: Nfs3Credentials, a: FsinfoArgs): Promise<FsinfoResult> {
    try {
      const { info, attrs } = await this.fs.fsinfo(await this.fs.resolveHandle(a.fsroot));
      return {
        status: Nfs3Status.NFS3_OK,
        objAttributes: this.fattr(attrs),
        rtmax: info.rtmax,
        rtpref: info.rtpref,
        rtmult: info.rtmult,
        wtmax: info.wtmax,
        wtpref: info.wtpref,
        wtmult: info.wtmult,
        dtpref: info.dtpref,
        maxfilesize: BigInt(info.maxFileSize),
        timeDelta: toTime3(info.timeDelta),
        properties: info.properties,
      };
    } catch (err) {
      return { status: this.status(err, "FSINFO") };
    }
  }

  async pathconf(_c: Nfs3Credentials, a: PathconfArgs): Promise<PathconfResult> {
    try {
      const { conf, attrs } = await this.fs.pathconf(await this.fs.resolveHandle(a.object));
      return {
        status: Nfs3Status.NFS3_OK,
        objAttributes: this.fattr(attrs),
        linkmax: conf.linkMax,
        nameMax: conf.nameMax,
        noTrunc: conf.noTrunc,
        chownRestricted: conf.chownRestricted,
        caseInsensitive: conf.caseInsensitive,
        casePreserving: conf.casePreserving,
      };
    } catch (err) {
      return { status: this.status(err, "PATHCONF") };
    }
  }

  async commit(_c: Nfs3Credentials, a: CommitArgs): Promise<CommitResult> {
    try {
      const wcc = await this.fs.commit(await this.fs.resolveHandle(a.file));
      return { status: Nfs3Status.NFS3_OK, fileWcc: this.wcc(wcc), verf: this.fs.writeVerifier };
    } catch (err) {
      const after = await this.attrsIfAny(a.file);
      return { status: this.status(err, "COMMIT"), fileWcc: after ? { after } : {} };
    }
  }
}
