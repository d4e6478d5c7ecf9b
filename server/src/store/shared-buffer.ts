/**
 * Buffers for bytes that go on to the crypto worker threads (crypto/crypto-workers.ts): large
 * ones are allocated in shared memory (a SharedArrayBuffer), which a worker reads in place, so
 * the event loop does not copy them into its batch. Used where such bytes first land: RPC
 * records joined from socket chunks (a WRITE's data), ranged reads of local objects and disk
 * cache parts, and S3 GET bodies (runs of sealed frames).
 *
 * Shared memory is zero-filled (cheaper than the copy it saves), and copying into it from
 * JavaScript is slower than a plain copy (V8 copies it word by word): still one such copy costs
 * less than two plain ones (a 1 GiB write: 3.2 s instead of 3.6). Below the threshold the
 * batch copy is cheap and a pooled buffer is cheaper than a SharedArrayBuffer.
 */
export const SHARED_BUFFER_MIN_BYTES = 16 * 1024;

/** `n` bytes: shared memory from SHARED_BUFFER_MIN_BYTES on, else uninitialized ordinary memory. */
export function handOffBuffer(n: number): Buffer {
  return n >= SHARED_BUFFER_MIN_BYTES ? Buffer.from(new SharedArrayBuffer(n)) : Buffer.allocUnsafe(n);
}
