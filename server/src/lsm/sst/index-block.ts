/**
 * The SST index: where each sealed data block lives and the last key in it.
 * Plaintext:
 *   [varint blockCount][varint firstKeyLen][firstKey]
 *   per block: [varint offset][varint sealedLength][varint lastKeyLen][lastKey]
 * Blocks are contiguous from offset 0 and their last keys strictly ascend; a lookup for `key`
 * reads the first block whose lastKey >= key.
 */
import { compareKeys } from "../entry.ts";
import { FormatError } from "./errors.ts";
import { ByteReader, ByteWriter, compareBytes } from "./varint.ts";

export interface IndexEntry {
  offset: number;
  sealedLength: number;
  lastKey: Uint8Array;
}

export function encodeIndex(firstKey: Uint8Array, blocks: readonly IndexEntry[]): Buffer {
  let estimate = 16 + firstKey.length;
  for (const b of blocks) estimate += 20 + b.lastKey.length;
  const w = new ByteWriter(estimate);
  w.varint(blocks.length);
  w.varint(firstKey.length);
  w.bytes(firstKey);
  for (const b of blocks) {
    w.varint(b.offset);
    w.varint(b.sealedLength);
    w.varint(b.lastKey.length);
    w.bytes(b.lastKey);
  }
  return w.finish();
}

/** Approximate fixed JS overhead of the decoded index (arrays, objects), charged to the cache. */
const INDEX_OVERHEAD = 200;

export class IndexBlock {
  readonly firstKey: Buffer;
  /** Views into the decrypted plaintext (no copies). */
  readonly lastKeys: Buffer[];
  readonly offsets: Float64Array;
  readonly lengths: Float64Array;
  private readonly plainLength: number;

  private constructor(firstKey: Buffer, lastKeys: Buffer[], offsets: Float64Array, lengths: Float64Array, plainLength: number) {
    this.firstKey = firstKey;
    this.lastKeys = lastKeys;
    this.offsets = offsets;
    this.lengths = lengths;
    this.plainLength = plainLength;
  }

  get blockCount(): number {
    return this.lastKeys.length;
  }

  get lastKey(): Buffer {
    return this.lastKeys[this.lastKeys.length - 1]!;
  }

  get byteSize(): number {
    // plaintext + 2 x 8 bytes of offsets/lengths + ~80 bytes per Buffer view object
    return this.plainLength + this.lastKeys.length * 96 + INDEX_OVERHEAD;
  }

  /**
   * Decodes and validates against the footer: exactly `expectedBlocks` blocks, contiguous from 0
   * and ending exactly at `dataEnd` (the index's own offset), ascending last keys.
   */
  static decode(plain: Buffer, expectedBlocks: number, dataEnd: number): IndexBlock {
    const r = new ByteReader(plain);
    const n = r.varint();
    if (n !== expectedBlocks) throw new FormatError(`index lists ${n} blocks, footer says ${expectedBlocks}`);
    const firstKey = r.bytes(r.varint());
    const lastKeys: Buffer[] = new Array<Buffer>(n);
    const offsets = new Float64Array(n);
    const lengths = new Float64Array(n);
    let expectOffset = 0;
    for (let i = 0; i < n; i++) {
      const off = r.varint();
      const len = r.varint();
      const lastKey = r.bytes(r.varint());
      if (off !== expectOffset) throw new FormatError(`index block ${i} at offset ${off}, expected ${expectOffset}`);
      if (len === 0) throw new FormatError(`index block ${i} has length 0`);
      if (i === 0 ? compareKeys(lastKey, firstKey) < 0 : compareKeys(lastKey, lastKeys[i - 1]!) <= 0) {
        throw new FormatError(`index block ${i} last key is out of order`);
      }
      offsets[i] = off;
      lengths[i] = len;
      lastKeys[i] = lastKey;
      expectOffset = off + len;
    }
    if (expectOffset !== dataEnd) throw new FormatError(`data blocks end at ${expectOffset}, but the index starts at ${dataEnd}`);
    if (r.remaining !== 0) throw new FormatError(`${r.remaining} trailing bytes after the index`);
    return new IndexBlock(firstKey, lastKeys, offsets, lengths, plain.length);
  }

  /** Index of the first block whose lastKey >= key; blockCount if key is past the SST's last key. */
  findBlock(key: Uint8Array): number {
    const keys = this.lastKeys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(keys[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
