/** Fixed, valid NFSv3 results for every procedure (server and fuzz tests). */
import { Ftype3, Nfs3Status, StableHow, type Fattr3, type Ftype3Code, type Nfs3Handler, type WccData } from "../../src/nfs/nfs3-types.ts";

export const ROOT_FH = Buffer.from("zerofs-root-fh-0001", "utf8");
export const WRITE_VERF = Buffer.from("verf0001", "utf8");
export const COOKIE_VERF = Buffer.from("cookie01", "utf8");

export function fattr(fileid: bigint, type: Ftype3Code = Ftype3.NF3REG): Fattr3 {
  return {
    type,
    mode: type === Ftype3.NF3DIR ? 0o755 : 0o644,
    nlink: 1,
    uid: 1000,
    gid: 1000,
    size: 4096n + fileid,
    used: 8192n,
    rdev: { specdata1: 0, specdata2: 0 },
    fsid: 42n,
    fileid,
    atime: { seconds: 1_700_000_000, nseconds: 1 },
    mtime: { seconds: 1_700_000_001, nseconds: 2 },
    ctime: { seconds: 1_700_000_002, nseconds: 3 },
  };
}

const WCC: WccData = {
  before: { size: 10n, mtime: { seconds: 5, nseconds: 6 }, ctime: { seconds: 7, nseconds: 8 } },
  after: fattr(2n, Ftype3.NF3DIR),
};

export function stubHandler(overrides: Partial<Nfs3Handler> = {}): Nfs3Handler {
  const OK = Nfs3Status.NFS3_OK;
  const base: Nfs3Handler = {
    getattr: async () => ({ status: OK, objAttributes: fattr(2n, Ftype3.NF3DIR) }),
    setattr: async () => ({ status: OK, objWcc: WCC }),
    lookup: async () => ({ status: OK, object: Buffer.from("child-fh"), objAttributes: fattr(3n), dirAttributes: fattr(2n, Ftype3.NF3DIR) }),
    access: async (_c, a) => ({ status: OK, objAttributes: fattr(2n), access: a.access }),
    readlink: async () => ({ status: OK, data: Buffer.from("/target") }),
    read: async (_c, a) => ({ status: OK, fileAttributes: fattr(3n), eof: true, data: Buffer.alloc(Math.min(a.count, 64 * 1024), 0x61) }),
    write: async (_c, a) => ({ status: OK, fileWcc: WCC, count: a.count, committed: StableHow.FILE_SYNC, verf: WRITE_VERF }),
    create: async () => ({ status: OK, obj: Buffer.from("new-fh"), objAttributes: fattr(4n), dirWcc: WCC }),
    mkdir: async () => ({ status: OK, obj: Buffer.from("new-dir-fh"), objAttributes: fattr(5n, Ftype3.NF3DIR), dirWcc: WCC }),
    symlink: async () => ({ status: OK, obj: Buffer.from("new-link-fh"), dirWcc: WCC }),
    mknod: async () => ({ status: Nfs3Status.NFS3ERR_NOTSUPP, dirWcc: WCC }),
    remove: async () => ({ status: OK, dirWcc: WCC }),
    rmdir: async () => ({ status: Nfs3Status.NFS3ERR_NOTEMPTY, dirWcc: WCC }),
    rename: async () => ({ status: OK, fromdirWcc: WCC, todirWcc: {} }),
    link: async () => ({ status: OK, fileAttributes: fattr(3n), linkdirWcc: WCC }),
    readdir: async () => ({
      status: OK,
      cookieverf: COOKIE_VERF,
      entries: [
        { fileid: 2n, name: Buffer.from("."), cookie: 1n },
        { fileid: 1n, name: Buffer.from(".."), cookie: 2n },
        { fileid: 3n, name: Buffer.from("file"), cookie: 3n },
      ],
      eof: true,
    }),
    readdirplus: async () => ({
      status: OK,
      dirAttributes: fattr(2n, Ftype3.NF3DIR),
      cookieverf: COOKIE_VERF,
      entries: [
        { fileid: 3n, name: Buffer.from("file"), cookie: 3n, nameAttributes: fattr(3n), nameHandle: Buffer.from("child-fh") },
        { fileid: 4n, name: Buffer.from("other"), cookie: 4n },
      ],
      eof: true,
    }),
    fsstat: async () => ({ status: OK, tbytes: 1n << 40n, fbytes: 1n << 39n, abytes: 1n << 39n, tfiles: 1n << 32n, ffiles: 1n << 31n, afiles: 1n << 31n, invarsec: 0 }),
    fsinfo: async () => ({
      status: OK,
      objAttributes: fattr(2n, Ftype3.NF3DIR),
      rtmax: 1 << 20,
      rtpref: 1 << 20,
      rtmult: 4096,
      wtmax: 1 << 20,
      wtpref: 1 << 20,
      wtmult: 4096,
      dtpref: 64 * 1024,
      maxfilesize: (1n << 63n) - 1n,
      timeDelta: { seconds: 0, nseconds: 1 },
      properties: 0x1b,
    }),
    pathconf: async () => ({ status: OK, linkmax: 65535, nameMax: 255, noTrunc: true, chownRestricted: true, caseInsensitive: false, casePreserving: true }),
    commit: async () => ({ status: OK, fileWcc: WCC, verf: WRITE_VERF }),
  };
  return { ...base, ...overrides };
}
