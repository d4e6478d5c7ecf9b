/**
 * Directory quotas (fs/quota.ts, fs/claims.ts): limits, EDQUOT, EXDEV across projects, FSSTAT
 * inside a project, the format (old volumes keep opening) and deferred deletion of a claim tree.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClaimDirectories } from "../../src/fs/claims.ts";
import { decodeInode, encodeInode } from "../../src/fs/inode-codec.ts";
import { KeyKind, SUPERBLOCK_KEY, inodeKey } from "../../src/fs/keys.ts";
import { WriteBatch } from "../../src/lsm/write-batch.ts";
import { decodeSuperblock } from "../../src/fs/records.ts";
import { FileType, StableHow } from "../../src/fs/types.ts";
import { countKind, openFs, rejectsWith, root, withFs } from "./helpers.ts";

const create = async (fs: import("../../src/fs/zerofs.ts").ZeroFs, dir: number, name: string): Promise<number> =>
  (await fs.create(root, dir, name, { mode: "guarded", attrs: { mode: 0o644 } })).attrs.ino;

describe("directory quotas", () => {
  it("inode records carry a project id; records without one are project 0", () => {
    const base = {
      ino: 7, type: FileType.REG, mode: 0o644, nlink: 1, uid: 1, gid: 2, size: 5,
      atime: { sec: 1, nsec: 2 }, mtime: { sec: 3, nsec: 4 }, ctime: { sec: 5, nsec: 6 },
      rdev: { major: 0, minor: 0 }, generation: 9, parent: 0, nextCookie: 0, verifier: Buffer.alloc(8, 1), target: Buffer.from("t"), extentBytes: 0,
    } as const;
    const withProject = decodeInode(7, encodeInode({ ...base, project: 42 }));
    assert.equal(withProject.project, 42);
    assert.deepEqual(withProject.verifier, Buffer.alloc(8, 1));
    assert.deepEqual(withProject.target, Buffer.from("t"));
    assert.equal(decodeInode(7, encodeInode({ ...base })).project, undefined);
    assert.equal(encodeInode({ ...base, project: 0 }).length, encodeInode({ ...base }).length, "project 0 is not stored");
  });

  it("PUT creates a project directory; usage, DQUOT at the byte and inode limits, shrink below usage", async () => {
    await withFs(async ({ fs, db }) => {
      const claims = new ClaimDirectories(fs, "/claims");
      const c = await claims.put("c1", { quota: { bytes: 100_000, inodes: 5 } });
      assert.equal(c.path, "/claims/c1");
      assert.ok(c.projectId > 0);
      assert.deepEqual(c.usage, { bytes: 0, inodes: 1 }, "the claim directory itself is an inode of its project");
      assert.equal(decodeSuperblock((await db.get(SUPERBLOCK_KEY))!).layoutVersion, 3, "the first project marks the volume");
      const dir = (await fs.lookup(root, (await fs.lookup(root, fs.rootIno, "claims")).attrs.ino, "c1")).attrs.ino;
      const f = await create(fs, dir, "f");
      await fs.write(root, f, 0, Buffer.alloc(60_000, 1), StableHow.UNSTABLE);
      const frames = db.segments.stats().writer.frames;
      await rejectsWith(fs.write(root, f, 60_000, Buffer.alloc(40_001, 1), StableHow.UNSTABLE), "EDQUOT", "one byte over");
      assert.equal(db.segments.stats().writer.frames, frames, "a refused write stores no data in segments");
      await fs.write(root, f, 60_000, Buffer.alloc(40_000, 1), StableHow.UNSTABLE);
      await rejectsWith(fs.setattr(root, f, { size: 100_001 }), "EDQUOT", "size-extending SETATTR");
      await rejectsWith(create(fs, dir, "g"), "EDQUOT", "no new inode while the bytes are full");
      assert.deepEqual((await claims.get("c1"))!.usage, { bytes: 100_000, inodes: 2 });
      await fs.setattr(root, f, { size: 10 });
      const sub = (await fs.mkdir(root, dir, "sub")).attrs.ino;
      await create(fs, sub, "a");
      await fs.symlink(root, sub, "l", "abc");
      await rejectsWith(create(fs, sub, "b"), "EDQUOT", "inode limit 5");
      assert.deepEqual((await claims.get("c1"))!.usage, { bytes: 13, inodes: 5 });
      // Shrinking the limit below the usage is allowed; growth fails, shrinking still works.
      await claims.put("c1", { quota: { bytes: 5, inodes: 10 } });
      await rejectsWith(fs.write(root, f, 10, Buffer.alloc(1, 1), StableHow.UNSTABLE), "EDQUOT");
      await fs.remove(root, dir, "f");
      assert.deepEqual((await claims.get("c1"))!.usage, { bytes: 3, inodes: 4 });
      // Unlimited.
      await claims.put("c1", { quota: { bytes: null, inodes: null } });
      await fs.write(root, await create(fs, dir, "big"), 0, Buffer.alloc(200_000, 2), StableHow.UNSTABLE);
      assert.deepEqual((await claims.get("c1"))!.usage, { bytes: 200_003, inodes: 5 });
    });
  });

  it("concurrent writers cannot together exceed a limit (growth is reserved while in flight)", async () => {
    await withFs(async ({ fs, db }) => {
      const claims = new ClaimDirectories(fs);
      await claims.put("c", { quota: { bytes: 100_000, inodes: null } });
      const dir = (await fs.lookup(root, fs.rootIno, "c")).attrs.ino;
      const files = await Promise.all(Array.from({ length: 30 }, (_, i) => create(fs, dir, `f${i}`)));
      // Slow batch application, so that every writer checks the limit while others are in flight.
      const write = db.write.bind(db);
      db.write = async (...args: Parameters<typeof db.write>) => {
        await new Promise((r) => setTimeout(r, 5));
        return write(...args);
      };
      const results = await Promise.allSettled(files.map((f) => fs.write(root, f, 0, Buffer.alloc(10_000, 1), StableHow.FILE_SYNC)));
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 10, "exactly the writes that fit");
      assert.deepEqual((await claims.get("c"))!.usage, { bytes: 100_000, inodes: 31 });
    });
  });

  it("rename and link across projects are EXDEV; within a project they work", async () => {
    await withFs(async ({ fs }) => {
      const claims = new ClaimDirectories(fs);
      await claims.put("a", { quota: { bytes: null, inodes: null } });
      await claims.put("b", { quota: { bytes: null, inodes: null } });
      const a = (await fs.lookup(root, fs.rootIno, "a")).attrs.ino;
      const b = (await fs.lookup(root, fs.rootIno, "b")).attrs.ino;
      const fa = await create(fs, a, "f");
      const f0 = await create(fs, fs.rootIno, "f0");
      await rejectsWith(fs.rename(root, a, "f", b, "f"), "EXDEV", "file to another project");
      await rejectsWith(fs.rename(root, a, "f", fs.rootIno, "f"), "EXDEV", "file out of a project");
      await rejectsWith(fs.rename(root, fs.rootIno, "f0", a, "f0"), "EXDEV", "file into a project");
      await rejectsWith(fs.link(root, fa, b, "h"), "EXDEV", "hard link to another project");
      await rejectsWith(fs.link(root, f0, a, "h"), "EXDEV", "hard link into a project");
      await rejectsWith(fs.rename(root, fs.rootIno, "a", b, "a"), "EXDEV", "project directory into another project");
      const sub = (await fs.mkdir(root, a, "sub")).attrs.ino;
      await fs.rename(root, a, "f", sub, "g");
      await fs.link(root, fa, a, "h");
      await fs.rename(root, fs.rootIno, "a", fs.rootIno, "a2");
      assert.deepEqual((await claims.get("b"))!.usage, { bytes: 0, inodes: 1 });
      assert.deepEqual(fs.quotas.usage((await fs.internals().inodes.get(a))!.project!), { bytes: 0, inodes: 3 });
    });
  });

  it("FSSTAT inside a project reports the limits as the size", async () => {
    await withFs(async ({ fs }) => {
      const claims = new ClaimDirectories(fs);
      await claims.put("q", { quota: { bytes: 1_000_000, inodes: 100 } });
      await claims.put("bytesonly", { quota: { bytes: 4096, inodes: null } });
      const q = (await fs.lookup(root, fs.rootIno, "q")).attrs.ino;
      const f = await create(fs, q, "f");
      await fs.write(root, f, 0, Buffer.alloc(250_000, 3), StableHow.UNSTABLE);
      const s = (await fs.fsstat(f)).stat;
      assert.deepEqual(
        { t: s.totalBytes, f: s.freeBytes, a: s.availBytes, tf: s.totalFiles, ff: s.freeFiles, af: s.availFiles },
        { t: 1_000_000, f: 750_000, a: 750_000, tf: 100, ff: 98, af: 98 },
      );
      await claims.put("q", { quota: { bytes: 1000, inodes: 1 } });
      const shrunk = (await fs.fsstat(q)).stat;
      assert.equal(shrunk.freeBytes, 0, "free floored at 0");
      assert.equal(shrunk.freeFiles, 0);
      const b = (await fs.fsstat((await fs.lookup(root, fs.rootIno, "bytesonly")).attrs.ino)).stat;
      assert.equal(b.totalBytes, 4096);
      assert.ok(b.totalFiles > 1e9, "no inode limit: the volume's figure");
      assert.ok((await fs.fsstat(fs.rootIno)).stat.totalBytes > 1e12, "outside projects: the volume");
    });
  });

  it("PUT is idempotent, refuses a non-directory and a non-empty directory without a project, validates names", async () => {
    await withFs(async ({ fs }) => {
      const claims = new ClaimDirectories(fs);
      const first = await claims.put("x", { quota: { bytes: 10, inodes: 10 }, uid: 1000, gid: 2000, mode: 0o750 });
      const again = await claims.put("x", { quota: { bytes: 10, inodes: 10 }, uid: 5, gid: 5, mode: 0o700 });
      assert.deepEqual(again, first);
      const attrs = (await fs.lookup(root, fs.rootIno, "x")).attrs;
      assert.deepEqual([attrs.uid, attrs.gid, attrs.mode], [1000, 2000, 0o750]);
      await create(fs, fs.rootIno, "file");
      await rejectsWith(claims.put("file", { quota: { bytes: 1, inodes: 1 } }), "ENOTDIR");
      const d = (await fs.mkdir(root, fs.rootIno, "full")).attrs.ino;
      await create(fs, d, "inside");
      await rejectsWith(claims.put("full", { quota: { bytes: 1, inodes: 1 } }), "ENOTEMPTY");
      for (const bad of ["", ".", "..", "a/b", "a b", "x".repeat(201)]) await rejectsWith(claims.put(bad, { quota: { bytes: 1, inodes: 1 } }), "EINVAL", JSON.stringify(bad));
      assert.deepEqual((await claims.list()).map((c) => c.name), ["x"]);
    });
  });

  it("DELETE detaches at once (ESTALE), reclaims the tree in the background, resumes after a restart", async () => {
    const fx = await openFs({ reclaimBatchKeys: 4 });
    try {
      let claims = new ClaimDirectories(fx.fs, "/k");
      await claims.put("gone", { quota: { bytes: null, inodes: null } });
      await claims.put("kept", { quota: { bytes: null, inodes: null } });
      const k = (await fx.fs.lookup(root, fx.fs.rootIno, "k")).attrs.ino;
      const dir = (await fx.fs.lookup(root, k, "gone")).attrs;
      const handle = fx.fs.handleOf(dir);
      let sub = dir.ino;
      for (let depth = 0; depth < 3; depth++) {
        for (let i = 0; i < 10; i++) await fx.fs.write(root, await create(fx.fs, sub, `f${i}`), 0, Buffer.alloc(70_000 * (i % 3), 7), StableHow.UNSTABLE);
        await fx.fs.link(root, (await fx.fs.lookup(root, sub, "f1")).attrs.ino, sub, "hard");
        sub = (await fx.fs.mkdir(root, sub, `d${depth}`)).attrs.ino;
      }
      const inodesBefore = fx.fs.usage.inodes;
      // Stop the background walk after its first batches, then "restart".
      let batches = 0;
      fx.fs.treeReclaimer!.afterBatch = async () => {
        if (++batches === 2) void fx.fs.treeReclaimer!.stop();
      };
      assert.equal(await claims.delete("gone"), true);
      await rejectsWith(fx.fs.resolveHandle(handle), "ESTALE", "the detached directory's handle");
      assert.equal(await claims.get("gone"), undefined);
      await fx.fs.treeReclaimer!.idle();
      assert.ok(fx.fs.usage.inodes > inodesBefore - 34, "not all reclaimed before the restart");
      await fx.reopen({ reclaimBatchKeys: 4 });
      await fx.fs.backgroundIdle();
      claims = new ClaimDirectories(fx.fs, "/k");
      assert.equal(fx.fs.usage.inodes, inodesBefore - 34, "the claim directory, 3 subdirectories and 30 files are gone");
      assert.equal(fx.fs.usage.usedBytes, 0);
      assert.deepEqual((await claims.list()).map((c) => c.name), ["kept"]);
      assert.equal(fx.fs.quotas.all().length, 1, "the deleted project's record is gone");
      assert.equal(await countKind(fx.db, KeyKind.EXTENT), 0, "file data reclaimed");
      assert.equal(await countKind(fx.db, KeyKind.TOMBSTONE), 0);
      assert.equal(await claims.delete("gone"), false);
    } finally {
      await fx.close();
    }
  });

  it("reclaiming a deleted tree ends even when a directory's inode is missing (corruption)", async () => {
    await withFs(async ({ fs, db }) => {
      const claims = new ClaimDirectories(fs);
      await claims.put("bad", { quota: { bytes: null, inodes: null } });
      const dir = (await fs.lookup(root, fs.rootIno, "bad")).attrs.ino;
      const sub = (await fs.mkdir(root, dir, "sub")).attrs.ino;
      const deeper = (await fs.mkdir(root, sub, "deeper")).attrs.ino;
      for (let i = 0; i < 5; i++) await create(fs, deeper, `f${i}`);
      await db.write(new WriteBatch().delete(inodeKey(sub)), { awaitDurable: true });
      fs.internals().inodes.remove(sub);
      assert.equal(await claims.delete("bad"), true);
      await fs.backgroundIdle();
      assert.equal(fs.quotas.all().length, 0, "the project is gone");
      assert.equal(await countKind(db, KeyKind.DIRENT), 0, "every entry of the tree is gone");
    });
  });
});
