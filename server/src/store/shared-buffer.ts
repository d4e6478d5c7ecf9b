/**
 * Buffers for bytes that go on to the crypto worker threads (crypto/crypto-workers.ts): large
 * ones are allocated in shared memory (a SharedArrayBuffer), which a worker reads in place, so
 * the event loop does not copy them into its batch. Used where such bytes first land: RPC
 * records joined from socket chunks (a WRITE's data), ranged reads of local objects and disk
 * cache parts, and S3 GET bodies (runs of sealed frames).
 *
 * Shared memory is zero-filled (cheaper than the copy it saves). Copying into it must not go
 * through V8: `TypedArray.prototype.set` (and Buffer#copy of a whole source, which calls it)
 * copies into shared memory element by element with relaxed atomic stores, ~1.6–2 GB/s for
 * bytes here and ~5–8 for an 8-byte-aligned copy as float64 elements, against 12–20 GB/s for a
 * plain memmove. `copyInto` gets the memmove.
 * Below the threshold the batch copy is cheap and a pooled buffer is cheaper than a
 * SharedArrayBuffer.
 */
export const SHARED_BUFFER_MIN_BYTES = 16 * 1024;

/** Below this, V8's own copy is as quick as the native call. */
const NATIVE_COPY_MIN_BYTES = 256;

/** `n` bytes: shared memory from SHARED_BUFFER_MIN_BYTES on, else uninitialized ordinary memory. */
export function handOffBuffer(n: number): Buffer {
  if (n < SHARED_BUFFER_MIN_BYTES) return Buffer.allocUnsafe(n);
  return Buffer.from(new SharedArrayBuffer(n));
}

/**
 * `dst.set(src, at)`, at memmove speed into shared memory. Node's Buffer#copy hands a copy of
 * part of its source to its native copy (memmove) and only a whole-source copy to
 * TypedArray.prototype.set, so all but the last byte go natively and the last one on its own.
 * (Were Node ever to route partial copies through V8 too, this stays correct, only slower.)
 * Alignment does not matter, so S3 bodies, which arrive in chunks of odd lengths, copy as fast
 * as 8-aligned socket chunks.
 */
export function copyInto(dst: Uint8Array, at: number, src: Uint8Array): void {
  const n = src.length;
  if (at < 0 || at + n > dst.length) throw new RangeError(`copying ${n} bytes to offset ${at} of a ${dst.length}-byte buffer`);
  if (n < NATIVE_COPY_MIN_BYTES || !(dst.buffer instanceof SharedArrayBuffer)) {
    dst.set(src, at);
    return;
  }
  const from = Buffer.isBuffer(src) ? src : Buffer.from(src.buffer, src.byteOffset, n);
  from.copy(dst, at, 0, n - 1);
  dst[at + n - 1] = from[n - 1]!;
}

/**
 * Frees the memory under `b` at once when `b` is the whole of an ordinary ArrayBuffer (which is
 * then detached: every view of it reads as empty); a view into a larger buffer, shared memory or
 * memory that cannot be detached is left to the garbage collector. Returns whether it was freed.
 * Only for buffers of one's own that nothing will read again (a socket read once its bytes are
 * copied). Why: V8 runs a full (mark-compact) collection of the event loop's heap for every
 * ~64 MiB of ArrayBuffers allocated, however short-lived; freeing them explicitly keeps them
 * out of that count.
 */
export function releaseNow(b: Uint8Array): boolean {
  const ab = b.buffer;
  if (ab instanceof SharedArrayBuffer || b.byteOffset !== 0 || b.byteLength !== ab.byteLength || ab.byteLength === 0) return false;
  try {
    ab.transfer(0);
    return true;
  } catch {
    return false; // not detachable (a WebAssembly memory, some native code's)
  }
}
