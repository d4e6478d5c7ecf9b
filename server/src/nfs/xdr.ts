/**
 * XDR (RFC 4506) primitives: a bounds-checked reader over a Buffer and a chunked writer.
 *
 * Reader rules: every read checks the remaining bytes first and throws XdrError (never a
 * RangeError from Buffer); a length prefix is compared against both the caller's maximum and
 * the bytes actually left before anything is allocated; opaque data is returned as a
 * `subarray` of the input (zero copy), so it stays valid only as long as the caller keeps the
 * underlying record (copy it if you retain it beyond the call).
 *
 * Writer rules: small items go into a growable scratch buffer; large opaque payloads (READ
 * data) are attached by reference as their own chunk, so a 1 MiB reply body is never copied
 * in user space: `chunks()` hands the list to socket writev, which copies once into the kernel.
 */

/** Malformed or truncated XDR input (maps to GARBAGE_ARGS at the RPC layer). */
export class XdrError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`XDR: ${message} (at offset ${offset})`);
    this.name = "XdrError";
    this.offset = offset;
  }
}

/** Padding needed after `n` bytes of opaque data to reach a 4-byte boundary. */
export function xdrPad(n: number): number {
  return (4 - (n & 3)) & 3;
}

/** Encoded size of a variable-length opaque/string of `n` bytes (length word + data + pad). */
export function xdrOpaqueSize(n: number): number {
  return 4 + n + xdrPad(n);
}

const UINT32_LIMIT = 0x1_0000_0000;
const UINT64_MAX = (1n << 64n) - 1n;
const SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** The last uint64 above 2^53 the writer split into words (see XdrWriter.uint64). */
let lastBig = -1n;
let lastHi = 0;
let lastLo = 0;

export class XdrReader {
  readonly buf: Buffer;
  /** Exclusive end of the readable window. */
  readonly end: number;
  pos: number;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    if (start < 0 || end > buf.length || start > end) {
      throw new RangeError(`XdrReader window [${start}, ${end}) outside buffer of ${buf.length}`);
    }
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.end - this.pos) {
      throw new XdrError(`need ${n} bytes for ${what}, only ${this.end - this.pos} left`, this.pos);
    }
  }

  uint32(what = "uint32"): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int32(what = "int32"): number {
    this.need(4, what);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** unsigned hyper. */
  uint64(what = "uint64"): bigint {
    this.need(8, what);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** hyper (signed). */
  int64(what = "hyper"): bigint {
    this.need(8, what);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** XDR bool: exactly 0 or 1; anything else is malformed. */
  bool(what = "bool"): boolean {
    const at = this.pos;
    const v = this.uint32(what);
    if (v > 1) throw new XdrError(`${what}: bool value ${v} is neither 0 nor 1`, at);
    return v === 1;
  }

  /** Fixed-length opaque[n] (plus padding). Returns a view, not a copy. */
  opaqueFixed(n: number, what = "opaque"): Buffer {
    const padded = n + xdrPad(n);
    this.need(padded, `${what}[${n}]`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += padded;
    return out;
  }

  /** Variable-length opaque<max>. The length is checked before anything else. Returns a view. */
  opaque(max: number, what = "opaque"): Buffer {
    const at = this.pos;
    const len = this.uint32(`${what} length`);
    if (len > max) throw new XdrError(`${what} length ${len} exceeds maximum ${max}`, at);
    const padded = len + xdrPad(len);
    if (padded > this.end - this.pos) {
      throw new XdrError(`${what} length ${len} exceeds the ${this.end - this.pos} bytes left`, at);
    }
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += padded;
    return out;
  }

  /** string<max>, decoded as UTF-8 (invalid sequences become U+FFFD; use opaque() for raw bytes). */
  string(max: number, what = "string"): string {
    return this.opaque(max, what).toString("utf8");
  }

  /** XDR optional-data (`T *`): a bool discriminant then the value. */
  optional<T>(read: (r: XdrReader) => T, what = "optional"): T | undefined {
    return this.bool(`${what} discriminant`) ? read(this) : undefined;
  }

  /**
   * Variable-length array<max>. Besides `max`, the count is checked against the bytes left
   * assuming each element takes at least `minElementBytes`, so a huge count cannot make us
   * loop or allocate before running out of input.
   */
  array<T>(max: number, read: (r: XdrReader) => T, what = "array", minElementBytes = 4): T[] {
    const at = this.pos;
    const count = this.uint32(`${what} count`);
    if (count > max) throw new XdrError(`${what} count ${count} exceeds maximum ${max}`, at);
    if (count * minElementBytes > this.end - this.pos) {
      throw new XdrError(`${what} count ${count} cannot fit in the ${this.end - this.pos} bytes left`, at);
    }
    const out: T[] = [];
    for (let i = 0; i < count; i++) out.push(read(this));
    return out;
  }

  /** Throws unless the whole window was consumed. */
  expectEnd(what = "message"): void {
    if (this.pos !== this.end) {
      throw new XdrError(`${this.end - this.pos} unexpected trailing bytes after ${what}`, this.pos);
    }
  }
}

/** Payloads at least this big are attached by reference instead of being copied. */
export const XDR_ZERO_COPY_THRESHOLD = 4096;

export class XdrWriter {
  /** Completed segments, in order. */
  private readonly done: Buffer[] = [];
  private doneBytes = 0;
  private buf: Buffer;
  /** Start of the not-yet-flushed segment within `buf`. */
  private segStart = 0;
  private pos = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Total bytes written so far. */
  get length(): number {
    return this.doneBytes + (this.pos - this.segStart);
  }

  private flushSegment(): void {
    if (this.pos > this.segStart) {
      const seg = this.buf.subarray(this.segStart, this.pos);
      this.done.push(seg);
      this.doneBytes += seg.length;
      this.segStart = this.pos;
    }
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    // Never copy what was written: close the current segment and continue in a new buffer.
    this.flushSegment();
    this.buf = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2, 256));
    this.segStart = 0;
    this.pos = 0;
  }

  uint32(v: number): this {
    // `v >>> 0 === v` holds exactly for integers in [0, 2^32). Bytes are stored directly: a
    // READDIRPLUS reply writes tens of thousands of words, and Buffer's checked writers
    // validate each one again.
    if (v >>> 0 !== v) throw new RangeError(`uint32 out of range: ${v}`);
    this.ensure(4);
    this.put32(v);
    return this;
  }

  private put32(v: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.pos = p + 4;
  }

  int32(v: number): this {
    if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) throw new RangeError(`int32 out of range: ${v}`);
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint64(v: bigint | number): this {
    let hi: number;
    let lo: number;
    if (typeof v === "number" && v >>> 0 === v) {
      // Most values (ids, sizes, cookies, times) are below 2^32.
      hi = 0;
      lo = v;
    } else if (typeof v === "number") {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`uint64 out of range: ${v}`);
      hi = Math.floor(v / UINT32_LIMIT);
      lo = v >>> 0;
    } else if (v === lastBig) {
      // The same large value again and again: a volume's fsid, in every fattr3 of a listing.
      hi = lastHi;
      lo = lastLo;
    } else if (v >= 0n && v <= SAFE_BIGINT) {
      // Most values (sizes, ids, cookies) fit a double exactly: no BigInt arithmetic for them.
      const n = Number(v);
      hi = Math.floor(n / UINT32_LIMIT);
      lo = n >>> 0;
    } else {
      if (v < 0n || v > UINT64_MAX) throw new RangeError(`uint64 out of range: ${v}`);
      hi = Number(v >> 32n);
      lo = Number(v & 0xffff_ffffn);
      lastBig = v;
      lastHi = hi;
      lastLo = lo;
    }
    this.ensure(8);
    this.put32(hi);
    this.put32(lo);
    return this;
  }

  int64(v: bigint | number): this {
    const b = typeof v === "bigint" ? v : BigInt(v);
    if (b < INT64_MIN || b > INT64_MAX) throw new RangeError(`hyper out of range: ${b}`);
    this.ensure(8);
    this.buf.writeBigInt64BE(b, this.pos);
    this.pos += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.uint32(v ? 1 : 0);
  }

  /** XDR padding (0–3 bytes): a loop, cheaper than fill()'s native call for so few. */
  private pad(n: number): void {
    if (n === 0) return;
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = 0;
    this.pos = p;
  }

  private bytes(data: Buffer): void {
    const n = data.length;
    if (n >= XDR_ZERO_COPY_THRESHOLD) {
      this.flushSegment();
      this.done.push(data);
      this.doneBytes += n;
      return;
    }
    this.ensure(n);
    // TypedArray.set, not Buffer.copy: names and handles are tens of bytes, and copy()'s
    // argument handling costs more than their copy.
    this.buf.set(data, this.pos);
    this.pos += n;
  }

  /** Fixed-length opaque[n]: `data` must be exactly n bytes. */
  opaqueFixed(data: Buffer, n = data.length): this {
    if (data.length !== n) throw new RangeError(`opaque[${n}] given ${data.length} bytes`);
    this.bytes(data);
    this.pad(xdrPad(n));
    return this;
  }

  /** opaque<> given as pieces (`length` bytes in all); large pieces are referenced, as by opaque(). */
  opaqueParts(parts: readonly Buffer[], length: number): this {
    this.uint32(length);
    for (const p of parts) this.bytes(p);
    this.pad(xdrPad(length));
    return this;
  }

  /** Variable-length opaque<max>. Large data is referenced, not copied: do not mutate it afterwards. */
  opaque(data: Buffer, max = 0xffff_ffff): this {
    if (data.length > max) throw new RangeError(`opaque length ${data.length} exceeds maximum ${max}`);
    this.uint32(data.length);
    this.bytes(data);
    this.pad(xdrPad(data.length));
    return this;
  }

  string(s: string | Buffer, max = 0xffff_ffff): this {
    return this.opaque(typeof s === "string" ? Buffer.from(s, "utf8") : s, max);
  }

  optional<T>(value: T | undefined, write: (w: XdrWriter, v: T) => void): this {
    if (value === undefined) return this.bool(false);
    this.bool(true);
    write(this, value);
    return this;
  }

  array<T>(items: readonly T[], write: (w: XdrWriter, v: T) => void, max = 0xffff_ffff): this {
    if (items.length > max) throw new RangeError(`array count ${items.length} exceeds maximum ${max}`);
    this.uint32(items.length);
    for (const it of items) write(this, it);
    return this;
  }

  /** Appends pre-encoded XDR bytes (must already be 4-byte aligned if more follows). */
  raw(data: Buffer): this {
    this.bytes(data);
    return this;
  }

  /** The encoded bytes as a chunk list (no copy). The writer must not be used afterwards. */
  chunks(): Buffer[] {
    this.flushSegment();
    return this.done;
  }

  /** The encoded bytes as one contiguous buffer (copies when there are several chunks). */
  toBuffer(): Buffer {
    const c = this.chunks();
    if (c.length === 1 && c[0] !== undefined) return c[0];
    return Buffer.concat(c, this.doneBytes);
  }
}
