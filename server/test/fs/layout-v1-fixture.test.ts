/**
 * A volume written by the layout-v1 code (test/fixtures/layout-v1-volume, made by
 * test/fixtures/make-layout-v1-volume.ts and never regenerated) opens with today's code: every
 * file reads back byte-exact, and its files can be written, truncated and removed.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { openDatabase } from "../../src/lsm/open-database.ts";
import { StableHow } from "../../src/fs/types.ts";
import { ZeroFs } from "../../src/fs/zerofs.ts";
import { ClaimDirectories } from "../../src/fs/claims.ts";
import { resolvePath, root } from "./helpers.ts";

const FIXTURE = join(import.meta.dirname, "../../../test/fixtures/layout-v1-volume");

interface Expected {
  password: string;
  files: Record<string, { size: number; sha256: string; type: string; target?: string }>;
}

async function contentHash(fs: ZeroFs, ino: number, size: number): Promise<string> {
  const h = createHash("sha256");
  for (let off = 0; off < size; off += 1 << 20) h.update((await fs.read(root, ino, off, 1 << 20)).data);
  return h.digest("hex");
}

async function openCopy(): Promise<{ fs: ZeroFs; close(): Promise<void>; expected: Expected; dir: string }> {
  const expected = JSON.parse(await readFile(join(FIXTURE, "expected.json"), "utf8")) as Expected;
  const dir = await mkdtemp(join(tmpdir(), "zerofs-v1-fixture-"));
  await cp(join(FIXTURE, "volume"), join(dir, "volume"), { recursive: true });
  const vol = await openDatabase({ url: join(dir, "volume"), password: expected.password });
  const fs = await ZeroFs.open(vol.db, {});
  return {
    fs,
    expected,
    dir,
    async close() {
      await fs.close();
      await vol.close();
    },
  };
}

describe("a layout-v1 volume (fixture)", () => {
  it("reads back every file byte-exact, then takes writes, truncation and removal", async () => {
    let v = await openCopy();
    try {
      for (const [path, e] of Object.entries(v.expected.files)) {
        const ino = await resolvePath(v.fs, path);
        const attrs = await v.fs.getattr(ino);
        assert.equal(attrs.size, e.size, `size of ${path}`);
        if (e.type === "symlink") {
          assert.equal((await v.fs.readlink(root, ino)).target.toString(), e.target);
          continue;
        }
        if (e.size <= 64 << 20) assert.equal(await contentHash(v.fs, ino, e.size), e.sha256, `content of ${path}`);
      }
      const huge = await resolvePath(v.fs, "/huge-sparse");
      assert.equal((await v.fs.read(root, huge, 2 ** 39, 8)).data.toString(), "far away");
      assert.ok((await v.fs.read(root, huge, 2 ** 38, 4096)).data.every((b) => b === 0));

      // Writes into v1 files: overwrite across a chunk boundary, extend, truncate, remove.
      const data = await resolvePath(v.fs, "/dir/sub/data.bin");
      const before = Buffer.concat([(await v.fs.read(root, data, 0, 300_000)).data]);
      const patch = Buffer.alloc(10_000, 0xab);
      await v.fs.write(root, data, 60_000, patch, StableHow.FILE_SYNC);
      patch.copy(before, 60_000);
      await v.fs.write(root, data, 400_000, Buffer.from("end"), StableHow.FILE_SYNC);
      await v.fs.setattr(root, await resolvePath(v.fs, "/sparse.bin"), { size: 2000 });
      await v.fs.remove(root, v.fs.rootIno, "huge-sparse");
      await v.fs.create(root, v.fs.rootIno, "new.txt", { mode: "guarded" });
      const dir = v.dir;
      await v.close();
      v = { ...(await openCopyAt(dir, v.expected)), expected: v.expected, dir };
      const got = (await v.fs.read(root, await resolvePath(v.fs, "/dir/sub/data.bin"), 0, 400_003)).data;
      assert.equal(got.length, 400_003);
      assert.ok(got.subarray(0, 300_000).equals(before), "overwritten v1 file reads back");
      assert.ok(got.subarray(300_000, 400_000).every((b) => b === 0));
      assert.equal(got.subarray(400_000).toString(), "end");
      const sparse = await resolvePath(v.fs, "/sparse.bin");
      assert.equal((await v.fs.getattr(sparse)).size, 2000);
      await v.fs.setattr(root, sparse, { size: 10 * 2 ** 20 });
      assert.ok((await v.fs.read(root, sparse, 5 * 2 ** 20, 200)).data.every((b) => b === 0), "truncated data does not reappear");
      await assert.rejects(resolvePath(v.fs, "/huge-sparse"));
      await v.fs.backgroundIdle();
    } finally {
      await v.close();
      await rm(v.dir, { recursive: true, force: true });
    }
  });

  it("takes quota projects: old inodes are project 0, a new claim counts only what is created in it", async () => {
    const v = await openCopy();
    let reopened: { fs: ZeroFs; close(): Promise<void> } | undefined;
    try {
      const before = v.fs.usage;
      const claims = new ClaimDirectories(v.fs, "/claims");
      await claims.put("new", { quota: { bytes: 1_000_000, inodes: 10 } });
      const dir = await resolvePath(v.fs, "/claims/new");
      const f = (await v.fs.create(root, dir, "f", { mode: "guarded" })).attrs.ino;
      await v.fs.write(root, f, 0, Buffer.alloc(5000, 1), StableHow.FILE_SYNC);
      assert.deepEqual((await claims.get("new"))!.usage, { bytes: 5000, inodes: 2 });
      // The old files are outside every project: FSSTAT of one reports the volume.
      const [path, e] = Object.entries(v.expected.files)[0]!;
      assert.equal((await v.fs.fsstat(await resolvePath(v.fs, path))).stat.files, before.inodes + 3);
      await v.close();
      reopened = await openCopyAt(v.dir, v.expected);
      assert.deepEqual((await new ClaimDirectories(reopened.fs, "/claims").get("new"))!.usage, { bytes: 5000, inodes: 2 }, "after a restart");
      assert.equal(await contentHash(reopened.fs, await resolvePath(reopened.fs, path), e.size), e.sha256, `${path} still reads back`);
    } finally {
      await reopened?.close();
      await rm(v.dir, { recursive: true, force: true });
    }
  });
});

async function openCopyAt(dir: string, expected: Expected): Promise<{ fs: ZeroFs; close(): Promise<void> }> {
  const vol = await openDatabase({ url: join(dir, "volume"), password: expected.password });
  const fs = await ZeroFs.open(vol.db, {});
  return {
    fs,
    async close() {
      await fs.close();
      await vol.close();
    },
  };
}
