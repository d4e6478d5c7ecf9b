/**
 * Writes one SST object (layout in FORMAT.md):
 *   [sealed data block 0]...[sealed data block n-1][sealed index][sealed bloom][footer]
 *
 * Every sealed region is bound to its byte offset in the object (AAD = blockAad(key, offset)).
 * Because a sealed block's length is known only after sealing (compression), block i's offset
 * depends on blocks 0..i-1; sealing therefore runs as a promise chain that starts as soon as a
 * block is complete — compression (zstd on the libuv pool) overlaps with the caller building
 * further blocks whenever it yields, and finish() only waits for the tail of the chain.
 */
import { blockAad, type Sealer } from "../../crypto/sealer.ts";
import { BlockBuilder, entryBlockBytes } from "./block-builder.ts";
import { BloomFilterBuilder } from "./bloom-filter.ts";
import { encodeFooter, FOOTER_SIZE } from "./footer.ts";
import { encodeIndex, type IndexEntry } from "./index-block.ts";
import { compareBytes } from "./varint.ts";

function hexPreview(key: Uint8Array): string {
  const hex = Buffer.from(key.buffer, key.byteOffset, Math.min(key.length, 48)).toString("hex");
  return key.length > 48 ? `${hex}… (${key.length} bytes)` : hex;
}

export interface SstInfo {
  /** Object key the SST was sealed for (AAD); it must be stored under exactly this key. */
  key: string;
  /** Body length in bytes. */
  size: number;
  firstKey: Buffer;
  lastKey: Buffer;
  entryCount: number;
}

export interface SstBuilderOptions {
  /** Target plaintext bytes per data block (default 16 KiB). A larger single entry gets its own block. */
  blockSize?: number;
  /** Bloom filter bits per key (default 10 → ~1% false positives); 0 disables the filter. */
  bloomBitsPerKey?: number;
}

export const DEFAULT_BLOCK_SIZE = 16 * 1024;
export const DEFAULT_BLOOM_BITS_PER_KEY = 10;

export class SstBuilder {
  readonly objectKey: string;
  private readonly sealer: Sealer;
  private readonly block: BlockBuilder;
  private readonly bloom: BloomFilterBuilder;

  private firstKey: Buffer | null = null;
  /** Copy of the previous key (the caller may reuse its buffers). */
  private prevKey: Buffer | null = null;
  private entries = 0;
  private finishing = false;

  /** Last keys of completed blocks, in order (copied; small). */
  private readonly blockLastKeys: Buffer[] = [];
  /** Plaintext bytes of completed blocks (the size estimate; sealed sizes arrive later). */
  private completedPlainBytes = 0;
  private indexKeyBytes = 0;

  // Written only by the seal chain, in block order.
  private sealChain: Promise<void> = Promise.resolve();
  private readonly sealedParts: Buffer[] = [];
  private readonly sealedLengths: number[] = [];
  private sealedBytes = 0;

  constructor(objectKey: string, sealer: Sealer, opts?: SstBuilderOptions) {
    const blockSize = opts?.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (!Number.isInteger(blockSize) || blockSize < 64 || blockSize > 256 * 1024 * 1024) {
      throw new RangeError(`blockSize must be an integer in [64, 256 MiB], got ${blockSize}`);
    }
    this.objectKey = objectKey;
    this.sealer = sealer;
    this.block = new BlockBuilder(blockSize);
    this.bloom = new BloomFilterBuilder(opts?.bloomBitsPerKey ?? DEFAULT_BLOOM_BITS_PER_KEY);
  }

  get entryCount(): number {
    return this.entries;
  }

  /**
   * Approximate object size if finished now, using plaintext sizes (an upper-ish bound: sealing
   * compresses, and adds ~40 bytes per block). Callers use it to cut SSTs at a target size.
   */
  get estimatedSize(): number {
    const blocks = this.blockLastKeys.length + (this.block.isEmpty ? 0 : 1);
    return (
      this.completedPlainBytes +
      (this.block.isEmpty ? 0 : this.block.size) +
      this.indexKeyBytes + (this.block.isEmpty ? 0 : this.block.lastKey().length) + blocks * 12 + 16 +
      this.bloom.estimatedBytes() +
      FOOTER_SIZE
    );
  }

  /** Appends an entry; keys must be strictly ascending. `value === null` writes a tombstone. */
  add(key: Buffer, value: Buffer | null): void {
    if (this.finishing) throw new Error(`SstBuilder(${this.objectKey}): add() after finish()`);
    if (this.prevKey !== null && compareBytes(key, this.prevKey) <= 0) {
      throw new Error(
        `SstBuilder(${this.objectKey}): keys must be strictly ascending; got ${hexPreview(key)} after ${hexPreview(this.prevKey)}`,
      );
    }
    const bytes = entryBlockBytes(key, value);
    if (this.block.wouldOverflow(bytes)) this.completeBlock();
    this.block.add(key, value, bytes);
    // The key is now also in the block buffer; keep a view of it there instead of copying again.
    this.prevKey = this.block.lastKey();
    if (this.firstKey === null) this.firstKey = Buffer.from(key);
    this.bloom.add(key);
    this.entries++;
  }

  private completeBlock(): void {
    const lastKey = Buffer.from(this.block.lastKey());
    const plain = this.block.finish();
    // prevKey pointed into the finished block's buffer; keep it valid with the copy.
    this.prevKey = lastKey;
    this.blockLastKeys.push(lastKey);
    this.completedPlainBytes += plain.length;
    this.indexKeyBytes += lastKey.length;
    this.enqueueSeal(plain);
  }

  private enqueueSeal(plain: Buffer): void {
    // Compression starts at once on the thread pool, so blocks compress in parallel; the
    // encryption binds the block's offset, known only once earlier blocks are sealed, so it
    // runs in block order (it is fast and synchronous).
    const prepared = this.sealer.prepare(plain);
    prepared.catch(() => {});
    this.sealChain = this.sealChain.then(async () => {
      const offset = this.sealedBytes;
      let sealed: Buffer[];
      try {
        sealed = (await prepared).sealParts(blockAad(this.objectKey, offset));
      } catch (err) {
        throw new Error(`SstBuilder(${this.objectKey}): sealing the region at offset ${offset} failed`, { cause: err });
      }
      let length = 0;
      for (const part of sealed) {
        this.sealedParts.push(part);
        length += part.length;
      }
      this.sealedLengths.push(length);
      this.sealedBytes += length;
    });
    // A failure is reported by finish(); until then keep it from becoming an unhandled rejection.
    this.sealChain.catch(() => {});
  }

  /** Seals the remaining blocks, the index and the bloom filter, and assembles the object. */
  async finish(): Promise<{ body: Buffer; info: SstInfo }> {
    if (this.finishing) throw new Error(`SstBuilder(${this.objectKey}): finish() called twice`);
    this.finishing = true;
    if (this.entries === 0) throw new Error(`SstBuilder(${this.objectKey}): refusing to build an empty SST`);
    this.completeBlock();
    const bloomPlain = this.bloom.finish();
    await this.sealChain;

    const blocks: IndexEntry[] = [];
    let off = 0;
    for (let i = 0; i < this.sealedLengths.length; i++) {
      const len = this.sealedLengths[i]!;
      blocks.push({ offset: off, sealedLength: len, lastKey: this.blockLastKeys[i]! });
      off += len;
    }
    const indexOffset = this.sealedBytes;
    this.enqueueSeal(encodeIndex(this.firstKey!, blocks));
    this.enqueueSeal(bloomPlain);
    await this.sealChain;
    const indexLength = this.sealedLengths[blocks.length]!;
    const bloomLength = this.sealedLengths[blocks.length + 1]!;
    const footer = encodeFooter({
      indexOffset,
      indexLength,
      bloomOffset: indexOffset + indexLength,
      bloomLength,
      entryCount: this.entries,
      blockCount: blocks.length,
    });
    this.sealedParts.push(footer);
    const body = Buffer.concat(this.sealedParts, this.sealedBytes + FOOTER_SIZE);
    this.sealedParts.length = 0;
    return {
      body,
      info: {
        key: this.objectKey,
        size: body.length,
        firstKey: this.firstKey!,
        lastKey: this.blockLastKeys[this.blockLastKeys.length - 1]!,
        entryCount: this.entries,
      },
    };
  }
}
