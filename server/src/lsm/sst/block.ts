/**
 * A decoded data block (see block-builder.ts for the layout). Decoding validates the whole
 * structure once and records, per entry, where its key and value live; afterwards every access
 * is a `subarray` of the decrypted plaintext (no copies), and `seek` is a binary search that
 * compares in place (compareRange).
 */
import type { Entry } from "../entry.ts";
import { KIND_PUT, KIND_TOMBSTONE } from "./block-builder.ts";
import { FormatError } from "./errors.ts";
import { ByteReader, compareRange } from "./varint.ts";

/** Approximate fixed JS overhead of a Block object, charged to the cache. */
const BLOCK_OVERHEAD = 160;

export class Block {
  private readonly buf: Buffer;
  /** Per entry i: [keyStart, valueStart, valueEnd] at 3i..3i+2; valueStart === valueEnd for empty/tombstone. */
  private readonly pos: Uint32Array;
  /** Bit per entry: 1 = tombstone. */
  private readonly tomb: Uint8Array;
  readonly count: number;

  private constructor(buf: Buffer, pos: Uint32Array, tomb: Uint8Array, count: number) {
    this.buf = buf;
    this.pos = pos;
    this.tomb = tomb;
    this.count = count;
  }

  /** Bytes charged to the block cache: the plaintext plus the position table. */
  get byteSize(): number {
    return this.buf.length + this.pos.byteLength + this.tomb.byteLength + BLOCK_OVERHEAD;
  }

  /** Decodes and fully validates a block's plaintext; throws FormatError on any inconsistency. */
  static decode(plain: Buffer): Block {
    // A cached block must not pin a much larger shared allocation (e.g. a pooled slab) that
    // its byteSize does not account for; sealers normally return exact buffers, so this rarely copies.
    if (plain.buffer.byteLength > 2 * plain.length + 4096) plain = Buffer.from(plain);
    if (plain.length < 4) throw new FormatError(`block is ${plain.length} bytes, need >= 4`);
    const count = plain.readUInt32LE(plain.length - 4);
    if (count === 0) throw new FormatError("block has 0 entries");
    // Each entry takes >= 3 bytes + a 4-byte offset: reject absurd counts before allocating.
    if (count > (plain.length - 4) / 7) {
      throw new FormatError(`block claims ${count} entries but is only ${plain.length} bytes`);
    }
    const dataEnd = plain.length - 4 - 4 * count;
    const pos = new Uint32Array(3 * count);
    const tomb = new Uint8Array((count + 7) >>> 3);
    const r = new ByteReader(plain, 0, dataEnd);
    for (let i = 0; i < count; i++) {
      const recorded = plain.readUInt32LE(dataEnd + 4 * i);
      if (recorded !== r.pos) {
        throw new FormatError(`block entry ${i} offset is ${recorded}, but the previous entry ends at ${r.pos}`);
      }
      const kind = r.u8();
      const klen = r.varint();
      const vlen = r.varint();
      if (kind !== KIND_PUT && kind !== KIND_TOMBSTONE) throw new FormatError(`block entry ${i} has unknown kind ${kind}`);
      if (kind === KIND_TOMBSTONE) {
        if (vlen !== 0) throw new FormatError(`block entry ${i} is a tombstone with a ${vlen}-byte value`);
        tomb[i >>> 3]! |= 1 << (i & 7);
      }
      const ks = r.pos;
      r.bytes(klen);
      const vs = r.pos;
      r.bytes(vlen);
      pos[3 * i] = ks;
      pos[3 * i + 1] = vs;
      pos[3 * i + 2] = r.pos;
      if (i > 0) {
        const pks = pos[3 * (i - 1)]!;
        const pke = pos[3 * (i - 1) + 1]!;
        // Keys must be strictly ascending; a violation means a writer bug, not tampering
        // (tampering fails authentication first), so fail loudly.
        // plain.compare(target = previous key, ..., source = this key): > 0 iff this > previous.
        if (plain.compare(plain, pks, pke, ks, vs) <= 0) {
          throw new FormatError(`block entry ${i} key is not greater than entry ${i - 1} key`);
        }
      }
    }
    if (r.pos !== dataEnd) throw new FormatError(`block entries end at ${r.pos}, offsets array starts at ${dataEnd}`);
    return new Block(plain, pos, tomb, count);
  }

  /** Index of the first entry whose key is >= `key` (count if none). */
  seek(key: Uint8Array): number {
    const buf = this.buf;
    const pos = this.pos;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareRange(buf, pos[3 * mid]!, pos[3 * mid + 1]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Entry i's key equals `key` (compared in place). */
  keyEquals(i: number, key: Uint8Array): boolean {
    const ks = this.pos[3 * i]!;
    const ke = this.pos[3 * i + 1]!;
    return ke - ks === key.length && compareRange(this.buf, ks, ke, key) === 0;
  }

  /** Entry i's key vs `key`, compared in place: <0, 0, >0 like compareKeys(entryKey, key). */
  compareKey(i: number, key: Uint8Array): number {
    return compareRange(this.buf, this.pos[3 * i]!, this.pos[3 * i + 1]!, key);
  }

  key(i: number): Buffer {
    return this.buf.subarray(this.pos[3 * i], this.pos[3 * i + 1]);
  }

  isTombstone(i: number): boolean {
    return (this.tomb[i >>> 3]! & (1 << (i & 7))) !== 0;
  }

  /** Entry i's value as a view, or null for a tombstone. */
  value(i: number): Buffer | null {
    if (this.isTombstone(i)) return null;
    return this.buf.subarray(this.pos[3 * i + 1], this.pos[3 * i + 2]);
  }

  entry(i: number): Entry {
    return { key: this.key(i), value: this.value(i) };
  }

  /** The entry with exactly `key`, or undefined. */
  get(key: Uint8Array): Entry | undefined {
    const i = this.seek(key);
    if (i < this.count && this.keyEquals(i, key)) return this.entry(i);
    return undefined;
  }
}
