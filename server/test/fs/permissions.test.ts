/** POSIX permission semantics as pjdfstest checks them (Linux behaviour). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareTime } from "../../src/fs/clock.ts";
import { Perm, hasPerm } from "../../src/fs/permissions.ts";
import { FileType, StableHow, type Cred } from "../../src/fs/types.ts";
import type { ZeroFs } from "../../src/fs/zerofs.ts";
import { rejectsWith, root, user, withFs } from "./helpers.ts";

const owner = user(1000, 100);
const member = user(2000, 300, [100]);
const other = user(3000, 300);

/** A world-writable directory (0777) owned by root with one file of `mode` owned by 1000:100. */
async function setup(fs: ZeroFs, mode: number): Promise<{ dir: number; file: number }> {
  const dir = (await fs.mkdir(root, fs.rootIno, "pub", { mode: 0o777 })).attrs.ino;
  const file = (await fs.create(root, dir, "f", { mode: "guarded", attrs: { mode, uid: 1000, gid: 100 } })).attrs.ino;
  return { dir, file };
}

describe("permissions", () => {
  it("classes: owner, then group (primary or supplementary), then other — no fallback", () => {
    const inode = { type: FileType.REG, mode: 0o046, uid: 1000, gid: 100 };
    assert.equal(hasPerm(owner, inode, Perm.R), false, "owner class has no bits even though group/other do");
    assert.equal(hasPerm(member, inode, Perm.R), true);
    assert.equal(hasPerm(member, inode, Perm.W), false);
    assert.equal(hasPerm(user(2001, 100), inode, Perm.R), true, "primary group");
    assert.equal(hasPerm(other, inode, Perm.R | Perm.W), true);
    assert.equal(hasPerm(root, inode, Perm.R | Perm.W), true);
    assert.equal(hasPerm(root, inode, Perm.X), false, "root needs some x bit to execute a file");
    assert.equal(hasPerm(root, { ...inode, mode: 0o001 }, Perm.X), true);
    assert.equal(hasPerm(root, { ...inode, type: FileType.DIR, mode: 0 }, Perm.X), true, "root searches any directory");
  });

  it("permission matrix for read and write data", () =>
    withFs(async ({ fs }) => {
      const { file } = await setup(fs, 0o640);
      const cases: [Cred, boolean, boolean][] = [
        [root, true, true],
        [owner, true, true],
        [member, true, false],
        [other, false, false],
      ];
      for (const [cred, canRead, canWrite] of cases) {
        const r = fs.read(cred, file, 0, 10);
        if (canRead) await r;
        else await rejectsWith(r, "EACCES", `read as ${cred.uid}`);
        const w = fs.write(cred, file, 0, Buffer.from("x"), StableHow.UNSTABLE);
        if (canWrite) await w;
        else await rejectsWith(w, "EACCES", `write as ${cred.uid}`);
      }
      // NFS has no open(): the owner keeps data access to their own 0444/0000 file.
      await fs.setattr(root, file, { mode: 0o000 });
      await fs.write(owner, file, 0, Buffer.from("y"), StableHow.UNSTABLE);
      assert.equal((await fs.read(owner, file, 0, 1)).data.toString(), "y");
      await rejectsWith(fs.read(member, file, 0, 1), "EACCES");
    }));

  it("lookup needs search permission; create/remove need write+search on the parent", () =>
    withFs(async ({ fs }) => {
      const d = (await fs.mkdir(owner, fs.rootIno, "d").catch(() => undefined))?.attrs.ino;
      assert.equal(d, undefined, "uid 1000 cannot create in root's 0755 directory");
      const dir = (await fs.mkdir(root, fs.rootIno, "d", { mode: 0o750, uid: 1000, gid: 100 })).attrs.ino;
      await fs.create(owner, dir, "f", { mode: "guarded" });
      await fs.lookup(member, dir, "f");
      await rejectsWith(fs.lookup(other, dir, "f"), "EACCES");
      await rejectsWith(fs.create(member, dir, "g", { mode: "guarded" }), "EACCES");
      await rejectsWith(fs.remove(member, dir, "f"), "EACCES");
      await rejectsWith(fs.remove(other, dir, "f"), "EACCES");
      await rejectsWith(fs.readdir(other, dir, 0, undefined, { maxBytes: 4096 }), "EACCES");
      await fs.setattr(owner, dir, { mode: 0o730 });
      await rejectsWith(fs.readdir(member, dir, 0, undefined, { maxBytes: 4096 }), "EACCES");
      await fs.create(member, dir, "g", { mode: "guarded" });
      await fs.remove(member, dir, "f");
      await fs.setattr(owner, dir, { mode: 0o640 });
      await rejectsWith(fs.create(member, dir, "h", { mode: "guarded" }), "EACCES", "write without search");
      // ENOENT wins over missing write permission (lookup comes first), EACCES over ENOENT without search.
      await fs.setattr(owner, dir, { mode: 0o710 });
      await rejectsWith(fs.remove(member, dir, "nope"), "ENOENT");
      await rejectsWith(fs.remove(other, dir, "nope"), "EACCES");
      await rejectsWith(fs.mkdir(member, dir, "g"), "EEXIST");
    }));

  it("sticky directories: only the entry's owner, the directory's owner or root remove or rename", () =>
    withFs(async ({ fs }) => {
      const tmp = (await fs.mkdir(root, fs.rootIno, "tmp", { mode: 0o1777, uid: 5000, gid: 5000 })).attrs.ino;
      assert.equal((await fs.getattr(tmp)).mode, 0o1777);
      for (const name of ["a", "b", "c", "d", "e"]) await fs.create(owner, tmp, name, { mode: "guarded" });
      await rejectsWith(fs.remove(other, tmp, "a"), "EPERM");
      await rejectsWith(fs.rename(other, tmp, "a", tmp, "z"), "EPERM");
      await fs.create(other, tmp, "others", { mode: "guarded" });
      await rejectsWith(fs.rename(owner, tmp, "a", tmp, "others"), "EPERM", "cannot replace someone else's entry");
      await fs.remove(owner, tmp, "a");
      await fs.remove(user(5000), tmp, "b");
      await fs.remove(root, tmp, "c");
      await fs.rename(owner, tmp, "d", tmp, "d2");
      const sub = (await fs.mkdir(owner, tmp, "sub")).attrs.ino;
      assert.ok(sub);
      await rejectsWith(fs.rmdir(other, tmp, "sub"), "EPERM");
      await fs.rmdir(owner, tmp, "sub");
    }));

  it("setgid directories: new entries take the directory's group; subdirectories inherit S_ISGID", () =>
    withFs(async ({ fs }) => {
      const sg = (await fs.mkdir(root, fs.rootIno, "sg", { mode: 0o2777, gid: 777 })).attrs.ino;
      assert.equal((await fs.getattr(sg)).mode, 0o2777);
      const f = (await fs.create(owner, sg, "f", { mode: "guarded", attrs: { mode: 0o644 } })).attrs;
      assert.equal(f.gid, 777);
      assert.equal(f.mode & 0o2000, 0);
      const d = (await fs.mkdir(owner, sg, "d", { mode: 0o755 })).attrs;
      assert.equal(d.gid, 777);
      assert.equal(d.mode, 0o2755);
      const s = (await fs.symlink(owner, sg, "s", "t")).attrs;
      assert.equal(s.gid, 777);
      const n = (await fs.mknod(owner, sg, "p", FileType.FIFO)).attrs;
      assert.equal(n.gid, 777);
      // A creator outside the group cannot get a setgid-executable file of that group.
      const x = (await fs.create(owner, sg, "x", { mode: "guarded", attrs: { mode: 0o2755 } })).attrs;
      assert.equal(x.mode, 0o755);
      const y = (await fs.create(user(1, 777), sg, "y", { mode: "guarded", attrs: { mode: 0o2755 } })).attrs;
      assert.equal(y.mode, 0o2755);
      // Outside a setgid directory the creator's primary group applies.
      const plain = (await fs.mkdir(root, fs.rootIno, "plain", { mode: 0o777 })).attrs.ino;
      assert.equal((await fs.create(owner, plain, "f", { mode: "guarded" })).attrs.gid, 100);
    }));

  it("suid/sgid are cleared by a non-root write or truncate, not by root", () =>
    withFs(async ({ fs }) => {
      const { file } = await setup(fs, 0o6777);
      await fs.write(root, file, 0, Buffer.from("r"), StableHow.UNSTABLE);
      assert.equal((await fs.getattr(file)).mode, 0o6777);
      await fs.write(owner, file, 0, Buffer.from("o"), StableHow.UNSTABLE);
      assert.equal((await fs.getattr(file)).mode, 0o777);
      await fs.setattr(root, file, { mode: 0o6777 });
      await fs.setattr(member, file, { size: 0 });
      assert.equal((await fs.getattr(file)).mode, 0o777);
      // Without group execute, S_ISGID stays (it marks mandatory locking, not privilege).
      await fs.setattr(root, file, { mode: 0o6666 });
      await fs.write(other, file, 0, Buffer.from("x"), StableHow.UNSTABLE);
      assert.equal((await fs.getattr(file)).mode, 0o2666);
    }));

  it("chown: only root changes the owner; the owner may change the group to one they are in", () =>
    withFs(async ({ fs }) => {
      const { file } = await setup(fs, 0o6755);
      await rejectsWith(fs.setattr(owner, file, { uid: 2000 }), "EPERM");
      await rejectsWith(fs.setattr(member, file, { gid: 300 }), "EPERM", "non-owner");
      await rejectsWith(fs.setattr(owner, file, { gid: 300 }), "EPERM", "not a member of 300");
      await fs.setattr(owner, file, { uid: 1000 }); // to itself: allowed
      await fs.setattr(root, file, { mode: 0o6755 });
      await fs.setattr(user(1000, 100, [300]), file, { gid: 300 });
      let a = await fs.getattr(file);
      assert.equal(a.gid, 300);
      assert.equal(a.mode, 0o755, "chown clears suid and sgid");
      await fs.setattr(root, file, { mode: 0o6755 });
      await fs.setattr(root, file, { uid: 4000, gid: 4000 });
      a = await fs.getattr(file);
      assert.deepEqual([a.uid, a.gid, a.mode], [4000, 4000, 0o755]);
      const ctime = a.ctime;
      await rejectsWith(fs.setattr(other, file, { uid: 3000 }), "EPERM");
      assert.deepEqual((await fs.getattr(file)).ctime, ctime, "a failed chown leaves ctime alone");
      // Directories keep their setgid bit across chown.
      const d = (await fs.mkdir(root, fs.rootIno, "sgd", { mode: 0o2755 })).attrs.ino;
      await fs.setattr(root, d, { uid: 1000 });
      assert.equal((await fs.getattr(d)).mode, 0o2755);
    }));

  it("chmod: only owner or root; a non-member owner cannot set S_ISGID", () =>
    withFs(async ({ fs }) => {
      const { file } = await setup(fs, 0o644);
      await rejectsWith(fs.setattr(member, file, { mode: 0o777 }), "EPERM");
      const before = await fs.getattr(file);
      await fs.setattr(owner, file, { mode: 0o4755 });
      const after = await fs.getattr(file);
      assert.equal(after.mode, 0o4755);
      assert.ok(compareTime(after.ctime, before.ctime) > 0, "chmod updates ctime");
      assert.deepEqual(after.mtime, before.mtime, "chmod leaves mtime alone");
      await fs.setattr(root, file, { gid: 999 });
      await fs.setattr(owner, file, { mode: 0o2755 });
      assert.equal((await fs.getattr(file)).mode, 0o755, "owner not in group 999: S_ISGID dropped");
      await fs.setattr(root, file, { mode: 0o2755 });
      assert.equal((await fs.getattr(file)).mode, 0o2755);
      await fs.setattr(owner, fs.rootIno, {}).catch(() => undefined); // empty setattr is a no-op for anyone
      await fs.setattr(owner, file, { mode: 0o1644 });
      assert.equal((await fs.getattr(file)).mode, 0o1644, "sticky on a file is allowed (Linux)");
    }));

  it("utimes: explicit times need owner or root; 'now' needs owner, root or write permission", () =>
    withFs(async ({ fs }) => {
      const { file } = await setup(fs, 0o664);
      const t = { sec: 1_000_000, nsec: 42 };
      await fs.setattr(owner, file, { atime: t, mtime: t });
      let a = await fs.getattr(file);
      assert.deepEqual(a.atime, t);
      assert.deepEqual(a.mtime, t);
      await rejectsWith(fs.setattr(member, file, { mtime: t }), "EPERM");
      await fs.setattr(member, file, { atime: "server", mtime: "server" });
      a = await fs.getattr(file);
      assert.ok(compareTime(a.mtime, t) > 0);
      await rejectsWith(fs.setattr(other, file, { atime: "server", mtime: "server" }), "EACCES");
      await fs.setattr(root, file, { mtime: { sec: 0, nsec: 0 } });
      assert.deepEqual((await fs.getattr(file)).mtime, { sec: 0, nsec: 0 });
      await rejectsWith(fs.setattr(root, file, { mtime: { sec: 0, nsec: 1e9 } }), "EINVAL");
    }));

  it("truncate needs write permission (owner overrides) and a regular file", () =>
    withFs(async ({ fs }) => {
      const { dir, file } = await setup(fs, 0o644);
      await rejectsWith(fs.setattr(member, file, { size: 0 }), "EACCES");
      await fs.setattr(owner, file, { size: 10 });
      await rejectsWith(fs.setattr(root, dir, { size: 0 }), "EISDIR");
      const s = (await fs.symlink(root, dir, "s", "t")).attrs.ino;
      await rejectsWith(fs.setattr(root, s, { size: 0 }), "EINVAL");
    }));

  it("renaming a directory to another parent needs write permission on it", () =>
    withFs(async ({ fs }) => {
      const a = (await fs.mkdir(root, fs.rootIno, "a", { mode: 0o777 })).attrs.ino;
      const b = (await fs.mkdir(root, fs.rootIno, "b", { mode: 0o777 })).attrs.ino;
      await fs.mkdir(root, a, "rootsdir", { mode: 0o755 });
      await rejectsWith(fs.rename(owner, a, "rootsdir", b, "x"), "EACCES");
      await fs.rename(owner, a, "rootsdir", a, "renamed"); // same parent: ".." unchanged, allowed
      await fs.mkdir(owner, a, "mine", { mode: 0o755 });
      await fs.rename(owner, a, "mine", b, "mine");
    }));
});
