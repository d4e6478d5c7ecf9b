/**
 * In-memory object store for tests. Same contract as the durable stores; every call is atomic
 * because it completes within one turn of the event loop. Bodies are copied in and out so a
 * caller mutating its buffer cannot change stored bytes (the durable stores behave that way).
 */
import { ObjectNotFoundError, PreconditionFailedError } from "./errors.ts";
import { assertValidKey, assertValidPrefix, assertValidRange, compareKeys } from "./keys.ts";
import { type ByteRange, joinBody, type ObjectMeta, type ObjectStore, type PutBody, type PutResult } from "./object-store.ts";

interface Entry {
  body: Buffer;
  etag: string;
  lastModified: Date;
}

let storeCounter = 0;

export class MemoryStore implements ObjectStore {
  readonly description: string;
  readonly #objects = new Map<string, Entry>();
  #version = 0;

  constructor(name?: string) {
    this.description = `memory://${name ?? String(++storeCounter)}`;
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    assertValidKey(this.description, "get", key);
    if (range) assertValidRange(this.description, key, range);
    const entry = this.#objects.get(key);
    if (!entry) throw new ObjectNotFoundError(this.description, "get", key);
    if (!range) return Buffer.from(entry.body);
    const start = Math.min(range.offset, entry.body.length);
    return Buffer.from(entry.body.subarray(start, Math.min(start + range.length, entry.body.length)));
  }

  async put(key: string, body: PutBody): Promise<PutResult> {
    assertValidKey(this.description, "put", key);
    return this.#store(key, joinBody(body));
  }

  async putIfAbsent(key: string, body: Uint8Array): Promise<PutResult> {
    assertValidKey(this.description, "putIfAbsent", key);
    if (this.#objects.has(key)) throw new PreconditionFailedError(this.description, "putIfAbsent", key);
    return this.#store(key, body);
  }

  async putIfMatch(key: string, body: Uint8Array, etag: string): Promise<PutResult> {
    assertValidKey(this.description, "putIfMatch", key);
    if (this.#objects.get(key)?.etag !== etag) throw new PreconditionFailedError(this.description, "putIfMatch", key);
    return this.#store(key, body);
  }

  async head(key: string): Promise<ObjectMeta | null> {
    assertValidKey(this.description, "head", key);
    const entry = this.#objects.get(key);
    return entry ? meta(key, entry) : null;
  }

  async list(prefix: string): Promise<ObjectMeta[]> {
    assertValidPrefix(this.description, prefix);
    const out: ObjectMeta[] = [];
    for (const [key, entry] of this.#objects) if (key.startsWith(prefix)) out.push(meta(key, entry));
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  async delete(key: string): Promise<void> {
    assertValidKey(this.description, "delete", key);
    this.#objects.delete(key);
  }

  async close(): Promise<void> {}

  /** Total stored bytes; handy for tests asserting garbage collection. */
  get totalBytes(): number {
    let n = 0;
    for (const e of this.#objects.values()) n += e.body.length;
    return n;
  }

  #store(key: string, body: Uint8Array): PutResult {
    const etag = `m${++this.#version}`;
    this.#objects.set(key, { body: Buffer.from(body), etag, lastModified: new Date() });
    return { etag };
  }
}

function meta(key: string, e: Entry): ObjectMeta {
  return { key, size: e.body.length, etag: e.etag, lastModified: e.lastModified };
}
