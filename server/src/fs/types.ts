/**
 * Public value types of the filesystem API. Numbering follows NFSv3 where NFSv3 has numbers
 * (ftype3, stable_how, ACCESS3 bits), so the NFS glue passes them through unchanged.
 */

/** File types, numbered as NFSv3 ftype3. */
export const FileType = {
  REG: 1,
  DIR: 2,
  BLK: 3,
  CHR: 4,
  LNK: 5,
  SOCK: 6,
  FIFO: 7,
} as const;
export type FileType = (typeof FileType)[keyof typeof FileType];

export function isFileType(n: number): n is FileType {
  return Number.isInteger(n) && n >= 1 && n <= 7;
}

/** Mode bits (the 12 permission bits; the type lives in `type`). */
export const Mode = {
  SUID: 0o4000,
  SGID: 0o2000,
  STICKY: 0o1000,
  PERMS: 0o7777,
} as const;

/** WRITE stability levels, numbered as NFSv3 stable_how. */
export const StableHow = {
  UNSTABLE: 0,
  DATA_SYNC: 1,
  FILE_SYNC: 2,
} as const;
export type StableHow = (typeof StableHow)[keyof typeof StableHow];

/** A timestamp with nanosecond precision. `sec` may be negative (before 1970). */
export interface Time {
  sec: number;
  nsec: number;
}

export interface Rdev {
  major: number;
  minor: number;
}

/** The caller's identity (AUTH_SYS): effective uid, primary gid, supplementary gids. */
export interface Cred {
  uid: number;
  gid: number;
  gids: readonly number[];
}

export const ROOT: Cred = Object.freeze({ uid: 0, gid: 0, gids: Object.freeze([]) });

/** Attributes of an inode as the API reports them (fattr3 minus fsid, which is per volume). */
export interface Attrs {
  ino: number;
  /** Part of the file handle; lets a handle for a recreated inode id be detected (ids are never reused anyway). */
  generation: number;
  type: FileType;
  /** The 12 permission bits. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** Bytes the file occupies: the apparent size rounded up to 4 KiB, at most 64 KiB per stored chunk (holes of sparse files do not count). */
  used: number;
  rdev: Rdev;
  atime: Time;
  mtime: Time;
  ctime: Time;
}

/** Pre-operation attributes for weak cache consistency (wcc_attr). */
export interface WccAttr {
  size: number;
  mtime: Time;
  ctime: Time;
}

/** Weak cache consistency data (wcc_data): attributes before and after the operation. */
export interface Wcc {
  before?: WccAttr;
  after?: Attrs;
}

/** A time in SETATTR: the server's clock, or a client-supplied time. */
export type TimeSetting = "server" | Time;

/** SETATTR / CREATE attributes (sattr3): absent fields are left alone. */
export interface SetAttrs {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: TimeSetting;
  mtime?: TimeSetting;
}

export type CreateHow =
  | { mode: "unchecked"; attrs?: SetAttrs }
  | { mode: "guarded"; attrs?: SetAttrs }
  /** Exclusive create: an 8-byte verifier that makes a retransmitted CREATE idempotent. */
  | { mode: "exclusive"; verifier: Buffer };

export interface CreateResult {
  attrs: Attrs;
  dirWcc: Wcc;
}

export interface ReadResult {
  data: Buffer;
  eof: boolean;
  attrs: Attrs;
}

export interface ReadvResult {
  /** The bytes read, in order; `length` in all. */
  parts: Buffer[];
  length: number;
  eof: boolean;
  attrs: Attrs;
}

export interface WriteResult {
  count: number;
  committed: StableHow;
  wcc: Wcc;
}

export interface DirEntry {
  ino: number;
  name: Buffer;
  cookie: number;
  /** Present for readdirplus listings when the entry still exists. */
  attrs?: Attrs;
}

export interface ReaddirLimits {
  /**
   * Budget in bytes for the XDR-encoded entries (entry3 or entryplus3, see readdirEntryBytes);
   * the glue subtracts its fixed reply overhead before passing it.
   */
  maxBytes: number;
  /** READDIRPLUS dircount: budget for the directory part (fileid, name, cookie) only. */
  dirBytes?: number;
  /** Hard cap on entries (tests). */
  maxEntries?: number;
  /** Include attributes (READDIRPLUS). */
  plus?: boolean;
}

export interface ReaddirResult {
  entries: DirEntry[];
  eof: boolean;
  /** Cookie verifier (8 bytes) to send back with later cookies. */
  verifier: Buffer;
  dirAttrs: Attrs;
}

export interface FsStat {
  totalBytes: number;
  freeBytes: number;
  availBytes: number;
  totalFiles: number;
  freeFiles: number;
  availFiles: number;
  usedBytes: number;
  files: number;
}

export interface FsInfo {
  rtmax: number;
  rtpref: number;
  rtmult: number;
  wtmax: number;
  wtpref: number;
  wtmult: number;
  dtpref: number;
  maxFileSize: number;
  timeDelta: Time;
  /** FSF3 bits: LINK 1, SYMLINK 2, HOMOGENEOUS 8, CANSETTIME 16. */
  properties: number;
}

export interface PathConf {
  linkMax: number;
  nameMax: number;
  noTrunc: boolean;
  chownRestricted: boolean;
  caseInsensitive: boolean;
  casePreserving: boolean;
}
