import { CorruptObjectError } from "../errors.ts";

/**
 * An SST object failed validation: wrong magic/version, footer checksum mismatch, offsets that
 * do not fit the object, a short read (truncated object), a block that fails authentication
 * (tampered, or copied from another object/position), or a decoded block whose structure is
 * inconsistent. The message always names the object key and what was wrong; reading never
 * falls back to "probably fine" data.
 */
export class SstCorruptError extends CorruptObjectError {
  constructor(objectKey: string, detail: string, options?: { cause?: unknown }) {
    super(objectKey, `SST ${detail}`, options);
    this.name = "SstCorruptError";
  }
}

/**
 * Thrown by decoders that do not know which object they are reading (they see only a
 * plaintext buffer); the reader catches it and re-throws an SstCorruptError with the key.
 */
export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FormatError";
  }
}
