/**
 * Client side of the NFSv3 codec, written separately from the server codec (straight from RFC
 * 1813's XDR) so that tests check one against the other: argument encoders and result decoders.
 */
import {
  Nfs3Proc as P,
  type AccessArgs,
  type AccessResult,
  type CommitArgs,
  type CommitResult,
  type CreateArgs,
  type CreateResult,
  type DirOpArgs3,
  type Entry3,
  type Entryplus3,
  type Fattr3,
  type Ftype3Code,
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
  type Nfs3ErrorCode,
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
  type ReadResult,
  type RemoveArgs,
  type RemoveResult,
  type RenameArgs,
  type RenameResult,
  type Sattr3,
  type SetattrArgs,
  type SetattrResult,
  type SetTime3,
  type StableHowCode,
  type SymlinkArgs,
  type WccAttr,
  type WccData,
  type WriteArgs,
  type WriteResult,
} from "../../../server/src/nfs/nfs3-types.ts";
import { XdrReader, XdrWriter } from "../../../server/src/nfs/xdr.ts";

// ------------------------------------------------------------------ argument encoders

const fh = (w: XdrWriter, b: Buffer): void => void w.opaque(b);
const dirop = (w: XdrWriter, d: DirOpArgs3): void => void w.opaque(d.dir).opaque(d.name);
const time = (w: XdrWriter, t: NfsTime3): void => void w.uint32(t.seconds).uint32(t.nseconds);
const setTime = (w: XdrWriter, t: SetTime3): void => {
  w.uint32(t.how);
  if (t.how === 2) time(w, t.time);
};
export function encSattr(w: XdrWriter, s: Sattr3): void {
  w.optional(s.mode, (x, v) => x.uint32(v));
  w.optional(s.uid, (x, v) => x.uint32(v));
  w.optional(s.gid, (x, v) => x.uint32(v));
  w.optional(s.size, (x, v) => x.uint64(v));
  setTime(w, s.atime);
  setTime(w, s.mtime);
}

export interface ArgsByProc {
  [P.GETATTR]: GetattrArgs;
  [P.SETATTR]: SetattrArgs;
  [P.LOOKUP]: LookupArgs;
  [P.ACCESS]: AccessArgs;
  [P.READLINK]: ReadlinkArgs;
  [P.READ]: ReadArgs;
  [P.WRITE]: WriteArgs;
  [P.CREATE]: CreateArgs;
  [P.MKDIR]: MkdirArgs;
  [P.SYMLINK]: SymlinkArgs;
  [P.MKNOD]: MknodArgs;
  [P.REMOVE]: RemoveArgs;
  [P.RMDIR]: RemoveArgs;
  [P.RENAME]: RenameArgs;
  [P.LINK]: LinkArgs;
  [P.READDIR]: ReaddirArgs;
  [P.READDIRPLUS]: ReaddirplusArgs;
  [P.FSSTAT]: FsstatArgs;
  [P.FSINFO]: FsinfoArgs;
  [P.PATHCONF]: PathconfArgs;
  [P.COMMIT]: CommitArgs;
}

export interface ResultsByProc {
  [P.GETATTR]: GetattrResult;
  [P.SETATTR]: SetattrResult;
  [P.LOOKUP]: LookupResult;
  [P.ACCESS]: AccessResult;
  [P.READLINK]: ReadlinkResult;
  [P.READ]: ReadResult;
  [P.WRITE]: WriteResult;
  [P.CREATE]: CreateResult;
  [P.MKDIR]: CreateResult;
  [P.SYMLINK]: CreateResult;
  [P.MKNOD]: CreateResult;
  [P.REMOVE]: RemoveResult;
  [P.RMDIR]: RemoveResult;
  [P.RENAME]: RenameResult;
  [P.LINK]: LinkResult;
  [P.READDIR]: ReaddirResult;
  [P.READDIRPLUS]: ReaddirplusResult;
  [P.FSSTAT]: FsstatResult;
  [P.FSINFO]: FsinfoResult;
  [P.PATHCONF]: PathconfResult;
  [P.COMMIT]: CommitResult;
}

export type ProcNum = keyof ArgsByProc;

export const argEncoders: { [K in ProcNum]: (w: XdrWriter, a: ArgsByProc[K]) => void } = {
  [P.GETATTR]: (w, a) => fh(w, a.object),
  [P.SETATTR]: (w, a) => {
    fh(w, a.object);
    encSattr(w, a.newAttributes);
    w.optional(a.guard, time);
  },
  [P.LOOKUP]: (w, a) => dirop(w, a.what),
  [P.ACCESS]: (w, a) => {
    fh(w, a.object);
    w.uint32(a.access);
  },
  [P.READLINK]: (w, a) => fh(w, a.symlink),
  [P.READ]: (w, a) => {
    fh(w, a.file);
    w.uint64(a.offset).uint32(a.count);
  },
  [P.WRITE]: (w, a) => {
    fh(w, a.file);
    w.uint64(a.offset).uint32(a.count).uint32(a.stable).opaque(a.data);
  },
  [P.CREATE]: (w, a) => {
    dirop(w, a.where);
    w.uint32(a.how.mode);
    if (a.how.mode === 2) w.opaqueFixed(a.how.verf, 8);
    else encSattr(w, a.how.attributes);
  },
  [P.MKDIR]: (w, a) => {
    dirop(w, a.where);
    encSattr(w, a.attributes);
  },
  [P.SYMLINK]: (w, a) => {
    dirop(w, a.where);
    encSattr(w, a.symlinkAttributes);
    w.opaque(a.symlinkData);
  },
  [P.MKNOD]: (w, a) => {
    dirop(w, a.where);
    w.uint32(a.what.type);
    if ("attributes" in a.what) encSattr(w, a.what.attributes);
    if ("spec" in a.what) w.uint32(a.what.spec.specdata1).uint32(a.what.spec.specdata2);
  },
  [P.REMOVE]: (w, a) => dirop(w, a.object),
  [P.RMDIR]: (w, a) => dirop(w, a.object),
  [P.RENAME]: (w, a) => {
    dirop(w, a.from);
    dirop(w, a.to);
  },
  [P.LINK]: (w, a) => {
    fh(w, a.file);
    dirop(w, a.link);
  },
  [P.READDIR]: (w, a) => {
    fh(w, a.dir);
    w.uint64(a.cookie).opaqueFixed(a.cookieverf, 8).uint32(a.count);
  },
  [P.READDIRPLUS]: (w, a) => {
    fh(w, a.dir);
    w.uint64(a.cookie).opaqueFixed(a.cookieverf, 8).uint32(a.dircount).uint32(a.maxcount);
  },
  [P.FSSTAT]: (w, a) => fh(w, a.fsroot),
  [P.FSINFO]: (w, a) => fh(w, a.fsroot),
  [P.PATHCONF]: (w, a) => fh(w, a.object),
  [P.COMMIT]: (w, a) => {
    fh(w, a.file);
    w.uint64(a.offset).uint32(a.count);
  },
};

export function encodeArgs<K extends ProcNum>(proc: K, args: ArgsByProc[K]): Buffer {
  const w = new XdrWriter();
  argEncoders[proc](w, args);
  return w.toBuffer();
}

// ------------------------------------------------------------------ result decoders

/** Copies so decoded values don't alias the receive buffer (and compare cleanly). */
const bytes = (r: XdrReader, max = 0xffff_ffff): Buffer => Buffer.from(r.opaque(max));
const rTime = (r: XdrReader): NfsTime3 => ({ seconds: r.uint32(), nseconds: r.uint32() });

export function decFattr(r: XdrReader): Fattr3 {
  return {
    type: r.uint32() as Ftype3Code,
    mode: r.uint32(),
    nlink: r.uint32(),
    uid: r.uint32(),
    gid: r.uint32(),
    size: r.uint64(),
    used: r.uint64(),
    rdev: { specdata1: r.uint32(), specdata2: r.uint32() },
    fsid: r.uint64(),
    fileid: r.uint64(),
    atime: rTime(r),
    mtime: rTime(r),
    ctime: rTime(r),
  };
}

/** Builds an object leaving out keys whose value is undefined (absent optional data). */
function obj<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

const postOp = (r: XdrReader): Fattr3 | undefined => r.optional(decFattr);
const wccAttr = (r: XdrReader): WccAttr => ({ size: r.uint64(), mtime: rTime(r), ctime: rTime(r) });
const wcc = (r: XdrReader): WccData => obj({ before: r.optional(wccAttr), after: postOp(r) });
const postOpFh = (r: XdrReader): Buffer | undefined => r.optional((x) => bytes(x, 64));
const errStatus = (s: number): Nfs3ErrorCode => s as Nfs3ErrorCode;

function createRes(r: XdrReader): CreateResult {
  const s = r.uint32();
  if (s === 0) return obj({ status: 0 as const, obj: postOpFh(r), objAttributes: postOp(r), dirWcc: wcc(r) });
  return { status: errStatus(s), dirWcc: wcc(r) };
}

function attrOnlyFail(r: XdrReader, s: number, key: string): { status: Nfs3ErrorCode } {
  return obj({ status: errStatus(s), [key]: postOp(r) });
}

export const resultDecoders: { [K in ProcNum]: (r: XdrReader) => ResultsByProc[K] } = {
  [P.GETATTR]: (r) => {
    const s = r.uint32();
    return s === 0 ? { status: 0, objAttributes: decFattr(r) } : { status: errStatus(s) };
  },
  [P.SETATTR]: (r) => ({ status: r.uint32() as 0, objWcc: wcc(r) }),
  [P.LOOKUP]: (r) => {
    const s = r.uint32();
    if (s === 0) return obj({ status: 0 as const, object: bytes(r, 64), objAttributes: postOp(r), dirAttributes: postOp(r) });
    return attrOnlyFail(r, s, "dirAttributes");
  },
  [P.ACCESS]: (r) => {
    const s = r.uint32();
    if (s !== 0) return attrOnlyFail(r, s, "objAttributes");
    return obj({ status: 0 as const, objAttributes: postOp(r), access: r.uint32() });
  },
  [P.READLINK]: (r) => {
    const s = r.uint32();
    if (s !== 0) return attrOnlyFail(r, s, "symlinkAttributes");
    return obj({ status: 0 as const, symlinkAttributes: postOp(r), data: bytes(r) });
  },
  [P.READ]: (r) => {
    const s = r.uint32();
    if (s !== 0) return attrOnlyFail(r, s, "fileAttributes");
    const fileAttributes = postOp(r);
    const count = r.uint32();
    const eof = r.bool();
    const data = bytes(r);
    if (data.length !== count) throw new Error(`READ count ${count} but ${data.length} data bytes`);
    return obj({ status: 0 as const, fileAttributes, eof, data });
  },
  [P.WRITE]: (r) => {
    const s = r.uint32();
    const fileWcc = wcc(r);
    if (s !== 0) return { status: errStatus(s), fileWcc };
    return { status: 0, fileWcc, count: r.uint32(), committed: r.uint32() as StableHowCode, verf: Buffer.from(r.opaqueFixed(8)) };
  },
  [P.CREATE]: createRes,
  [P.MKDIR]: createRes,
  [P.SYMLINK]: createRes,
  [P.MKNOD]: createRes,
  [P.REMOVE]: (r) => ({ status: r.uint32() as 0, dirWcc: wcc(r) }),
  [P.RMDIR]: (r) => ({ status: r.uint32() as 0, dirWcc: wcc(r) }),
  [P.RENAME]: (r) => ({ status: r.uint32() as 0, fromdirWcc: wcc(r), todirWcc: wcc(r) }),
  [P.LINK]: (r) => obj({ status: r.uint32() as 0, fileAttributes: postOp(r), linkdirWcc: wcc(r) }),
  [P.READDIR]: (r) => {
    const s = r.uint32();
    if (s !== 0) return attrOnlyFail(r, s, "dirAttributes");
    const dirAttributes = postOp(r);
    const cookieverf = Buffer.from(r.opaqueFixed(8));
    const entries: Entry3[] = [];
    while (r.bool()) entries.push({ fileid: r.uint64(), name: bytes(r), cookie: r.uint64() });
    return obj({ status: 0 as const, dirAttributes, cookieverf, entries, eof: r.bool() });
  },
  [P.READDIRPLUS]: (r) => {
    const s = r.uint32();
    if (s !== 0) return attrOnlyFail(r, s, "dirAttributes");
    const dirAttributes = postOp(r);
    const cookieverf = Buffer.from(r.opaqueFixed(8));
    const entries: Entryplus3[] = [];
    while (r.bool()) {
      entries.push(obj({ fileid: r.uint64(), name: bytes(r), cookie: r.uint64(), nameAttributes: postOp(r), nameHandle: postOpFh(r) }));
    }
    return obj({ status: 0 as const, dirAttributes, cookieverf, entries, eof: r.bool() });
  },
  [P.FSSTAT]: (r) => {
    const s = r.uint32();
    if (s !== 0) return attrOnlyFail(r, s, "objAttributes");
    return obj({
      status: 0 as const,
      objAttributes: postOp(r),
      tbytes: r.uint64(),
      fbytes: r.uint64(),
      abytes: r.uint64(),
      tfiles: r.uint64(),
      ffiles: r.uint64(),
      afiles: r.uint64(),
      invarsec: r.uint32(),
    });
  },
  [P.FSINFO]: (r) => {
    const s = r.uint32();
    if (s !== 0) return attrOnlyFail(r, s, "objAttributes");
    return obj({
      status: 0 as const,
      objAttributes: postOp(r),
      rtmax: r.uint32(),
      rtpref: r.uint32(),
      rtmult: r.uint32(),
      wtmax: r.uint32(),
      wtpref: r.uint32(),
      wtmult: r.uint32(),
      dtpref: r.uint32(),
      maxfilesize: r.uint64(),
      timeDelta: rTime(r),
      properties: r.uint32(),
    });
  },
  [P.PATHCONF]: (r) => {
    const s = r.uint32();
    if (s !== 0) return attrOnlyFail(r, s, "objAttributes");
    return obj({
      status: 0 as const,
      objAttributes: postOp(r),
      linkmax: r.uint32(),
      nameMax: r.uint32(),
      noTrunc: r.bool(),
      chownRestricted: r.bool(),
      caseInsensitive: r.bool(),
      casePreserving: r.bool(),
    });
  },
  [P.COMMIT]: (r) => {
    const s = r.uint32();
    const fileWcc = wcc(r);
    if (s !== 0) return { status: errStatus(s), fileWcc };
    return { status: 0, fileWcc, verf: Buffer.from(r.opaqueFixed(8)) };
  },
};

/** Decodes a result body and checks it was consumed exactly. */
export function decodeResult<K extends ProcNum>(proc: K, body: Buffer | XdrReader): ResultsByProc[K] {
  const r = body instanceof XdrReader ? body : new XdrReader(body);
  const res = resultDecoders[proc](r);
  r.expectEnd(`result of proc ${proc}`);
  return res;
}
