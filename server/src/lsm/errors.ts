/** The writer lost ownership of the store to a newer writer; it must stop accepting writes. */
export class FencedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(`fenced: ${message}`, options);
    this.name = "FencedError";
  }
}

/** An object the engine depends on is malformed, truncated, missing or fails authentication. */
export class CorruptObjectError extends Error {
  readonly objectKey: string;
  constructor(objectKey: string, message: string, options?: { cause?: unknown }) {
    super(`object ${JSON.stringify(objectKey)}: ${message}`, options);
    this.name = "CorruptObjectError";
    this.objectKey = objectKey;
  }
}

/** The database was closed (or failed) and takes no more requests. */
export class DbClosedError extends Error {
  constructor(message = "database is closed", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DbClosedError";
  }
}
