/**
 * The object store contract the LSM engine stands on.
 *
 * Keys are relative to the store's root (a local directory, or an S3 bucket + prefix) and
 * use `/` as a folder separator. Callers never name an object like another object's folder
 * (`x` beside `x/y`): POSIX-backed S3 servers cannot hold both.
 *
 * Every method throws an `ObjectStoreError` subclass carrying the operation and key.
 */
export interface ObjectMeta {
  key: string;
  size: number;
  /** Opaque version tag; changes on every write of the key. Used by putIfMatch. */
  etag: string;
  lastModified: Date;
}

export interface ByteRange {
  offset: number;
  /** Number of bytes wanted. A range running past the end returns the bytes that exist. */
  length: number;
}

/**
 * A body to put: one buffer, or pieces stored as if concatenated in order (a segment made of
 * sealed frames is written with one writev instead of being copied into one buffer first).
 */
export type PutBody = Uint8Array | readonly Uint8Array[];

export function bodyLength(body: PutBody): number {
  if (body instanceof Uint8Array) return body.byteLength;
  let n = 0;
  for (const p of body) n += p.byteLength;
  return n;
}

/** The body as one buffer (a copy only when it came in pieces). */
export function joinBody(body: PutBody): Uint8Array {
  return body instanceof Uint8Array ? body : Buffer.concat(body, bodyLength(body));
}

export interface PutResult {
  etag: string;
}

/**
 * Per-request options. A store that can cancel a request in flight (S3: the HTTP request and
 * its retries) does so when `signal` aborts and then throws; others may ignore it. The deadline
 * wrapper (guarded-store.ts) uses it so that abandoned requests do not keep holding sockets.
 */
export interface RequestOptions {
  signal?: AbortSignal;
}

export interface ObjectStore {
  /** Human-readable location used in errors and logs, e.g. `file:///var/db` or `s3://b/p`. */
  readonly description: string;
  /**
   * Whole object, or a byte range of it. Throws ObjectNotFoundError. The buffer is read-only
   * for the caller: a cache may share it (DiskCacheStore writes it to disk meanwhile).
   */
  get(key: string, range?: ByteRange, opts?: RequestOptions): Promise<Buffer>;
  /** Unconditional overwrite. Atomic: readers see the old or the new body, never a mix. */
  // A property, not a method: method parameters are checked bivariantly, and an implementation
  // taking only Uint8Array would still compile (and miscount or misstore a body in pieces).
  put: (key: string, body: PutBody, opts?: RequestOptions) => Promise<PutResult>;
  /** Creates the object only if no object has the key. Throws PreconditionFailedError. */
  putIfAbsent(key: string, body: Uint8Array, opts?: RequestOptions): Promise<PutResult>;
  /** Replaces the object only if its current etag equals `etag`. Throws PreconditionFailedError
   * (also when the object does not exist). */
  putIfMatch(key: string, body: Uint8Array, etag: string, opts?: RequestOptions): Promise<PutResult>;
  /** Metadata, or null when absent. */
  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null>;
  /** Every object whose key starts with `prefix`, sorted by key. */
  list(prefix: string, opts?: RequestOptions): Promise<ObjectMeta[]>;
  /** Idempotent: deleting an absent key succeeds. */
  delete(key: string, opts?: RequestOptions): Promise<void>;
  /** Releases sockets/handles. */
  close(): Promise<void>;
}
