/**
 * Randomized quota test against a model of per-project usage: random creates, mkdirs, symlinks,
 * writes, truncates, removes, rmdirs, renames and hard links in and across three quota projects
 * and the unquoted root, with limit changes and restarts in between. Every outcome (success,
 * EDQUOT, EXDEV) must match the model and the usage counters must equal the model's usage after
 * every operation; after restarts and after crashes (a store that dies at a random call), the
 * counters must equal the usage recomputed from the tree itself. Prints its seed;
 * ZEROFS_TEST_SEED replays a run.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClaimDirectories } from "../../src/fs/claims.ts";
import { isFsError } from "../../src/fs/errors.ts";
import type { QuotaLimits, Usage } from "../../src/fs/quota.ts";
import { FileType, ROOT, StableHow } from "../../src/fs/types.ts";
import { ZeroFs } from "../../src/fs/zerofs.ts";
import { Db } from "../../src/lsm/db.ts";
import { FaultInjectingStore } from "../../src/store/fault-store.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { testKeys } from "../../../test/support/test-keys.ts";
import { Rng } from "../../../test/support/random.ts";
import { SMALL_DB, openFs, resolvePath, root } from "./helpers.ts";

interface MFile {
  kind: "file" | "link";
  size: number;
  project: number;
}
interface MDir {
  kind: "dir";
  entries: Map<string, MNode>;
  project: number;
}
type MNode = MFile | MDir;

const NAMES = ["a", "b", "c", "d", "e"];
const CLAIMS = ["p1", "p2", "p3"];

class Model {
  readonly root: MDir = { kind: "dir", entries: new Map(), project: 0 };
  readonly limits = new Map<number, QuotaLimits>();

  dirs(): { path: string[]; node: MDir }[] {
    const out: { path: string[]; node: MDir }[] = [];
    const walk = (path: string[], d: MDir): void => {
      out.push({ path, node: d });
      for (const [n, c] of d.entries) if (c.kind === "dir") walk([...path, n], c);
    };
    walk([], this.root);
    return out;
  }

  entries(): { dir: MDir; path: string[]; name: string; node: MNode }[] {
    const out: { dir: MDir; path: string[]; name: string; node: MNode }[] = [];
    for (const d of this.dirs()) for (const [name, node] of d.node.entries) out.push({ dir: d.node, path: d.path, name, node });
    return out;
  }

  usage(project: number): Usage {
    const seen = new Set<MNode>();
    const u = { bytes: 0, inodes: 0 };
    const walk = (n: MNode): void => {
      if (seen.has(n)) return;
      seen.add(n);
      if (n.project === project) {
        u.inodes++;
        if (n.kind !== "dir") u.bytes += n.size;
      }
      if (n.kind === "dir") for (const c of n.entries.values()) walk(c);
    };
    walk(this.root);
    return u;
  }

  /** EDQUOT for a change of `bytes` and `inodes` in `project`, as the server decides it. */
  exceeds(project: number, bytes: number, inodes: number): boolean {
    const l = this.limits.get(project);
    if (!l) return false;
    const u = this.usage(project);
    if (bytes > 0 && l.bytes !== null && u.bytes + bytes > l.bytes) return true;
    if (inodes > 0 && l.inodes !== null && u.inodes + inodes > l.inodes) return true;
    return inodes > 0 && l.bytes !== null && u.bytes >= l.bytes;
  }

  contains(ancestor: MDir, d: MDir): boolean {
    if (ancestor === d) return true;
    for (const c of ancestor.entries.values()) if (c.kind === "dir" && this.contains(c, d)) return true;
    return false;
  }
}

/** Usage per project recomputed from the tree (distinct inodes reachable from the root). */
async function treeUsage(fs: ZeroFs): Promise<Map<number, Usage>> {
  const inodes = fs.internals().inodes;
  const seen = new Set<number>();
  const out = new Map<number, Usage>();
  const visit = async (ino: number): Promise<void> => {
    if (seen.has(ino)) return;
    seen.add(ino);
    const i = (await inodes.get(ino))!;
    const p = i.project ?? 0;
    const u = out.get(p) ?? { bytes: 0, inodes: 0 };
    u.inodes++;
    if (i.type === FileType.REG || i.type === FileType.LNK) u.bytes += i.size;
    out.set(p, u);
    if (i.type !== FileType.DIR) return;
    let cookie = 0;
    for (;;) {
      const page = await fs.readdir(ROOT, ino, cookie, undefined, { maxBytes: 64 * 1024 });
      for (const e of page.entries) {
        cookie = e.cookie;
        const n = e.name.toString();
        if (n !== "." && n !== "..") await visit(e.ino);
      }
      if (page.eof) break;
    }
  };
  await visit(fs.rootIno);
  return out;
}

async function assertCountersMatchTree(fs: ZeroFs, note: string): Promise<void> {
  const tree = await treeUsage(fs);
  for (const r of fs.quotas.all()) assert.deepEqual(fs.quotas.usage(r.id), tree.get(r.id) ?? { bytes: 0, inodes: 0 }, `${note}: project ${r.id} counters vs tree`);
  let bytes = 0;
  let count = 0;
  for (const u of tree.values()) {
    bytes += u.bytes;
    count += u.inodes;
  }
  assert.deepEqual(fs.usage, { usedBytes: bytes, inodes: count }, `${note}: volume counters vs tree`);
}

/**
 * One random operation, checked against the model. Returns its outcome ("ok" or the error code,
 * "skip" when the draw fit no operation), false when it failed unexpectedly (a crashed store,
 * when not `strict`).
 */
async function step(fs: ZeroFs, m: Model, rng: Rng, projectOf: Map<string, number>, strict: boolean): Promise<string | false> {
  const pick = <T>(xs: T[]): T => xs[rng.int(0, xs.length - 1)]!;
  const dirs = m.dirs();
  const d = pick(dirs);
  const name = pick(NAMES);
  const exists = d.node.entries.has(name);
  const movable = m.entries().filter((e) => !(e.dir === m.root && projectOf.has(e.name)));
  const files = movable.filter((e) => e.node.kind === "file");
  let expected: string | undefined;
  let run: () => Promise<unknown>;
  let apply: () => void = () => undefined;
  const op = rng.int(0, 9);
  if (op <= 1 && !exists) {
    const kind = rng.chance(0.7) ? "file" : "dir";
    expected = m.exceeds(d.node.project, 0, 1) ? "EDQUOT" : undefined;
    run = async () => {
      const dir = await resolvePath(fs, d.path);
      if (kind === "file") await fs.create(root, dir, name, { mode: "guarded", attrs: { mode: 0o644 } });
      else await fs.mkdir(root, dir, name);
    };
    apply = () => d.node.entries.set(name, kind === "file" ? { kind: "file", size: 0, project: d.node.project } : { kind: "dir", entries: new Map(), project: d.node.project });
  } else if (op === 2 && !exists) {
    const target = "t".repeat(rng.int(1, 3000));
    expected = m.exceeds(d.node.project, target.length, 1) ? "EDQUOT" : undefined;
    run = async () => fs.symlink(root, await resolvePath(fs, d.path), name, target);
    apply = () => d.node.entries.set(name, { kind: "link", size: target.length, project: d.node.project });
  } else if ((op === 3 || op === 4) && files.length > 0) {
    const f = pick(files);
    const node = f.node as MFile;
    const write = op === 3;
    const off = rng.int(0, 60_000);
    const len = rng.int(1, 20_000);
    const newSize = write ? Math.max(node.size, off + len) : rng.int(0, 80_000);
    expected = m.exceeds(node.project, newSize - node.size, 0) ? "EDQUOT" : undefined;
    run = async () => {
      const ino = await resolvePath(fs, [...f.path, f.name]);
      if (write) await fs.write(root, ino, off, Buffer.alloc(len, 0x5a), rng.chance(0.5) ? StableHow.UNSTABLE : StableHow.FILE_SYNC);
      else await fs.setattr(root, ino, { size: newSize });
    };
    apply = () => void (node.size = newSize);
  } else if (op === 5 && movable.length > 0) {
    const e = pick(movable);
    if (e.node.kind === "dir" && e.node.entries.size > 0) return "skip";
    run = async () => {
      const dir = await resolvePath(fs, e.path);
      if (e.node.kind === "dir") await fs.rmdir(root, dir, e.name);
      else await fs.remove(root, dir, e.name);
    };
    apply = () => void e.dir.entries.delete(e.name);
  } else if ((op === 6 || op === 7) && movable.length > 0) {
    const s = pick(movable);
    const dst = d.node.entries.get(name);
    if (s.node.kind === "dir" && m.contains(s.node, d.node)) return "skip";
    if (dst && dst !== s.node && (dst.kind === "dir" ? s.node.kind !== "dir" || dst.entries.size > 0 : s.node.kind === "dir")) return "skip";
    if (dst && dst === s.node) return "skip";
    if (d.node === m.root && projectOf.has(name)) return "skip"; // never replace a claim directory
    expected = s.dir !== d.node && s.node.project !== d.node.project ? "EXDEV" : undefined;
    run = async () => fs.rename(root, await resolvePath(fs, s.path), s.name, await resolvePath(fs, d.path), name);
    apply = () => {
      s.dir.entries.delete(s.name);
      d.node.entries.set(name, s.node);
    };
  } else if (op === 8 && files.length > 0 && !exists) {
    const f = pick(files);
    expected = f.node.project !== d.node.project ? "EXDEV" : undefined;
    run = async () => fs.link(root, await resolvePath(fs, [...f.path, f.name]), await resolvePath(fs, d.path), name);
    apply = () => void d.node.entries.set(name, f.node);
  } else if (op === 9) {
    const claim = pick([...projectOf.keys()]);
    const limits = { bytes: rng.chance(0.2) ? null : rng.int(0, 250_000), inodes: rng.chance(0.2) ? null : rng.int(1, 30) };
    run = async () => new ClaimDirectories(fs).put(claim, { quota: limits });
    apply = () => void m.limits.set(projectOf.get(claim)!, limits);
  } else return "skip";
  let got: string | undefined;
  try {
    await run();
  } catch (err) {
    if (!isFsError(err) || (!strict && !["EDQUOT", "EXDEV"].includes(err.code))) {
      if (strict) throw err;
      return false;
    }
    got = err.code;
  }
  if (got === undefined) apply();
  if (strict || got !== undefined || expected !== undefined) assert.equal(got, expected, `op ${op} outcome`);
  for (const [claim, id] of projectOf) {
    if (strict) assert.deepEqual(fs.quotas.usage(id), m.usage(id), `usage of ${claim} (project ${id}) after op ${op}`);
  }
  return got ?? "ok";
}

async function setUp(fs: ZeroFs, m: Model, rng: Rng): Promise<Map<string, number>> {
  const claims = new ClaimDirectories(fs);
  const projectOf = new Map<string, number>();
  for (const c of CLAIMS) {
    const limits = { bytes: rng.int(50_000, 250_000), inodes: rng.int(5, 30) };
    const info = await claims.put(c, { quota: limits });
    projectOf.set(c, info.projectId);
    m.limits.set(info.projectId, limits);
    m.root.entries.set(c, { kind: "dir", entries: new Map(), project: info.projectId });
  }
  return projectOf;
}

describe("quota model", () => {
  it("per-project usage, EDQUOT and EXDEV follow the model across restarts (seeded)", { timeout: 300_000 }, async () => {
    const rng = Rng.fromEnv("quota model");
    const fx = await openFs();
    try {
      const m = new Model();
      const projectOf = await setUp(fx.fs, m, rng);
      const outcomes = new Map<string, number>();
      for (let i = 0; i < 1500; i++) {
        const o = (await step(fx.fs, m, rng, projectOf, true)) as string;
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
        if (i % 250 === 249) {
          await fx.reopen();
          await assertCountersMatchTree(fx.fs, `after restart ${i}`);
          for (const id of projectOf.values()) assert.deepEqual(fx.fs.quotas.usage(id), m.usage(id), `project ${id} after restart`);
        }
      }
      // The run must have reached the interesting outcomes, or it proves little.
      const seen = JSON.stringify(Object.fromEntries(outcomes));
      console.log(`# outcomes ${seen}`);
      assert.ok((outcomes.get("EDQUOT") ?? 0) > 10 && (outcomes.get("EXDEV") ?? 0) > 10 && (outcomes.get("ok") ?? 0) > 500, `outcomes ${seen}`);
      await assertCountersMatchTree(fx.fs, "end");
    } finally {
      await fx.close();
    }
  });

  it("usage counters equal the tree after crashes at random store calls (seeded)", { timeout: 300_000 }, async () => {
    const rng = Rng.fromEnv("quota crash");
    let crashes = 0;
    for (let round = 0; round < 8; round++) {
      const inner = new MemoryStore();
      const store = new FaultInjectingStore(inner);
      let db = await Db.open(store, testKeys(), SMALL_DB);
      let fs = await ZeroFs.open(db, {});
      const m = new Model();
      const projectOf = await setUp(fs, m, rng);
      for (let i = 0; i < 150; i++) await step(fs, m, rng, projectOf, true);
      const deleted = round % 2 === 0 ? CLAIMS[rng.int(0, CLAIMS.length - 1)]! : undefined;
      if (deleted) {
        assert.equal(await new ClaimDirectories(fs).delete(deleted), true);
        m.root.entries.delete(deleted);
        projectOf.delete(deleted);
      }
      store.crashAfter(rng.int(1, 200), { midPut: rng.chance(0.5) });
      // Several operations in flight at once, as NFS clients send them.
      // (Concurrent draws may conflict with each other and fail: those just count as no-ops.)
      for (let i = 0; i < 3000 && !store.crashed; i++) {
        await Promise.all(Array.from({ length: rng.int(1, 4) }, () => step(fs, m, rng, projectOf, false).catch(() => false)));
      }
      if (store.crashed) crashes++;
      await fs.close().catch(() => undefined);
      await db.close().catch(() => undefined);
      store.reset();
      db = await Db.open(inner, testKeys(), SMALL_DB);
      fs = await ZeroFs.open(db, {});
      try {
        await fs.backgroundIdle();
        if (deleted) assert.equal(fs.quotas.all().length, CLAIMS.length - 1, `round ${round}: the deleted claim's tree was reclaimed after the crash`);
        await assertCountersMatchTree(fs, `round ${round}`);
      } finally {
        await fs.close();
        await db.close();
      }
    }
    assert.equal(crashes, 8, "every round crashed mid-operations");
  });
});
