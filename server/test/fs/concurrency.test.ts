/**
 * Concurrent random operations (creates, links, renames across directories, removes, writes)
 * racing on a small set of names, then a full consistency check of the stored structures:
 * both entry indexes agree, no dangling entries or orphan inodes, link counts, ".." pointers
 * and volume counters all match what is reachable. Locking bugs show up here as lost updates.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeInode } from "../../src/fs/inode-codec.ts";
import { KeyKind, parseCookieKey, readU64 } from "../../src/fs/keys.ts";
import { decodeCookieEntry, decodeDirent } from "../../src/fs/records.ts";
import { FileType, StableHow } from "../../src/fs/types.ts";
import type { Db } from "../../src/lsm/db.ts";
import { Rng } from "../../../test/support/random.ts";
import { openFs, root } from "./helpers.ts";
import type { ZeroFs } from "../../src/fs/zerofs.ts";

async function scanKind(db: Db, kind: number): Promise<{ key: Buffer; value: Buffer }[]> {
  const out: { key: Buffer; value: Buffer }[] = [];
  for await (const e of db.scan(Buffer.from([kind]), Buffer.from([kind + 1]))) out.push({ key: e.key, value: e.value! });
  return out;
}

/** Checks every structural invariant straight from the stored keys. */
async function checkConsistency(fs: ZeroFs, db: Db): Promise<void> {
  const inodes = new Map((await scanKind(db, KeyKind.INODE)).map((e) => [readU64(e.key, 1), decodeInode(readU64(e.key, 1), e.value)]));
  const byName = new Map<string, { dir: number; ino: number; cookie: number; type: number }>();
  for (const e of await scanKind(db, KeyKind.DIRENT)) {
    const dir = readU64(e.key, 1);
    const name = e.key.subarray(9).toString("hex");
    const v = decodeDirent(e.value, name);
    byName.set(`${dir}/${name}`, { dir, ino: v.ino, cookie: v.cookie, type: v.type });
  }
  const byCookie = (await scanKind(db, KeyKind.COOKIE)).map((e) => {
    const k = parseCookieKey(e.key);
    return { ...k, v: decodeCookieEntry(k.cookie, e.value, k.dir) };
  });
  assert.equal(byCookie.length, byName.size, "both entry indexes have the same size");
  const refs = new Map<number, number>();
  const subdirs = new Map<number, number>();
  for (const c of byCookie) {
    const d = byName.get(`${c.dir}/${c.v.name.toString("hex")}`);
    assert.ok(d, `cookie entry ${c.dir}/${c.v.name.toString()} has a name entry`);
    assert.equal(d.cookie, c.cookie);
    assert.equal(d.ino, c.v.ino);
    const child = inodes.get(c.v.ino);
    assert.ok(child, `entry ${c.v.name.toString()} in ${c.dir} points to an existing inode ${c.v.ino}`);
    assert.equal(child.type, c.v.type);
    assert.ok(c.cookie < inodes.get(c.dir)!.nextCookie, "cookie below the directory's counter");
    refs.set(c.v.ino, (refs.get(c.v.ino) ?? 0) + 1);
    if (child.type === FileType.DIR) {
      subdirs.set(c.dir, (subdirs.get(c.dir) ?? 0) + 1);
      assert.equal(child.parent, c.dir, `'..' of directory ${c.v.ino}`);
    }
  }
  let bytes = 0;
  for (const [ino, inode] of inodes) {
    if (ino === fs.rootIno) continue;
    const n = refs.get(ino) ?? 0;
    assert.ok(n > 0, `inode ${ino} is reachable (no orphans)`);
    if (inode.type === FileType.DIR) {
      assert.equal(n, 1, `directory ${ino} has one name`);
      assert.equal(inode.nlink, 2 + (subdirs.get(ino) ?? 0), `nlink of directory ${ino}`);
    } else assert.equal(inode.nlink, n, `nlink of inode ${ino}`);
    if (inode.type === FileType.REG || inode.type === FileType.LNK) bytes += inode.size;
  }
  assert.equal(inodes.get(fs.rootIno)!.nlink, 2 + (subdirs.get(fs.rootIno) ?? 0));
  assert.deepEqual(fs.usage, { usedBytes: bytes, inodes: inodes.size });
}

describe("concurrency", () => {
  it("racing random operations leave a consistent filesystem", async () => {
    const rng = Rng.fromEnv("fs concurrency");
    const fx = await openFs({ inlineDeleteChunks: 1 });
    try {
      const fs = fx.fs;
      const dirs = [fs.rootIno];
      for (const n of ["p", "q", "r"]) dirs.push((await fs.mkdir(root, fs.rootIno, n)).attrs.ino);
      const names = ["a", "b", "c", "d"];
      let succeeded = 0;
      const worker = async (w: number): Promise<void> => {
        const r = new Rng(rng.seed + w);
        for (let i = 0; i < 150; i++) {
          const dir = dirs[r.int(0, dirs.length - 1)]!;
          const dir2 = dirs[r.int(0, dirs.length - 1)]!;
          const name = names[r.int(0, names.length - 1)]!;
          const name2 = names[r.int(0, names.length - 1)]!;
          const op = r.int(0, 9);
          try {
            if (op === 0) await fs.create(root, dir, name, { mode: "guarded" });
            else if (op === 1) await fs.mkdir(root, dir, name);
            else if (op === 2) await fs.remove(root, dir, name);
            else if (op === 3) await fs.rmdir(root, dir, name);
            else if (op <= 6) await fs.rename(root, dir, name, dir2, name2);
            else if (op === 7) {
              const { attrs } = await fs.lookup(root, dir, name);
              await fs.link(root, attrs.ino, dir2, name2);
            } else {
              const { attrs } = await fs.lookup(root, dir, name);
              await fs.write(root, attrs.ino, r.int(0, 150_000), r.bytes(r.int(1, 5000)), StableHow.UNSTABLE);
            }
            succeeded++;
          } catch (err) {
            if (!(err instanceof Error && err.name === "FsError")) throw err;
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      assert.ok(succeeded > 200, `enough operations succeeded (${succeeded} of 1200)`);
      await fs.reclaimer?.idle();
      await checkConsistency(fs, fx.db);
      await fx.reopen();
      await checkConsistency(fx.fs, fx.db);
    } finally {
      await fx.close();
    }
  });
});
