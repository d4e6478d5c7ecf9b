/**
 * Builds one data block's plaintext:
 *   entries:  per entry [u8 kind (0 put, 1 tombstone)][varint keyLen][varint valueLen][key][value]
 *   offsets:  per entry u32le offset of the entry's first byte from the block start
 *   trailer:  u32le entry count
 * The caller (SstBuilder) decides when a block is full via `wouldOverflow`; a single entry
 * bigger than the target makes a block of its own, sized to fit it.
 */
import { varintSize, writeVarint } from "./varint.ts";

export const KIND_PUT = 0;
export const KIND_TOMBSTONE = 1;

/** Bytes an entry adds to a block, including its u32 slot in the offsets array. */
export function entryBlockBytes(key: Uint8Array, value: Uint8Array | null): number {
  const vlen = value === null ? 0 : value.length;
  return 1 + varintSize(key.length) + varintSize(vlen) + key.length + vlen + 4;
}

export class BlockBuilder {
  private readonly targetSize: number;
  /** Allocated per block and handed out by finish(): the sealer consumes it asynchronously. */
  private buf: Buffer | null = null;
  private pos = 0;
  private offsets: number[] = [];
  private lastKeyStart = 0;
  private lastKeyEnd = 0;

  constructor(targetSize: number) {
    this.targetSize = targetSize;
  }

  get count(): number {
    return this.offsets.length;
  }

  get isEmpty(): boolean {
    return this.offsets.length === 0;
  }

  /** Current plaintext size if finished now (entries + offsets + count). */
  get size(): number {
    return this.pos + 4 * this.offsets.length + 4;
  }

  /** True if adding an entry of `bytes` (see entryBlockBytes) would push a non-empty block past the target. */
  wouldOverflow(bytes: number): boolean {
    return this.offsets.length > 0 && this.size + bytes > this.targetSize;
  }

  /** The last added key: a view into the block buffer (copy it to keep it past finish()). */
  lastKey(): Buffer {
    return this.buf!.subarray(this.lastKeyStart, this.lastKeyEnd);
  }

  /** `bytes` must be entryBlockBytes(key, value) (the caller computed it for wouldOverflow). */
  add(key: Uint8Array, value: Uint8Array | null, bytes: number): void {
    if (this.buf === null) {
      // Exact capacity rule: the block is cut before it exceeds max(target, first entry + 4),
      // so entries and the trailer always fit — no reallocation, no copy.
      this.buf = Buffer.allocUnsafe(Math.max(this.targetSize, bytes + 4));
    } else if (this.size + bytes > this.buf.length) {
      // Only when a caller adds past wouldOverflow(); SstBuilder never does.
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.size + bytes));
      this.buf.copy(next, 0, 0, this.pos);
      this.buf = next;
    }
    const buf = this.buf;
    this.offsets.push(this.pos);
    let p = this.pos;
    buf[p++] = value === null ? KIND_TOMBSTONE : KIND_PUT;
    p = writeVarint(buf, p, key.length);
    p = writeVarint(buf, p, value === null ? 0 : value.length);
    buf.set(key, p);
    this.lastKeyStart = p;
    p += key.length;
    this.lastKeyEnd = p;
    if (value !== null) {
      buf.set(value, p);
      p += value.length;
    }
    this.pos = p;
  }

  /** Returns the finished plaintext (a view of a buffer now owned by the caller) and resets. */
  finish(): Buffer {
    const buf = this.buf!;
    let p = this.pos;
    for (const off of this.offsets) {
      buf.writeUInt32LE(off, p);
      p += 4;
    }
    buf.writeUInt32LE(this.offsets.length, p);
    p += 4;
    this.buf = null;
    this.pos = 0;
    this.offsets = [];
    return buf.subarray(0, p);
  }
}
