/**
 * NFS version 3 (RFC 1813) protocol types: constants, typed procedure arguments and results,
 * and the Nfs3Handler interface the file system implements.
 *
 * Conventions:
 * - File handles (nfs_fh3), names (filename3), symlink targets (nfspath3) and verifiers are
 *   raw Buffers. Buffers in arguments are views of the received record: copy them if you keep
 *   them beyond the call (WRITE data in particular).
 * - uint64 fields (sizes, offsets, fileids, cookies) are bigint; uint32 fields are number.
 *   Results' attribute and entry fields are `Uint64` instead: the server fills them with plain
 *   numbers (every value it holds is a safe integer), and a READDIRPLUS page of 50 entries
 *   made 200 BigInts only for the encoder to turn them back into numbers.
 * - Optional XDR data (post_op_attr, pre_op_attr, post_op_fh3, sattr3 set_* fields) is an
 *   optional property: absent means "not present" on the wire.
 * - Results are discriminated by `status`: NFS3_OK carries the resok fields, any error status
 *   the resfail fields.
 */
import type { RpcCredentials } from "./rpc.ts";

/** A uint64 in a result: a bigint, or a number when it is a safe integer (the encoder takes both). */
export type Uint64 = bigint | number;

export const NFS_PROGRAM = 100003;
export const NFS_V3 = 3;

export const Nfs3Proc = {
  NULL: 0,
  GETATTR: 1,
  SETATTR: 2,
  LOOKUP: 3,
  ACCESS: 4,
  READLINK: 5,
  READ: 6,
  WRITE: 7,
  CREATE: 8,
  MKDIR: 9,
  SYMLINK: 10,
  MKNOD: 11,
  REMOVE: 12,
  RMDIR: 13,
  RENAME: 14,
  LINK: 15,
  READDIR: 16,
  READDIRPLUS: 17,
  FSSTAT: 18,
  FSINFO: 19,
  PATHCONF: 20,
  COMMIT: 21,
} as const;
export type Nfs3ProcNumber = (typeof Nfs3Proc)[keyof typeof Nfs3Proc];

export const Nfs3Status = {
  NFS3_OK: 0,
  NFS3ERR_PERM: 1,
  NFS3ERR_NOENT: 2,
  NFS3ERR_IO: 5,
  NFS3ERR_NXIO: 6,
  NFS3ERR_ACCES: 13,
  NFS3ERR_EXIST: 17,
  NFS3ERR_XDEV: 18,
  NFS3ERR_NODEV: 19,
  NFS3ERR_NOTDIR: 20,
  NFS3ERR_ISDIR: 21,
  NFS3ERR_INVAL: 22,
  NFS3ERR_FBIG: 27,
  NFS3ERR_NOSPC: 28,
  NFS3ERR_ROFS: 30,
  NFS3ERR_MLINK: 31,
  NFS3ERR_NAMETOOLONG: 63,
  NFS3ERR_NOTEMPTY: 66,
  NFS3ERR_DQUOT: 69,
  NFS3ERR_STALE: 70,
  NFS3ERR_REMOTE: 71,
  NFS3ERR_BADHANDLE: 10001,
  NFS3ERR_NOT_SYNC: 10002,
  NFS3ERR_BAD_COOKIE: 10003,
  NFS3ERR_NOTSUPP: 10004,
  NFS3ERR_TOOSMALL: 10005,
  NFS3ERR_SERVERFAULT: 10006,
  NFS3ERR_BADTYPE: 10007,
  NFS3ERR_JUKEBOX: 10008,
} as const;
export type Nfs3StatusCode = (typeof Nfs3Status)[keyof typeof Nfs3Status];
export type Nfs3ErrorCode = Exclude<Nfs3StatusCode, typeof Nfs3Status.NFS3_OK>;
const STATUS_VALUES = new Set<number>(Object.values(Nfs3Status));
export function isNfs3Status(v: number): v is Nfs3StatusCode {
  return STATUS_VALUES.has(v);
}

export const Ftype3 = { NF3REG: 1, NF3DIR: 2, NF3BLK: 3, NF3CHR: 4, NF3LNK: 5, NF3SOCK: 6, NF3FIFO: 7 } as const;
export type Ftype3Code = (typeof Ftype3)[keyof typeof Ftype3];

export const Access3 = { READ: 0x01, LOOKUP: 0x02, MODIFY: 0x04, EXTEND: 0x08, DELETE: 0x10, EXECUTE: 0x20 } as const;

export const StableHow = { UNSTABLE: 0, DATA_SYNC: 1, FILE_SYNC: 2 } as const;
export type StableHowCode = (typeof StableHow)[keyof typeof StableHow];

export const CreateMode = { UNCHECKED: 0, GUARDED: 1, EXCLUSIVE: 2 } as const;

export const TimeHow = { DONT_CHANGE: 0, SET_TO_SERVER_TIME: 1, SET_TO_CLIENT_TIME: 2 } as const;

/** FSINFO properties bits. */
export const Fsf3 = { LINK: 0x0001, SYMLINK: 0x0002, HOMOGENEOUS: 0x0008, CANSETTIME: 0x0010 } as const;

export const NFS3_FHSIZE = 64;
export const NFS3_COOKIEVERFSIZE = 8;
export const NFS3_CREATEVERFSIZE = 8;
export const NFS3_WRITEVERFSIZE = 8;
/** The fs layer enforces this (NFS3ERR_NAMETOOLONG); the decoder only rejects absurd lengths. */
export const NFS3_MAXNAMLEN = 255;
/** The fs layer enforces this for symlink targets. */
export const NFS3_MAXPATHLEN = 4096;

/** Credentials of the caller (AUTH_NONE callers appear as uid/gid 65534). */
export type Nfs3Credentials = RpcCredentials;

export interface NfsTime3 {
  seconds: number;
  nseconds: number;
}

export interface Specdata3 {
  specdata1: number;
  specdata2: number;
}

export interface Fattr3 {
  type: Ftype3Code;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: Uint64;
  used: Uint64;
  rdev: Specdata3;
  fsid: Uint64;
  fileid: Uint64;
  atime: NfsTime3;
  mtime: NfsTime3;
  ctime: NfsTime3;
}

export interface WccAttr {
  size: Uint64;
  mtime: NfsTime3;
  ctime: NfsTime3;
}

/** Weak cache consistency: attributes before (pre_op_attr) and after (post_op_attr). */
export interface WccData {
  before?: WccAttr;
  after?: Fattr3;
}

export type SetTime3 =
  | { how: typeof TimeHow.DONT_CHANGE }
  | { how: typeof TimeHow.SET_TO_SERVER_TIME }
  | { how: typeof TimeHow.SET_TO_CLIENT_TIME; time: NfsTime3 };

/** Attributes to set: an absent field means "don't change". */
export interface Sattr3 {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: bigint;
  atime: SetTime3;
  mtime: SetTime3;
}

export interface DirOpArgs3 {
  dir: Buffer;
  name: Buffer;
}

type NoFields = Record<never, never>;
/** A procedure result: resok fields with NFS3_OK, resfail fields with an error status. */
export type Nfs3Result<Ok, Fail = NoFields> =
  | ({ status: typeof Nfs3Status.NFS3_OK } & Ok)
  | ({ status: Nfs3ErrorCode } & Fail);

// --- GETATTR (1)
export interface GetattrArgs {
  object: Buffer;
}
export type GetattrResult = Nfs3Result<{ objAttributes: Fattr3 }>;

// --- SETATTR (2)
export interface SetattrArgs {
  object: Buffer;
  newAttributes: Sattr3;
  /** sattrguard3: when present, apply only if the object's ctime equals this (else NOT_SYNC). */
  guard?: NfsTime3;
}
export type SetattrResult = Nfs3Result<{ objWcc: WccData }, { objWcc: WccData }>;

// --- LOOKUP (3)
export interface LookupArgs {
  what: DirOpArgs3;
}
export type LookupResult = Nfs3Result<
  { object: Buffer; objAttributes?: Fattr3; dirAttributes?: Fattr3 },
  { dirAttributes?: Fattr3 }
>;

// --- ACCESS (4)
export interface AccessArgs {
  object: Buffer;
  /** Access3 bits requested. */
  access: number;
}
export type AccessResult = Nfs3Result<{ objAttributes?: Fattr3; access: number }, { objAttributes?: Fattr3 }>;

// --- READLINK (5)
export interface ReadlinkArgs {
  symlink: Buffer;
}
export type ReadlinkResult = Nfs3Result<{ symlinkAttributes?: Fattr3; data: Buffer }, { symlinkAttributes?: Fattr3 }>;

// --- READ (6)
export interface ReadArgs {
  file: Buffer;
  offset: bigint;
  count: number;
}
/** The wire `count` is data.length. `data` is sent by reference (zero copy): don't reuse it. */
export type ReadResult = Nfs3Result<{ fileAttributes?: Fattr3; eof: boolean; data: Buffer }, { fileAttributes?: Fattr3 }>;
/** What a handler answers to READ: `data` may come in pieces (sent with writev as they are). */
export type ReadReply = Nfs3Result<{ fileAttributes?: Fattr3; eof: boolean; data: Buffer | readonly Buffer[] }, { fileAttributes?: Fattr3 }>;

// --- WRITE (7)
export interface WriteArgs {
  file: Buffer;
  offset: bigint;
  /** Equals data.length (checked by the decoder). */
  count: number;
  stable: StableHowCode;
  /** A view of the request record: copy before keeping it past the call. */
  data: Buffer;
}
export type WriteResult = Nfs3Result<
  { fileWcc: WccData; count: number; committed: StableHowCode; verf: Buffer },
  { fileWcc: WccData }
>;

// --- CREATE (8)
export type CreateHow3 =
  | { mode: typeof CreateMode.UNCHECKED | typeof CreateMode.GUARDED; attributes: Sattr3 }
  | { mode: typeof CreateMode.EXCLUSIVE; verf: Buffer };
export interface CreateArgs {
  where: DirOpArgs3;
  how: CreateHow3;
}
/** Result of CREATE, MKDIR, SYMLINK and MKNOD. */
export type CreateResult = Nfs3Result<{ obj?: Buffer; objAttributes?: Fattr3; dirWcc: WccData }, { dirWcc: WccData }>;

// --- MKDIR (9)
export interface MkdirArgs {
  where: DirOpArgs3;
  attributes: Sattr3;
}
export type MkdirResult = CreateResult;

// --- SYMLINK (10)
export interface SymlinkArgs {
  where: DirOpArgs3;
  symlinkAttributes: Sattr3;
  symlinkData: Buffer;
}
export type SymlinkResult = CreateResult;

// --- MKNOD (11)
export type MknodData3 =
  | { type: typeof Ftype3.NF3CHR | typeof Ftype3.NF3BLK; attributes: Sattr3; spec: Specdata3 }
  | { type: typeof Ftype3.NF3SOCK | typeof Ftype3.NF3FIFO; attributes: Sattr3 }
  | { type: typeof Ftype3.NF3REG | typeof Ftype3.NF3DIR | typeof Ftype3.NF3LNK };
export interface MknodArgs {
  where: DirOpArgs3;
  what: MknodData3;
}
export type MknodResult = CreateResult;

// --- REMOVE (12), RMDIR (13)
export interface RemoveArgs {
  object: DirOpArgs3;
}
export type RemoveResult = Nfs3Result<{ dirWcc: WccData }, { dirWcc: WccData }>;
export type RmdirArgs = RemoveArgs;
export type RmdirResult = RemoveResult;

// --- RENAME (14)
export interface RenameArgs {
  from: DirOpArgs3;
  to: DirOpArgs3;
}
export type RenameResult = Nfs3Result<{ fromdirWcc: WccData; todirWcc: WccData }, { fromdirWcc: WccData; todirWcc: WccData }>;

// --- LINK (15)
export interface LinkArgs {
  file: Buffer;
  link: DirOpArgs3;
}
export type LinkResult = Nfs3Result<{ fileAttributes?: Fattr3; linkdirWcc: WccData }, { fileAttributes?: Fattr3; linkdirWcc: WccData }>;

// --- READDIR (16)
export interface ReaddirArgs {
  dir: Buffer;
  cookie: bigint;
  cookieverf: Buffer;
  /** Byte limit of the reply (see FORMAT.md). */
  count: number;
}
export interface Entry3 {
  fileid: Uint64;
  name: Buffer;
  cookie: Uint64;
}
/**
 * The handler may return more entries than fit: the encoder keeps the longest prefix within
 * the byte limit and sends eof only if every entry fit and `eof` was true (NFS3ERR_TOOSMALL if
 * not even the first entry fits).
 */
export type ReaddirResult = Nfs3Result<
  { dirAttributes?: Fattr3; cookieverf: Buffer; entries: Entry3[]; eof: boolean },
  { dirAttributes?: Fattr3 }
>;

// --- READDIRPLUS (17)
export interface ReaddirplusArgs {
  dir: Buffer;
  cookie: bigint;
  cookieverf: Buffer;
  dircount: number;
  maxcount: number;
}
export interface Entryplus3 {
  fileid: Uint64;
  name: Buffer;
  cookie: Uint64;
  nameAttributes?: Fattr3;
  nameHandle?: Buffer;
}
/** Same truncation rule as READDIR, with both dircount and maxcount. */
export type ReaddirplusResult = Nfs3Result<
  { dirAttributes?: Fattr3; cookieverf: Buffer; entries: Entryplus3[]; eof: boolean },
  { dirAttributes?: Fattr3 }
>;

// --- FSSTAT (18)
export interface FsstatArgs {
  fsroot: Buffer;
}
export type FsstatResult = Nfs3Result<
  {
    objAttributes?: Fattr3;
    tbytes: bigint;
    fbytes: bigint;
    abytes: bigint;
    tfiles: bigint;
    ffiles: bigint;
    afiles: bigint;
    invarsec: number;
  },
  { objAttributes?: Fattr3 }
>;

// --- FSINFO (19)
export interface FsinfoArgs {
  fsroot: Buffer;
}
export type FsinfoResult = Nfs3Result<
  {
    objAttributes?: Fattr3;
    rtmax: number;
    rtpref: number;
    rtmult: number;
    wtmax: number;
    wtpref: number;
    wtmult: number;
    dtpref: number;
    maxfilesize: bigint;
    timeDelta: NfsTime3;
    /** Fsf3 bits. */
    properties: number;
  },
  { objAttributes?: Fattr3 }
>;

// --- PATHCONF (20)
export interface PathconfArgs {
  object: Buffer;
}
export type PathconfResult = Nfs3Result<
  {
    objAttributes?: Fattr3;
    linkmax: number;
    nameMax: number;
    noTrunc: boolean;
    chownRestricted: boolean;
    caseInsensitive: boolean;
    casePreserving: boolean;
  },
  { objAttributes?: Fattr3 }
>;

// --- COMMIT (21)
export interface CommitArgs {
  file: Buffer;
  offset: bigint;
  count: number;
}
export type CommitResult = Nfs3Result<{ fileWcc: WccData; verf: Buffer }, { fileWcc: WccData }>;

/**
 * The file system side of NFSv3. NULL is answered by the dispatcher. Return error statuses as
 * results; a thrown exception becomes an RPC SYSTEM_ERR (logged), which clients treat as a
 * server failure, so reserve it for bugs. NFS3ERR_JUKEBOX asks the client to retry later.
 */
export interface Nfs3Handler {
  getattr(creds: Nfs3Credentials, args: GetattrArgs): Promise<GetattrResult>;
  setattr(creds: Nfs3Credentials, args: SetattrArgs): Promise<SetattrResult>;
  lookup(creds: Nfs3Credentials, args: LookupArgs): Promise<LookupResult>;
  access(creds: Nfs3Credentials, args: AccessArgs): Promise<AccessResult>;
  readlink(creds: Nfs3Credentials, args: ReadlinkArgs): Promise<ReadlinkResult>;
  read(creds: Nfs3Credentials, args: ReadArgs): Promise<ReadReply>;
  write(creds: Nfs3Credentials, args: WriteArgs): Promise<WriteResult>;
  create(creds: Nfs3Credentials, args: CreateArgs): Promise<CreateResult>;
  mkdir(creds: Nfs3Credentials, args: MkdirArgs): Promise<MkdirResult>;
  symlink(creds: Nfs3Credentials, args: SymlinkArgs): Promise<SymlinkResult>;
  mknod(creds: Nfs3Credentials, args: MknodArgs): Promise<MknodResult>;
  remove(creds: Nfs3Credentials, args: RemoveArgs): Promise<RemoveResult>;
  rmdir(creds: Nfs3Credentials, args: RmdirArgs): Promise<RmdirResult>;
  rename(creds: Nfs3Credentials, args: RenameArgs): Promise<RenameResult>;
  link(creds: Nfs3Credentials, args: LinkArgs): Promise<LinkResult>;
  readdir(creds: Nfs3Credentials, args: ReaddirArgs): Promise<ReaddirResult>;
  readdirplus(creds: Nfs3Credentials, args: ReaddirplusArgs): Promise<ReaddirplusResult>;
  fsstat(creds: Nfs3Credentials, args: FsstatArgs): Promise<FsstatResult>;
  fsinfo(creds: Nfs3Credentials, args: FsinfoArgs): Promise<FsinfoResult>;
  pathconf(creds: Nfs3Credentials, args: PathconfArgs): Promise<PathconfResult>;
  commit(creds: Nfs3Credentials, args: CommitArgs): Promise<CommitResult>;
}
