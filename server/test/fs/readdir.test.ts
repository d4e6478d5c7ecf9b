/** READDIR / READDIRPLUS: completeness, stable cookies across restarts, concurrent changes. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FileType } from "../../src/fs/types.ts";
import { readdirEntryBytes, type ZeroFs } from "../../src/fs/zerofs.ts";
import { KeyKind } from "../../src/fs/keys.ts";
import { listNames, openFs, rejectsWith, root, withFs } from "./helpers.ts";

interface Page {
  names: string[];
  cookies: number[];
  last: number;
  eof: boolean;
  verifier: Buffer;
}

async function page(fs: ZeroFs, dir: number, cookie: number, verifier: Buffer | undefined, maxEntries: number): Promise<Page> {
  const r = await fs.readdir(root, dir, cookie, verifier, { maxBytes: 1 << 20, maxEntries });
  return {
    names: r.entries.map((e) => e.name.toString()),
    cookies: r.entries.map((e) => e.cookie),
    last: r.entries.at(-1)?.cookie ?? cookie,
    eof: r.eof,
    verifier: r.verifier,
  };
}

async function createMany(fs: ZeroFs, dir: number, names: string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 500) {
    await Promise.all(names.slice(i, i + 500).map((n) => fs.create(root, dir, n, { mode: "guarded" })));
  }
}

describe("readdir", () => {
  it("lists . and .. first, with their inode numbers and cookies 1 and 2", () =>
    withFs(async ({ fs }) => {
      const d = (await fs.mkdir(root, fs.rootIno, "d")).attrs;
      await fs.create(root, d.ino, "f", { mode: "guarded" });
      const r = await fs.readdir(root, d.ino, 0, undefined, { maxBytes: 4096 });
      assert.deepEqual(
        r.entries.map((e) => [e.name.toString(), e.ino, e.cookie]),
        [
          [".", d.ino, 1],
          ["..", fs.rootIno, 2],
          ["f", d.ino + 1, 3],
        ],
      );
      assert.equal(r.eof, true);
      assert.equal(r.verifier.length, 8);
      const resumed = await fs.readdir(root, d.ino, 1, r.verifier, { maxBytes: 4096 });
      assert.deepEqual(resumed.entries.map((e) => e.name.toString()), ["..", "f"]);
      const empty = await fs.readdir(root, d.ino, 3, r.verifier, { maxBytes: 4096 });
      assert.deepEqual(empty.entries, []);
      assert.equal(empty.eof, true);
    }));

  it("10,000 entries in small pages: complete, no duplicates, cookies stable across a reopen", async () => {
    const fx = await openFs();
    try {
      const d = (await fx.fs.mkdir(root, fx.fs.rootIno, "big")).attrs.ino;
      const names = Array.from({ length: 10_000 }, (_, i) => `entry-${i.toString(36)}-${"x".repeat(i % 40)}`);
      await createMany(fx.fs, d, names);
      const seen: string[] = [];
      const cookieOf = new Map<string, number>();
      let cookie = 0;
      let verf: Buffer | undefined;
      let pages = 0;
      const checkpoints = new Map<number, string[]>();
      for (;;) {
        const p = await page(fx.fs, d, cookie, verf, 97);
        pages++;
        p.names.forEach((n, i) => {
          seen.push(n);
          cookieOf.set(n, p.cookies[i]!);
        });
        if (pages % 20 === 0) checkpoints.set(cookie, p.names);
        cookie = p.last;
        verf = p.verifier;
        if (p.eof) break;
      }
      const real = seen.filter((n) => n !== "." && n !== "..");
      assert.equal(real.length, 10_000);
      assert.equal(new Set(real).size, 10_000, "no duplicates");
      assert.deepEqual(new Set(real), new Set(names));
      await fx.reopen();
      // The same cookie and verifier continue at the same place after a restart.
      for (const [c, expected] of checkpoints) assert.deepEqual((await page(fx.fs, d, c, verf, 97)).names, expected, `resume at cookie ${c}`);
      const again = await fx.fs.readdir(root, d, 0, undefined, { maxBytes: 1 << 22, maxEntries: 20_000 });
      for (const e of again.entries) if (e.cookie > 2) assert.equal(cookieOf.get(e.name.toString()), e.cookie);
    } finally {
      await fx.close();
    }
  });

  it("entries added or removed during a listing do not break it", () =>
    withFs(async ({ fs }) => {
      const d = (await fs.mkdir(root, fs.rootIno, "d")).attrs.ino;
      const names = Array.from({ length: 1000 }, (_, i) => `n${i}`);
      await createMany(fs, d, names);
      const seen = new Set<string>();
      let cookie = 0;
      let verf: Buffer | undefined;
      let round = 0;
      const removed = new Set<string>();
      const removedAhead = new Set<string>();
      const added: string[] = [];
      for (;;) {
        const p = await page(fs, d, cookie, verf, 50);
        for (const n of p.names) {
          assert.ok(!seen.has(n), `duplicate ${n}`);
          seen.add(n);
        }
        cookie = p.last;
        verf = p.verifier;
        if (p.eof) break;
        // Remove one listed and one not-yet-listed entry, rename one, and add two.
        round++;
        const listed = `n${round * 7}`;
        if (seen.has(listed) && !removed.has(listed)) {
          await fs.remove(root, d, listed);
          removed.add(listed);
        }
        const ahead = `n${999 - round}`;
        if (!seen.has(ahead) && !removed.has(ahead)) {
          await fs.remove(root, d, ahead);
          removed.add(ahead);
          removedAhead.add(ahead);
        }
        for (const n of [`new-${round}-a`, `new-${round}-b`]) {
          await fs.create(root, d, n, { mode: "guarded" });
          added.push(n);
        }
      }
      for (const n of names) if (!removed.has(n)) assert.ok(seen.has(n), `entry ${n} present throughout was listed`);
      assert.ok(removedAhead.size > 5);
      for (const n of removedAhead) assert.ok(!seen.has(n), `${n} removed before it was reached is not listed`);
      // Added entries have higher cookies, so a listing in progress reaches them.
      for (const n of added) assert.ok(seen.has(n), `added entry ${n} listed`);
      assert.equal((await listNames(fs, d, root, 1000)).length, 1000 - removed.size + added.length);
    }));

  it("byte budgets, TOOSMALL, bad cookies and verifiers", () =>
    withFs(async ({ fs }) => {
      const d = (await fs.mkdir(root, fs.rootIno, "d")).attrs.ino;
      await createMany(fs, d, ["aaaa", "bbbbbbbbb", "c"]);
      const perEntry = readdirEntryBytes(4, false);
      assert.equal(perEntry, 28);
      const r = await fs.readdir(root, d, 0, undefined, { maxBytes: readdirEntryBytes(1, false) + readdirEntryBytes(2, false) + readdirEntryBytes(4, false) });
      assert.deepEqual(r.entries.map((e) => e.name.toString()), [".", "..", "aaaa"]);
      assert.equal(r.eof, false);
      await rejectsWith(fs.readdir(root, d, r.entries[2]!.cookie, r.verifier, { maxBytes: 10 }), "TOOSMALL");
      await rejectsWith(fs.readdir(root, d, 3, Buffer.from("12345678"), { maxBytes: 4096 }), "BAD_COOKIE");
      await rejectsWith(fs.readdir(root, d, 999, r.verifier, { maxBytes: 4096 }), "BAD_COOKIE");
      // A zero verifier is accepted (some clients never echo it).
      assert.equal((await fs.readdir(root, d, 3, Buffer.alloc(8), { maxBytes: 4096 })).entries.length, 2);
      const other = (await fs.mkdir(root, fs.rootIno, "e")).attrs.ino;
      const ov = (await fs.readdir(root, other, 0, undefined, { maxBytes: 4096 })).verifier;
      assert.ok(!ov.equals(r.verifier), "verifiers differ per directory");
      // READDIRPLUS dircount limits the directory part separately.
      const plus = await fs.readdir(root, d, 0, undefined, { maxBytes: 1 << 16, dirBytes: 3 * readdirEntryBytes(2, false), plus: true });
      assert.equal(plus.entries.length, 3);
      const f = await fs.create(root, fs.rootIno, "file", { mode: "guarded" });
      await rejectsWith(fs.readdir(root, f.attrs.ino, 0, undefined, { maxBytes: 4096 }), "ENOTDIR");
    }));

  it("readdirplus returns attributes that match getattr", () =>
    withFs(async ({ fs }) => {
      const d = (await fs.mkdir(root, fs.rootIno, "d")).attrs.ino;
      await fs.create(root, d, "f", { mode: "guarded", attrs: { mode: 0o600 } });
      await fs.mkdir(root, d, "sub");
      await fs.symlink(root, d, "ln", "f");
      const r = await fs.readdir(root, d, 0, undefined, { maxBytes: 1 << 16, plus: true });
      assert.equal(r.entries.length, 5);
      for (const e of r.entries) {
        assert.ok(e.attrs, `attrs for ${e.name.toString()}`);
        assert.deepEqual(e.attrs, await fs.getattr(e.ino));
        assert.deepEqual(await fs.resolveHandle(fs.handleOf(e.attrs)), e.ino);
      }
      assert.deepEqual(
        r.entries.map((e) => e.attrs?.type),
        [FileType.DIR, FileType.DIR, FileType.REG, FileType.DIR, FileType.LNK],
      );
    }));

  it("readdirplus reads a page's uncached inodes in one pass, not one get per entry; sparse ids still come out right", async () => {
    const fx = await openFs();
    try {
      const dense = (await fx.fs.mkdir(root, fx.fs.rootIno, "dense")).attrs.ino;
      const sparse = (await fx.fs.mkdir(root, fx.fs.rootIno, "sparse")).attrs.ino;
      const other = (await fx.fs.mkdir(root, fx.fs.rootIno, "other")).attrs.ino;
      await createMany(fx.fs, dense, Array.from({ length: 300 }, (_, i) => `d${i}`));
      for (let i = 0; i < 40; i++) {
        await fx.fs.create(root, sparse, `s${i}`, { mode: "guarded", attrs: { mode: 0o600 + (i % 8) } });
        await createMany(fx.fs, other, Array.from({ length: 20 }, (_, j) => `o${i}-${j}`)); // spreads the ids
      }
      await fx.reopen(); // a cold inode cache
      const inodeGets = { n: 0 };
      const get = fx.db.get.bind(fx.db);
      fx.db.get = (k: Buffer) => {
        if (k[0] === KeyKind.INODE) inodeGets.n++;
        return get(k);
      };
      const r = await fx.fs.readdir(root, dense, 0, undefined, { maxBytes: 1 << 20, plus: true });
      assert.equal(r.entries.length, 302);
      assert.ok(inodeGets.n <= 2, `${inodeGets.n} point reads of inodes for a page of 300 (one scan expected)`);
      const s = await fx.fs.readdir(root, sparse, 0, undefined, { maxBytes: 1 << 20, plus: true });
      assert.equal(s.entries.length, 42);
      fx.db.get = get;
      for (const e of [...r.entries, ...s.entries]) assert.deepEqual(e.attrs, await fx.fs.getattr(e.ino), e.name.toString());
    } finally {
      await fx.close();
    }
  });
});
