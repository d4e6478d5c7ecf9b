/**
 * The embedded default store: each object is a file under a root directory, the key being its
 * relative path. Writes go to `<root>/.tmp/` first and are published atomically (rename or
 * link), with fsyncs so a published object survives power loss.
 */
import { randomBytes } from "node:crypto";
import type { BigIntStats, Dirent } from "node:fs";
import { link, mkdir, open, readdir, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { inspect } from "node:util";
import { ObjectNotFoundError, ObjectStoreError, PreconditionFailedError, type StoreOp } from "./errors.ts";
import { DIR_MODE, FILE_MODE } from "./file-modes.ts";
import { etagOf, uniqueStampSeconds } from "./local-etag.ts";
import { KeyLocks } from "./local-lock.ts";
import { ReadHandleCache } from "./read-handles.ts";
import { PUBLISH_MAX_BYTES, publishOnThread, type PublishReply } from "./local-publish.ts";
import { handOffBuffer } from "./shared-buffer.ts";
import { RESERVED_TOP_LEVEL, assertValidKey, assertValidPrefix, assertValidRange, compareKeys } from "./keys.ts";
import type { ByteRange, ObjectMeta, ObjectStore, PutBody, PutResult } from "./object-store.ts";

export interface LocalStoreOptions {
  /** How long a write waits for another writer's per-key lock before failing. */
  lockTimeoutMs?: number;
  /**
   * Keep files open between ranged reads of keys whose content never changes under their name
   * (written once, never overwritten, names never reused: the engine's SSTs and segments).
   * Opening, stat-ing and closing per read was a quarter of the busy time of block-cache misses.
   * Writes and deletes through this store drop the key's handle; a change made by another
   * process is not seen through a cached handle, hence the `immutable` predicate.
   */
  readHandles?: { maxOpen: number; immutable: (key: string) => boolean };
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

const NOT_THERE = new Set(["ENOENT", "ENOTDIR"]);
/** Folder handles kept open for fsync (a volume has a handful of folders: wal, sst/…, seg, …). */
const MAX_DIR_HANDLES = 64;

export class LocalStore implements ObjectStore {
  readonly description: string;
  readonly root: string;
  readonly #tmpDir: string;
  readonly #locks: KeyLocks;
  readonly #handles: ReadHandleCache | undefined;
  readonly #immutable: (key: string) => boolean;
  #dirsReady: Promise<void> | undefined;
  #tmpCounter = 0;
  #publishedOnThread = 0;
  /**
   * Folders this store has made sure exist (putIfAbsent): creating them again before every WAL
   * object was one more thread-pool round trip on the commit path. The store never removes
   * folders; should one vanish anyway, the link fails with ENOENT and the folder is made again.
   */
  readonly #knownDirs = new Set<string>();
  /**
   * Folders kept open for fsync after a publish (at most MAX_DIR_HANDLES): open + fsync + close
   * per object was three round trips where one does. The store's folders are never removed or
   * replaced while it is open, so the handle stays the folder the name refers to.
   */
  readonly #dirHandles = new Map<string, Promise<FileHandle>>();

  constructor(root: string, options: LocalStoreOptions = {}) {
    this.root = resolve(root);
    this.description = `file://${this.root}`;
    this.#tmpDir = join(this.root, RESERVED_TOP_LEVEL);
    this.#locks = new KeyLocks(join(this.#tmpDir, "locks"), options.lockTimeoutMs ?? 10_000);
    const rh = options.readHandles;
    this.#handles = rh && rh.maxOpen > 0 ? new ReadHandleCache(rh.maxOpen) : undefined;
    this.#immutable = rh?.immutable ?? (() => false);
  }

  /** Objects published by a publisher thread (local-publish.ts) so far (tests). */
  get publishedOnThread(): number {
    return this.#publishedOnThread;
  }

  /** Files kept open for ranged reads now (tests, metrics). */
  get openReadHandles(): number {
    return this.#handles?.size ?? 0;
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const path = this.#path("get", key);
    if (range) assertValidRange(this.description, key, range);
    if (range && this.#handles && this.#immutable(key)) return this.#cachedRangedGet(key, path, range, this.#handles);
    let fh;
    try {
      fh = await open(path, "r");
    } catch (err) {
      throw this.#error("get", key, err);
    }
    try {
      const st = await fh.stat();
      // Opening a folder read-only succeeds on Linux; a folder is not an object.
      if (!st.isFile()) throw new ObjectNotFoundError(this.description, "get", key);
      if (!range) return await fh.readFile();
      return await readRange(fh, st.size, range);
    } catch (err) {
      throw this.#error("get", key, err);
    } finally {
      await fh.close();
    }
  }

  async #cachedRangedGet(key: string, path: string, range: ByteRange, handles: ReadHandleCache): Promise<Buffer> {
    let lease;
    try {
      lease = await handles.acquire(key, async () => {
        const fh = await open(path, "r");
        try {
          const st = await fh.stat();
          // Opening a folder read-only succeeds on Linux; a folder is not an object.
          if (!st.isFile()) throw new ObjectNotFoundError(this.description, "get", key);
          return { fh, size: st.size };
        } catch (err) {
          await fh.close();
          throw err;
        }
      });
    } catch (err) {
      throw this.#error("get", key, err);
    }
    try {
      return await readRange(lease.fh, lease.size, range);
    } catch (err) {
      throw this.#error("get", key, err);
    } finally {
      lease.release();
    }
  }

  async put(key: string, body: PutBody): Promise<PutResult> {
    const path = this.#path("put", key);
    const tmp = await this.#writeTemp("put", key, body);
    try {
      // The lock makes put linearizable with a concurrent putIfMatch's compare-and-rename.
      await this.#locks.withLock(key, (m) => this.#error("put", key, null, m), () => this.#publish("put", key, tmp.path, path));
      return { etag: tmp.etag };
    } catch (err) {
      // A published temp file is gone (renamed); only a failure may leave one behind.
      await unlinkQuiet(tmp.path);
      throw err;
    }
  }

  async putIfAbsent(key: string, body: Uint8Array): Promise<PutResult> {
    const path = this.#path("putIfAbsent", key);
    // A small object into a folder made before goes to a publisher thread (local-publish.ts).
    if (body.length <= PUBLISH_MAX_BYTES && this.#knownDirs.has(dirname(path))) {
      const published = await this.#putIfAbsentOnThread(key, path, body);
      if (published) return published;
    }
    const tmp = await this.#writeTemp("putIfAbsent", key, body);
    try {
      const dir = dirname(path);
      if (!this.#knownDirs.has(dir)) await this.#mkdirFor("putIfAbsent", key, path);
      try {
        // link(2) fails with EEXIST if the name exists: the existence check and the publish are
        // one atomic step, across processes too. No lock needed.
        try {
          await link(tmp.path, path);
        } catch (err) {
          if (errCode(err) !== "ENOENT" || !this.#knownDirs.has(dir)) throw err;
          // The folder went away after we made it: make it again, once (and forget the handle
          // kept for fsync: it is the removed folder's).
          this.#knownDirs.delete(dir);
          this.#forgetDirHandle(dir);
          await this.#mkdirFor("putIfAbsent", key, path);
          await link(tmp.path, path);
        }
        this.#knownDirs.add(dir);
      } catch (err) {
        if (errCode(err) === "EEXIST") throw new PreconditionFailedError(this.description, "putIfAbsent", key, { cause: err });
        throw this.#error("putIfAbsent", key, err, "publishing (link)");
      } finally {
        this.#handles?.invalidate(key);
      }
      // The temp name goes while the new name is made durable: a WAL object waits for one
      // round trip through the fs threads less.
      await Promise.all([this.#fsyncDir("putIfAbsent", key, dirname(path)), unlinkQuiet(tmp.path)]);
      return { etag: tmp.etag };
    } catch (err) {
      await unlinkQuiet(tmp.path);
      throw err;
    }
  }

  async putIfMatch(key: string, body: Uint8Array, etag: string): Promise<PutResult> {
    const path = this.#path("putIfMatch", key);
    // Written before taking the lock so the lock is held only for compare + rename.
    const tmp = await this.#writeTemp("putIfMatch", key, body);
    try {
      await this.#locks.withLock(key, (m) => this.#error("putIfMatch", key, null, m), async () => {
        const current = await this.#statObject("putIfMatch", key, path);
        if (current === null || etagOf(current) !== etag) throw new PreconditionFailedError(this.description, "putIfMatch", key);
        await this.#publish("putIfMatch", key, tmp.path, path);
      });
      return { etag: tmp.etag };
    } catch (err) {
      await unlinkQuiet(tmp.path);
      throw err;
    }
  }

  async head(key: string): Promise<ObjectMeta | null> {
    const path = this.#path("head", key);
    const st = await this.#statObject("head", key, path);
    return st === null ? null : metaOf(key, st);
  }

  async list(prefix: string): Promise<ObjectMeta[]> {
    assertValidPrefix(this.description, prefix);
    // Walk only the folder the prefix names; its last segment filters that folder's entries.
    const slash = prefix.lastIndexOf("/");
    const dirKey = slash < 0 ? "" : prefix.slice(0, slash + 1);
    const startDir = dirKey === "" ? this.root : join(this.root, ...dirKey.slice(0, -1).split("/"));
    const out: ObjectMeta[] = [];
    await this.#walk(startDir, dirKey, prefix.slice(slash + 1), out, prefix);
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  async delete(key: string): Promise<void> {
    const path = this.#path("delete", key);
    await this.#locks.withLock(key, (m) => this.#error("delete", key, null, m), async () => {
      try {
        await unlink(path);
      } catch (err) {
        this.#handles?.invalidate(key);
        // EISDIR/EPERM: the key names a folder, i.e. no object; deleting it is a no-op.
        if (NOT_THERE.has(errCode(err) ?? "") || errCode(err) === "EISDIR") return;
        if (errCode(err) === "EPERM" && (await stat(path).catch(() => null))?.isDirectory()) return;
        throw this.#error("delete", key, err);
      }
      // A deleted file's handle must not serve the key once it is created again.
      this.#handles?.invalidate(key);
      await this.#fsyncDir("delete", key, dirname(path));
    });
  }

  async close(): Promise<void> {
    await this.#handles?.closeAll();
    const dirs = [...this.#dirHandles.values()];
    this.#dirHandles.clear();
    await Promise.all(dirs.map(async (h) => (await h.catch(() => undefined))?.close().catch(() => undefined)));
  }

  /** Removes temp files older than `maxAgeMs` left by writers that crashed mid-write. */
  async sweepStaleTemp(maxAgeMs = 3_600_000): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.#tmpDir);
    } catch (err) {
      if (NOT_THERE.has(errCode(err) ?? "")) return 0;
      throw this.#error("delete", RESERVED_TOP_LEVEL, err, "sweeping temp files");
    }
    let removed = 0;
    for (const name of names) {
      if (!name.endsWith(".tmp")) continue;
      const p = join(this.#tmpDir, name);
      const st = await stat(p).catch(() => null);
      if (st?.isFile() && Date.now() - st.mtimeMs > maxAgeMs && (await unlinkQuiet(p))) removed++;
    }
    return removed;
  }

  #path(op: StoreOp, key: string): string {
    assertValidKey(this.description, op, key);
    const path = join(this.root, ...key.split("/"));
    // Validation already excludes '..' and absolute keys; this guards against a future change.
    if (!path.startsWith(this.root + sep)) throw new ObjectStoreError(this.description, op, key, "invalid key: escapes the store root");
    return path;
  }

  #error(op: StoreOp, key: string, err: unknown, context?: string): ObjectStoreError {
    if (err instanceof ObjectStoreError) return err;
    const code = errCode(err);
    if ((op === "get" || op === "head") && (NOT_THERE.has(code ?? "") || code === "EISDIR")) {
      return new ObjectNotFoundError(this.description, op, key, { cause: err });
    }
    const detail = err instanceof Error ? err.message : err === null ? "" : inspect(err);
    const msg = [context, detail].filter((s) => s).join(": ");
    return new ObjectStoreError(this.description, op, key, msg || "failed", err === null ? undefined : { cause: err });
  }

  async #ensureDirs(): Promise<void> {
    this.#dirsReady ??= mkdir(this.#tmpDir, { recursive: true, mode: DIR_MODE }).then(
      () => undefined,
      (err: unknown) => {
        this.#dirsReady = undefined;
        throw err;
      },
    );
    return this.#dirsReady;
  }

  async #writeTemp(op: StoreOp, key: string, body: PutBody): Promise<{ path: string; etag: string }> {
    try {
      await this.#ensureDirs();
    } catch (err) {
      throw this.#error(op, key, err, `creating ${this.#tmpDir}`);
    }
    const path = this.#tmpPath();
    try {
      const fh = await open(path, "wx", FILE_MODE);
      try {
        if (body instanceof Uint8Array) await fh.writeFile(body);
        else await writeAllv(fh, body);
        const t = uniqueStampSeconds();
        await fh.utimes(t, t);
        // The stat reads what utimes set; it need not wait for the fsync (one round trip less).
        const [, st] = await Promise.all([fh.sync(), fh.stat({ bigint: true })]);
        return { path, etag: etagOf(st) };
      } finally {
        await fh.close();
      }
    } catch (err) {
      await unlinkQuiet(path);
      throw this.#error(op, key, err, "writing temp file");
    }
  }

  /** putIfAbsent by a publisher thread; undefined if the folder has gone (the caller makes it again). */
  async #putIfAbsentOnThread(key: string, path: string, body: Uint8Array): Promise<PutResult | undefined> {
    const dir = dirname(path);
    let r: PublishReply;
    try {
      // No #ensureDirs here: a folder is known only after a publish through #writeTemp, which
      // made the temp folder already.
      r = await publishOnThread({ tmp: this.#tmpPath(), path, dir, mode: FILE_MODE, stamp: uniqueStampSeconds(), body });
    } catch (err) {
      throw this.#error("putIfAbsent", key, err, "publisher thread");
    }
    // Past the write, the name may hold a new file: a kept handle must not serve the old one.
    if (r.step !== "write") this.#handles?.invalidate(key);
    if (r.step === undefined) {
      this.#publishedOnThread++;
      return { etag: r.etag };
    }
    const cause = Object.assign(new Error(r.message), { code: r.code });
    if (r.step === "link" && r.code === "EEXIST") throw new PreconditionFailedError(this.description, "putIfAbsent", key, { cause });
    if (r.step === "link" && r.code === "ENOENT") {
      // The folder went away after we made it.
      this.#knownDirs.delete(dir);
      this.#forgetDirHandle(dir);
      return undefined;
    }
    throw this.#error("putIfAbsent", key, cause, r.step === "write" ? "writing temp file" : r.step === "link" ? "publishing (link)" : `fsync of folder ${dir}`);
  }

  #tmpPath(): string {
    return join(this.#tmpDir, `${process.pid}-${++this.#tmpCounter}-${randomBytes(6).toString("hex")}.tmp`);
  }

  async #mkdirFor(op: StoreOp, key: string, path: string): Promise<void> {
    try {
      await mkdir(dirname(path), { recursive: true, mode: DIR_MODE });
    } catch (err) {
      const why = errCode(err) === "EEXIST" || errCode(err) === "ENOTDIR" ? "a parent folder of the key is an object" : "creating parent folder";
      throw this.#error(op, key, err, why);
    }
  }

  async #publish(op: StoreOp, key: string, tmp: string, path: string): Promise<void> {
    await this.#mkdirFor(op, key, path);
    try {
      await rename(tmp, path);
    } catch (err) {
      throw this.#error(op, key, err, errCode(err) === "EISDIR" ? "the key names a folder of other objects" : "publishing (rename)");
    } finally {
      // The name now holds (or may hold) another inode: a kept handle would read the old one.
      this.#handles?.invalidate(key);
    }
    await this.#fsyncDir(op, key, dirname(path));
  }

  /** Makes the directory entry (the publish itself) durable, not just the file's bytes. */
  async #fsyncDir(op: StoreOp, key: string, dir: string): Promise<void> {
    try {
      let h = this.#dirHandles.get(dir);
      if (h === undefined && this.#dirHandles.size < MAX_DIR_HANDLES) {
        h = open(dir, "r");
        this.#dirHandles.set(dir, h);
      }
      if (h === undefined) {
        const fh = await open(dir, "r");
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        return;
      }
      try {
        await (await h).sync();
      } catch (err) {
        // Not kept after a failure: the next publish opens the folder afresh.
        if (this.#dirHandles.get(dir) === h) this.#forgetDirHandle(dir);
        throw err;
      }
    } catch (err) {
      throw this.#error(op, key, err, `fsync of folder ${dir}`);
    }
  }

  #forgetDirHandle(dir: string): void {
    const h = this.#dirHandles.get(dir);
    if (h === undefined) return;
    this.#dirHandles.delete(dir);
    void h.then((fh) => fh.close()).catch(() => undefined);
  }

  async #statObject(op: StoreOp, key: string, path: string): Promise<BigIntStats | null> {
    try {
      const st = await stat(path, { bigint: true });
      return st.isFile() ? st : null;
    } catch (err) {
      if (NOT_THERE.has(errCode(err) ?? "")) return null;
      throw this.#error(op, key, err);
    }
  }

  async #walk(dir: string, keyPrefix: string, nameFilter: string, out: ObjectMeta[], prefix: string): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (NOT_THERE.has(errCode(err) ?? "")) return;
      throw this.#error("list", prefix, err, `reading folder ${dir}`);
    }
    await Promise.all(
      entries.map(async (e) => {
        if (keyPrefix === "" && e.name === RESERVED_TOP_LEVEL) return;
        if (!e.name.startsWith(nameFilter)) return;
        const key = keyPrefix + e.name;
        const p = join(dir, e.name);
        if (e.isDirectory()) return this.#walk(p, key + "/", "", out, prefix);
        if (!e.isFile()) return;
        try {
          out.push(metaOf(key, await stat(p, { bigint: true })));
        } catch (err) {
          // Deleted between readdir and stat: it is simply not part of this listing.
          if (!NOT_THERE.has(errCode(err) ?? "")) throw this.#error("list", prefix, err, `stat ${p}`);
        }
      }),
    );
  }
}

/** Reads `range` of a file of `size` bytes (short at the end of the file, like S3). */
/** Writes every piece, in order, with as few writev calls as the kernel allows. */
async function writeAllv(fh: FileHandle, pieces: readonly Uint8Array[]): Promise<void> {
  // IOV_MAX is 1024 on Linux; writev may also write less than asked (then resume mid-piece).
  const IOV_MAX = 1024;
  let queue = pieces.filter((p) => p.byteLength > 0);
  while (queue.length > 0) {
    const batch = queue.slice(0, IOV_MAX);
    let { bytesWritten } = await fh.writev(batch);
    let i = 0;
    while (i < batch.length && bytesWritten >= batch[i]!.byteLength) bytesWritten -= batch[i++]!.byteLength;
    queue = queue.slice(i);
    if (bytesWritten > 0) queue[0] = queue[0]!.subarray(bytesWritten);
  }
}

async function readRange(fh: FileHandle, size: number, range: ByteRange): Promise<Buffer> {
  const want = Math.max(0, Math.min(range.length, size - range.offset));
  // Usually a run of sealed frames, opened next by the crypto workers: see shared-buffer.ts.
  const buf = handOffBuffer(want);
  let got = 0;
  while (got < want) {
    const { bytesRead } = await fh.read(buf, got, want - got, range.offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === want ? buf : buf.subarray(0, got);
}

function metaOf(key: string, st: BigIntStats): ObjectMeta {
  return { key, size: Number(st.size), etag: etagOf(st), lastModified: new Date(Number(st.mtimeNs / 1_000_000n)) };
}

/** Best effort; returns whether a file was removed. */
async function unlinkQuiet(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch {
    return false;
  }
}
