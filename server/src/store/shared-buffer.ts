/**
 * Buffers for bytes that go on to the crypto worker threads (crypto/crypto-workers.ts): large
 * ones are allocated in shared memory (a SharedArrayBuffer), which a worker reads in place, so
 * the event loop does not copy them into its batch. Used where such bytes first land: RPC
 * records joined from socket chunks (a WRITE's data), ranged reads of local objects and disk
 * cache parts, and S3 GET bodies (runs of sealed frames).
 *
 * Shared memory is zero-filled (cheaper than the copy it saves). Copying into it from JavaScript
 * is slower than a plain copy: V8 copies into shared memory element by element (relaxed atomic
 * stores), so byte arrays copy at ~1.5 GB/s here where a plain copy runs at ~7. Copied as 8-byte
 * elements it runs at ~5 GB/s, which needs source and destination equally aligned: `copyInto`
 * does that (staging a source that is not), and `handOffBuffer`'s `phase` places a buffer so that
 * the pieces copied into it line up (socket chunks start 8-aligned, so a record or body placed at
 * the phase of its first piece lines up with all the others: 1 GiB of WRITE records, 1.2 s ->
 * ~0.3 s of event loop).
 * Below the threshold the batch copy is cheap and a pooled buffer is cheaper than a
 * SharedArrayBuffer.
 */
export const SHARED_BUFFER_MIN_BYTES = 16 * 1024;

/** Below this, aligning a copy costs more than it saves. */
const WORD_COPY_MIN_BYTES = 256;

/**
 * `n` bytes: shared memory from SHARED_BUFFER_MIN_BYTES on, else uninitialized ordinary memory.
 * A shared buffer starts at an offset ≡ `phase` (mod 8) in its SharedArrayBuffer: pass the
 * `byteOffset` of the first piece that will be copied to its start (see copyInto).
 */
export function handOffBuffer(n: number, phase = 0): Buffer {
  if (n < SHARED_BUFFER_MIN_BYTES) return Buffer.allocUnsafe(n);
  const p = phase & 7;
  return Buffer.from(new SharedArrayBuffer(n + p), p, n);
}

/** Staging size for copies whose source and destination are not equally aligned. */
const STAGE_BYTES = 64 * 1024;
let stage: Uint8Array | undefined;

/**
 * `dst.set(src, at)`, but into shared memory 8 bytes at a time (TypedArray.prototype.set between
 * arrays of one type copies bits exactly, NaN patterns included). A source not aligned like its
 * destination (S3 bodies arrive in chunks of odd lengths: 64,910 + 33,394 + …) is first copied,
 * 64 KiB at a time, to a staging buffer at the destination's alignment: two copies at ~6 GB/s
 * beat one byte-wise copy at ~1.3–2 (on a cold 1 GiB read from versitygw, ~1 s of event loop).
 */
export function copyInto(dst: Uint8Array, at: number, src: Uint8Array): void {
  const n = src.length;
  if (at < 0 || at + n > dst.length) throw new RangeError(`copying ${n} bytes to offset ${at} of a ${dst.length}-byte buffer`);
  if (n < WORD_COPY_MIN_BYTES || !(dst.buffer instanceof SharedArrayBuffer)) {
    dst.set(src, at);
    return;
  }
  const d = dst.byteOffset + at;
  if (((d - src.byteOffset) & 7) === 0) {
    copyWords(dst, at, src);
    return;
  }
  stage ??= new Uint8Array(STAGE_BYTES + 8);
  const phase = d & 7;
  for (let done = 0; done < n; done += STAGE_BYTES) {
    const piece = src.subarray(done, Math.min(n, done + STAGE_BYTES));
    const staged = stage.subarray(phase, phase + piece.length);
    staged.set(piece);
    copyWords(dst, at + done, staged);
  }
}

/** copyInto for a source aligned like its destination. */
function copyWords(dst: Uint8Array, at: number, src: Uint8Array): void {
  const n = src.length;
  const d = dst.byteOffset + at;
  const s = src.byteOffset;
  const head = (8 - (s & 7)) & 7;
  const words = (n - head) >>> 3;
  if (head > 0) dst.set(src.subarray(0, head), at);
  new Float64Array(dst.buffer, d + head, words).set(new Float64Array(src.buffer, s + head, words));
  const done = head + words * 8;
  if (done < n) dst.set(src.subarray(done), at + done);
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
