import type { StoreOp } from "./errors.ts";
import { bodyLength, type ByteRange, type ObjectMeta, type ObjectStore, type PutBody, type PutResult, type RequestOptions } from "./object-store.ts";

export interface StoreObserver {
  /** Called once per request with its duration, outcome and payload size. */
  request(op: StoreOp, seconds: number, ok: boolean, bytes: number): void;
}

/** Reports every store request (for metrics) without changing its behaviour. */
export class InstrumentedStore implements ObjectStore {
  readonly description: string;
  private readonly inner: ObjectStore;
  private readonly observer: StoreObserver;

  constructor(inner: ObjectStore, observer: StoreObserver) {
    this.inner = inner;
    this.observer = observer;
    this.description = inner.description;
  }

  private async timed<T>(op: StoreOp, bytesIn: number, run: () => Promise<T>, bytesOut?: (r: T) => number): Promise<T> {
    const start = performance.now();
    try {
      const r = await run();
      this.observer.request(op, (performance.now() - start) / 1000, true, bytesIn + (bytesOut ? bytesOut(r) : 0));
      return r;
    } catch (err) {
      this.observer.request(op, (performance.now() - start) / 1000, false, bytesIn);
      throw err;
    }
  }

  get(key: string, range?: ByteRange, opts?: RequestOptions): Promise<Buffer> {
    return this.timed("get", 0, () => this.inner.get(key, range, opts), (b) => b.length);
  }
  put(key: string, body: PutBody, opts?: RequestOptions): Promise<PutResult> {
    return this.timed("put", bodyLength(body), () => this.inner.put(key, body, opts));
  }
  putIfAbsent(key: string, body: Uint8Array, opts?: RequestOptions): Promise<PutResult> {
    return this.timed("putIfAbsent", body.length, () => this.inner.putIfAbsent(key, body, opts));
  }
  putIfMatch(key: string, body: Uint8Array, etag: string, opts?: RequestOptions): Promise<PutResult> {
    return this.timed("putIfMatch", body.length, () => this.inner.putIfMatch(key, body, etag, opts));
  }
  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.timed("head", 0, () => this.inner.head(key, opts));
  }
  list(prefix: string, opts?: RequestOptions): Promise<ObjectMeta[]> {
    return this.timed("list", 0, () => this.inner.list(prefix, opts));
  }
  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.timed("delete", 0, () => this.inner.delete(key, opts));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
