/**
 * Reads one SST object (layout in FORMAT.md) through the shared BlockCache.
 *
 * open() costs one ranged GET of the object's tail (the last 64 KiB, which usually holds the
 * sealed index, the sealed bloom filter and the footer); a second GET happens only when the
 * index + bloom are larger. The decoded index + bloom ("handle") is cached too, so reopening a
 * hot SST costs nothing. Every failure to read or validate names the object key and what was
 * wrong (SstCorruptError); a missing object is reported the same way since an SST that the
 * manifest references must exist.
 */
import { blockAad, type Sealer } from "../../crypto/sealer.ts";
import { ObjectNotFoundError } from "../../store/errors.ts";
import type { ObjectStore } from "../../store/object-store.ts";
import { compareKeys, type Entry } from "../entry.ts";
import { Block } from "./block.ts";
import { type BlockCache, type Cacheable, blockCacheKey, handleCacheKey } from "./block-cache.ts";
import { BloomFilter } from "./bloom-filter.ts";
import { FormatError, SstCorruptError } from "./errors.ts";
import { decodeFooter, FOOTER_SIZE, type Footer } from "./footer.ts";
import { IndexBlock } from "./index-block.ts";
import { compareBytes } from "./varint.ts";

/** Bytes read from the end of the object by open(); covers index + bloom of typical SSTs. */
export const TAIL_READ_BYTES = 64 * 1024;
export const DEFAULT_READ_AHEAD = 4;
const MAX_READ_AHEAD = 32;

/** Decoded, validated metadata of one SST; immutable and shared by every reader of the object. */
class SstHandle implements Cacheable {
  readonly key: string;
  readonly size: number;
  readonly footer: Footer;
  readonly index: IndexBlock;
  readonly bloom: BloomFilter;
  /** Lazily built `${key}#${offset}` strings, so cache lookups do not concatenate each time. */
  readonly blockKeys: (string | undefined)[];

  constructor(key: string, size: number, footer: Footer, index: IndexBlock, bloom: BloomFilter) {
    this.key = key;
    this.size = size;
    this.footer = footer;
    this.index = index;
    this.bloom = bloom;
    this.blockKeys = new Array<string | undefined>(index.blockCount);
  }

  get byteSize(): number {
    return this.index.byteSize + this.bloom.byteSize + this.blockKeys.length * 8 + 256;
  }
}

const NOT_FOUND: Promise<Entry | undefined> = Promise.resolve(undefined);

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Low-level reads of one object: ranged GET with length check, and authenticated open. */
class ObjectAccess {
  readonly store: ObjectStore;
  readonly key: string;
  readonly size: number;
  readonly sealer: Sealer;

  constructor(store: ObjectStore, key: string, size: number, sealer: Sealer) {
    this.store = store;
    this.key = key;
    this.size = size;
    this.sealer = sealer;
  }

  async read(offset: number, length: number, what: string): Promise<Buffer> {
    let got: Buffer;
    try {
      got = await this.store.get(this.key, { offset, length });
    } catch (err) {
      if (err instanceof ObjectNotFoundError) {
        throw new SstCorruptError(this.key, `object is missing from ${this.store.description} (reading ${what})`, { cause: err });
      }
      throw err; // transient store errors stay ObjectStoreErrors (they name the key) so callers can retry
    }
    if (got.length !== length) {
      throw new SstCorruptError(
        this.key,
        `short read of ${what}: wanted ${length} bytes at offset ${offset}, got ${got.length} ` +
          `(object truncated? expected ${this.size} bytes)`,
      );
    }
    return got;
  }

  async open(sealed: Buffer, offset: number, what: string): Promise<Buffer> {
    try {
      return await this.sealer.open(sealed, blockAad(this.key, offset));
    } catch (err) {
      throw new SstCorruptError(
        this.key,
        `${what} at offset ${offset} (${sealed.length} bytes) failed to open: ${describe(err)} ` +
          `(corrupted, or sealed for another object key/position)`,
        { cause: err },
      );
    }
  }

  decode<T>(what: string, offset: number, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof FormatError) throw new SstCorruptError(this.key, `${what} at offset ${offset}: ${err.message}`, { cause: err });
      throw err;
    }
  }
}

async function loadHandle(io: ObjectAccess): Promise<SstHandle> {
  const size = io.size;
  if (!Number.isSafeInteger(size) || size < FOOTER_SIZE) {
    throw new SstCorruptError(io.key, `object size ${size} is smaller than the ${FOOTER_SIZE}-byte footer`);
  }
  const tailLen = Math.min(size, TAIL_READ_BYTES);
  const tailStart = size - tailLen;
  const tail = await io.read(tailStart, tailLen, "the tail (index, bloom filter, footer)");
  const footerStart = size - FOOTER_SIZE;
  const footer = io.decode("footer", footerStart, () => decodeFooter(tail.subarray(tailLen - FOOTER_SIZE), size));

  // meta = [index][bloom], i.e. object bytes [indexOffset, footerStart).
  let meta: Buffer;
  if (footer.indexOffset >= tailStart) {
    meta = tail.subarray(footer.indexOffset - tailStart, tailLen - FOOTER_SIZE);
  } else {
    const head = await io.read(footer.indexOffset, tailStart - footer.indexOffset, "the index and bloom filter");
    meta = Buffer.concat([head, tail.subarray(0, tailLen - FOOTER_SIZE)]);
  }
  const [indexPlain, bloomPlain] = await Promise.all([
    io.open(meta.subarray(0, footer.indexLength), footer.indexOffset, "index"),
    io.open(meta.subarray(footer.indexLength), footer.bloomOffset, "bloom filter"),
  ]);
  const index = io.decode("index", footer.indexOffset, () => IndexBlock.decode(indexPlain, footer.blockCount, footer.indexOffset));
  const bloom = io.decode("bloom filter", footer.bloomOffset, () => BloomFilter.decode(bloomPlain));
  return new SstHandle(io.key, size, footer, index, bloom);
}

export interface ScanOptions {
  /** Blocks fetched ahead of the one being read (default 4, max 32; 0 disables). */
  readAhead?: number;
  /**
   * Adjacent blocks the scan needs that are neither cached nor loading are fetched together,
   * with one ranged GET of up to this many bytes (default 0: one GET per block). Fewer, larger
   * requests: one file open instead of one per block on a local store, fewer round trips on S3.
   */
  coalesceBytes?: number;
  /**
   * Chunks of at most this many entries (default: the rest of each block). A reader that wants
   * one page (a READDIR of 50 entries) says so: without it every page materialized the rest of
   * a whole block in every SST holding the range, and the merge's look-ahead one more (5× the
   * entries served, measured on a 2,000-entry directory).
   */
  chunkEntries?: number;
}

export class SstReader {
  private readonly io: ObjectAccess;
  private readonly cache: BlockCache;
  private readonly handle: SstHandle;
  private readonly index: IndexBlock;

  private constructor(io: ObjectAccess, cache: BlockCache, handle: SstHandle) {
    this.io = io;
    this.cache = cache;
    this.handle = handle;
    this.index = handle.index;
  }

  static async open(store: ObjectStore, info: { key: string; size: number }, sealer: Sealer, cache: BlockCache): Promise<SstReader> {
    const io = new ObjectAccess(store, info.key, info.size, sealer);
    const handle = await cache.getOrLoad(handleCacheKey(info.key), () => loadHandle(io));
    if (handle.size !== info.size) {
      throw new SstCorruptError(info.key, `size mismatch: cached SST is ${handle.size} bytes, caller expects ${info.size}`);
    }
    return new SstReader(io, cache, handle);
  }

  get objectKey(): string {
    return this.io.key;
  }
  get size(): number {
    return this.io.size;
  }
  get firstKey(): Buffer {
    return this.index.firstKey;
  }
  get lastKey(): Buffer {
    return this.index.lastKey;
  }
  get entryCount(): number {
    return this.handle.footer.entryCount;
  }
  get blockCount(): number {
    return this.index.blockCount;
  }

  /** Bloom filter check: false means the key is certainly not in this SST. */
  mayContain(key: Uint8Array): boolean {
    return this.handle.bloom.mayContain(key);
  }

  /**
   * The entry for `key` (value null = tombstone), or undefined if this SST has no entry for it.
   * When the block is cached the answer is computed synchronously (one resolved promise, no
   * awaits); otherwise it waits for the (deduplicated) block load.
   */
  get(key: Buffer): Promise<Entry | undefined> {
    const index = this.index;
    if (compareBytes(key, index.firstKey) < 0 || !this.handle.bloom.mayContain(key)) return NOT_FOUND;
    const i = index.findBlock(key);
    if (i >= index.blockCount) return NOT_FOUND;
    const b = this.block(i);
    if (b instanceof Block) return Promise.resolve(b.get(key));
    return b.then((blk) => blk.get(key));
  }

  /**
   * Entries with from <= key < to in key order (both bounds optional). Entries are views into
   * cached blocks (copy them to keep them long). While reading block i, blocks
   * i+1..i+readAhead that the range needs are already being fetched.
   */
  async *scan(from?: Buffer, to?: Buffer, opts?: ScanOptions): AsyncIterableIterator<Entry> {
    for await (const chunk of this.scanChunks(from, to, opts)) yield* chunk;
  }

  /** `scan` a block at a time: one array of entries per data block read. */
  async *scanChunks(from?: Buffer, to?: Buffer, opts?: ScanOptions): AsyncGenerator<Entry[]> {
    const index = this.index;
    const n = index.blockCount;
    const readAhead = Math.max(0, Math.min(MAX_READ_AHEAD, Math.floor(opts?.readAhead ?? DEFAULT_READ_AHEAD)));
    const coalesceBytes = Math.max(0, opts?.coalesceBytes ?? 0);
    const limit = Math.max(1, opts?.chunkEntries ?? Infinity);
    if (from !== undefined && to !== undefined && compareKeys(from, to) >= 0) return;
    const start = from === undefined ? 0 : index.findBlock(from);
    let i = start;
    // Blocks after the first one whose lastKey >= to cannot hold keys < to.
    const end = to === undefined ? n : Math.min(n, index.findBlock(to) + 1);
    let prefetchedTo = i; // blocks < prefetchedTo have been requested
    for (; i < end; i++) {
      // Request the block needed now before the read-ahead ones.
      let b: Block | Promise<Block> | undefined;
      if (coalesceBytes > 0 && i >= prefetchedTo) ({ next: prefetchedTo, first: b } = this.requestRun(i, end, coalesceBytes, true));
      b ??= this.block(i);
      const ahead = Math.min(end, i + 1 + readAhead);
      if (coalesceBytes > 0) {
        while (prefetchedTo < ahead) prefetchedTo = this.requestRun(prefetchedTo, end, coalesceBytes, false).next;
      } else {
        for (let j = Math.max(prefetchedTo, i + 1); j < ahead; j++) this.prefetch(j);
        prefetchedTo = Math.max(prefetchedTo, ahead);
      }
      const block = b instanceof Block ? b : await b;
      // Only the first block can hold keys < from.
      let e = from !== undefined && i === start ? block.seek(from) : 0;
      const count = block.count;
      let out: Entry[] = [];
      let done = false;
      for (; e < count; e++) {
        if (to !== undefined && block.compareKey(e, to) >= 0) {
          done = true;
          break;
        }
        out.push(block.entry(e));
        if (out.length >= limit) {
          yield out;
          out = [];
        }
      }
      if (out.length > 0) yield out;
      if (done) return;
    }
  }

  private blockKey(i: number): string {
    const keys = this.handle.blockKeys;
    let k = keys[i];
    if (k === undefined) {
      k = blockCacheKey(this.io.key, this.index.offsets[i]!);
      keys[i] = k;
    }
    return k;
  }

  /** Block i from the cache (synchronously when resident), or a shared promise of its load. */
  private block(i: number): Block | Promise<Block> {
    return this.cache.getOrLoad(this.blockKey(i), () => this.fetchBlock(i));
  }

  private prefetch(i: number): void {
    this.cache.prefetch(this.blockKey(i), () => this.fetchBlock(i));
  }

  private async fetchBlock(i: number): Promise<Block> {
    const offset = this.index.offsets[i]!;
    const what = `data block ${i}/${this.index.blockCount}`;
    const sealed = await this.io.read(offset, this.index.lengths[i]!, what);
    return this.openBlock(i, sealed);
  }

  private async openBlock(i: number, sealed: Buffer): Promise<Block> {
    const offset = this.index.offsets[i]!;
    const what = `data block ${i}/${this.index.blockCount}`;
    const plain = await this.io.open(sealed, offset, what);
    return this.io.decode(what, offset, () => Block.decode(plain));
  }

  /**
   * Starts loading block i — unless it is cached or loading — together with the blocks after it
   * (below `end`) that are neither, up to `maxBytes` in all, with one ranged GET; each block is
   * then opened and cached on its own. `demand`: block i is needed now; `first` is then block i
   * (or the promise of it). `next` is the index after the last block considered.
   */
  private requestRun(i: number, end: number, maxBytes: number, demand: boolean): { next: number; first?: Block | Promise<Block> } {
    const { offsets, lengths } = this.index;
    if (this.cache.has(this.blockKey(i))) return demand ? { next: i + 1, first: this.block(i) } : { next: i + 1 };
    let j = i + 1;
    let bytes = lengths[i]!;
    while (j < end && bytes + lengths[j]! <= maxBytes && offsets[j] === offsets[j - 1]! + lengths[j - 1]! && !this.cache.has(this.blockKey(j))) {
      bytes += lengths[j]!;
      j++;
    }
    if (j === i + 1) {
      if (demand) return { next: j, first: this.block(i) };
      this.prefetch(i);
      return { next: j };
    }
    const first = offsets[i]!;
    const last = j - 1;
    let fetched: Promise<Buffer> | undefined;
    const fetch = (): Promise<Buffer> => (fetched ??= this.io.read(first, bytes, `data blocks ${i}..${last}/${this.index.blockCount}`));
    let firstBlock: Block | Promise<Block> | undefined;
    for (let k = i; k < j; k++) {
      const load = async (): Promise<Block> => {
        const run = await fetch();
        const at = offsets[k]! - first;
        return this.openBlock(k, run.subarray(at, at + lengths[k]!));
      };
      if (k === i && demand) firstBlock = this.cache.getOrLoad(this.blockKey(k), load);
      else this.cache.prefetch(this.blockKey(k), load);
    }
    return firstBlock === undefined ? { next: j } : { next: j, first: firstBlock };
  }
}
