/**
 * Filesystem errors. Every failure the fs layer reports on purpose is an FsError whose code maps
 * one-to-one onto an NFSv3 status (RFC 1813 §2.6), so the NFS glue needs no knowledge of why an
 * operation failed. Anything else escaping the fs layer (FencedError, store or corruption
 * errors from the engine) is an internal failure: the glue answers NFS3ERR_IO / SERVERFAULT.
 */

/** Error code → NFSv3 status number (nfsstat3). */
export const NfsStatus = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  EACCES: 13,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  ENAMETOOLONG: 63,
  ENOTEMPTY: 66,
  EDQUOT: 69,
  ESTALE: 70,
  BADHANDLE: 10001,
  NOT_SYNC: 10002,
  BAD_COOKIE: 10003,
  NOTSUPP: 10004,
  TOOSMALL: 10005,
  SERVERFAULT: 10006,
  BADTYPE: 10007,
  JUKEBOX: 10008,
  // NFSv3 has no ELOOP; Linux knfsd reports symlink loops as EINVAL-like failures. The fs layer
  // never resolves paths itself (clients walk symlinks), so this only exists for completeness.
  ELOOP: 22,
} as const;

export type FsErrorCode = keyof typeof NfsStatus;

export class FsError extends Error {
  readonly code: FsErrorCode;
  constructor(code: FsErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = "FsError";
    this.code = code;
  }

  /** The nfsstat3 value for this error. */
  get nfsStatus(): number {
    return NfsStatus[this.code];
  }
}

export function fsError(code: FsErrorCode, message: string): FsError {
  return new FsError(code, message);
}

/** True when `err` is an FsError with `code` (tests and callers that branch on a code). */
export function isFsError(err: unknown, code?: FsErrorCode): err is FsError {
  return err instanceof FsError && (code === undefined || err.code === code);
}
