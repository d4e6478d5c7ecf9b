/**
 * Bloom filter over an SST's keys. The format depends on the exact hash, so it is specified
 * here and in FORMAT.md and must never change for format version 1.
 *
 * Hash ("FNV-1a x2 + fmix32"): two 32-bit FNV-1a style hashes computed in one pass over the
 * key bytes, each finished with MurmurHash3's fmix32 avalanche (FNV's low bits are weak on
 * their own, and we take them modulo the bit count):
 *   h1 = 0x811c9dc5; h2 = 0x050c5d1f
 *   for each byte b: h1 = imul32(h1 ^ b, 0x01000193); h2 = imul32(h2 ^ b, 0x5bd1e995)
 *   h1 = fmix32(h1); h2 = fmix32(h2)
 * Together (h1, h2) form the 64-bit key hash. Probe j (0 <= j < k) sets/tests bit
 *   ((h1 + j * h2) mod 2^32) mod numBits
 * (Kirsch-Mitzenmacher double hashing; computed by repeated 32-bit wrapping addition).
 * 32-bit integer math keeps it fast in JS (no BigInt).
 *
 * Serialized plaintext: [u8 k][u32le numBits][ceil(numBits/8) bytes of bits]; bit i is
 * `bytes[i >> 3] & (1 << (i & 7))`. numBits = 0 (k = 0) means "no filter": every key may be
 * present.
 */
import { FormatError } from "./errors.ts";

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hashes `key`; h1 is returned and h2 written to `hashScratch[0]` — this avoids allocating a
 * pair per lookup on the hot path.
 */
const hashScratch = new Uint32Array(1);
export function bloomHash(key: Uint8Array): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x050c5d1f;
  for (let i = 0; i < key.length; i++) {
    const b = key[i]!;
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x5bd1e995);
  }
  hashScratch[0] = fmix32(h2);
  return fmix32(h1);
}

/** The two 32-bit halves of the key hash, for tests and callers that want both. */
export function bloomHash64(key: Uint8Array): [number, number] {
  const h1 = bloomHash(key);
  return [h1, hashScratch[0]!];
}

/** Number of probes for a bits-per-key budget: round(bitsPerKey * ln 2), clamped to [1, 30]. */
export function probesFor(bitsPerKey: number): number {
  return Math.min(30, Math.max(1, Math.round(bitsPerKey * Math.LN2)));
}

const HEADER = 5;

/**
 * Collects key hashes (8 bytes per key; keys themselves are not retained) and serializes the
 * filter once the final key count is known.
 */
export class BloomFilterBuilder {
  private readonly bitsPerKey: number;
  private hashes = new Uint32Array(2048);
  private count = 0;

  constructor(bitsPerKey: number) {
    if (!(bitsPerKey >= 0) || !Number.isFinite(bitsPerKey)) {
      throw new RangeError(`bloomBitsPerKey must be a finite number >= 0, got ${bitsPerKey}`);
    }
    this.bitsPerKey = bitsPerKey;
  }

  add(key: Uint8Array): void {
    if (this.bitsPerKey === 0) return;
    if (this.count * 2 + 2 > this.hashes.length) {
      const next = new Uint32Array(this.hashes.length * 2);
      next.set(this.hashes);
      this.hashes = next;
    }
    this.hashes[this.count * 2] = bloomHash(key);
    this.hashes[this.count * 2 + 1] = hashScratch[0]!;
    this.count++;
  }

  /** Serialized size the filter will have (for size estimates before finish). */
  estimatedBytes(): number {
    return HEADER + Math.ceil((this.count * this.bitsPerKey) / 8);
  }

  finish(): Buffer {
    if (this.bitsPerKey === 0 || this.count === 0) {
      const out = Buffer.alloc(HEADER); // k = 0, numBits = 0: no filter
      return out;
    }
    // At least 64 bits so tiny SSTs still get a useful false-positive rate; whole bytes.
    const numBits = Math.max(64, Math.ceil((this.count * this.bitsPerKey) / 8) * 8);
    const k = probesFor(this.bitsPerKey);
    const out = Buffer.alloc(HEADER + numBits / 8);
    out[0] = k;
    out.writeUInt32LE(numBits, 1);
    const bits = out.subarray(HEADER);
    const hs = this.hashes;
    for (let i = 0; i < this.count; i++) {
      let h = hs[i * 2]!;
      const delta = hs[i * 2 + 1]!;
      for (let j = 0; j < k; j++) {
        const bit = h % numBits;
        bits[bit >>> 3]! |= 1 << (bit & 7);
        h = (h + delta) >>> 0;
      }
    }
    return out;
  }
}

/** A decoded filter; `bits` is a view into the decrypted plaintext (no copy). */
export class BloomFilter {
  readonly k: number;
  readonly numBits: number;
  private readonly bits: Buffer;

  private constructor(k: number, numBits: number, bits: Buffer) {
    this.k = k;
    this.numBits = numBits;
    this.bits = bits;
  }

  static decode(plain: Buffer): BloomFilter {
    if (plain.length < HEADER) throw new FormatError(`bloom block is ${plain.length} bytes, need >= ${HEADER}`);
    const k = plain[0]!;
    const numBits = plain.readUInt32LE(1);
    if (numBits % 8 !== 0) throw new FormatError(`bloom bit count ${numBits} is not a multiple of 8`);
    if (plain.length !== HEADER + numBits / 8) {
      throw new FormatError(`bloom block is ${plain.length} bytes, expected ${HEADER + numBits / 8} for ${numBits} bits`);
    }
    if ((numBits === 0) !== (k === 0) || k > 30) {
      throw new FormatError(`bloom block has inconsistent k=${k} for ${numBits} bits`);
    }
    return new BloomFilter(k, numBits, plain.subarray(HEADER));
  }

  get byteSize(): number {
    return this.bits.length + HEADER;
  }

  mayContain(key: Uint8Array): boolean {
    const numBits = this.numBits;
    if (numBits === 0) return true;
    let h = bloomHash(key);
    const delta = hashScratch[0]!;
    const bits = this.bits;
    for (let j = 0; j < this.k; j++) {
      const bit = h % numBits;
      if ((bits[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
      h = (h + delta) >>> 0;
    }
    return true;
  }
}
