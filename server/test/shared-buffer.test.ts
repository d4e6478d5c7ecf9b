import assert from "node:assert/strict";
import { test } from "node:test";
import { copyInto, handOffBuffer, releaseNow, SHARED_BUFFER_MIN_BYTES } from "../src/store/shared-buffer.ts";
import { Rng } from "../../test/support/random.ts";

test("handOffBuffer: shared memory from the threshold on", () => {
  assert.ok(!(handOffBuffer(SHARED_BUFFER_MIN_BYTES - 1).buffer instanceof SharedArrayBuffer));
  const b = handOffBuffer(SHARED_BUFFER_MIN_BYTES);
  assert.ok(b.buffer instanceof SharedArrayBuffer);
  assert.equal(b.length, SHARED_BUFFER_MIN_BYTES);
  assert.equal(b.buffer.byteLength, SHARED_BUFFER_MIN_BYTES);
});

test("copyInto: equal to set() for every alignment, length and kind of memory (NaN bit patterns included)", () => {
  const rng = Rng.fromEnv("copyInto");
  // 8-byte groups that are NaNs as float64 (signalling, quiet, with payloads), between random bytes.
  const nans = ["7ff0000000000001", "fff8000000000000", "7ff8dead00beef01", "ffffffffffffffff", "7ff4000000000000"].map((h) => Buffer.from(h, "hex"));
  for (let round = 0; round < 300; round++) {
    const n = rng.int(0, 3000);
    const srcMem = Buffer.from(rng.chance(0.5) ? new SharedArrayBuffer(n + 16) : new ArrayBuffer(n + 16));
    srcMem.set(rng.bytes(n + 16));
    for (let i = 0; i + 8 <= srcMem.length; i += rng.int(8, 64)) srcMem.set(nans[rng.int(0, nans.length - 1)]!, i);
    const src = srcMem.subarray(rng.int(0, 15), undefined).subarray(0, n);
    const dstLen = n + rng.int(0, 40);
    const phase = rng.int(0, 7);
    const dst = rng.chance(0.8) ? Buffer.from(new SharedArrayBuffer(dstLen + phase), phase, dstLen) : Buffer.alloc(dstLen);
    const at = rng.int(0, dstLen - n);
    const expected = Buffer.from(dst);
    expected.set(src, at);
    copyInto(dst, at, src);
    assert.ok(dst.equals(expected), `round ${round}: ${n} bytes from offset ${src.byteOffset} to ${dst.byteOffset}+${at}`);
  }
  // Long copies into shared memory at every relative alignment, from a Buffer, a plain
  // Uint8Array and shared memory (the native path), and into the middle of the destination.
  const src = Buffer.from(new ArrayBuffer(70_003)).subarray(3);
  src.set(rng.bytes(src.length));
  for (let i = 5; i + 8 <= src.length; i += 97) src.set(nans[i % nans.length]!, i);
  const sharedSrc = Buffer.from(new SharedArrayBuffer(src.length + 5), 5);
  sharedSrc.set(src);
  for (const from of [src, new Uint8Array(src.buffer, src.byteOffset, src.length), sharedSrc]) {
    for (let shift = 0; shift < 8; shift++) {
      const dst = Buffer.from(new SharedArrayBuffer(src.length + 64), shift);
      copyInto(dst, 7, from);
      assert.ok(dst.subarray(7, 7 + src.length).equals(src), `destination shifted by ${shift}`);
      assert.ok(dst.subarray(0, 7).every((b) => b === 0) && dst.subarray(7 + src.length).every((b) => b === 0), "nothing written outside the range");
    }
  }
});

test("copyInto: refuses a copy beyond the destination", () => {
  assert.throws(() => copyInto(Buffer.alloc(10), 5, Buffer.alloc(6)), RangeError);
  assert.throws(() => copyInto(Buffer.alloc(10), -1, Buffer.alloc(1)), RangeError);
});

test("releaseNow: frees a buffer that is a whole ArrayBuffer of its own, nothing else", () => {
  const own = Buffer.from(new ArrayBuffer(1000));
  assert.equal(releaseNow(own), true);
  assert.equal(own.length, 0, "its views read as empty");
  const big = new ArrayBuffer(1000);
  assert.equal(releaseNow(Buffer.from(big, 10, 100)), false, "a view into a larger buffer");
  assert.equal(big.byteLength, 1000);
  const pooled = Buffer.from("a small string lives in Node's shared pool");
  assert.equal(releaseNow(pooled), false);
  assert.equal(pooled.toString(), "a small string lives in Node's shared pool");
  assert.equal(releaseNow(handOffBuffer(SHARED_BUFFER_MIN_BYTES)), false, "shared memory cannot be detached");
  assert.equal(releaseNow(new Uint8Array(0)), false);
});
