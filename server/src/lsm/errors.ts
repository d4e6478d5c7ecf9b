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

/** What had not reached the store when a close gave up. */
export interface Unflushed {
  /** Batches (and their encoded bytes) in memory only: lost if the process exits now. */
  notDurableBatches: number;
  notDurableBytes: number;
  /** Memtable data not yet in SSTs; what is durable of it is replayed from the WAL at the next open. */
  memtableBytes: number;
}

/** Db.close() reached its deadline (the store did not take the flush in time). */
export class FlushIncompleteError extends Error {
  readonly unflushed: Unflushed;
  constructor(unflushed: Unflushed) {
    super(
      unflushed.notDurableBatches > 0
        ? `close gave up: ${unflushed.notDurableBatches} write batches (${unflushed.notDurableBytes} bytes) never reached the store`
        : `close gave up: everything written is durable in the WAL, but ${unflushed.memtableBytes} bytes of memtable were not flushed to SSTs (replayed at the next open)`,
    );
    this.name = "FlushIncompleteError";
    this.unflushed = unflushed;
  }
}
