/** Every operation's happy path, handles, reopen, and the basic error cases. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareTime } from "../../src/fs/clock.ts";
import { encodeHandle } from "../../src/fs/handles.ts";
import { Access3 } from "../../src/fs/permissions.ts";
import { FileType, StableHow } from "../../src/fs/types.ts";
import { ZeroFs } from "../../src/fs/zerofs.ts";
import { listNames, rejectsWith, resolve, root, user, withFs } from "./helpers.ts";

describe("operations", () => {
  it("opens a new volume with a root directory", () =>
    withFs(async ({ fs }) => {
      const a = await fs.getattr(fs.rootIno);
      assert.equal(a.type, FileType.DIR);
      assert.equal(a.nlink, 2);
      assert.equal(a.mode, 0o755);
      assert.equal(fs.volumeId.length, 16);
      assert.equal(await fs.resolveHandle(fs.rootHandle()), fs.rootIno);
      assert.deepEqual(fs.usage, { usedBytes: 0, inodes: 1 });
    }));

  it("creates, looks up, writes, reads and removes a file", () =>
    withFs(async ({ fs }) => {
      const before = await fs.getattr(fs.rootIno);
      const c = await fs.create(root, fs.rootIno, "hello.txt", { mode: "guarded", attrs: { mode: 0o640 } });
      assert.equal(c.attrs.type, FileType.REG);
      assert.equal(c.attrs.mode, 0o640);
      assert.equal(c.attrs.nlink, 1);
      assert.deepEqual(c.dirWcc.before, { size: before.size, mtime: before.mtime, ctime: before.ctime });
      assert.ok(c.dirWcc.after && compareTime(c.dirWcc.after.mtime, before.mtime) > 0, "parent mtime advanced");
      const l = await fs.lookup(root, fs.rootIno, "hello.txt");
      assert.equal(l.attrs.ino, c.attrs.ino);
      const w = await fs.write(root, c.attrs.ino, 0, Buffer.from("hello world"), StableHow.FILE_SYNC);
      assert.equal(w.count, 11);
      assert.equal(w.committed, StableHow.FILE_SYNC);
      assert.equal(w.wcc.before?.size, 0);
      assert.equal(w.wcc.after?.size, 11);
      const r = await fs.read(root, c.attrs.ino, 6, 100);
      assert.equal(r.data.toString(), "world");
      assert.equal(r.eof, true);
      const r2 = await fs.read(root, c.attrs.ino, 0, 5);
      assert.equal(r2.data.toString(), "hello");
      assert.equal(r2.eof, false);
      assert.equal((await fs.read(root, c.attrs.ino, 100, 10)).data.length, 0, "read past EOF");
      assert.deepEqual(fs.usage, { usedBytes: 11, inodes: 2 });
      await fs.remove(root, fs.rootIno, "hello.txt");
      await rejectsWith(fs.lookup(root, fs.rootIno, "hello.txt"), "ENOENT");
      await rejectsWith(fs.getattr(c.attrs.ino), "ESTALE");
      await rejectsWith(fs.resolveHandle(fs.handleOf(c.attrs)), "ESTALE");
      assert.deepEqual(fs.usage, { usedBytes: 0, inodes: 1 });
    }));

  it("unstable writes are readable at once and durable after commit", () =>
    withFs(async ({ fs }) => {
      const f = (await fs.create(root, fs.rootIno, "u", { mode: "unchecked" })).attrs;
      const w = await fs.write(root, f.ino, 0, Buffer.from("abc"), StableHow.UNSTABLE);
      assert.equal(w.committed, StableHow.UNSTABLE);
      assert.equal((await fs.read(root, f.ino, 0, 10)).data.toString(), "abc");
      const wcc = await fs.commit(f.ino);
      assert.equal(wcc.after?.size, 3);
      assert.equal(fs.writeVerifier.length, 8);
    }));

  it("create modes: guarded, unchecked (truncating), exclusive (idempotent with the same verifier)", () =>
    withFs(async ({ fs }) => {
      const a = await fs.create(root, fs.rootIno, "f", { mode: "guarded" });
      await fs.write(root, a.attrs.ino, 0, Buffer.from("data"), StableHow.UNSTABLE);
      await rejectsWith(fs.create(root, fs.rootIno, "f", { mode: "guarded" }), "EEXIST");
      const u = await fs.create(root, fs.rootIno, "f", { mode: "unchecked" });
      assert.equal(u.attrs.ino, a.attrs.ino);
      assert.equal(u.attrs.size, 4, "unchecked create without size leaves the file alone");
      const t = await fs.create(root, fs.rootIno, "f", { mode: "unchecked", attrs: { size: 0 } });
      assert.equal(t.attrs.size, 0);
      const verf = Buffer.from("verifier");
      const e1 = await fs.create(root, fs.rootIno, "x", { mode: "exclusive", verifier: verf });
      const e2 = await fs.create(root, fs.rootIno, "x", { mode: "exclusive", verifier: verf });
      assert.equal(e2.attrs.ino, e1.attrs.ino, "retransmitted exclusive create succeeds");
      await rejectsWith(fs.create(root, fs.rootIno, "x", { mode: "exclusive", verifier: Buffer.from("otherone") }), "EEXIST");
      await rejectsWith(fs.create(root, fs.rootIno, "f", { mode: "exclusive", verifier: verf }), "EEXIST");
      // The verifier survives a later SETATTR (the client sets the mode after an exclusive create).
      await fs.setattr(root, e1.attrs.ino, { mode: 0o600 });
      assert.equal((await fs.create(root, fs.rootIno, "x", { mode: "exclusive", verifier: verf })).attrs.mode, 0o600);
      await fs.mkdir(root, fs.rootIno, "d");
      await rejectsWith(fs.create(root, fs.rootIno, "d", { mode: "unchecked" }), "EEXIST", "unchecked create over a directory");
    }));

  it("mkdir, lookup of . and .., rmdir", () =>
    withFs(async ({ fs }) => {
      const d = await fs.mkdir(root, fs.rootIno, "dir", { mode: 0o700 });
      assert.equal(d.attrs.nlink, 2);
      assert.equal(d.attrs.mode, 0o700);
      assert.equal((await fs.getattr(fs.rootIno)).nlink, 3);
      const sub = await fs.mkdir(root, d.attrs.ino, "sub");
      assert.equal((await fs.lookup(root, sub.attrs.ino, "..")).attrs.ino, d.attrs.ino);
      assert.equal((await fs.lookup(root, sub.attrs.ino, ".")).attrs.ino, sub.attrs.ino);
      assert.equal((await fs.lookup(root, fs.rootIno, "..")).attrs.ino, fs.rootIno, "root's parent is itself");
      assert.equal((await fs.getattr(d.attrs.ino)).nlink, 3);
      await rejectsWith(fs.rmdir(root, fs.rootIno, "dir"), "ENOTEMPTY");
      await rejectsWith(fs.mkdir(root, fs.rootIno, "dir"), "EEXIST");
      await rejectsWith(fs.remove(root, d.attrs.ino, "sub"), "EISDIR");
      await rejectsWith(fs.rmdir(root, d.attrs.ino, "."), "EINVAL");
      await rejectsWith(fs.rmdir(root, d.attrs.ino, ".."), "ENOTEMPTY");
      await fs.rmdir(root, d.attrs.ino, "sub");
      assert.equal((await fs.getattr(d.attrs.ino)).nlink, 2);
      await fs.rmdir(root, fs.rootIno, "dir");
      assert.equal((await fs.getattr(fs.rootIno)).nlink, 2);
      assert.deepEqual(fs.usage.inodes, 1);
      const f = await fs.create(root, fs.rootIno, "file", { mode: "guarded" });
      await rejectsWith(fs.rmdir(root, fs.rootIno, "file"), "ENOTDIR");
      await rejectsWith(fs.lookup(root, f.attrs.ino, "x"), "ENOTDIR");
      await rejectsWith(fs.mkdir(root, f.attrs.ino, "x"), "ENOTDIR");
    }));

  it("symlink and readlink", () =>
    withFs(async ({ fs }) => {
      const s = await fs.symlink(root, fs.rootIno, "ln", "../target/path");
      assert.equal(s.attrs.type, FileType.LNK);
      assert.equal(s.attrs.size, 14);
      assert.equal(s.attrs.mode, 0o777);
      assert.equal((await fs.readlink(root, s.attrs.ino)).target.toString(), "../target/path");
      const f = await fs.create(root, fs.rootIno, "f", { mode: "guarded" });
      await rejectsWith(fs.readlink(root, f.attrs.ino), "EINVAL");
      await rejectsWith(fs.symlink(root, fs.rootIno, "long", "x".repeat(4097)), "ENAMETOOLONG");
      await rejectsWith(fs.symlink(root, fs.rootIno, "ln", "other"), "EEXIST");
      await rejectsWith(fs.read(root, s.attrs.ino, 0, 1), "EINVAL");
    }));

  it("mknod of devices, sockets and fifos", () =>
    withFs(async ({ fs }) => {
      const c = await fs.mknod(root, fs.rootIno, "tty", FileType.CHR, { mode: 0o620 }, { major: 4, minor: 1 });
      assert.deepEqual((await fs.getattr(c.attrs.ino)).rdev, { major: 4, minor: 1 });
      const b = await fs.mknod(root, fs.rootIno, "sda", FileType.BLK, {}, { major: 8, minor: 0 });
      assert.equal(b.attrs.type, FileType.BLK);
      const s = await fs.mknod(user(1000), fs.rootIno, "sock", FileType.SOCK).catch((e: unknown) => e);
      assert.ok(s instanceof Error, "root dir 0755 is not writable by uid 1000");
      await fs.setattr(root, fs.rootIno, { mode: 0o777 });
      assert.equal((await fs.mknod(user(1000), fs.rootIno, "sock", FileType.SOCK)).attrs.type, FileType.SOCK);
      assert.equal((await fs.mknod(user(1000), fs.rootIno, "fifo", FileType.FIFO)).attrs.type, FileType.FIFO);
      await rejectsWith(fs.mknod(user(1000), fs.rootIno, "dev", FileType.CHR), "EPERM");
      await rejectsWith(fs.mknod(root, fs.rootIno, "reg", FileType.REG), "BADTYPE");
      await rejectsWith(fs.read(root, c.attrs.ino, 0, 1), "EINVAL");
      await rejectsWith(fs.write(root, c.attrs.ino, 0, Buffer.from("x"), StableHow.UNSTABLE), "EINVAL");
    }));

  it("hard links share the inode and count links", () =>
    withFs(async ({ fs }) => {
      const f = (await fs.create(root, fs.rootIno, "a", { mode: "guarded" })).attrs;
      const d = (await fs.mkdir(root, fs.rootIno, "d")).attrs;
      const l = await fs.link(root, f.ino, d.ino, "b");
      assert.equal(l.attrs.nlink, 2);
      assert.ok(compareTime(l.attrs.ctime, f.ctime) > 0, "link updates the target's ctime");
      assert.equal((await fs.lookup(root, d.ino, "b")).attrs.ino, f.ino);
      await rejectsWith(fs.link(root, d.ino, fs.rootIno, "dlink"), "EPERM");
      await rejectsWith(fs.link(root, f.ino, fs.rootIno, "a"), "EEXIST");
      await fs.write(root, f.ino, 0, Buffer.from("shared"), StableHow.UNSTABLE);
      await fs.remove(root, fs.rootIno, "a");
      assert.equal((await fs.getattr(f.ino)).nlink, 1);
      assert.equal((await fs.read(root, f.ino, 0, 10)).data.toString(), "shared");
      await fs.remove(root, d.ino, "b");
      await rejectsWith(fs.getattr(f.ino), "ESTALE");
    }));

  it("access reports the granted ACCESS3 bits", () =>
    withFs(async ({ fs }) => {
      const all = 0x3f;
      const f = (await fs.create(root, fs.rootIno, "f", { mode: "guarded", attrs: { mode: 0o640, uid: 1000, gid: 100 } })).attrs;
      assert.equal((await fs.access(user(1000, 100), f.ino, all)).granted, Access3.READ | Access3.MODIFY | Access3.EXTEND);
      assert.equal((await fs.access(user(2000, 100), f.ino, all)).granted, Access3.READ);
      assert.equal((await fs.access(user(2000, 200), f.ino, all)).granted, 0);
      assert.equal((await fs.access(root, f.ino, all)).granted, Access3.READ | Access3.MODIFY | Access3.EXTEND, "root: no execute without any x bit");
      assert.equal((await fs.access(root, f.ino, Access3.READ)).granted, Access3.READ, "only requested bits");
      await fs.setattr(root, f.ino, { mode: 0o100 });
      assert.equal((await fs.access(root, f.ino, all)).granted & Access3.EXECUTE, Access3.EXECUTE);
      assert.equal((await fs.access(user(1000, 100), f.ino, all)).granted, Access3.EXECUTE);
      assert.equal((await fs.access(root, fs.rootIno, all)).granted, Access3.READ | Access3.LOOKUP | Access3.MODIFY | Access3.EXTEND | Access3.DELETE);
      assert.equal((await fs.access(user(5), fs.rootIno, all)).granted, Access3.READ | Access3.LOOKUP);
    }));

  it("fsstat, fsinfo, pathconf", () =>
    withFs(
      async ({ fs }) => {
        const f = (await fs.create(root, fs.rootIno, "f", { mode: "guarded" })).attrs;
        await fs.write(root, f.ino, 0, Buffer.alloc(1000, 1), StableHow.UNSTABLE);
        const { stat } = await fs.fsstat(fs.rootIno);
        assert.equal(stat.totalBytes, 1 << 20);
        assert.equal(stat.usedBytes, 1000);
        assert.equal(stat.freeBytes, (1 << 20) - 1000);
        assert.equal(stat.files, 2);
        const { info } = await fs.fsinfo(fs.rootIno);
        assert.equal(info.rtmax, 1 << 20);
        assert.equal(info.wtmax, 1 << 20);
        assert.ok(info.maxFileSize >= 2 ** 40);
        const { conf } = await fs.pathconf(fs.rootIno);
        assert.deepEqual(conf, { linkMax: 65000, nameMax: 255, noTrunc: true, chownRestricted: true, caseInsensitive: false, casePreserving: true });
      },
      { capacityBytes: 1 << 20 },
    ));

  it("validates names: ENAMETOOLONG above 255 bytes, EINVAL for / and NUL", () =>
    withFs(async ({ fs }) => {
      const ok = "n".repeat(255);
      await fs.create(root, fs.rootIno, ok, { mode: "guarded" });
      assert.ok(await fs.lookup(root, fs.rootIno, ok));
      const long = "n".repeat(256);
      await rejectsWith(fs.create(root, fs.rootIno, long, { mode: "guarded" }), "ENAMETOOLONG");
      await rejectsWith(fs.mkdir(root, fs.rootIno, long), "ENAMETOOLONG");
      await rejectsWith(fs.lookup(root, fs.rootIno, long), "ENAMETOOLONG");
      await rejectsWith(fs.symlink(root, fs.rootIno, long, "t"), "ENAMETOOLONG");
      await rejectsWith(fs.rename(root, fs.rootIno, ok, fs.rootIno, long), "ENAMETOOLONG");
      // Multi-byte UTF-8: 128 two-byte characters = 256 bytes.
      await rejectsWith(fs.create(root, fs.rootIno, "é".repeat(128), { mode: "guarded" }), "ENAMETOOLONG");
      await rejectsWith(fs.create(root, fs.rootIno, "a/b", { mode: "guarded" }), "EINVAL");
      await rejectsWith(fs.create(root, fs.rootIno, "a\0b", { mode: "guarded" }), "EINVAL");
      await rejectsWith(fs.create(root, fs.rootIno, "", { mode: "guarded" }), "EINVAL");
      await rejectsWith(fs.mkdir(root, fs.rootIno, "."), "EEXIST");
      await rejectsWith(fs.mkdir(root, fs.rootIno, ".."), "EEXIST");
      // Names are bytes: a non-UTF-8 name works.
      const raw = Buffer.from([0xff, 0xfe, 0x41]);
      const r = await fs.create(root, fs.rootIno, raw, { mode: "guarded" });
      assert.equal((await fs.lookup(root, fs.rootIno, raw)).attrs.ino, r.attrs.ino);
    }));

  it("file handles: stable across reopen, foreign volume is stale, garbage is bad", async () => {
    const { openFs } = await import("./helpers.ts");
    const fx = await openFs();
    try {
      const d = (await fx.fs.mkdir(root, fx.fs.rootIno, "d")).attrs;
      const f = (await fx.fs.create(root, d.ino, "f", { mode: "guarded" })).attrs;
      await fx.fs.write(root, f.ino, 0, Buffer.from("persist"), StableHow.UNSTABLE);
      const fh = fx.fs.handleOf(f);
      const rootFh = fx.fs.rootHandle();
      const vol = Buffer.from(fx.fs.volumeId);
      await fx.reopen();
      assert.deepEqual(fx.fs.volumeId, vol);
      assert.deepEqual(fx.fs.rootHandle(), rootFh);
      const ino = await fx.fs.resolveHandle(fh);
      assert.equal(ino, f.ino);
      assert.equal((await fx.fs.read(root, ino, 0, 100)).data.toString(), "persist");
      assert.equal(await resolve(fx.fs, "d/f"), f.ino);
      const other = Buffer.alloc(16, 1);
      await rejectsWith(fx.fs.resolveHandle(encodeHandle(other, f.ino, f.generation)), "ESTALE");
      await rejectsWith(fx.fs.resolveHandle(encodeHandle(vol, f.ino, f.generation + 1)), "ESTALE");
      await rejectsWith(fx.fs.resolveHandle(encodeHandle(vol, 999_999, 1)), "ESTALE");
      await rejectsWith(fx.fs.resolveHandle(Buffer.from("garbage")), "BADHANDLE");
    } finally {
      await fx.close();
    }
  });

  it("reopen keeps the whole tree, counters and inode allocation (ids never reused)", async () => {
    const { openFs } = await import("./helpers.ts");
    const fx = await openFs({ inoRangeSize: 8 });
    try {
      const inos: number[] = [];
      for (let i = 0; i < 20; i++) inos.push((await fx.fs.create(root, fx.fs.rootIno, `f${i}`, { mode: "guarded" })).attrs.ino);
      const d = await fx.fs.mkdir(root, fx.fs.rootIno, "dir");
      await fx.fs.symlink(root, d.attrs.ino, "s", "target");
      await fx.fs.remove(root, fx.fs.rootIno, "f3");
      const usage = fx.fs.usage;
      await fx.reopen({ inoRangeSize: 8 });
      assert.deepEqual(fx.fs.usage, usage);
      const names = await listNames(fx.fs, fx.fs.rootIno);
      assert.equal(names.length, 20);
      assert.ok(!names.includes("f3"));
      assert.equal((await fx.fs.readlink(root, await resolve(fx.fs, "dir/s"))).target.toString(), "target");
      const fresh = (await fx.fs.create(root, fx.fs.rootIno, "new", { mode: "guarded" })).attrs.ino;
      assert.ok(fresh > Math.max(...inos, d.attrs.ino), `new id ${fresh} is above every id handed out before`);
    } finally {
      await fx.close();
    }
  });

  it("read-only mode refuses changes with EROFS", async () => {
    const { openFs } = await import("./helpers.ts");
    const fx = await openFs();
    try {
      await fx.fs.create(root, fx.fs.rootIno, "f", { mode: "guarded" });
      await fx.reopen({ readOnly: true });
      const f = await resolve(fx.fs, "f");
      await rejectsWith(fx.fs.write(root, f, 0, Buffer.from("x"), StableHow.FILE_SYNC), "EROFS");
      await rejectsWith(fx.fs.create(root, fx.fs.rootIno, "g", { mode: "guarded" }), "EROFS");
      await rejectsWith(fx.fs.setattr(root, f, { mode: 0o600 }), "EROFS");
      assert.equal((await fx.fs.read(root, f, 0, 1)).eof, true);
    } finally {
      await fx.close();
    }
  });

  it("setattr ctime guard", () =>
    withFs(async ({ fs }) => {
      const f = (await fs.create(root, fs.rootIno, "f", { mode: "guarded" })).attrs;
      await rejectsWith(fs.setattr(root, f.ino, { mode: 0o600 }, { sec: 1, nsec: 0 }), "NOT_SYNC");
      const wcc = await fs.setattr(root, f.ino, { mode: 0o600 }, f.ctime);
      assert.equal(wcc.after?.mode, 0o600);
      assert.deepEqual(wcc.before?.ctime, f.ctime);
    }));

  it("concurrent operations on one directory and one file stay consistent", () =>
    withFs(async ({ fs }) => {
      const d = (await fs.mkdir(root, fs.rootIno, "d")).attrs;
      await Promise.all(Array.from({ length: 200 }, (_, i) => fs.create(root, d.ino, `f${i}`, { mode: "guarded" })));
      await Promise.all(Array.from({ length: 50 }, (_, i) => fs.mkdir(root, d.ino, `sub${i}`)));
      const attrs = await fs.getattr(d.ino);
      assert.equal(attrs.nlink, 52);
      assert.equal((await listNames(fs, d.ino)).length, 250);
      // Racing creates of one name: exactly one wins.
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => fs.create(root, d.ino, "race", { mode: "guarded" })));
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
      // Concurrent writes to one file at distinct offsets all land.
      const f = (await fs.create(root, d.ino, "data", { mode: "guarded" })).attrs;
      await Promise.all(Array.from({ length: 64 }, (_, i) => fs.write(root, f.ino, i * 1000, Buffer.alloc(1000, i + 1), StableHow.UNSTABLE)));
      const r = await fs.read(root, f.ino, 0, 64_000);
      for (let i = 0; i < 64; i++) assert.equal(r.data[i * 1000 + 500], i + 1);
      // Concurrent renames in opposite directions between two directories do not deadlock.
      const a = (await fs.mkdir(root, fs.rootIno, "a")).attrs;
      const b = (await fs.mkdir(root, fs.rootIno, "b")).attrs;
      for (let i = 0; i < 20; i++) {
        await fs.create(root, a.ino, `x${i}`, { mode: "guarded" });
        await fs.create(root, b.ino, `y${i}`, { mode: "guarded" });
      }
      await Promise.all(Array.from({ length: 20 }, (_, i) => [fs.rename(root, a.ino, `x${i}`, b.ino, `x${i}`), fs.rename(root, b.ino, `y${i}`, a.ino, `y${i}`)]).flat());
      assert.deepEqual((await listNames(fs, a.ino)).sort(), Array.from({ length: 20 }, (_, i) => `y${i}`).sort());
      assert.equal(fs.usage.inodes, 1 + 1 + 250 + 1 + 1 + 2 + 40); // root, d, entries, race, data, a, b, moved files
    }));

  it("exports the public API from one module", async () => {
    const api = await import("../../src/fs/index.ts");
    assert.equal(api.ZeroFs, ZeroFs);
    assert.equal(api.CHUNK_SIZE, 65536);
    assert.equal(api.NfsStatus.ENOENT, 2);
    assert.equal(new api.FsError("ESTALE", "x").nfsStatus, 70);
    assert.equal(api.Access3.EXECUTE, 0x20);
  });
});
