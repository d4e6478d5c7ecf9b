/** Opens the object store a URL names: `s3://bucket/prefix`, `file:///path` or a plain path. */
import { fileURLToPath } from "node:url";
import { StoreConfigError } from "./errors.ts";
import { LocalStore, type LocalStoreOptions } from "./local-store.ts";
import type { ObjectStore } from "./object-store.ts";
import type { S3StoreOptions } from "./s3-store.ts";
import { parseS3Url } from "./s3-url.ts";

export type { ByteRange, ObjectMeta, ObjectStore, PutResult } from "./object-store.ts";
export * from "./errors.ts";
export { LocalStore, type LocalStoreOptions } from "./local-store.ts";
export { MemoryStore } from "./memory-store.ts";
export type { S3StoreOptions } from "./s3-store.ts";
export { parseS3Url } from "./s3-url.ts";

export interface OpenStoreOptions {
  /** Connection settings for s3:// URLs, derived from the environment by the caller. */
  s3?: Omit<S3StoreOptions, "bucket" | "prefix">;
  local?: LocalStoreOptions;
}

/**
 * The store `url` names. The S3 store's module (and with it the AWS SDK) is loaded only for an
 * s3:// URL: a server on a local volume does without it (its heap, which every collection
 * marks, is a sixth smaller).
 */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<ObjectStore> {
  if (url.trim() === "") throw new StoreConfigError("store URL is empty: expected s3://bucket/prefix, file:///path or a path");
  if (url.startsWith("s3://")) {
    const { bucket, prefix } = parseS3Url(url);
    if (!opts.s3) throw new StoreConfigError(`store ${url}: S3 connection options (at least the region) are required for s3:// URLs`);
    const { S3Store } = await import("./s3-store.ts");
    return new S3Store({ ...opts.s3, bucket, prefix });
  }
  if (url.startsWith("file:")) {
    let path: string;
    try {
      path = fileURLToPath(url);
    } catch (err) {
      throw new StoreConfigError(`invalid file URL ${JSON.stringify(url)}: ${(err as Error).message}`, { cause: err });
    }
    return new LocalStore(path, opts.local);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (scheme) throw new StoreConfigError(`unsupported store URL scheme "${scheme[1]}:" in ${url}: expected s3://, file:// or a path`);
  return new LocalStore(url, opts.local);
}
