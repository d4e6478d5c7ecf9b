/**
 * Fixtures for the filesystem tests: a ZeroFs over a Db over a MemoryStore, with small engine
 * sizes so that tests also go through memtable flushes and SSTs, and a reopen that closes the
 * Db and opens a fresh one on the same store (what a server restart does).
 */
import assert from "node:assert/strict";
import { Db, type DbOptions } from "../../src/lsm/db.ts";
import { isFsError, type FsErrorCode } from "../../src/fs/errors.ts";
import { KeyKind, allChunksRange, parseChunkKey } from "../../src/fs/keys.ts";
import type { Cred } from "../../src/fs/types.ts";
import { ZeroFs, type ZeroFsOptions } from "../../src/fs/zerofs.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { testKeys } from "../../../test/support/test-keys.ts";

export const SMALL_DB: Partial<DbOptions> = {
  flushIntervalMs: 2,
  memtableBytes: 256 * 1024,
  sstBlockBytes: 4 * 1024,
  sstTargetBytes: 256 * 1024,
  l0CompactionTrigger: 4,
  runMergeWidth: 3,
  gcIntervalMs: 0,
  gcMinAgeMs: 0,
};

export const root: Cred = { uid: 0, gid: 0, gids: [] };
export function user(uid: number, gid = uid, gids: number[] = []): Cred {
  return { uid, gid, gids };
}

export interface Fixture {
  store: MemoryStore;
  db: Db;
  fs: ZeroFs;
  /** Closes fs and Db and opens both again on the same store. */
  reopen(fsOpts?: ZeroFsOptions): Promise<void>;
  close(): Promise<void>;
}

/**
 * Options every fixture of this test file starts from (a test file of the v1 chunk code path
 * sets `dataLayout: 1`; each test file runs in a process of its own).
 */
export const fsDefaults: ZeroFsOptions = {};

export async function openFs(fsOpts_: ZeroFsOptions = {}, dbOpts: Partial<DbOptions> = SMALL_DB): Promise<Fixture> {
  const fsOpts = { ...fsDefaults, ...fsOpts_ };
  const store = new MemoryStore();
  const fx: Fixture = {
    store,
    db: await Db.open(store, testKeys(), dbOpts),
    fs: undefined as unknown as ZeroFs, // set right below
    async reopen(opts = fsOpts) {
      await fx.fs.close();
      await fx.db.close();
      fx.db = await Db.open(store, testKeys(), dbOpts);
      fx.fs = await ZeroFs.open(fx.db, { ...fsDefaults, ...opts });
    },
    async close() {
      await fx.fs.close();
      await fx.db.close();
    },
  };
  fx.fs = await ZeroFs.open(fx.db, fsOpts);
  return fx;
}

/** Runs `fn` with a fresh fixture and always closes it. */
export async function withFs(fn: (fx: Fixture) => Promise<void>, fsOpts: ZeroFsOptions = {}, dbOpts?: Partial<DbOptions>): Promise<void> {
  const fx = await openFs(fsOpts, dbOpts);
  try {
    await fn(fx);
  } finally {
    await fx.close();
  }
}

/** Asserts that `p` rejects with an FsError of `code`. */
export async function rejectsWith(p: Promise<unknown>, code: FsErrorCode, note = ""): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    if (isFsError(err, code)) return true;
    assert.fail(`${note ? `${note}: ` : ""}expected ${code}, got ${err instanceof Error ? err.message : String(err)}`);
  });
}

/** Chunk indices stored for `ino` (via a scan of its chunk key range). */
export async function storedChunks(db: Db, ino: number): Promise<number[]> {
  const out: number[] = [];
  for await (const e of db.scan(...allChunksRange(ino))) out.push(parseChunkKey(e.key).index);
  return out;
}

/** Number of keys of one kind in the whole db. */
export async function countKind(db: Db, kind: number): Promise<number> {
  let n = 0;
  for await (const _ of db.scan(Buffer.from([kind]), Buffer.from([kind + 1]))) n++;
  return n;
}

export { KeyKind };

/** Path helper: resolves "a/b/c" from the root as `cred` (root by default). */
export async function resolve(fs: ZeroFs, path: string, cred: Cred = root): Promise<number> {
  let ino = fs.rootIno;
  for (const part of path.split("/").filter((p) => p !== "")) ino = (await fs.lookup(cred, ino, part)).attrs.ino;
  return ino;
}

/** Names listed by readdir (all pages), without "." and "..". */
export async function listNames(fs: ZeroFs, dirIno: number, cred: Cred = root, pageBytes = 4096): Promise<string[]> {
  const names: string[] = [];
  let cookie = 0;
  let verf: Buffer | undefined;
  for (;;) {
    const r = await fs.readdir(cred, dirIno, cookie, verf, { maxBytes: pageBytes });
    for (const e of r.entries) {
      const n = e.name.toString();
      if (n !== "." && n !== "..") names.push(n);
      cookie = e.cookie;
    }
    verf = r.verifier;
    if (r.eof) return names;
  }
}

/** The inode at `path` ("/a/b" or its names ["a", "b"]), looked up as root. */
export async function resolvePath(fs: ZeroFs, path: string | readonly string[]): Promise<number> {
  const names = typeof path === "string" ? path.split("/").filter(Boolean) : path;
  let ino = fs.rootIno;
  for (const p of names) ino = (await fs.lookup(root, ino, p)).attrs.ino;
  return ino;
}
