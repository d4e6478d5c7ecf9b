import { bodyLength, type ByteRange, type ObjectMeta, type ObjectStore, type PutBody, type PutResult } from "../server/src/store/object-store.ts";

/** Counts requests and bytes that reach a store (for write amplification and PUTs per GiB). */
export class CountingStore implements ObjectStore {
  readonly description: string;
  puts = 0;
  bytesPut = 0;
  gets = 0;
  bytesGot = 0;
  private readonly inner: ObjectStore;

  constructor(inner: ObjectStore) {
    this.inner = inner;
    this.description = inner.description;
  }

  private counted(body: PutBody, p: Promise<PutResult>): Promise<PutResult> {
    this.puts++;
    this.bytesPut += bodyLength(body);
    return p;
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets++;
    const b = await this.inner.get(key, range);
    this.bytesGot += b.length;
    return b;
  }
  put(key: string, body: PutBody): Promise<PutResult> {
    return this.counted(body, this.inner.put(key, body));
  }
  putIfAbsent(key: string, body: Uint8Array): Promise<PutResult> {
    return this.counted(body, this.inner.putIfAbsent(key, body));
  }
  putIfMatch(key: string, body: Uint8Array, etag: string): Promise<PutResult> {
    return this.counted(body, this.inner.putIfMatch(key, body, etag));
  }
  head(key: string): Promise<ObjectMeta | null> {
    return this.inner.head(key);
  }
  list(prefix: string): Promise<ObjectMeta[]> {
    return this.inner.list(prefix);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
