/**
 * Randomized test against an in-memory model of a directory tree: random creates, mkdirs,
 * symlinks, hard links, writes, truncates, removes and renames (with colliding names so the
 * error paths run too), with restarts in between. Every outcome (success or error code) must
 * match the model, and the whole tree is compared periodically. Prints its seed;
 * ZEROFS_TEST_SEED replays a run.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FileType, StableHow } from "../../src/fs/types.ts";
import { isFsError } from "../../src/fs/errors.ts";
import type { ZeroFs } from "../../src/fs/zerofs.ts";
import { Rng } from "../../../test/support/random.ts";
import { listNames, openFs, resolvePath, root } from "./helpers.ts";

interface MFile {
  kind: "file";
  data: Buffer;
}
interface MDir {
  kind: "dir";
  entries: Map<string, MNode>;
}
interface MLink {
  kind: "link";
  target: string;
}
type MNode = MFile | MDir | MLink;

const NAMES = ["a", "b", "c", "d", "e", "f"];

function newDir(): MDir {
  return { kind: "dir", entries: new Map() };
}

class Model {
  readonly root = newDir();

  dirs(): { path: string[]; node: MDir }[] {
    const out: { path: string[]; node: MDir }[] = [];
    const walk = (path: string[], d: MDir): void => {
      out.push({ path, node: d });
      for (const [n, c] of d.entries) if (c.kind === "dir") walk([...path, n], c);
    };
    walk([], this.root);
    return out;
  }

  all(): { path: string[]; node: MNode }[] {
    const out: { path: string[]; node: MNode }[] = [];
    const walk = (path: string[], d: MDir): void => {
      for (const [n, c] of d.entries) {
        out.push({ path: [...path, n], node: c });
        if (c.kind === "dir") walk([...path, n], c);
      }
    };
    walk([], this.root);
    return out;
  }

  /** Distinct nodes (hard links counted once) and their link counts. */
  census(): Map<MNode, number> {
    const links = new Map<MNode, number>();
    for (const { node } of this.all()) links.set(node, (links.get(node) ?? 0) + 1);
    return links;
  }

  contains(ancestor: MDir, d: MDir): boolean {
    if (ancestor === d) return true;
    for (const c of ancestor.entries.values()) if (c.kind === "dir" && this.contains(c, d)) return true;
    return false;
  }
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (isFsError(err)) return err.code;
    throw err;
  }
}

async function compareTree(fs: ZeroFs, model: Model, where: string): Promise<void> {
  const census = model.census();
  const inoOf = new Map<MNode, number>();
  const walk = async (path: string[], d: MDir, ino: number): Promise<void> => {
    const names = (await listNames(fs, ino, root, 512)).sort();
    assert.deepEqual(names, [...d.entries.keys()].sort(), `${where}: entries of /${path.join("/")}`);
    const attrs = await fs.getattr(ino);
    const subdirs = [...d.entries.values()].filter((c) => c.kind === "dir").length;
    assert.equal(attrs.nlink, 2 + subdirs, `${where}: nlink of dir /${path.join("/")}`);
    for (const [n, c] of d.entries) {
      const { attrs: a } = await fs.lookup(root, ino, n);
      const p = `/${[...path, n].join("/")}`;
      const known = inoOf.get(c);
      if (known !== undefined) assert.equal(a.ino, known, `${where}: ${p} is a hard link to the same inode`);
      else {
        for (const [node, ino2] of inoOf) assert.ok(node === c || ino2 !== a.ino, `${where}: ${p} shares an inode with another node`);
        inoOf.set(c, a.ino);
      }
      if (c.kind === "dir") {
        assert.equal(a.type, FileType.DIR, `${where}: type of ${p}`);
        await walk([...path, n], c, a.ino);
      } else if (c.kind === "link") {
        assert.equal(a.type, FileType.LNK);
        assert.equal((await fs.readlink(root, a.ino)).target.toString(), c.target);
      } else {
        assert.equal(a.type, FileType.REG);
        assert.equal(a.size, c.data.length, `${where}: size of ${p}`);
        assert.equal(a.nlink, census.get(c), `${where}: nlink of ${p}`);
        const r = await fs.read(root, a.ino, 0, c.data.length + 10);
        assert.ok(r.data.equals(c.data), `${where}: content of ${p}`);
      }
    }
  };
  await walk([], model.root, fs.rootIno);
  let bytes = 0;
  for (const n of census.keys()) bytes += n.kind === "file" ? n.data.length : n.kind === "link" ? Buffer.byteLength(n.target) : 0;
  assert.deepEqual(fs.usage, { usedBytes: bytes, inodes: census.size + 1 }, `${where}: volume counters`);
}

describe("randomized model test", () => {
  it("matches an in-memory model of the tree through random operations and restarts", async () => {
    const rng = Rng.fromEnv("fs model");
    const fx = await openFs({ inlineDeleteChunks: 2, reclaimBatchKeys: 3 });
    const model = new Model();
    const pick = <T>(xs: T[]): T => xs[rng.int(0, xs.length - 1)]!;
    const OPS = Number(process.env.ZEROFS_MODEL_OPS ?? 400);
    try {
      for (let step = 0; step < OPS; step++) {
        const fs = fx.fs;
        const dirs = model.dirs();
        const { path: dpath, node: dir } = pick(dirs);
        const name = pick(NAMES);
        const existing = dir.entries.get(name);
        const op = rng.int(0, 99);
        let what: string;
        let expected: string;
        let got: string;
        if (op < 15) {
          what = "create";
          expected = existing ? "EEXIST" : "ok";
          got = await outcome(resolvePath(fs, dpath).then((d) => fs.create(root, d, name, { mode: "guarded" })));
          if (expected === "ok") dir.entries.set(name, { kind: "file", data: Buffer.alloc(0) });
        } else if (op < 25) {
          what = "mkdir";
          expected = existing ? "EEXIST" : "ok";
          got = await outcome(resolvePath(fs, dpath).then((d) => fs.mkdir(root, d, name)));
          if (expected === "ok") dir.entries.set(name, newDir());
        } else if (op < 30) {
          what = "symlink";
          const target = `t${rng.int(0, 99)}`;
          expected = existing ? "EEXIST" : "ok";
          got = await outcome(resolvePath(fs, dpath).then((d) => fs.symlink(root, d, name, target)));
          if (expected === "ok") dir.entries.set(name, { kind: "link", target });
        } else if (op < 50) {
          const files = model.all().filter((e) => e.node.kind === "file");
          if (files.length === 0) continue;
          const { path, node } = pick(files);
          const f = node as MFile;
          if (rng.chance(0.75)) {
            what = `write /${path.join("/")}`;
            const offset = rng.int(0, 200_000);
            const data = rng.chance(0.2) ? Buffer.alloc(rng.int(1, 70_000)) : rng.bytes(rng.int(1, 100_000));
            expected = "ok";
            got = await outcome(resolvePath(fs, path).then((ino) => fs.write(root, ino, offset, data, rng.chance(0.5) ? StableHow.UNSTABLE : StableHow.FILE_SYNC)));
            if (offset + data.length > f.data.length) {
              const next = Buffer.alloc(offset + data.length);
              f.data.copy(next);
              f.data = next;
            }
            data.copy(f.data, offset);
          } else {
            what = `truncate /${path.join("/")}`;
            const size = rng.int(0, 300_000);
            expected = "ok";
            got = await outcome(resolvePath(fs, path).then((ino) => fs.setattr(root, ino, { size })));
            const next = Buffer.alloc(size);
            f.data.copy(next, 0, 0, Math.min(size, f.data.length));
            f.data = next;
          }
        } else if (op < 62) {
          what = "remove";
          expected = !existing ? "ENOENT" : existing.kind === "dir" ? "EISDIR" : "ok";
          got = await outcome(resolvePath(fs, dpath).then((d) => fs.remove(root, d, name)));
          if (expected === "ok") dir.entries.delete(name);
        } else if (op < 70) {
          what = "rmdir";
          expected = !existing ? "ENOENT" : existing.kind !== "dir" ? "ENOTDIR" : existing.entries.size > 0 ? "ENOTEMPTY" : "ok";
          got = await outcome(resolvePath(fs, dpath).then((d) => fs.rmdir(root, d, name)));
          if (expected === "ok") dir.entries.delete(name);
        } else if (op < 78) {
          const files = model.all().filter((e) => e.node.kind !== "dir");
          if (files.length === 0) continue;
          const src = pick(files);
          what = `link /${src.path.join("/")}`;
          expected = existing ? "EEXIST" : "ok";
          got = await outcome(Promise.all([resolvePath(fs, src.path), resolvePath(fs, dpath)]).then(([ino, d]) => fs.link(root, ino, d, name)));
          if (expected === "ok") dir.entries.set(name, src.node);
        } else if (op < 97) {
          const { path: spath, node: sdir } = pick(dirs);
          const sname = pick(NAMES);
          const src = sdir.entries.get(sname);
          what = `rename /${[...spath, sname].join("/")} -> /${[...dpath, name].join("/")}`;
          if (!src) expected = "ENOENT";
          else if (existing === src) expected = "ok";
          else if (src.kind === "dir") {
            if (existing && existing.kind !== "dir") expected = "ENOTDIR";
            else if (sdir !== dir && model.contains(src, dir)) expected = "EINVAL";
            else if (existing && existing.kind === "dir" && existing.entries.size > 0) expected = "ENOTEMPTY";
            else expected = "ok";
          } else expected = existing?.kind === "dir" ? "EISDIR" : "ok";
          got = await outcome(Promise.all([resolvePath(fs, spath), resolvePath(fs, dpath)]).then(([s, d]) => fs.rename(root, s, sname, d, name)));
          if (expected === "ok" && existing !== src) {
            sdir.entries.delete(sname);
            dir.entries.set(name, src!);
          }
        } else {
          what = "restart";
          expected = "ok";
          got = await outcome(fx.reopen());
        }
        assert.equal(got, expected, `step ${step}: ${what} of ${JSON.stringify(name)} in /${dpath.join("/")} (seed ${rng.seed})`);
        if (step % 50 === 49) await compareTree(fx.fs, model, `step ${step} (seed ${rng.seed})`);
      }
      await compareTree(fx.fs, model, `end (seed ${rng.seed})`);
      await fx.reopen();
      await fx.fs.reclaimer?.idle();
      await compareTree(fx.fs, model, `after final restart (seed ${rng.seed})`);
    } finally {
      await fx.close();
    }
  });
});
