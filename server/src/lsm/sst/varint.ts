/**
 * Byte-level helpers for the SST format: unsigned LEB128 varints, a bounds-checked reader, a
 * growable writer, and fast in-place key comparison. Varints carry lengths and offsets, so they must hold any safe integer (objects and
 * offsets may exceed 2^32), which is why the arithmetic avoids 32-bit bit operators above 2^31.
 */
import { FormatError } from "./errors.ts";

/** Largest varint we accept: 8 bytes carry 56 bits, which covers Number.MAX_SAFE_INTEGER. */
const MAX_VARINT_BYTES = 8;

/** Number of bytes `writeVarint` uses for `v`. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** Writes `v` (a non-negative safe integer) at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
  return pos;
}

/**
 * Sequential, bounds-checked reader over a plaintext buffer. Every overrun throws FormatError
 * (never returns garbage), so decoders can be written straight-line.
 */
export class ByteReader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(): number {
    if (this.pos >= this.end) throw new FormatError(`unexpected end of data at byte ${this.pos}`);
    return this.buf[this.pos++]!;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.pos >= this.end) throw new FormatError(`truncated varint at byte ${this.pos}`);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) throw new FormatError(`varint too large at byte ${this.pos}`);
        return result;
      }
      mul *= 0x80;
    }
    throw new FormatError(`varint longer than ${MAX_VARINT_BYTES} bytes at byte ${this.pos}`);
  }

  /** A view (no copy) of the next `n` bytes. */
  bytes(n: number): Buffer {
    if (n > this.end - this.pos) {
      throw new FormatError(`need ${n} bytes at byte ${this.pos}, only ${this.end - this.pos} left`);
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/**
 * Compares buf[start, end) with `key` like compareKeys. Keys are mostly short (tens of bytes),
 * where a JS loop beats Buffer#compare's range validation + native call several times over;
 * long keys still go native.
 */
export function compareRange(buf: Uint8Array, start: number, end: number, key: Uint8Array): number {
  const la = end - start;
  const lb = key.length;
  const n = la < lb ? la : lb;
  if (n > 64) return Buffer.compare(buf.subarray(start, end), key);
  for (let i = 0; i < n; i++) {
    const d = buf[start + i]! - key[i]!;
    if (d !== 0) return d;
  }
  return la - lb;
}

/** compareKeys for whole buffers, with compareRange's short-key fast path. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return compareRange(a, 0, a.length, b);
}

/** Append-only buffer that grows by doubling; used for the index and bloom plaintexts. */
export class ByteWriter {
  private buf: Buffer;
  private len = 0;

  constructor(initialCapacity = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initialCapacity));
  }

  get length(): number {
    return this.len;
  }

  private ensure(extra: number): void {
    const need = this.len + extra;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v;
  }

  u32le(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
  }

  varint(v: number): void {
    this.ensure(MAX_VARINT_BYTES + 2);
    this.len = writeVarint(this.buf, this.len, v);
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** The written bytes (a view; the writer must not be used afterwards). */
  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}
