/**
 * Block sealing contract: compress (zstd) then encrypt (XChaCha20-Poly1305) a block of bytes,
 * binding it to where it lives (AAD: object key + position) so sealed blocks cannot be swapped
 * between objects or positions. Implemented in ./block-sealer.ts.
 */
export interface Sealer {
  /** Returns a self-describing sealed buffer (format version byte, nonce, ciphertext, tag). */
  seal(plain: Uint8Array, aad: Uint8Array): Promise<Buffer>;
  /** Authenticates and decrypts; throws SealError (naming nothing secret) on any mismatch. */
  open(sealed: Uint8Array, aad: Uint8Array): Promise<Buffer>;
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
