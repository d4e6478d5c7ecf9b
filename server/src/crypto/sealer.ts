/**
 * Block sealing contract: compress (zstd) then encrypt (XChaCha20-Poly1305) a block of bytes,
 * binding it to where it lives (AAD: object key + position) so sealed blocks cannot be swapped
 * between objects or positions. Implemented in ./block-sealer.ts.
 */
export interface Sealer {
  /** Returns a self-describing sealed buffer (format version byte, nonce, ciphertext, tag). */
  seal(plain: Uint8Array, aad: Uint8Array): Promise<Buffer>;
  /**
   * Two-stage seal for writers whose AAD is known only later (an SST block's offset depends on
   * the sealed sizes of the blocks before it): the slow part (compression) starts now and runs
   * concurrently with other blocks; the returned block is encrypted synchronously once its AAD
   * is known. `Buffer.concat((await prepare(p)).sealParts(aad))` is the same format as
   * `seal(p, aad)`; the parts let an object assembled from many blocks copy each byte once.
   */
  prepare(plain: Uint8Array, opts?: PrepareOptions): Promise<PreparedBlock>;
  /** Authenticates and decrypts; throws SealError (naming nothing secret) on any mismatch. */
  open(sealed: Uint8Array, aad: Uint8Array): Promise<Buffer>;
}

export interface PrepareOptions {
  /**
   * false: store the block raw (flag 0, same format), skipping the compressor. For small,
   * short-lived blocks (a group commit's WAL object) the compressor's fixed cost — a context
   * and a thread-pool hop on the commit's critical path — outweighs the bytes it saves.
   */
  compress?: boolean;
}

export interface PreparedBlock {
  /** Bytes the sealed block will take (known before encryption: the body is final). */
  readonly sealedLength: number;
  sealParts(aad: Uint8Array): Buffer[];
  /** The same bytes, encrypted off the event loop when the sealer has worker threads. */
  sealAsync(aad: Uint8Array): Promise<Buffer[]>;
}

export class SealError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SealError";
  }
}

/** AAD for a block: the object key and the block's byte offset in it. */
export function blockAad(objectKey: string, offset: number): Buffer {
  const k = Buffer.from(objectKey, "utf8");
  const out = Buffer.allocUnsafe(k.length + 8);
  k.copy(out, 0);
  out.writeBigUInt64BE(BigInt(offset), k.length);
  return out;
}
