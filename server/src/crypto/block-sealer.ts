/**
 * Block sealer: zstd-compress, then XChaCha20-Poly1305-encrypt, one block at a time.
 *
 * Sealed block format, version 1 (all multi-byte fields are raw bytes, no integers):
 *
 *   offset  size  field
 *   0       1     version   = 0x01
 *   1       1     flags     bit 0: body was zstd-compressed before encryption; bits 1-7: 0
 *   2       24    nonce     unique: a random 16-byte prefix (new every 2^20 blocks) and an 8-byte
 *                           counter under it (xchacha.ts XChaChaKey; readers need not know)
 *   26      n+16  ciphertext ‖ Poly1305 tag
 *
 * AEAD associated data = version ‖ flags ‖ caller AAD. The two header bytes are fixed-length,
 * so the concatenation is unambiguous, and binding them means flipping the compression flag or
 * relabelling the version fails authentication instead of feeding garbage to zstd.
 *
 * Compression is kept only when it makes the block smaller; otherwise the block is stored raw
 * (flag 0), so incompressible data (already-compressed files) costs 42 bytes, not more. Blocks
 * whose sampled byte entropy says they cannot shrink are not even tried (compressibility.ts):
 * on such data zstd costs as much CPU as the encryption and buys nothing.
 * The size of the compressed body leaks (as with any compress-then-encrypt); blocks here are
 * file and metadata contents at rest, not a channel an attacker can inject chosen text into
 * and observe interactively.
 */
import { compress, decompress } from "@mongodb-js/zstd";
import { looksIncompressible } from "./compressibility.ts";
import type { CryptoWorkers } from "./crypto-workers.ts";
import { SealError, type PrepareOptions, type PreparedBlock, type Sealer } from "./sealer.ts";
import { XCHACHA_KEY_BYTES, XCHACHA_NONCE_BYTES, XCHACHA_TAG_BYTES, XChaChaKey } from "./xchacha.ts";

export const SEAL_VERSION = 1;
const FLAG_ZSTD = 0x01;
const KNOWN_FLAGS = FLAG_ZSTD;
const HEADER_BYTES = 2;
const PREFIX_BYTES = HEADER_BYTES + XCHACHA_NONCE_BYTES;
/** Smallest possible sealed block: header, nonce and tag around an empty body. */
export const SEAL_OVERHEAD = PREFIX_BYTES + XCHACHA_TAG_BYTES;
/** A zstd frame costs ≥ 9 bytes of header; blocks this small never shrink, so don't try. */
const MIN_COMPRESS_BYTES = 64;

export interface BlockSealerOptions {
  /** zstd level (default 3: fast, and most of the ratio a filesystem block can give). */
  level?: number;
  /** Set false to never compress (e.g. data known to be compressed already). Default true. */
  compress?: boolean;
  /** Worker threads that encrypt (sealAsync) and open off the event loop. */
  workers?: CryptoWorkers;
}

/** Zero-copy Buffer view of any Uint8Array (the zstd binding only accepts Buffers). */
function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function aeadAad(header: Uint8Array, aad: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + aad.length);
  out[0] = header[0]!;
  out[1] = header[1]!;
  out.set(aad, HEADER_BYTES);
  return out;
}

/** Encrypts an already compressed (or raw) body: `header ‖ nonce ‖ ciphertext ‖ tag` as pieces. */
export function sealBody(k: XChaChaKey, body: Uint8Array, flags: number, aad: Uint8Array): Buffer[] {
  const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  prefix[0] = SEAL_VERSION;
  prefix[1] = flags;
  const [ciphertext, tag] = k.sealParts(body, aeadAad(prefix, aad), prefix.subarray(HEADER_BYTES));
  return [prefix, ciphertext!, tag!];
}

/** Whether a sealed block's body is zstd-compressed (then opening it returns zstd's buffer). */
export function isCompressedBlock(sealed: Uint8Array): boolean {
  return sealed.length > 1 && (sealed[1]! & FLAG_ZSTD) !== 0;
}

/** Checks the header, authenticates, decrypts and (if flagged) decompresses a sealed block. */
export async function openSealed(k: XChaChaKey, sealed: Uint8Array, aad: Uint8Array): Promise<Buffer> {
  if (sealed.length < SEAL_OVERHEAD) {
    throw new SealError(`sealed block is ${sealed.length} bytes, shorter than the minimum ${SEAL_OVERHEAD} (truncated or not a sealed block)`);
  }
  const version = sealed[0]!;
  if (version !== SEAL_VERSION) {
    throw new SealError(`sealed block has format version ${version}; this build reads only version ${SEAL_VERSION} (written by a newer ZeroFS, or not a sealed block)`);
  }
  const flags = sealed[1]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new SealError(`sealed block has unknown flag bits 0x${flags.toString(16).padStart(2, "0")}`);
  }
  const nonce = sealed.subarray(HEADER_BYTES, PREFIX_BYTES);
  const body = k.open(nonce, sealed.subarray(PREFIX_BYTES), aeadAad(sealed, aad));
  if ((flags & FLAG_ZSTD) === 0) return body;
  try {
    return await decompress(body);
  } catch (err) {
    // Authenticated but undecodable means a writer bug, not tampering; still refuse it.
    throw new SealError("sealed block authenticated but its zstd body failed to decompress", { cause: err });
  }
}

export function createBlockSealer(key: Uint8Array, opts: BlockSealerOptions = {}): Sealer {
  if (key.length !== XCHACHA_KEY_BYTES) throw new RangeError(`block sealer key must be ${XCHACHA_KEY_BYTES} bytes, got ${key.length}`);
  const k = new XChaChaKey(key); // holds a private copy: the caller may wipe or reuse its buffer
  const level = opts.level ?? 3;
  const tryCompress = opts.compress ?? true;
  // With worker threads, encryption and opening run there (the same code, crypto-worker.ts).
  const workers = opts.workers;
  const keyIndex = workers?.register(key);

  return {
    async seal(plain: Uint8Array, aad: Uint8Array): Promise<Buffer> {
      const parts = (await this.prepare(plain)).sealParts(aad);
      return Buffer.concat(parts, parts.reduce((n, p) => n + p.length, 0));
    },

    async prepare(plain: Uint8Array, prepareOpts?: PrepareOptions): Promise<PreparedBlock> {
      let body: Uint8Array = plain;
      let flags = 0;
      if (tryCompress && prepareOpts?.compress !== false && plain.length >= MIN_COMPRESS_BYTES && !looksIncompressible(plain)) {
        const packed = await compress(asBuffer(plain), level);
        if (packed.length < plain.length) {
          body = packed;
          flags = FLAG_ZSTD;
        }
      }
      return {
        sealedLength: SEAL_OVERHEAD + body.length,
        sealParts: (aad: Uint8Array): Buffer[] => sealBody(k, body, flags, aad),
        sealAsync: (aad: Uint8Array): Promise<Buffer[]> =>
          workers && keyIndex !== undefined ? workers.seal(keyIndex, body, flags, aad) : Promise.resolve(sealBody(k, body, flags, aad)),
      };
    },

    open(sealed: Uint8Array, aad: Uint8Array): Promise<Buffer> {
      if (workers && keyIndex !== undefined) return workers.open(keyIndex, sealed, aad);
      return openSealed(k, sealed, aad);
    },
  };
}
