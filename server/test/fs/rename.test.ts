/** RENAME edge cases, link counts and timestamp updates. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareTime } from "../../src/fs/clock.ts";
import { StableHow, type Time } from "../../src/fs/types.ts";
import { listNames, rejectsWith, resolve, root, withFs } from "./helpers.ts";

const after = (a: Time, b: Time): boolean => compareTime(a, b) > 0;

describe("rename", () => {
  it("moves a file within and across directories, updating times", () =>
    withFs(async ({ fs }) => {
      const a = (await fs.mkdir(root, fs.rootIno, "a")).attrs;
      const b = (await fs.mkdir(root, fs.rootIno, "b")).attrs;
      const f = (await fs.create(root, a.ino, "f", { mode: "guarded" })).attrs;
      const r1 = await fs.rename(root, a.ino, "f", a.ino, "g");
      assert.deepEqual(await listNames(fs, a.ino), ["g"]);
      assert.ok(r1.fromDirWcc.after && after(r1.fromDirWcc.after.mtime, a.mtime));
      const aNow = await fs.getattr(a.ino);
      const bNow = await fs.getattr(b.ino);
      const r2 = await fs.rename(root, a.ino, "g", b.ino, "h");
      assert.deepEqual(await listNames(fs, a.ino), []);
      assert.deepEqual(await listNames(fs, b.ino), ["h"]);
      assert.ok(r2.fromDirWcc.after && after(r2.fromDirWcc.after.mtime, aNow.mtime) && after(r2.fromDirWcc.after.ctime, aNow.ctime));
      assert.ok(r2.toDirWcc.after && after(r2.toDirWcc.after.mtime, bNow.mtime));
      const moved = await fs.getattr(f.ino);
      assert.ok(after(moved.ctime, f.ctime), "rename updates the moved inode's ctime");
      assert.deepEqual(moved.mtime, f.mtime, "but not its mtime");
      await rejectsWith(fs.rename(root, a.ino, "nope", b.ino, "x"), "ENOENT");
    }));

  it("replaces a file atomically and frees the replaced one", () =>
    withFs(async ({ fs }) => {
      const x = (await fs.create(root, fs.rootIno, "x", { mode: "guarded" })).attrs;
      const y = (await fs.create(root, fs.rootIno, "y", { mode: "guarded" })).attrs;
      await fs.write(root, x.ino, 0, Buffer.from("xx"), StableHow.UNSTABLE);
      await fs.write(root, y.ino, 0, Buffer.from("yyy"), StableHow.UNSTABLE);
      assert.equal(fs.usage.usedBytes, 5);
      await fs.rename(root, fs.rootIno, "x", fs.rootIno, "y");
      assert.deepEqual(await listNames(fs, fs.rootIno), ["y"]);
      assert.equal((await fs.lookup(root, fs.rootIno, "y")).attrs.ino, x.ino);
      await rejectsWith(fs.getattr(y.ino), "ESTALE");
      assert.deepEqual(fs.usage, { usedBytes: 2, inodes: 2 });
      // Replacing one name of a hard-linked file keeps the file.
      const z = (await fs.create(root, fs.rootIno, "z", { mode: "guarded" })).attrs;
      await fs.link(root, z.ino, fs.rootIno, "z2");
      await fs.rename(root, fs.rootIno, "y", fs.rootIno, "z");
      assert.equal((await fs.getattr(z.ino)).nlink, 1);
      assert.equal((await fs.lookup(root, fs.rootIno, "z2")).attrs.ino, z.ino);
    }));

  it("directory over an empty directory; ENOTEMPTY, EISDIR, ENOTDIR otherwise", () =>
    withFs(async ({ fs }) => {
      const d1 = (await fs.mkdir(root, fs.rootIno, "d1")).attrs;
      const d2 = (await fs.mkdir(root, fs.rootIno, "d2")).attrs;
      const full = (await fs.mkdir(root, fs.rootIno, "full")).attrs;
      await fs.create(root, full.ino, "child", { mode: "guarded" });
      await fs.create(root, fs.rootIno, "file", { mode: "guarded" });
      assert.equal((await fs.getattr(fs.rootIno)).nlink, 5);
      await rejectsWith(fs.rename(root, fs.rootIno, "d1", fs.rootIno, "full"), "ENOTEMPTY");
      await rejectsWith(fs.rename(root, fs.rootIno, "file", fs.rootIno, "d1"), "EISDIR");
      await rejectsWith(fs.rename(root, fs.rootIno, "d1", fs.rootIno, "file"), "ENOTDIR");
      await fs.rename(root, fs.rootIno, "d1", fs.rootIno, "d2");
      assert.equal((await fs.lookup(root, fs.rootIno, "d2")).attrs.ino, d1.ino);
      await rejectsWith(fs.getattr(d2.ino), "ESTALE");
      assert.equal((await fs.getattr(fs.rootIno)).nlink, 4, "replaced directory no longer counts");
      assert.equal(fs.usage.inodes, 5);
    }));

  it("moving a directory updates link counts and its '..'", () =>
    withFs(async ({ fs }) => {
      const a = (await fs.mkdir(root, fs.rootIno, "a")).attrs;
      const b = (await fs.mkdir(root, fs.rootIno, "b")).attrs;
      const d = (await fs.mkdir(root, a.ino, "d")).attrs;
      await fs.mkdir(root, d.ino, "inner");
      assert.equal((await fs.getattr(a.ino)).nlink, 3);
      await fs.rename(root, a.ino, "d", b.ino, "d");
      assert.equal((await fs.getattr(a.ino)).nlink, 2);
      assert.equal((await fs.getattr(b.ino)).nlink, 3);
      assert.equal((await fs.getattr(d.ino)).nlink, 3, "the moved directory keeps its own count");
      assert.equal((await fs.lookup(root, d.ino, "..")).attrs.ino, b.ino);
      const list = await fs.readdir(root, d.ino, 0, undefined, { maxBytes: 4096 });
      assert.equal(list.entries.find((e) => e.name.toString() === "..")?.ino, b.ino);
      // Over an empty directory in another parent.
      await fs.mkdir(root, a.ino, "empty");
      await fs.rename(root, b.ino, "d", a.ino, "empty");
      assert.equal((await fs.getattr(a.ino)).nlink, 3);
      assert.equal((await fs.getattr(b.ino)).nlink, 2);
      assert.equal(await resolve(fs, "a/empty/inner"), await resolve(fs, "a/empty/inner"));
    }));

  it("refuses to move a directory into its own subtree", () =>
    withFs(async ({ fs }) => {
      const a = (await fs.mkdir(root, fs.rootIno, "a")).attrs;
      const b = (await fs.mkdir(root, a.ino, "b")).attrs;
      const c = (await fs.mkdir(root, b.ino, "c")).attrs;
      await rejectsWith(fs.rename(root, fs.rootIno, "a", c.ino, "a"), "EINVAL");
      await rejectsWith(fs.rename(root, fs.rootIno, "a", b.ino, "x"), "EINVAL");
      await rejectsWith(fs.rename(root, fs.rootIno, "a", a.ino, "x"), "EINVAL", "into itself");
      // The other way round is fine: an ancestor over a non-empty one is ENOTEMPTY, a deep dir up is OK.
      await rejectsWith(fs.rename(root, b.ino, "c", fs.rootIno, "a"), "ENOTEMPTY");
      await fs.rename(root, b.ino, "c", fs.rootIno, "c");
      assert.equal((await fs.lookup(root, c.ino, "..")).attrs.ino, fs.rootIno);
    }));

  it("renaming onto another name of the same inode, or onto itself, is a no-op", () =>
    withFs(async ({ fs }) => {
      const f = (await fs.create(root, fs.rootIno, "f", { mode: "guarded" })).attrs;
      await fs.link(root, f.ino, fs.rootIno, "g");
      await fs.rename(root, fs.rootIno, "f", fs.rootIno, "g");
      assert.deepEqual((await listNames(fs, fs.rootIno)).sort(), ["f", "g"]);
      assert.equal((await fs.getattr(f.ino)).nlink, 2);
      await fs.rename(root, fs.rootIno, "f", fs.rootIno, "f");
      assert.deepEqual((await listNames(fs, fs.rootIno)).sort(), ["f", "g"]);
      const d = (await fs.mkdir(root, fs.rootIno, "d")).attrs;
      await fs.rename(root, fs.rootIno, "d", fs.rootIno, "d");
      assert.equal((await fs.getattr(d.ino)).nlink, 2);
    }));

  it("rejects . and .. and bad names", () =>
    withFs(async ({ fs }) => {
      await fs.mkdir(root, fs.rootIno, "d");
      await rejectsWith(fs.rename(root, fs.rootIno, ".", fs.rootIno, "x"), "EINVAL");
      await rejectsWith(fs.rename(root, fs.rootIno, "d", fs.rootIno, ".."), "EINVAL");
      await rejectsWith(fs.rename(root, fs.rootIno, "d", fs.rootIno, "a/b"), "EINVAL");
    }));

  it("keeps entries listed once and findable after many renames and a reopen", async () => {
    const { openFs } = await import("./helpers.ts");
    const fx = await openFs();
    try {
      const d = (await fx.fs.mkdir(root, fx.fs.rootIno, "d")).attrs;
      for (let i = 0; i < 30; i++) await fx.fs.create(root, d.ino, `n${i}`, { mode: "guarded" });
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 30; i++) await fx.fs.rename(root, d.ino, round === 0 ? `n${i}` : `r${round - 1}-${i}`, d.ino, `r${round}-${i}`);
      }
      await fx.reopen();
      const names = await listNames(fx.fs, d.ino, root, 256);
      assert.equal(names.length, 30);
      assert.equal(new Set(names).size, 30);
      for (const n of names) await fx.fs.lookup(root, d.ino, n);
    } finally {
      await fx.close();
    }
  });
});
