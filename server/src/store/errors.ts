/** Errors thrown by object stores; each names the store, the operation and the key. */
export type StoreOp = "get" | "put" | "putIfAbsent" | "putIfMatch" | "head" | "list" | "delete";

export class ObjectStoreError extends Error {
  readonly store: string;
  readonly op: StoreOp;
  readonly key: string;
  constructor(store: string, op: StoreOp, key: string, message: string, options?: { cause?: unknown }) {
    super(`${op} ${JSON.stringify(key)} on ${store}: ${message}`, options);
    this.name = "ObjectStoreError";
    this.store = store;
    this.op = op;
    this.key = key;
  }
}

export class ObjectNotFoundError extends ObjectStoreError {
  constructor(store: string, op: StoreOp, key: string, options?: { cause?: unknown }) {
    super(store, op, key, "object not found", options);
    this.name = "ObjectNotFoundError";
  }
}

/** A conditional write lost: the object exists (putIfAbsent) or changed (putIfMatch). */
export class PreconditionFailedError extends ObjectStoreError {
  constructor(store: string, op: StoreOp, key: string, options?: { cause?: unknown }) {
    super(store, op, key, "precondition failed (object exists or changed)", options);
    this.name = "PreconditionFailedError";
  }
}

/** Thrown by the fault-injecting store once it has "crashed"; nothing after it is applied. */
export class InjectedCrashError extends ObjectStoreError {
  constructor(store: string, op: StoreOp, key: string) {
    super(store, op, key, "injected crash (fault-injecting store)");
    this.name = "InjectedCrashError";
  }
}

/** A store cannot be opened as configured (bad URL, refused endpoint, missing options). */
export class StoreConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreConfigError";
  }
}

/**
 * The store did not answer within the request deadline, or kept failing until it passed: the
 * request may well succeed if tried again later (an outage, not a bad request). NFS answers
 * NFS3ERR_JUKEBOX for it so that clients retry instead of reporting EIO.
 */
export class StoreUnavailableError extends ObjectStoreError {
  /** "timeout": no answer within the deadline; "failing": every attempt failed. */
  readonly reason: "timeout" | "failing";
  constructor(store: string, op: StoreOp, key: string, reason: "timeout" | "failing", message: string, options?: { cause?: unknown }) {
    super(store, op, key, message, options);
    this.name = "StoreUnavailableError";
    this.reason = reason;
  }
}

export function isStoreUnavailable(err: unknown): err is StoreUnavailableError {
  return err instanceof StoreUnavailableError;
}
