import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { WrongPasswordError } from "../../src/crypto/keyring.ts";
import { openDatabase } from "../../src/lsm/open-database.ts";
import { WriteBatch } from "../../src/lsm/write-batch.ts";

async function* walk(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const f of walk(dir)) out.set(f, (await readFile(f)).toString("base64") + (await stat(f)).mtimeMs);
  return out;
}

describe("encryption at rest (real keyring, local-directory store)", () => {
  it("no object in the store contains a plaintext key or value", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zerofs-markers-"));
    const cacheDir = await mkdtemp(join(tmpdir(), "zerofs-markers-cache-"));
    try {
      const markers = ["MARKER-KEY-7f3a9c", "MARKER-VALUE-51d0e2", "secret-file-name.txt"] as const;
      const vol = await openDatabase({
        url: dir,
        password: "correct horse battery staple",
        cache: { dir: cacheDir, maxBytes: 64 * 1024 * 1024 },
        db: { memtableBytes: 32 * 1024, flushIntervalMs: 2, gcIntervalMs: 0, sstBlockBytes: 2048, l0CompactionTrigger: 2 },
      });
      for (let i = 0; i < 2000; i++) {
        const b = new WriteBatch();
        // Incompressible-ish and highly compressible variants: compression must not leak either.
        b.put(Buffer.from(`${markers[0]}/${i}`), Buffer.from(`${markers[1]} ${markers[2]} ${i}`.repeat(1 + (i % 7))));
        await vol.db.write(b, { awaitDurable: false });
      }
      await vol.db.flush();
      await vol.db.compactAll();
      // Leave a WAL object behind too.
      await vol.db.write(new WriteBatch().put(Buffer.from(markers[0]), Buffer.from(markers[1])));
      const objects = [...(await snapshot(dir)).keys(), ...(await snapshot(cacheDir)).keys()];
      assert.ok(objects.some((o) => o.includes("/sst/")) && objects.some((o) => o.includes("/wal/")) && objects.some((o) => o.includes("/manifest/")) && objects.some((o) => o.endsWith("keys/dek")), `expected every kind of object, got ${objects.join(", ")}`);
      for (const f of objects) {
        const bytes = await readFile(f);
        for (const m of markers) {
          for (const enc of ["utf8", "utf16le"] as const) {
            assert.equal(bytes.indexOf(Buffer.from(m, enc)), -1, `${f} contains plaintext ${m} (${enc})`);
          }
        }
        assert.equal(bytes.indexOf(Buffer.from("correct horse")), -1, `${f} contains the password`);
      }
      await vol.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it("a wrong password is refused with a clear error and nothing is written", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zerofs-wrongpw-"));
    try {
      const vol = await openDatabase({ url: dir, password: "right password", db: { gcIntervalMs: 0 } });
      await vol.db.write(new WriteBatch().put(Buffer.from("k"), Buffer.from("v")));
      await vol.close();
      const before = await snapshot(dir);
      await assert.rejects(openDatabase({ url: dir, password: "wrong password", db: { gcIntervalMs: 0 } }), (err: unknown) => {
        assert.ok(err instanceof WrongPasswordError);
        assert.match(err.message, /password/i);
        return true;
      });
      assert.deepEqual(await snapshot(dir), before, "a failed open must not write anything");
      const again = await openDatabase({ url: dir, password: "right password", db: { gcIntervalMs: 0 } });
      assert.equal((await again.db.get(Buffer.from("k")))?.toString(), "v");
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
