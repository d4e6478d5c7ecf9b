/**
 * S3 URLs and key prefixes (`s3://bucket/some/prefix`), apart from the S3 store so that reading
 * a URL does not load the AWS SDK: a server on a local volume never loads it (a sixth of its heap,
 * which every garbage collection marks).
 */
import { StoreConfigError } from "./errors.ts";

/** Parses `s3://bucket/some/prefix` into the bucket and a normalized prefix (`some/prefix/`). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/?#]*)(\/[^?#]*)?$/.exec(url);
  if (!m) {
    throw new StoreConfigError(`invalid S3 URL ${JSON.stringify(url)}: expected s3://bucket or s3://bucket/prefix (no query or fragment)`);
  }
  const bucket = m[1] ?? "";
  if (!/^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new StoreConfigError(`invalid S3 URL ${JSON.stringify(url)}: bucket ${JSON.stringify(bucket)} is not a valid bucket name (3-63 lowercase letters, digits, '.', '-')`);
  }
  return { bucket, prefix: normalizePrefix((m[2] ?? "").replace(/^\//, ""), url) };
}

export function normalizePrefix(prefix: string, context: string): string {
  const trimmed = prefix.replace(/\/+$/, "");
  if (trimmed === "") return "";
  for (const seg of trimmed.split("/")) {
    if (seg === "" || seg === "." || seg === "..") {
      throw new StoreConfigError(`invalid S3 prefix in ${JSON.stringify(context)}: empty, '.' or '..' path segment`);
    }
  }
  return `${trimmed}/`;
}
