/** Sample NFSv3 arguments and results for every procedure (codec and fuzz tests). */
import { CreateMode, Ftype3, Nfs3Proc as P, Nfs3Status, StableHow, TimeHow, type Sattr3 } from "../../src/nfs/nfs3-types.ts";
import type { ArgsByProc, ProcNum, ResultsByProc } from "../../../test/support/nfs/nfs3-client-codec.ts";
import { COOKIE_VERF, WRITE_VERF, fattr } from "./stub-handler.ts";

export const FH = Buffer.from("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); // 64 bytes
export const FH2 = Buffer.from("fh-2");
export const NAME = Buffer.from([0x66, 0x6f, 0xff, 0x00, 0x6f]); // names are bytes, not UTF-8
export const where = { dir: FH, name: NAME };
export const fullSattr: Sattr3 = {
  mode: 0o4755,
  uid: 0,
  gid: 4_000_000_000,
  size: (1n << 64n) - 1n,
  atime: { how: TimeHow.SET_TO_CLIENT_TIME, time: { seconds: 1, nseconds: 999_999_999 } },
  mtime: { how: TimeHow.SET_TO_SERVER_TIME },
};
export const emptySattr: Sattr3 = { atime: { how: TimeHow.DONT_CHANGE }, mtime: { how: TimeHow.DONT_CHANGE } };

export const ARGS: { [K in ProcNum]: ArgsByProc[K][] } = {
  [P.GETATTR]: [{ object: FH }, { object: Buffer.alloc(0) }],
  [P.SETATTR]: [
    { object: FH, newAttributes: fullSattr },
    { object: FH2, newAttributes: emptySattr, guard: { seconds: 12, nseconds: 34 } },
  ],
  [P.LOOKUP]: [{ what: where }],
  [P.ACCESS]: [{ object: FH, access: 0x3f }],
  [P.READLINK]: [{ symlink: FH2 }],
  [P.READ]: [{ file: FH, offset: (1n << 63n) + 5n, count: 1 << 20 }],
  [P.WRITE]: [
    { file: FH, offset: 0n, count: 5, stable: StableHow.UNSTABLE, data: Buffer.from("hello") },
    { file: FH2, offset: 1n << 40n, count: 0, stable: StableHow.FILE_SYNC, data: Buffer.alloc(0) },
  ],
  [P.CREATE]: [
    { where, how: { mode: CreateMode.UNCHECKED, attributes: fullSattr } },
    { where, how: { mode: CreateMode.GUARDED, attributes: emptySattr } },
    { where, how: { mode: CreateMode.EXCLUSIVE, verf: Buffer.from("createvf") } },
  ],
  [P.MKDIR]: [{ where, attributes: { ...emptySattr, mode: 0o700 } }],
  [P.SYMLINK]: [{ where, symlinkAttributes: emptySattr, symlinkData: Buffer.from("../a/b") }],
  [P.MKNOD]: [
    { where, what: { type: Ftype3.NF3CHR, attributes: fullSattr, spec: { specdata1: 1, specdata2: 3 } } },
    { where, what: { type: Ftype3.NF3FIFO, attributes: emptySattr } },
    { where, what: { type: Ftype3.NF3REG } },
  ],
  [P.REMOVE]: [{ object: where }],
  [P.RMDIR]: [{ object: where }],
  [P.RENAME]: [{ from: where, to: { dir: FH2, name: Buffer.from("new") } }],
  [P.LINK]: [{ file: FH2, link: where }],
  [P.READDIR]: [{ dir: FH, cookie: 0n, cookieverf: Buffer.alloc(8), count: 4096 }],
  [P.READDIRPLUS]: [{ dir: FH, cookie: 77n, cookieverf: COOKIE_VERF, dircount: 1024, maxcount: 32768 }],
  [P.FSSTAT]: [{ fsroot: FH }],
  [P.FSINFO]: [{ fsroot: FH }],
  [P.PATHCONF]: [{ object: FH }],
  [P.COMMIT]: [{ file: FH, offset: 0n, count: 0 }],
};

export const wcc = { before: { size: 1n, mtime: { seconds: 2, nseconds: 3 }, ctime: { seconds: 4, nseconds: 5 } }, after: fattr(9n) };
const E = Nfs3Status;

export const RESULTS: { [K in ProcNum]: ResultsByProc[K][] } = {
  [P.GETATTR]: [{ status: E.NFS3_OK, objAttributes: fattr(2n, Ftype3.NF3DIR) }, { status: E.NFS3ERR_STALE }],
  [P.SETATTR]: [{ status: E.NFS3_OK, objWcc: wcc }, { status: E.NFS3ERR_NOT_SYNC, objWcc: {} }],
  [P.LOOKUP]: [
    { status: E.NFS3_OK, object: FH, objAttributes: fattr(3n), dirAttributes: fattr(2n) },
    { status: E.NFS3_OK, object: FH2 },
    { status: E.NFS3ERR_NOENT, dirAttributes: fattr(2n) },
    { status: E.NFS3ERR_NOENT },
  ],
  [P.ACCESS]: [{ status: E.NFS3_OK, objAttributes: fattr(3n), access: 0x21 }, { status: E.NFS3_OK, access: 0 }, { status: E.NFS3ERR_ACCES }],
  [P.READLINK]: [{ status: E.NFS3_OK, symlinkAttributes: fattr(5n, Ftype3.NF3LNK), data: Buffer.from("/x/y") }, { status: E.NFS3ERR_INVAL, symlinkAttributes: fattr(5n) }],
  [P.READ]: [
    { status: E.NFS3_OK, fileAttributes: fattr(3n), eof: false, data: Buffer.alloc(70_000, 7) },
    { status: E.NFS3_OK, eof: true, data: Buffer.alloc(0) },
    { status: E.NFS3ERR_IO },
  ],
  [P.WRITE]: [
    { status: E.NFS3_OK, fileWcc: wcc, count: 5, committed: StableHow.DATA_SYNC, verf: WRITE_VERF },
    { status: E.NFS3ERR_NOSPC, fileWcc: { after: fattr(3n) } },
  ],
  [P.CREATE]: [
    { status: E.NFS3_OK, obj: FH, objAttributes: fattr(4n), dirWcc: wcc },
    { status: E.NFS3_OK, dirWcc: {} },
    { status: E.NFS3ERR_EXIST, dirWcc: wcc },
  ],
  [P.MKDIR]: [{ status: E.NFS3_OK, obj: FH2, dirWcc: wcc }],
  [P.SYMLINK]: [{ status: E.NFS3ERR_NAMETOOLONG, dirWcc: {} }],
  [P.MKNOD]: [{ status: E.NFS3ERR_BADTYPE, dirWcc: wcc }],
  [P.REMOVE]: [{ status: E.NFS3_OK, dirWcc: wcc }, { status: E.NFS3ERR_NOENT, dirWcc: {} }],
  [P.RMDIR]: [{ status: E.NFS3ERR_NOTEMPTY, dirWcc: wcc }],
  [P.RENAME]: [{ status: E.NFS3_OK, fromdirWcc: wcc, todirWcc: {} }, { status: E.NFS3ERR_XDEV, fromdirWcc: {}, todirWcc: wcc }],
  [P.LINK]: [{ status: E.NFS3_OK, fileAttributes: fattr(3n), linkdirWcc: wcc }, { status: E.NFS3ERR_MLINK, linkdirWcc: {} }],
  [P.READDIR]: [
    {
      status: E.NFS3_OK,
      dirAttributes: fattr(2n, Ftype3.NF3DIR),
      cookieverf: COOKIE_VERF,
      entries: [
        { fileid: 2n, name: Buffer.from("."), cookie: 1n },
        { fileid: 3n, name: NAME, cookie: 2n },
      ],
      eof: true,
    },
    { status: E.NFS3_OK, cookieverf: COOKIE_VERF, entries: [], eof: false },
    { status: E.NFS3ERR_BAD_COOKIE },
  ],
  [P.READDIRPLUS]: [
    {
      status: E.NFS3_OK,
      dirAttributes: fattr(2n, Ftype3.NF3DIR),
      cookieverf: COOKIE_VERF,
      entries: [
        { fileid: 3n, name: NAME, cookie: 2n, nameAttributes: fattr(3n), nameHandle: FH },
        { fileid: 4n, name: Buffer.from("b"), cookie: 3n },
      ],
      eof: true,
    },
    { status: E.NFS3ERR_NOTDIR, dirAttributes: fattr(3n) },
  ],
  [P.FSSTAT]: [
    { status: E.NFS3_OK, objAttributes: fattr(2n), tbytes: 1n, fbytes: 2n, abytes: 3n, tfiles: 4n, ffiles: 5n, afiles: 6n, invarsec: 7 },
    { status: E.NFS3ERR_SERVERFAULT },
  ],
  [P.FSINFO]: [
    {
      status: E.NFS3_OK,
      rtmax: 1,
      rtpref: 2,
      rtmult: 3,
      wtmax: 4,
      wtpref: 5,
      wtmult: 6,
      dtpref: 7,
      maxfilesize: 8n,
      timeDelta: { seconds: 0, nseconds: 1000 },
      properties: 0x1b,
    },
  ],
  [P.PATHCONF]: [{ status: E.NFS3_OK, objAttributes: fattr(2n), linkmax: 1, nameMax: 255, noTrunc: true, chownRestricted: false, caseInsensitive: false, casePreserving: true }],
  [P.COMMIT]: [{ status: E.NFS3_OK, fileWcc: wcc, verf: WRITE_VERF }, { status: E.NFS3ERR_IO, fileWcc: {} }],
};

