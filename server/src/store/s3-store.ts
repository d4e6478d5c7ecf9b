/**
 * Object store on S3 (or any S3-compatible server with conditional writes). Keys live under
 * `prefix` in `bucket`. Conditional writes use If-None-Match: * and If-Match, so the server
 * does the compare-and-swap.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { ObjectNotFoundError, ObjectStoreError, PreconditionFailedError, StoreConfigError, type StoreOp } from "./errors.ts";
import { assertValidKey, assertValidPrefix, assertValidRange, compareKeys } from "./keys.ts";
import { type ByteRange, joinBody, type ObjectMeta, type ObjectStore, type PutBody, type PutResult, type RequestOptions } from "./object-store.ts";
import { normalizePrefix } from "./s3-url.ts";
import { copyInto, handOffBuffer, releaseNow } from "./shared-buffer.ts";

export interface S3StoreOptions {
  bucket: string;
  /** Folder inside the bucket; normalized to "" or a string ending in "/". */
  prefix: string;
  /** For S3-compatible servers, e.g. `http://127.0.0.1:7070`. Omit for AWS. */
  endpoint?: string;
  region: string;
  /** Static credentials; when omitted the SDK's default provider chain is used. */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Plain-HTTP endpoints are refused unless this is set (credentials and data in clear). */
  allowHttp?: boolean;
  /** Defaults to true when `endpoint` is given (most S3-compatible servers need path style). */
  forcePathStyle?: boolean;
  /** Total attempts per request including the first (SDK retry strategy). Default 5. */
  maxAttempts?: number;
  /** SDK retry mode: "standard" (jittered exponential backoff) or "adaptive" (plus client-side
   * rate limiting after throttling). Default "standard". */
  retryMode?: "standard" | "adaptive";
  /** TCP connect timeout per attempt. Default 5 s. */
  connectTimeoutMs?: number;
  /** A socket idle this long fails the attempt (then retried). An idle timeout rather than a
   * total one, so large uploads on slow links are not cut off while still making progress.
   * Default 30 s. */
  idleTimeoutMs?: number;
  /** Concurrent connections to the endpoint. Default 64. */
  maxSockets?: number;
  /**
   * Send PUT bodies unsigned (`x-amz-content-sha256: UNSIGNED-PAYLOAD`) instead of hashing
   * them for SigV4. Default: true over https, where TLS already protects the bytes in transit;
   * false over plain http, where the signed hash is the only transport integrity check.
   */
  unsignedPayload?: boolean;
  /** Sees the headers of each request as signed (tests: which integrity checks were sent). */
  observeRequest?: (headers: Record<string, string>) => void;
  /**
   * Called for each attempt the store refused for its request rate (HTTP 503 SlowDown, 429,
   * throttling error names), retried or not: the SDK retries these inside one request, so the
   * request's outcome alone does not show a store that throttles (metrics).
   */
  onThrottled?: () => void;
}

const THROTTLE_NAMES = new Set(["SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "RequestLimitExceeded", "TooManyRequestsException"]);

/** Whether an attempt's error is the store asking us to slow down. */
export function isThrottle(err: unknown): boolean {
  const e = (err ?? {}) as SdkError;
  const status = statusOf(err);
  // S3 answers 503 (SlowDown, or a bare Service Unavailable) to slow clients down.
  return status === 429 || status === 503 || THROTTLE_NAMES.has(e.name ?? "") || THROTTLE_NAMES.has(e.code ?? "");
}

/** Shape of the SDK's service and network errors, as far as we read them. */
interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

const NOT_FOUND_NAMES = new Set(["NoSuchKey", "NotFound"]);
const PRECONDITION_NAMES = new Set(["PreconditionFailed", "ConditionalRequestConflict"]);

export class S3Store implements ObjectStore {
  readonly description: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly #endpointLabel: string;
  readonly #client: S3Client;

  constructor(options: S3StoreOptions) {
    const { bucket, endpoint } = options;
    this.bucket = bucket;
    this.prefix = normalizePrefix(options.prefix.replace(/^\/+/, ""), `s3://${bucket}/${options.prefix}`);
    this.description = `s3://${bucket}/${this.prefix}`;
    if (endpoint !== undefined) checkEndpoint(endpoint, options.allowHttp ?? false);
    this.#endpointLabel = endpoint ?? `AWS S3 (${options.region})`;
    const config: S3ClientConfig = {
      region: options.region,
      forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
      maxAttempts: options.maxAttempts ?? 5,
      retryMode: options.retryMode ?? "standard",
      requestHandler: {
        connectionTimeout: options.connectTimeoutMs ?? 5_000,
        socketTimeout: options.idleTimeoutMs ?? 30_000,
        httpAgent: { keepAlive: true, maxSockets: options.maxSockets ?? 64 },
        httpsAgent: { keepAlive: true, maxSockets: options.maxSockets ?? 64 },
      },
    };
    if (endpoint !== undefined) config.endpoint = endpoint;
    if (options.accessKeyId !== undefined || options.secretAccessKey !== undefined) {
      if (!options.accessKeyId || !options.secretAccessKey) {
        throw new StoreConfigError(`${this.description}: both an access key id and a secret access key are needed (got only one)`);
      }
      config.credentials = {
        accessKeyId: options.accessKeyId,
        secretAccessKey: options.secretAccessKey,
        ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}),
      };
    }
    // Integrity, end to end and in transit, with one check instead of three: every object we
    // write is sealed (AEAD: XChaCha20-Poly1305), so any corruption is caught when it is read;
    // in transit, TLS (https) or the signed SHA-256 (plain http) protects the bytes. The SDK's
    // additional CRC32 of every body (≈4% of write time) and, over https, the SigV4 SHA-256 of
    // the payload (≈10%) add nothing, so they are only computed where S3 requires them.
    config.requestChecksumCalculation = "WHEN_REQUIRED";
    config.responseChecksumValidation = "WHEN_REQUIRED";
    this.#client = new S3Client(config);
    const https = endpoint === undefined || endpoint.startsWith("https:");
    if (options.unsignedPayload ?? https) {
      this.#client.middlewareStack.add(
        (next) => async (args) => {
          const req = args.request as { headers?: Record<string, string> };
          // The signer uses a payload hash already present instead of hashing the body.
          if (req.headers) req.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
          return next(args);
        },
        { step: "build", name: "zerofsUnsignedPayload" },
      );
    }
    const throttled = options.onThrottled;
    if (throttled) {
      // In the deserialize step, inside the SDK's retry loop: one call per attempt.
      this.#client.middlewareStack.add(
        (next) => async (args) => {
          try {
            return await next(args);
          } catch (err) {
            if (isThrottle(err)) throttled();
            throw err;
          }
        },
        { step: "deserialize", name: "zerofsObserveThrottling", priority: "high" },
      );
    }
    const observe = options.observeRequest;
    if (observe) {
      this.#client.middlewareStack.add(
        (next) => async (args) => {
          const req = args.request as { headers?: Record<string, string> };
          if (req.headers) observe({ ...req.headers });
          return next(args);
        },
        { step: "finalizeRequest", name: "zerofsObserveRequest", priority: "low" },
      );
    }
  }

  async get(key: string, range?: ByteRange, opts?: RequestOptions): Promise<Buffer> {
    assertValidKey(this.description, "get", key);
    if (range) assertValidRange(this.description, key, range);
    if (range?.length === 0) {
      // HTTP cannot express an empty range; still report a missing object as missing.
      if ((await this.head(key, opts)) === null) throw new ObjectNotFoundError(this.description, "get", key);
      return Buffer.alloc(0);
    }
    try {
      const res = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
        }),
        sendOptions(opts),
      );
      if (!res.Body) return Buffer.alloc(0);
      const buf = await readBody(res.Body as AsyncIterable<Uint8Array>, res.ContentLength, key);
      // A server that ignores Range answers 200 with the whole body; cut the range out ourselves.
      if (range && res.ContentRange === undefined) return buf.subarray(Math.min(range.offset, buf.length), range.offset + range.length);
      return buf;
    } catch (err) {
      // 416: the range starts at or past the end; the object exists (else 404), so no bytes.
      if (range && statusOf(err) === 416) return Buffer.alloc(0);
      throw this.#error("get", key, err);
    }
  }

  async put(key: string, body: PutBody, opts?: RequestOptions): Promise<PutResult> {
    assertValidKey(this.description, "put", key);
    // One buffer: the SDK's own retries must be able to resend the body.
    return this.#put("put", key, joinBody(body), {}, opts);
  }

  /**
   * Retry caveat (applies to putIfMatch too): if the first attempt reached the server and
   * succeeded but its response was lost, the SDK's retry finds the object already written and
   * gets 412, so a write that did land can be reported as PreconditionFailedError. Callers for
   * which that matters (the manifest writer) re-read the object to see whose write won.
   */
  async putIfAbsent(key: string, body: Uint8Array, opts?: RequestOptions): Promise<PutResult> {
    assertValidKey(this.description, "putIfAbsent", key);
    return this.#put("putIfAbsent", key, body, { IfNoneMatch: "*" }, opts);
  }

  async putIfMatch(key: string, body: Uint8Array, etag: string, opts?: RequestOptions): Promise<PutResult> {
    assertValidKey(this.description, "putIfMatch", key);
    return this.#put("putIfMatch", key, body, { IfMatch: etag }, opts);
  }

  async head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    assertValidKey(this.description, "head", key);
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }), sendOptions(opts));
      if (res.ETag === undefined) throw new ObjectStoreError(this.description, "head", key, `${this.#endpointLabel} returned no ETag`);
      return { key, size: res.ContentLength ?? 0, etag: res.ETag, lastModified: res.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.#error("head", key, err);
    }
  }

  async list(prefix: string, opts?: RequestOptions): Promise<ObjectMeta[]> {
    assertValidPrefix(this.description, prefix);
    const out: ObjectMeta[] = [];
    let token: string | undefined;
    try {
      do {
        const res = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ...(token ? { ContinuationToken: token } : {}) }),
          sendOptions(opts),
        );
        for (const o of res.Contents ?? []) {
          // Folder markers ("a/") are not objects of ours: our keys never end in "/".
          if (o.Key === undefined || o.Key.endsWith("/") || !o.Key.startsWith(this.prefix)) continue;
          out.push({ key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, etag: o.ETag ?? "", lastModified: o.LastModified ?? new Date(0) });
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.#error("list", prefix, err);
    }
    // S3 already lists in UTF-8 byte order; sorting again keeps the contract for servers that don't.
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  async delete(key: string, opts?: RequestOptions): Promise<void> {
    assertValidKey(this.description, "delete", key);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }), sendOptions(opts));
    } catch (err) {
      if (isNotFound(err)) return;
      throw this.#error("delete", key, err);
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  async #put(op: StoreOp, key: string, body: Uint8Array, conditions: { IfNoneMatch?: string; IfMatch?: string }, opts: RequestOptions | undefined): Promise<PutResult> {
    let etag: string | undefined;
    try {
      const res = await this.#client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Body: body, ContentLength: body.byteLength, ...conditions }),
        sendOptions(opts),
      );
      etag = res.ETag;
    } catch (err) {
      throw this.#error(op, key, err);
    }
    if (etag !== undefined) return { etag };
    // Some servers omit the ETag on PUT; a racing writer could change the object before this
    // head, so such a server cannot give putIfMatch callers a trustworthy etag. Fail loudly.
    throw new ObjectStoreError(this.description, op, key, `${this.#endpointLabel} returned no ETag for the PUT`);
  }

  #error(op: StoreOp, key: string, err: unknown): ObjectStoreError {
    if (err instanceof ObjectStoreError) return err;
    const e = (err ?? {}) as SdkError;
    const status = statusOf(err);
    const conditional = op === "putIfAbsent" || op === "putIfMatch";
    if (conditional && (status === 412 || status === 409 || PRECONDITION_NAMES.has(e.name ?? ""))) {
      return new PreconditionFailedError(this.description, op, key, { cause: err });
    }
    // If-Match on a missing object is a 404 NoSuchKey on AWS: for putIfMatch a lost precondition.
    if (op === "putIfMatch" && e.name === "NoSuchKey") return new PreconditionFailedError(this.description, op, key, { cause: err });
    // Only reads can miss an object; a 404 on a write means a missing bucket or a wrong endpoint.
    if ((op === "get" || op === "head") && isNotFound(err)) return new ObjectNotFoundError(this.description, op, key, { cause: err });
    const what = status !== undefined ? `HTTP ${status} ${e.name ?? ""}`.trim() : (e.code ?? e.name ?? "error");
    const attempts = e.$metadata?.attempts;
    const tries = attempts !== undefined && attempts > 1 ? ` after ${attempts} attempts` : "";
    return new ObjectStoreError(this.description, op, key, `${what} from ${this.#endpointLabel}${tries}: ${e.message ?? String(err)}`, { cause: err });
  }
}

function checkEndpoint(endpoint: string, allowHttp: boolean): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (err) {
    throw new StoreConfigError(`invalid S3 endpoint ${JSON.stringify(endpoint)}: not a URL`, { cause: err });
  }
  if (url.protocol === "http:" && !allowHttp) {
    throw new StoreConfigError(
      `refusing plain-HTTP S3 endpoint ${endpoint}: credentials and data would travel unencrypted; set AWS_ALLOW_HTTP=true to allow it (e.g. for a local test server)`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new StoreConfigError(`invalid S3 endpoint ${JSON.stringify(endpoint)}: expected an http:// or https:// URL`);
  }
}

/** The SDK cancels the HTTP request (and stops retrying) when the signal aborts. */
function sendOptions(opts: RequestOptions | undefined): { abortSignal?: AbortSignal } {
  return opts?.signal ? { abortSignal: opts.signal } : {};
}

function statusOf(err: unknown): number | undefined {
  return (err as SdkError | null)?.$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const name = (err as SdkError | null)?.name ?? "";
  // A missing bucket is a configuration problem, not a missing object.
  return NOT_FOUND_NAMES.has(name) || (statusOf(err) === 404 && name !== "NoSuchBucket");
}

/** Larger announced bodies are not allocated up front: memory follows the bytes that arrive. */
const MAX_PREALLOCATED_BODY_BYTES = 64 * 1024 * 1024;

/**
 * A GET's body as one buffer, each received chunk copied once into a buffer of the announced
 * length (the SDK's own collector joins the chunks, and its result was copied again).
 * Without a usable Content-Length, or with one beyond MAX_PREALLOCATED_BODY_BYTES (a server
 * that ignored the Range of a huge object), the chunks are joined at the end.
 */
export async function readBody(body: AsyncIterable<Uint8Array>, contentLength: number | undefined, key: string): Promise<Buffer> {
  if (contentLength === undefined || !Number.isSafeInteger(contentLength) || contentLength < 0 || contentLength > MAX_PREALLOCATED_BODY_BYTES) {
    const chunks: Uint8Array[] = [];
    for await (const c of body) chunks.push(c);
    return Buffer.concat(chunks);
  }
  // Mostly runs of sealed frames, opened next by the crypto workers: see shared-buffer.ts.
  let buf: Buffer | undefined;
  let at = 0;
  for await (const c of body) {
    if (at + c.length > contentLength) throw new Error(`GET ${key}: the body is longer than its Content-Length of ${contentLength} bytes`);
    buf ??= handOffBuffer(contentLength);
    copyInto(buf, at, c);
    at += c.length;
    // Nothing reads the parser's buffer after this: freed now (on a cold 1 GiB read from
    // versitygw, 51 -> 33 full collections).
    releaseNow(c);
  }
  if (at !== contentLength) throw new Error(`GET ${key}: the body ended after ${at} of ${contentLength} bytes`);
  return buf ?? Buffer.alloc(0);
}
