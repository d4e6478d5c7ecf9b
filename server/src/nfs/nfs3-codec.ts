/**
 * NFSv3 (RFC 1813) wire codec, server side: argument decoders (XdrReader → typed args; they
 * throw XdrError on malformed input, which the RPC layer answers with GARBAGE_ARGS) and result
 * encoders (typed result → XdrWriter).
 */
import {
  CreateMode,
  Ftype3,
  NFS3_COOKIEVERFSIZE,
  NFS3_CREATEVERFSIZE,
  NFS3_FHSIZE,
  NFS3_WRITEVERFSIZE,
  Nfs3Status,
  StableHow,
  TimeHow,
  type AccessArgs,
  type AccessResult,
  type CommitArgs,
  type CommitResult,
  type CreateArgs,
  type CreateHow3,
  type CreateResult,
  type DirOpArgs3,
  type Entryplus3,
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
  type MknodData3,
  type NfsTime3,
  type PathconfArgs,
  type PathconfResult,
  type ReadArgs,
  type ReaddirArgs,
  type ReaddirplusArgs,
  type ReaddirplusResult,
  type ReaddirResult,
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
  type SetTime3,
  type Specdata3,
  type StableHowCode,
  type SymlinkArgs,
  type WccAttr,
  type WccData,
  type WriteArgs,
  type WriteResult,
} from "./nfs3-types.ts";
import { XdrError, xdrOpaqueSize, type XdrReader, type XdrWriter } from "./xdr.ts";

/**
 * Sanity bounds for decoding only. Names between NFS3_MAXNAMLEN (255) and this still decode so
 * the fs layer can answer NFS3ERR_NAMETOOLONG instead of the client seeing GARBAGE_ARGS.
 */
export const NAME_DECODE_MAX = 1024;
export const PATH_DECODE_MAX = 8192;

// ---------------------------------------------------------------- shared decoders

export function decodeFh(r: XdrReader, what = "nfs_fh3"): Buffer {
  return r.opaque(NFS3_FHSIZE, what);
}

function decodeName(r: XdrReader): Buffer {
  return r.opaque(NAME_DECODE_MAX, "filename3");
}

function decodeDirOpArgs(r: XdrReader): DirOpArgs3 {
  return { dir: decodeFh(r, "dir"), name: decodeName(r) };
}

function decodeTime(r: XdrReader): NfsTime3 {
  return { seconds: r.uint32("seconds"), nseconds: r.uint32("nseconds") };
}

function decodeSetTime(r: XdrReader, what: string): SetTime3 {
  const at = r.pos;
  const how = r.uint32(`${what} time_how`);
  switch (how) {
    case TimeHow.DONT_CHANGE:
      return { how: TimeHow.DONT_CHANGE };
    case TimeHow.SET_TO_SERVER_TIME:
      return { how: TimeHow.SET_TO_SERVER_TIME };
    case TimeHow.SET_TO_CLIENT_TIME:
      return { how: TimeHow.SET_TO_CLIENT_TIME, time: decodeTime(r) };
    default:
      throw new XdrError(`${what}: invalid time_how ${how}`, at);
  }
}

export function decodeSattr3(r: XdrReader): Sattr3 {
  const s: Sattr3 = { atime: { how: TimeHow.DONT_CHANGE }, mtime: { how: TimeHow.DONT_CHANGE } };
  if (r.bool("set_mode")) s.mode = r.uint32("mode");
  if (r.bool("set_uid")) s.uid = r.uint32("uid");
  if (r.bool("set_gid")) s.gid = r.uint32("gid");
  if (r.bool("set_size")) s.size = r.uint64("size");
  s.atime = decodeSetTime(r, "atime");
  s.mtime = decodeSetTime(r, "mtime");
  return s;
}

function decodeSpecdata(r: XdrReader): Specdata3 {
  return { specdata1: r.uint32("specdata1"), specdata2: r.uint32("specdata2") };
}

function decodeStableHow(r: XdrReader): StableHowCode {
  const at = r.pos;
  const v = r.uint32("stable_how");
  if (v === StableHow.UNSTABLE || v === StableHow.DATA_SYNC || v === StableHow.FILE_SYNC) return v;
  throw new XdrError(`invalid stable_how ${v}`, at);
}

// ---------------------------------------------------------------- argument decoders

export function decodeGetattrArgs(r: XdrReader): GetattrArgs {
  return { object: decodeFh(r) };
}

export function decodeSetattrArgs(r: XdrReader): SetattrArgs {
  const object = decodeFh(r);
  const newAttributes = decodeSattr3(r);
  const guard = r.optional(decodeTime, "sattrguard3");
  return guard === undefined ? { object, newAttributes } : { object, newAttributes, guard };
}

export function decodeLookupArgs(r: XdrReader): LookupArgs {
  return { what: decodeDirOpArgs(r) };
}

export function decodeAccessArgs(r: XdrReader): AccessArgs {
  return { object: decodeFh(r), access: r.uint32("access") };
}

export function decodeReadlinkArgs(r: XdrReader): ReadlinkArgs {
  return { symlink: decodeFh(r) };
}

export function decodeReadArgs(r: XdrReader): ReadArgs {
  return { file: decodeFh(r), offset: r.uint64("offset"), count: r.uint32("count") };
}

export function decodeWriteArgs(r: XdrReader): WriteArgs {
  const file = decodeFh(r);
  const offset = r.uint64("offset");
  const count = r.uint32("count");
  const stable = decodeStableHow(r);
  const at = r.pos;
  // The record is already capped, so no extra maximum here; the data stays a view.
  const data = r.opaque(0xffff_ffff, "write data");
  if (data.length !== count) throw new XdrError(`WRITE count ${count} differs from data length ${data.length}`, at);
  return { file, offset, count, stable, data };
}

function decodeCreateHow(r: XdrReader): CreateHow3 {
  const at = r.pos;
  const mode = r.uint32("createmode3");
  switch (mode) {
    case CreateMode.UNCHECKED:
    case CreateMode.GUARDED:
      return { mode, attributes: decodeSattr3(r) };
    case CreateMode.EXCLUSIVE:
      return { mode, verf: r.opaqueFixed(NFS3_CREATEVERFSIZE, "createverf3") };
    default:
      throw new XdrError(`invalid createmode3 ${mode}`, at);
  }
}

export function decodeCreateArgs(r: XdrReader): CreateArgs {
  return { where: decodeDirOpArgs(r), how: decodeCreateHow(r) };
}

export function decodeMkdirArgs(r: XdrReader): MkdirArgs {
  return { where: decodeDirOpArgs(r), attributes: decodeSattr3(r) };
}

export function decodeSymlinkArgs(r: XdrReader): SymlinkArgs {
  const where = decodeDirOpArgs(r);
  const symlinkAttributes = decodeSattr3(r);
  const symlinkData = r.opaque(PATH_DECODE_MAX, "nfspath3");
  return { where, symlinkAttributes, symlinkData };
}

function decodeMknodData(r: XdrReader): MknodData3 {
  const at = r.pos;
  const type = r.uint32("ftype3");
  switch (type) {
    case Ftype3.NF3CHR:
    case Ftype3.NF3BLK:
      return { type, attributes: decodeSattr3(r), spec: decodeSpecdata(r) };
    case Ftype3.NF3SOCK:
    case Ftype3.NF3FIFO:
      return { type, attributes: decodeSattr3(r) };
    case Ftype3.NF3REG:
    case Ftype3.NF3DIR:
    case Ftype3.NF3LNK:
      // Valid on the wire (union default: void); the fs answers NFS3ERR_BADTYPE.
      return { type };
    default:
      throw new XdrError(`invalid ftype3 ${type}`, at);
  }
}

export function decodeMknodArgs(r: XdrReader): MknodArgs {
  return { where: decodeDirOpArgs(r), what: decodeMknodData(r) };
}

export function decodeRemoveArgs(r: XdrReader): RemoveArgs {
  return { object: decodeDirOpArgs(r) };
}

export const decodeRmdirArgs = decodeRemoveArgs;

export function decodeRenameArgs(r: XdrReader): RenameArgs {
  return { from: decodeDirOpArgs(r), to: decodeDirOpArgs(r) };
}

export function decodeLinkArgs(r: XdrReader): LinkArgs {
  return { file: decodeFh(r), link: decodeDirOpArgs(r) };
}

export function decodeReaddirArgs(r: XdrReader): ReaddirArgs {
  return {
    dir: decodeFh(r),
    cookie: r.uint64("cookie"),
    cookieverf: r.opaqueFixed(NFS3_COOKIEVERFSIZE, "cookieverf3"),
    count: r.uint32("count"),
  };
}

export function decodeReaddirplusArgs(r: XdrReader): ReaddirplusArgs {
  return {
    dir: decodeFh(r),
    cookie: r.uint64("cookie"),
    cookieverf: r.opaqueFixed(NFS3_COOKIEVERFSIZE, "cookieverf3"),
    dircount: r.uint32("dircount"),
    maxcount: r.uint32("maxcount"),
  };
}

export function decodeFsstatArgs(r: XdrReader): FsstatArgs {
  return { fsroot: decodeFh(r) };
}

export function decodeFsinfoArgs(r: XdrReader): FsinfoArgs {
  return { fsroot: decodeFh(r) };
}

export function decodePathconfArgs(r: XdrReader): PathconfArgs {
  return { object: decodeFh(r) };
}

export function decodeCommitArgs(r: XdrReader): CommitArgs {
  return { file: decodeFh(r), offset: r.uint64("offset"), count: r.uint32("count") };
}

// ---------------------------------------------------------------- shared encoders

/** Encoded size of fattr3. */
export const FATTR3_SIZE = 84;

function encodeTime(w: XdrWriter, t: NfsTime3): void {
  w.uint32(t.seconds).uint32(t.nseconds);
}

export function encodeFattr3(w: XdrWriter, a: Fattr3): void {
  w.uint32(a.type).uint32(a.mode).uint32(a.nlink).uint32(a.uid).uint32(a.gid);
  w.uint64(a.size).uint64(a.used);
  w.uint32(a.rdev.specdata1).uint32(a.rdev.specdata2);
  w.uint64(a.fsid).uint64(a.fileid);
  encodeTime(w, a.atime);
  encodeTime(w, a.mtime);
  encodeTime(w, a.ctime);
}

function encodePostOpAttr(w: XdrWriter, a: Fattr3 | undefined): void {
  w.optional(a, encodeFattr3);
}

function encodeWccAttr(w: XdrWriter, a: WccAttr): void {
  w.uint64(a.size);
  encodeTime(w, a.mtime);
  encodeTime(w, a.ctime);
}

function encodeWcc(w: XdrWriter, wcc: WccData): void {
  w.optional(wcc.before, encodeWccAttr);
  encodePostOpAttr(w, wcc.after);
}

function encodeFh(w: XdrWriter, fh: Buffer): void {
  w.opaque(fh, NFS3_FHSIZE);
}

function encodePostOpFh(w: XdrWriter, fh: Buffer | undefined): void {
  w.optional(fh, encodeFh);
}

export function postOpAttrSize(a: Fattr3 | undefined): number {
  return 4 + (a === undefined ? 0 : FATTR3_SIZE);
}

function postOpFhSize(fh: Buffer | undefined): number {
  return 4 + (fh === undefined ? 0 : xdrOpaqueSize(fh.length));
}

/** Bytes of one READDIR entry (value-follows flag, fileid, name, cookie). */
export function readdirEntrySize(nameLength: number): number {
  return 4 + 8 + xdrOpaqueSize(nameLength) + 8;
}

/** Bytes of one READDIRPLUS entry, i.e. its share of `maxcount`. */
export function readdirplusEntrySize(e: Entryplus3): number {
  return readdirEntrySize(e.name.length) + postOpAttrSize(e.nameAttributes) + postOpFhSize(e.nameHandle);
}

/** Reply size of READDIR / READDIRPLUS without entries: status, dir attrs, verifier, list end, eof. */
export function readdirFixedSize(dirAttributes: Fattr3 | undefined): number {
  return 4 + postOpAttrSize(dirAttributes) + NFS3_COOKIEVERFSIZE + 4 + 4;
}

// ---------------------------------------------------------------- result encoders

export function encodeGetattrResult(w: XdrWriter, res: GetattrResult): void {
  w.uint32(res.status);
  if (res.status === Nfs3Status.NFS3_OK) encodeFattr3(w, res.objAttributes);
}

export function encodeSetattrResult(w: XdrWriter, res: SetattrResult): void {
  w.uint32(res.status);
  encodeWcc(w, res.objWcc);
}

export function encodeLookupResult(w: XdrWriter, res: LookupResult): void {
  w.uint32(res.status);
  if (res.status === Nfs3Status.NFS3_OK) {
    encodeFh(w, res.object);
    encodePostOpAttr(w, res.objAttributes);
  }
  encodePostOpAttr(w, res.dirAttributes);
}

export function encodeAccessResult(w: XdrWriter, res: AccessResult): void {
  w.uint32(res.status);
  encodePostOpAttr(w, res.objAttributes);
  if (res.status === Nfs3Status.NFS3_OK) w.uint32(res.access);
}

export function encodeReadlinkResult(w: XdrWriter, res: ReadlinkResult): void {
  w.uint32(res.status);
  encodePostOpAttr(w, res.symlinkAttributes);
  if (res.status === Nfs3Status.NFS3_OK) w.opaque(res.data);
}

export function encodeReadResult(w: XdrWriter, res: ReadReply): void {
  w.uint32(res.status);
  encodePostOpAttr(w, res.fileAttributes);
  if (res.status === Nfs3Status.NFS3_OK) {
    const data = res.data;
    const count = Buffer.isBuffer(data) ? data.length : data.reduce((n, b) => n + b.length, 0);
    w.uint32(count).bool(res.eof);
    if (Buffer.isBuffer(data)) w.opaque(data);
    else w.opaqueParts(data, count); // large payloads are attached by reference
  }
}

export function encodeWriteResult(w: XdrWriter, res: WriteResult): void {
  w.uint32(res.status);
  encodeWcc(w, res.fileWcc);
  if (res.status === Nfs3Status.NFS3_OK) {
    w.uint32(res.count).uint32(res.committed).opaqueFixed(res.verf, NFS3_WRITEVERFSIZE);
  }
}

/** CREATE, MKDIR, SYMLINK and MKNOD share this result shape. */
export function encodeCreateResult(w: XdrWriter, res: CreateResult): void {
  w.uint32(res.status);
  if (res.status === Nfs3Status.NFS3_OK) {
    encodePostOpFh(w, res.obj);
    encodePostOpAttr(w, res.objAttributes);
  }
  encodeWcc(w, res.dirWcc);
}

export function encodeRemoveResult(w: XdrWriter, res: RemoveResult): void {
  w.uint32(res.status);
  encodeWcc(w, res.dirWcc);
}

export function encodeRenameResult(w: XdrWriter, res: RenameResult): void {
  w.uint32(res.status);
  encodeWcc(w, res.fromdirWcc);
  encodeWcc(w, res.todirWcc);
}

export function encodeLinkResult(w: XdrWriter, res: LinkResult): void {
  w.uint32(res.status);
  encodePostOpAttr(w, res.fileAttributes);
  encodeWcc(w, res.linkdirWcc);
}

function encodeTooSmall(w: XdrWriter, dirAttributes: Fattr3 | undefined): void {
  w.uint32(Nfs3Status.NFS3ERR_TOOSMALL);
  encodePostOpAttr(w, dirAttributes);
}

/**
 * READDIR: the whole reply body (status included) stays within `count` bytes. Entries are
 * added while the next one fits; eof is reported only if all entries fit.
 */
export function encodeReaddirResult(w: XdrWriter, res: ReaddirResult, limits: { count: number }): void {
  if (res.status !== Nfs3Status.NFS3_OK) {
    w.uint32(res.status);
    encodePostOpAttr(w, res.dirAttributes);
    return;
  }
  let used = readdirFixedSize(res.dirAttributes);
  let n = 0;
  for (const e of res.entries) {
    const size = readdirEntrySize(e.name.length);
    if (used + size > limits.count) break;
    used += size;
    n++;
  }
  if (n === 0 && res.entries.length > 0) return encodeTooSmall(w, res.dirAttributes);
  w.uint32(res.status);
  encodePostOpAttr(w, res.dirAttributes);
  w.opaqueFixed(res.cookieverf, NFS3_COOKIEVERFSIZE);
  for (let i = 0; i < n; i++) {
    const e = res.entries[i] as (typeof res.entries)[number];
    w.bool(true).uint64(e.fileid).opaque(e.name).uint64(e.cookie);
  }
  w.bool(false).bool(res.eof && n === res.entries.length);
}

/**
 * READDIRPLUS: the whole reply body stays within `maxcount`, and the entries' directory
 * information (flag, fileid, name, cookie — not attributes or handles) within `dircount`.
 * A dircount of 0 is treated as "no separate limit" (some clients send 0).
 */
export function encodeReaddirplusResult(w: XdrWriter, res: ReaddirplusResult, limits: { dircount: number; maxcount: number }): void {
  if (res.status !== Nfs3Status.NFS3_OK) {
    w.uint32(res.status);
    encodePostOpAttr(w, res.dirAttributes);
    return;
  }
  const dirLimit = limits.dircount === 0 ? Infinity : limits.dircount;
  let used = readdirFixedSize(res.dirAttributes);
  let dirUsed = 0;
  let n = 0;
  for (const e of res.entries) {
    const dirSize = readdirEntrySize(e.name.length);
    const size = readdirplusEntrySize(e);
    if (used + size > limits.maxcount || dirUsed + dirSize > dirLimit) break;
    used += size;
    dirUsed += dirSize;
    n++;
  }
  if (n === 0 && res.entries.length > 0) return encodeTooSmall(w, res.dirAttributes);
  w.uint32(res.status);
  encodePostOpAttr(w, res.dirAttributes);
  w.opaqueFixed(res.cookieverf, NFS3_COOKIEVERFSIZE);
  for (let i = 0; i < n; i++) {
    const e = res.entries[i] as Entryplus3;
    w.bool(true).uint64(e.fileid).opaque(e.name).uint64(e.cookie);
    encodePostOpAttr(w, e.nameAttributes);
    encodePostOpFh(w, e.nameHandle);
  }
  w.bool(false).bool(res.eof && n === res.entries.length);
}

export function encodeFsstatResult(w: XdrWriter, res: FsstatResult): void {
  w.uint32(res.status);
  encodePostOpAttr(w, res.objAttributes);
  if (res.status === Nfs3Status.NFS3_OK) {
    w.uint64(res.tbytes).uint64(res.fbytes).uint64(res.abytes);
    w.uint64(res.tfiles).uint64(res.ffiles).uint64(res.afiles);
    w.uint32(res.invarsec);
  }
}

export function encodeFsinfoResult(w: XdrWriter, res: FsinfoResult): void {
  w.uint32(res.status);
  encodePostOpAttr(w, res.objAttributes);
  if (res.status === Nfs3Status.NFS3_OK) {
    w.uint32(res.rtmax).uint32(res.rtpref).uint32(res.rtmult);
    w.uint32(res.wtmax).uint32(res.wtpref).uint32(res.wtmult);
    w.uint32(res.dtpref).uint64(res.maxfilesize);
    encodeTime(w, res.timeDelta);
    w.uint32(res.properties);
  }
}

export function encodePathconfResult(w: XdrWriter, res: PathconfResult): void {
  w.uint32(res.status);
  encodePostOpAttr(w, res.objAttributes);
  if (res.status === Nfs3Status.NFS3_OK) {
    w.uint32(res.linkmax).uint32(res.nameMax);
    w.bool(res.noTrunc).bool(res.chownRestricted).bool(res.caseInsensitive).bool(res.casePreserving);
  }
}

export function encodeCommitResult(w: XdrWriter, res: CommitResult): void {
  w.uint32(res.status);
  encodeWcc(w, res.fileWcc);
  if (res.status === Nfs3Status.NFS3_OK) w.opaqueFixed(res.verf, NFS3_WRITEVERFSIZE);
}
