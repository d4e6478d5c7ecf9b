/**
 * Local-disk read cache in front of an ObjectStore, for objects that never change once written
 * (SSTs). It stores exactly the bytes the inner store returned (ciphertext: the cache directory
 * holds nothing the bucket doesn't), split into aligned parts so a small range read fetches and
 * keeps only the parts it touches.
 *
 * Layout under `dir`:
 *
 *   zerofs-disk-cache.json        {"version":1,"partSize":N}; a different partSize wipes the parts
 *   <hh>/<sha256(key)>.<index>    part `index` = object bytes [index*N, (index+1)*N)
 *   <hh>/<...>.tmp-<random>       part being written; renamed into place when complete
 *
 * (`hh` = first two hex digits of the hash: 256 fixed shard directories, never removed, so an
 * eviction never races a writer over an empty directory.)
 *
 * A part shorter than N is the object's last part, which is how the cache learns object sizes
 * without a HEAD: a whole-object GET, or a ranged GET that comes back short, reveals the end. When
 * the size is an exact multiple of N the end is recorded as an empty part file.
 *
 * Parts are written to a temp file, then renamed, so after a process crash a part file is either
 * absent or complete. A power loss or kernel crash can still tear a part that was not flushed (a
 * torn part would look like a short "last" part and make reads of the object come back
 * truncated); instead of an fdatasync per part (the cost of a cold read from S3 was dominated
 * by them), the session file `zerofs-disk-cache.session` holds the kernel's boot id while the
 * cache is open: found at open with another boot id, the previous session ended in a reboot
 * without a clean close, so every part is dropped. A clean close fdatasyncs what this session
 * wrote, then removes the file. Without a readable boot id every part is fdatasynced as before.
 * On open the directory is rescanned: temp files are deleted, parts are re-registered
 * oldest-mtime first so the most recently written are the last evicted. Recency from reads is
 * not persisted across restarts.
 *
 * Eviction is LRU by bytes (lru-cache with maxSize); the budget counts part bytes, reserved
 * before a part is written, so files on disk stay within it (plus filesystem block overhead).
 *
 * The disk is an optimisation only: any error reading or writing it (ENOSPC, EACCES, EIO, a file
 * removed behind our back) is counted in `stats.diskErrors` and the read is served by the inner
 * store instead. Errors from the inner store propagate unchanged.
 *
 * Caveats: objects are assumed immutable while cached. put/putIfAbsent/putIfMatch/delete through
 * this store invalidate the key's parts, but a change made by another process is not seen, and a
 * cached object deleted elsewhere stays readable until evicted. Concurrent misses on the same part
 * each fetch it (no request de-duplication).
 */
import { randomBytes, createHash } from "node:crypto";
import { readFileSync, unlinkSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LRUCache } from "lru-cache";
import { DIR_MODE, FILE_MODE } from "./file-modes.ts";
import { assertValidRange } from "./keys.ts";
import type { ByteRange, ObjectMeta, ObjectStore, PutBody, PutResult } from "./object-store.ts";
import { handOffBuffer } from "./shared-buffer.ts";

export const DEFAULT_PART_SIZE = 1024 * 1024;
const LAYOUT_FILE = "zerofs-disk-cache.json";
const SESSION_FILE = "zerofs-disk-cache.session";
/** Parts fdatasynced at once by a clean close. */
const CLOSE_SYNC_PARALLEL = 16;

/** The kernel's boot id (changes on every boot), or undefined where it cannot be read. */
function bootId(path = "/proc/sys/kernel/random/boot_id"): string | undefined {
  try {
    const id = readFileSync(path, "utf8").trim();
    return id.length > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}
const LAYOUT_VERSION = 1;
const SHARD_RE = /^[0-9a-f]{2}$/;
const PART_RE = /^([0-9a-f]{64})\.(\d+)$/;
const TEMP_RE = /^[0-9a-f]{64}\.\d+\.tmp-/;
const EMPTY = Buffer.alloc(0);

export interface DiskCacheOptions {
  /** Cache directory; created if missing. */
  dir: string;
  /** Byte budget for cached parts. */
  maxBytes: number;
  /** Where the kernel's boot id is read (tests); null: none, fdatasync every part. */
  bootIdPath?: string | null;
  /** Which keys hold immutable objects worth caching (e.g. `k => k.startsWith("sst/")`). */
  isCacheable: (key: string) => boolean;
  /** Part size in bytes (default 1 MiB). Changing it across restarts empties the cache. */
  partSize?: number;
}

export interface DiskCacheStats {
  /** Cacheable gets served entirely from disk. */
  hits: number;
  /** Cacheable gets that needed the inner store (fully or partly). */
  misses: number;
  partHits: number;
  partMisses: number;
  /** GET requests sent to the inner store on behalf of cacheable reads (after coalescing). */
  innerGets: number;
  /** Bytes of cached parts, including parts reserved and still being written. */
  bytes: number;
  files: number;
  evictions: number;
  /** Cache-disk failures that were absorbed by falling back to the inner store. */
  diskErrors: number;
}

interface Part {
  hash: string;
  index: number;
  bytes: number;
  /** False while the file is being written: reserved in the budget, not yet readable. */
  ready: boolean;
}

interface CachedObject {
  parts: Map<number, Part>;
  /** Index of the cached part that ends the object (shorter than partSize), if any. */
  endIndex: number | undefined;
}

/** Invalidation generation of a key, alive while reads or part writes of it are in flight. */
interface Tracker {
  gen: number;
  refs: number;
}

function errCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

export class DiskCacheStore implements ObjectStore {
  readonly description: string;
  readonly #inner: ObjectStore;
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #partSize: number;
  readonly #isCacheable: (key: string) => boolean;
  readonly #lru: LRUCache<string, Part>;
  readonly #objects = new Map<string, CachedObject>();
  readonly #trackers = new Map<string, Tracker>();
  /** Part names with a write in flight: at most one writer per file path. */
  readonly #writing = new Set<string>();
  readonly #pending = new Set<Promise<void>>();
  readonly #shardsMade = new Set<string>();
  /** This run's boot id (undefined: fdatasync every part). */
  readonly #boot: string | undefined;
  /** Part files written this session and not yet fdatasynced. */
  readonly #unsynced = new Set<string>();
  readonly #stats = { hits: 0, misses: 0, partHits: 0, partMisses: 0, innerGets: 0, evictions: 0, diskErrors: 0 };

  /** Opens the cache, re-registering parts left by a previous run. Never fails on disk errors. */
  static async open(inner: ObjectStore, opts: DiskCacheOptions): Promise<DiskCacheStore> {
    const store = new DiskCacheStore(inner, opts);
    await store.#loadExisting();
    return store;
  }

  private constructor(inner: ObjectStore, opts: DiskCacheOptions) {
    const partSize = opts.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(partSize) || partSize <= 0) throw new RangeError(`disk cache partSize must be a positive integer, got ${partSize}`);
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes <= 0) throw new RangeError(`disk cache maxBytes must be a positive integer, got ${opts.maxBytes}`);
    this.#inner = inner;
    this.description = inner.description;
    this.#dir = opts.dir;
    this.#maxBytes = opts.maxBytes;
    this.#partSize = partSize;
    this.#isCacheable = opts.isCacheable;
    this.#boot = opts.bootIdPath === null ? undefined : bootId(opts.bootIdPath);
    this.#lru = new LRUCache<string, Part>({
      maxSize: opts.maxBytes,
      // Empty end-of-object markers still occupy an inode; lru-cache needs sizes ≥ 1 anyway.
      sizeCalculation: (p) => Math.max(1, p.bytes),
      dispose: (part, name, reason) => this.#onDispose(part, name, reason),
    });
  }

  get stats(): DiskCacheStats {
    return { ...this.#stats, bytes: this.#lru.calculatedSize, files: this.#lru.size };
  }

  /** Waits for background part writes (tests; close). */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  // ---- ObjectStore ------------------------------------------------------------------------

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    if (!this.#isCacheable(key)) return this.#inner.get(key, range);
    if (range) assertValidRange(this.description, key, range);
    // A zero-length read has nothing to cache, and must still report a missing object.
    if (range?.length === 0) return this.#inner.get(key, range);
    const hash = hashKey(key);
    const tracker = this.#acquire(hash);
    try {
      return await this.#cachedGet(key, hash, range, tracker, tracker.gen);
    } finally {
      this.#release(hash, tracker);
    }
  }

  async put(key: string, body: PutBody): Promise<PutResult> {
    return this.#invalidating(key, () => this.#inner.put(key, body));
  }

  async putIfAbsent(key: string, body: Uint8Array): Promise<PutResult> {
    return this.#invalidating(key, () => this.#inner.putIfAbsent(key, body));
  }

  async putIfMatch(key: string, body: Uint8Array, etag: string): Promise<PutResult> {
    return this.#invalidating(key, () => this.#inner.putIfMatch(key, body, etag));
  }

  async delete(key: string): Promise<void> {
    return this.#invalidating(key, () => this.#inner.delete(key));
  }

  async head(key: string): Promise<ObjectMeta | null> {
    return this.#inner.head(key);
  }

  async list(prefix: string): Promise<ObjectMeta[]> {
    return this.#inner.list(prefix);
  }

  async close(): Promise<void> {
    await this.flush();
    await this.#endSession();
    await this.#inner.close();
  }

  /** Makes this session's parts durable, then marks the cache cleanly closed. */
  async #endSession(): Promise<void> {
    if (this.#boot === undefined) return;
    const names = [...this.#unsynced];
    this.#unsynced.clear();
    try {
      for (let i = 0; i < names.length; i += CLOSE_SYNC_PARALLEL) {
        await Promise.all(
          names.slice(i, i + CLOSE_SYNC_PARALLEL).map(async (path) => {
            let fh;
            try {
              fh = await open(path, "r");
            } catch (err) {
              if (errCode(err) === "ENOENT") return; // evicted since
              throw err;
            }
            try {
              await fh.datasync();
            } finally {
              await fh.close();
            }
          }),
        );
      }
      await unlink(join(this.#dir, SESSION_FILE));
    } catch (err) {
      // The session file stays: after a reboot the parts are dropped, which is always safe.
      this.#diskError(err);
    }
  }

  // ---- reads ------------------------------------------------------------------------------

  async #cachedGet(key: string, hash: string, range: ByteRange | undefined, tracker: Tracker, gen: number): Promise<Buffer> {
    const P = this.#partSize;
    const size = this.#knownSize(hash);
    const start = range?.offset ?? 0;
    let end = range ? start + range.length : size; // exclusive; undefined = object end unknown
    if (size !== undefined && end !== undefined) {
      end = Math.min(end, size);
      if (start >= end) {
        this.#stats.hits++;
        return EMPTY;
      }
    }
    if (end === undefined) {
      // Whole object of unknown size: one GET, and it tells us the size.
      this.#stats.misses++;
      this.#stats.innerGets++;
      const body = await this.#inner.get(key);
      this.#stats.partMisses += Math.floor(body.length / P) + 1;
      this.#fill(hash, 0, body, true, tracker, gen);
      return body;
    }

    const first = Math.floor(start / P);
    const last = Math.floor((end - 1) / P);
    const fromDisk: { index: number; part: Part }[] = [];
    const runs: { from: number; to: number }[] = [];
    for (let i = first; i <= last; i++) {
      const part = this.#lru.get(partName(hash, i)); // get() also marks it most recently used
      if (part?.ready) {
        fromDisk.push({ index: i, part });
        continue;
      }
      const run = runs.at(-1);
      if (run && run.to === i - 1) run.to = i;
      else runs.push({ from: i, to: i });
    }
    this.#stats.partHits += fromDisk.length;
    // Reading up to the end: keep the end part recent too, or its eviction would forget the size.
    if (size !== undefined && end === size) this.#lru.get(partName(hash, Math.floor(size / P)));

    // Byte window of part i that the caller wants, relative to the part's start.
    const lo = (i: number) => Math.max(start - i * P, 0);
    const hi = (i: number) => Math.min(end - i * P, P);
    const pieces = new Map<number, Buffer>();

    let diskFailed = false;
    const diskReads = fromDisk.map(async ({ index, part }) => {
      try {
        pieces.set(index, await this.#readPart(part, lo(index), hi(index)));
      } catch (err) {
        diskFailed = true;
        // ENOENT: evicted between planning and reading; a race, not a disk problem.
        if (errCode(err) !== "ENOENT") this.#diskError(err);
        // Unreadable or wrong-sized file: forget it (dispose unlinks it) so it is refetched.
        if (this.#lru.peek(partName(hash, index)) === part) this.#lru.delete(partName(hash, index));
      }
    });
    const fetches = runs.map(async ({ from, to }) => {
      const wanted = (to - from + 1) * P;
      this.#stats.innerGets++;
      this.#stats.partMisses += to - from + 1;
      const data = await this.#inner.get(key, { offset: from * P, length: wanted });
      this.#fill(hash, from, data, data.length < wanted, tracker, gen);
      for (let i = from; i <= to; i++) {
        const a = (i - from) * P;
        pieces.set(i, data.subarray(Math.min(a + lo(i), data.length), Math.min(a + hi(i), data.length)));
      }
    });
    await Promise.all([...diskReads, ...fetches]);
    if (diskFailed) {
      this.#stats.misses++;
      this.#stats.innerGets++;
      return this.#inner.get(key, range);
    }
    if (runs.length === 0) this.#stats.hits++;
    else this.#stats.misses++;

    const out: Buffer[] = [];
    for (let i = first; i <= last; i++) {
      const piece = pieces.get(i) ?? EMPTY;
      const prev = out.at(-1);
      // Adjacent parts of one fetch are adjacent views of its body: joined without a copy.
      if (prev && prev.buffer === piece.buffer && prev.byteOffset + prev.length === piece.byteOffset) out[out.length - 1] = Buffer.from(prev.buffer, prev.byteOffset, prev.length + piece.length);
      else out.push(piece);
      if (piece.length < hi(i) - lo(i)) break; // the object ended inside this part
    }
    // One piece (the usual case: one fetch, or one part from disk) is returned as it is; the
    // cache may still be writing it to disk, which is why get() results are read-only.
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  async #readPart(part: Part, lo: number, hi: number): Promise<Buffer> {
    const len = Math.min(hi, part.bytes) - lo;
    if (len <= 0) return EMPTY;
    const fh = await open(this.#path(part.hash, part.index), "r");
    try {
      const buf = handOffBuffer(len); // usually sealed frames, for the crypto workers
      const { bytesRead } = await fh.read(buf, 0, len, lo);
      if (bytesRead !== len) throw new Error(`cache part ${part.hash}.${part.index} is shorter than recorded (${bytesRead} of ${len} bytes at ${lo})`);
      return buf;
    } finally {
      await fh.close();
    }
  }

  /** Object size, if the part holding its end is cached. */
  #knownSize(hash: string): number | undefined {
    const obj = this.#objects.get(hash);
    if (obj?.endIndex === undefined) return undefined;
    const endPart = obj.parts.get(obj.endIndex);
    return endPart ? obj.endIndex * this.#partSize + endPart.bytes : undefined;
  }

  // ---- writes -----------------------------------------------------------------------------

  /**
   * Schedules background writes of the parts in `data` (object bytes starting at part `first`).
   * `reachedEnd`: data stops at the end of the object, so its last (short or empty) part is the
   * end marker, provided we know where that part starts (see below).
   */
  #fill(hash: string, first: number, data: Buffer, reachedEnd: boolean, tracker: Tracker, gen: number): void {
    const P = this.#partSize;
    const full = Math.floor(data.length / P);
    for (let i = 0; i < full; i++) this.#storePart(hash, first + i, data.subarray(i * P, (i + 1) * P), tracker, gen);
    // An empty tail read at part `first` only says "the object ends at or before here"; it marks
    // the exact end only if the part before it is known full (it is in this same data) or first=0.
    const tail = data.subarray(full * P);
    if (reachedEnd && (tail.length > 0 || full > 0 || first === 0)) this.#storePart(hash, first + full, tail, tracker, gen);
  }

  #storePart(hash: string, index: number, data: Buffer, tracker: Tracker, gen: number): void {
    if (tracker.gen !== gen || data.length > this.#maxBytes) return;
    const name = partName(hash, index);
    if (this.#writing.has(name)) return;
    if (this.#lru.get(name)) return; // already cached; get() marks it just used, like the data
    const part: Part = { hash, index, bytes: data.length, ready: false };
    this.#lru.set(name, part); // reserves budget now, evicting older parts if needed
    if (this.#lru.peek(name) !== part) return;
    let obj = this.#objects.get(hash);
    if (!obj) this.#objects.set(hash, (obj = { parts: new Map(), endIndex: undefined }));
    obj.parts.set(index, part);
    this.#writing.add(name);
    tracker.refs++;
    // No copy: `data` is a fresh buffer from the inner store, and what get() hands out of it
    // is read-only (ObjectStore.get).
    const p = this.#writePart(name, part, data, tracker, gen).finally(() => {
      this.#writing.delete(name);
      this.#release(hash, tracker);
      this.#pending.delete(p);
    });
    this.#pending.add(p);
  }

  async #writePart(name: string, part: Part, data: Buffer, tracker: Tracker, gen: number): Promise<void> {
    const final = this.#path(part.hash, part.index);
    const tmp = `${final}.tmp-${randomBytes(6).toString("hex")}`;
    const wanted = () => this.#lru.peek(name) === part && tracker.gen === gen;
    try {
      const shard = part.hash.slice(0, 2);
      if (!this.#shardsMade.has(shard)) {
        await mkdir(join(this.#dir, shard), { recursive: true, mode: DIR_MODE });
        this.#shardsMade.add(shard);
      }
      const fh = await open(tmp, "wx", FILE_MODE);
      try {
        await fh.writeFile(data);
        // With a boot-id session (see the header) the flush waits for a clean close.
        if (this.#boot === undefined) await fh.datasync();
      } finally {
        await fh.close();
      }
      if (!wanted()) {
        await unlink(tmp);
        return;
      }
      await rename(tmp, final);
      if (this.#boot !== undefined) this.#unsynced.add(final);
      if (!wanted()) {
        // Evicted or invalidated while renaming: dispose skipped the unlink since the part was
        // not ready, and #writing kept anyone else off this path, so the file is ours to remove.
        await unlink(final);
        return;
      }
      part.ready = true;
      if (part.bytes < this.#partSize) {
        const obj = this.#objects.get(part.hash);
        if (obj) obj.endIndex = part.index;
      }
    } catch (err) {
      this.#diskError(err);
      await unlink(tmp).catch(() => undefined);
      if (this.#lru.peek(name) === part) this.#lru.delete(name);
    }
  }

  #onDispose(part: Part, _name: string, reason: LRUCache.DisposeReason): void {
    if (reason === "set") return; // never happens (we don't overwrite entries), and the file is current
    if (reason === "evict") this.#stats.evictions++;
    this.#unsynced.delete(this.#path(part.hash, part.index));
    const obj = this.#objects.get(part.hash);
    if (obj?.parts.get(part.index) === part) {
      obj.parts.delete(part.index);
      if (obj.endIndex === part.index) obj.endIndex = undefined;
      if (obj.parts.size === 0) this.#objects.delete(part.hash);
    }
    if (!part.ready) return; // its writer sees it is gone and removes its own file
    // Synchronous on purpose: the file must be gone before a later write of the same part can
    // rename a new file into place, or a delayed unlink would delete the new one. Parts are
    // ≤ partSize, so the unlink is quick.
    try {
      unlinkSync(this.#path(part.hash, part.index));
    } catch (err) {
      if (errCode(err) !== "ENOENT") this.#diskError(err);
    }
  }

  async #invalidating<T>(key: string, write: () => Promise<T>): Promise<T> {
    if (!this.#isCacheable(key)) return write();
    const hash = hashKey(key);
    this.#invalidate(hash);
    try {
      return await write();
    } finally {
      // Again afterwards: a read that ran during the write may have cached the old bytes.
      this.#invalidate(hash);
    }
  }

  #invalidate(hash: string): void {
    const tracker = this.#trackers.get(hash);
    if (tracker) tracker.gen++;
    const obj = this.#objects.get(hash);
    if (!obj) return;
    for (const index of [...obj.parts.keys()]) this.#lru.delete(partName(hash, index));
  }

  #acquire(hash: string): Tracker {
    let t = this.#trackers.get(hash);
    if (!t) this.#trackers.set(hash, (t = { gen: 0, refs: 0 }));
    t.refs++;
    return t;
  }

  #release(hash: string, t: Tracker): void {
    if (--t.refs === 0 && this.#trackers.get(hash) === t) this.#trackers.delete(hash);
  }

  #diskError(_err: unknown): void {
    this.#stats.diskErrors++;
  }

  #path(hash: string, index: number): string {
    return join(this.#dir, hash.slice(0, 2), `${hash}.${index}`);
  }

  // ---- startup ----------------------------------------------------------------------------

  async #loadExisting(): Promise<void> {
    try {
      await mkdir(this.#dir, { recursive: true, mode: DIR_MODE });
      const layoutPath = join(this.#dir, LAYOUT_FILE);
      let layoutOk = false;
      try {
        const j = JSON.parse(await readFile(layoutPath, "utf8")) as { version?: unknown; partSize?: unknown };
        layoutOk = j.version === LAYOUT_VERSION && j.partSize === this.#partSize;
      } catch (err) {
        if (errCode(err) !== "ENOENT" && !(err instanceof SyntaxError)) throw err;
      }
      // A session file from another boot: that run never closed cleanly and a reboot followed, so
      // parts it wrote without fdatasync may be torn. Drop them all (a cache can always refill).
      const sessionPath = join(this.#dir, SESSION_FILE);
      let previous: string | undefined;
      try {
        previous = (await readFile(sessionPath, "utf8")).trim();
      } catch (err) {
        if (errCode(err) !== "ENOENT") throw err;
      }
      const rebooted = previous !== undefined && (this.#boot === undefined || previous !== this.#boot);
      const found = await this.#scan(!layoutOk || rebooted);
      if (this.#boot !== undefined) await writeFile(sessionPath, this.#boot + "\n", { mode: FILE_MODE });
      if (!layoutOk) await writeFile(layoutPath, JSON.stringify({ version: LAYOUT_VERSION, partSize: this.#partSize }) + "\n", { mode: FILE_MODE });
      this.#register(found);
    } catch (err) {
      // Unusable directory: run with an empty cache; part writes will fail and be counted.
      this.#diskError(err);
    }
  }

  /** Lists part files; deletes temp files (and, when `purge`, all parts of an old layout). */
  async #scan(purge: boolean): Promise<{ hash: string; index: number; bytes: number; mtimeMs: number; path: string }[]> {
    const found: { hash: string; index: number; bytes: number; mtimeMs: number; path: string }[] = [];
    for (const shard of await readdir(this.#dir)) {
      if (!SHARD_RE.test(shard)) continue;
      const shardDir = join(this.#dir, shard);
      let names: string[];
      try {
        names = await readdir(shardDir);
      } catch (err) {
        if (errCode(err) === "ENOTDIR") continue;
        throw err;
      }
      this.#shardsMade.add(shard);
      await Promise.all(
        names.map(async (n) => {
          const path = join(shardDir, n);
          const m = PART_RE.exec(n);
          if (TEMP_RE.test(n) || (purge && m)) {
            await unlink(path).catch((err: unknown) => this.#diskError(err));
            return;
          }
          if (!m) return; // not ours: leave it alone
          try {
            const st = await stat(path);
            if (st.isFile()) found.push({ hash: m[1]!, index: Number(m[2]), bytes: st.size, mtimeMs: st.mtimeMs, path });
          } catch (err) {
            this.#diskError(err);
          }
        }),
      );
    }
    return found;
  }

  #register(found: { hash: string; index: number; bytes: number; mtimeMs: number; path: string }[]): void {
    // Per object, nothing may follow a short (end) part; such leftovers and oversized files are
    // inconsistent, so drop them rather than serve a wrong size.
    const endOf = new Map<string, number>();
    for (const f of found) {
      if (f.bytes < this.#partSize) endOf.set(f.hash, Math.min(endOf.get(f.hash) ?? Infinity, f.index));
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) {
      if (f.bytes > this.#partSize || f.index > (endOf.get(f.hash) ?? Infinity) || !Number.isSafeInteger(f.index)) {
        try {
          unlinkSync(f.path);
        } catch (err) {
          this.#diskError(err);
        }
        continue;
      }
      const part: Part = { hash: f.hash, index: f.index, bytes: f.bytes, ready: true };
      const name = partName(f.hash, f.index);
      this.#lru.set(name, part); // budget may have shrunk: this evicts (and unlinks) the oldest
      if (this.#lru.peek(name) !== part) {
        // Larger than the whole budget: lru-cache refused it without calling dispose.
        try {
          unlinkSync(f.path);
        } catch (err) {
          this.#diskError(err);
        }
        continue;
      }
      let obj = this.#objects.get(f.hash);
      if (!obj) this.#objects.set(f.hash, (obj = { parts: new Map(), endIndex: undefined }));
      obj.parts.set(f.index, part);
      if (f.bytes < this.#partSize) obj.endIndex = f.index;
    }
  }
}

function hashKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

function partName(hash: string, index: number): string {
  return `${hash}.${index}`;
}
