import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm, stat, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { createHash } from "node:crypto";
import { ObjectStoreError, PreconditionFailedError } from "../src/store/errors.ts";
import { openStore } from "../src/store/index.ts";
import { messageBody, PUBLISH_MAX_BYTES } from "../src/store/local-publish.ts";
import { LocalStore } from "../src/store/local-store.ts";
import { runNode } from "../../test/support/run-node.ts";
import { storeConformance } from "./store-conformance.ts";

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "zerofs-local-store-"));
  dirs.push(d);
  return d;
}
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Runs `fn` with a LocalStore on a fresh folder, closing the store afterwards. */
async function withStore(fn: (store: LocalStore, root: string) => Promise<void>): Promise<void> {
  const root = join(await freshDir(), "root");
  const store = new LocalStore(root);
  try {
    await fn(store, root);
  } finally {
    await store.close();
  }
}

storeConformance("LocalStore", async () => {
  const dir = await freshDir();
  return { store: new LocalStore(join(dir, "root")), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

// The same contract with every key's read handle cached (tiny LRU, so eviction happens too):
// overwrites and deletes through the store must never be served from a kept handle.
storeConformance("LocalStore with cached read handles", async () => {
  const dir = await freshDir();
  return { store: new LocalStore(join(dir, "root"), { readHandles: { maxOpen: 2, immutable: () => true } }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

/** A child that has not exited by then is killed and fails its test (rather than hanging the suite). */
const CHILD_TIMEOUT_MS = 60_000;
const LOCAL_STORE_URL = pathToFileURL(join(import.meta.dirname, "../src/store/local-store.ts")).href;

/**
 * Runs `body` (an async function body with `store`, `id` and `startAt` in scope) in a separate
 * Node process, started so that all children begin at `startAt`; resolves to its JSON output.
 */
async function runChild(root: string, id: number, startAt: number, body: string): Promise<unknown> {
  const code = `
    import { LocalStore } from ${JSON.stringify(LOCAL_STORE_URL)};
    const store = new LocalStore(${JSON.stringify(root)});
    const id = ${id};
    while (Date.now() < ${startAt}) {}
    const out = await (async () => { ${body} })();
    process.stdout.write(JSON.stringify(out));
  `;
  const { stdout, stderr, code: exit } = await runNode(["--input-type=module", "-e", code], CHILD_TIMEOUT_MS);
  if (exit !== 0) throw new Error(`child ${id} exited ${exit ?? `(killed: still running after ${CHILD_TIMEOUT_MS} ms)`}: ${stderr}`);
  return JSON.parse(stdout);
}

describe("LocalStore specifics", () => {
  it("putIfAbsent racing from 2 processes: exactly one wins each key", async () => {
    const root = join(await freshDir(), "root");
    const keys = 30;
    const startAt = Date.now() + 2000; // both children are up by then
    const body = `
      const won = [];
      for (let i = 0; i < ${keys}; i++) {
        // One time slot per key, so the two processes attempt each key at the same moment.
        while (Date.now() < ${startAt} + i * 20) {}
        try { await store.putIfAbsent("race/" + i, Buffer.from("child-" + id)); won.push(i); }
        catch (e) { if (e.name !== "PreconditionFailedError") throw e; }
      }
      return won;`;
    const [a, b] = (await Promise.all([runChild(root, 1, startAt, body), runChild(root, 2, startAt, body)])) as [number[], number[]];
    assert.equal(a.length + b.length, keys, `winners: ${JSON.stringify({ a, b })}`);
    assert.deepEqual([...a, ...b].sort((x, y) => x - y), Array.from({ length: keys }, (_, i) => i));
    const store = new LocalStore(root);
    for (const i of a) assert.equal((await store.get(`race/${i}`)).toString(), "child-1");
    for (const i of b) assert.equal((await store.get(`race/${i}`)).toString(), "child-2");
  });

  it("putIfMatch read-modify-write from 2 processes loses no update (cross-process lock)", async () => {
    const root = join(await freshDir(), "root");
    const store = new LocalStore(root);
    await store.put("counter", Buffer.from("0"));
    const perChild = 25;
    const startAt = Date.now() + 2000;
    const body = `
      let conflicts = 0;
      for (let done = 0; done < ${perChild}; ) {
        const meta = await store.head("counter");
        const n = Number((await store.get("counter")).toString());
        try { await store.putIfMatch("counter", Buffer.from(String(n + 1)), meta.etag); done++; }
        catch (e) { if (e.name !== "PreconditionFailedError") throw e; conflicts++; }
      }
      return conflicts;`;
    await Promise.all([runChild(root, 1, startAt, body), runChild(root, 2, startAt, body)]);
    assert.equal((await store.get("counter")).toString(), String(2 * perChild));
  });

  it("putIfAbsent into a folder removed behind the store's back makes the folder again", async () => {
    // The store remembers the folders it made (and keeps them open for fsync): a folder that
    // vanished must not turn into a failed or undurable publish.
    await withStore(async (store, root) => {
      await store.putIfAbsent("wal/00000000000000000001", Buffer.from("one"));
      await rm(join(root, "wal"), { recursive: true });
      // The publisher thread finds the folder gone; the event loop's path makes it again.
      await store.putIfAbsent("wal/00000000000000000002", Buffer.from("two"));
      assert.equal(store.publishedOnThread, 0);
      assert.equal((await store.get("wal/00000000000000000002")).toString(), "two");
      await assert.rejects(store.putIfAbsent("wal/00000000000000000002", Buffer.from("again")), PreconditionFailedError);
      assert.deepEqual((await readdir(join(root, "wal"))).sort(), ["00000000000000000002"]);
    });
  });

  it("small create-once objects go to a publisher thread: the same bytes, etag, mode and conflicts as the thread-pool path", async () => {
    await withStore(async (store, root) => {
      // The folder's first object makes the folder on the event loop's path.
      await store.putIfAbsent("wal/00000000000000000001", Buffer.from("one"));
      assert.equal(store.publishedOnThread, 0);
      // A view into a larger buffer: only its bytes are sent and stored.
      const { etag } = await store.putIfAbsent("wal/00000000000000000002", Buffer.from("..two..").subarray(2, 5));
      assert.equal(store.publishedOnThread, 1);
      assert.equal((await store.get("wal/00000000000000000002")).toString(), "two");
      assert.equal((await store.head("wal/00000000000000000002"))?.etag, etag);
      assert.equal(((await stat(join(root, "wal", "00000000000000000002"))).mode & 0o777).toString(8), "600");
      // Shared memory goes by reference.
      const shared = new Uint8Array(new SharedArrayBuffer(16));
      shared.set(Buffer.from("three"));
      await store.putIfAbsent("wal/00000000000000000003", shared.subarray(0, 5));
      assert.equal((await store.get("wal/00000000000000000003")).toString(), "three");
      assert.equal(store.publishedOnThread, 2);
      // A name that exists loses, and keeps its bytes.
      await assert.rejects(store.putIfAbsent("wal/00000000000000000002", Buffer.from("again")), PreconditionFailedError);
      assert.equal((await store.get("wal/00000000000000000002")).toString(), "two");
      // A large body stays on the thread pool.
      const big = Buffer.alloc(PUBLISH_MAX_BYTES + 1, 7);
      await store.putIfAbsent("wal/00000000000000000004", big);
      assert.equal(store.publishedOnThread, 2);
      assert.ok((await store.get("wal/00000000000000000004")).equals(big));
      assert.deepEqual((await readdir(join(root, ".tmp"))).filter((n) => n !== "locks"), []);
    });
  });

  it("a publisher thread's failure is an ObjectStoreError naming the step, and publishes nothing", async () => {
    await withStore(async (store, root) => {
      await store.putIfAbsent("wal/00000000000000000001", Buffer.from("one"));
      // The temp folder gone behind the store's back: the thread cannot write the temp file.
      await rm(join(root, ".tmp"), { recursive: true });
      await assert.rejects(store.putIfAbsent("wal/00000000000000000002", Buffer.from("two")), (err: unknown) => {
        assert.ok(err instanceof ObjectStoreError, String(err));
        assert.match(err.message, /putIfAbsent "wal\/00000000000000000002".*writing temp file.*ENOENT/);
        return true;
      });
      assert.deepEqual(await readdir(join(root, "wal")), ["00000000000000000001"]);
    });
  });

  it("a publish sends a view's bytes only (moved), shared memory by reference", () => {
    const big = Buffer.alloc(1 << 20, 1);
    const sent = messageBody(big.subarray(100, 300));
    assert.equal(sent.body.byteLength, 200);
    assert.equal(sent.body.buffer.byteLength, 200, "not the megabyte under the view");
    assert.deepEqual(sent.transfer, [sent.body.buffer]);
    assert.equal(big[100], 1, "the caller's buffer is untouched");
    const shared = new Uint8Array(new SharedArrayBuffer(64)).subarray(8, 16);
    assert.deepEqual(messageBody(shared), { body: shared, transfer: [] });
  });

  it("temp files and locks never show in list and are cleaned up", async () => {
    await withStore(async (store, root) => {
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`k/${i % 3}`, Buffer.from(`v${i}`))));
      const { etag } = await store.put("x", Buffer.from("1"));
      await store.putIfMatch("x", Buffer.from("2"), etag);
      await assert.rejects(store.putIfAbsent("x", Buffer.from("3")), PreconditionFailedError);
      await assert.rejects(store.putIfMatch("x", Buffer.from("3"), etag), PreconditionFailedError);
      await store.delete("x");
      assert.deepEqual(
        (await store.list("")).map((m) => m.key),
        ["k/0", "k/1", "k/2"],
      );
      const tmpEntries = (await readdir(join(root, ".tmp"))).filter((n) => n !== "locks");
      assert.deepEqual(tmpEntries, []);
      assert.deepEqual(await readdir(join(root, ".tmp", "locks")), []);
      assert.deepEqual(await store.list(".t"), []);
    });
  });

  it("objects are created 0600 and folders 0700: keys/dek is no one else's to read", async () => {
    await withStore(async (store, root) => {
      await store.putIfAbsent("keys/dek", Buffer.from("wrapped key"));
      const { etag } = await store.put("wal/00000001", Buffer.from("w"));
      await store.putIfMatch("wal/00000001", Buffer.from("w2"), etag);
      await store.put("sst/a/b.sst", Buffer.from("s"));
      const mode = async (p: string): Promise<string> => ((await stat(join(root, p))).mode & 0o777).toString(8);
      for (const f of ["keys/dek", "wal/00000001", "sst/a/b.sst"]) assert.equal(await mode(f), "600", f);
      for (const d of [".", "keys", "wal", "sst", "sst/a", ".tmp", ".tmp/locks"]) assert.equal(await mode(d), "700", d);
    });
  });

  it("etags differ for rapid rewrites of identical bytes (no inode/mtime reuse collision)", async () => {
    await withStore(async (store) => {
      const seen = new Set<string>();
      for (let i = 0; i < 50; i++) seen.add((await store.put("same", Buffer.from("same bytes"))).etag);
      assert.equal(seen.size, 50);
    });
  });

  it("a lock left by a dead process is broken; one held by a live process is waited for", async () => {
    const root = join(await freshDir(), "root");
    const store = new LocalStore(root, { lockTimeoutMs: 300 });
    const { etag } = await store.put("k", Buffer.from("1"));
    const lockPath = join(root, ".tmp", "locks", `${createHash("sha256").update("k").digest("hex").slice(0, 40)}.lock`);
    const { hostname } = await import("node:os");
    const { readFile } = await import("node:fs/promises");
    const boot = (await readFile("/proc/sys/kernel/random/boot_id", "utf8").catch(() => "")).trim();
    await mkdir(join(root, ".tmp", "locks"), { recursive: true });
    // pid 2**22+1 is above Linux's pid_max limit, so it is certainly dead.
    await writeFile(lockPath, JSON.stringify({ host: hostname(), boot, pid: 2 ** 22 + 1, start: "1", nonce: "x" }));
    const r = await store.putIfMatch("k", Buffer.from("2"), etag);
    assert.equal((await store.get("k")).toString(), "2");
    // A live holder (this test process's parent) is respected until the timeout.
    await writeFile(lockPath, JSON.stringify({ host: hostname(), boot, pid: process.ppid, start: "", nonce: "y" }));
    await assert.rejects(store.putIfMatch("k", Buffer.from("3"), r.etag), (e: unknown) => {
      assert.ok(e instanceof ObjectStoreError && !(e instanceof PreconditionFailedError));
      assert.match(e.message, new RegExp(`timed out .* held by pid ${process.ppid}`));
      return true;
    });
    assert.equal((await store.get("k")).toString(), "2");
  });

  it("get on a key that is a folder of other objects reports not found", async () => {
    const store = new LocalStore(join(await freshDir(), "root"));
    await store.put("dir/child", Buffer.from("x"));
    await assert.rejects(store.get("dir"), { name: "ObjectNotFoundError" });
    assert.equal(await store.head("dir"), null);
    await store.delete("dir");
    assert.equal((await store.get("dir/child")).toString(), "x");
  });

  it("openStore maps paths and file:// URLs to LocalStore and rejects unknown schemes", async () => {
    const dir = await freshDir();
    const a = await openStore(dir);
    assert.ok(a instanceof LocalStore);
    assert.equal(a.description, `file://${dir}`);
    const b = await openStore(pathToFileURL(dir).href);
    assert.ok(b instanceof LocalStore && b.root === dir);
    await assert.rejects(openStore("gs://bucket/x"), /unsupported store URL scheme "gs:"/);
    await assert.rejects(openStore("s3://bucket/x"), /S3 connection options/);
    await assert.rejects(openStore("s3://Bad_Bucket/x", { s3: { region: "us-east-1" } }), /not a valid bucket name/);
    await assert.rejects(openStore(""), /empty/);
  });

  it("a local volume's store does not load the AWS SDK (it is loaded for s3:// URLs only)", async () => {
    const dir = await freshDir();
    // A fresh process sees every module it loads through a resolve hook.
    const script = `
      import { registerHooks } from "node:module";
      const seen = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.push(r.url); return r; } });
      const { openStore } = await import(${JSON.stringify(new URL("../src/store/index.ts", import.meta.url).href)});
      await openStore(${JSON.stringify(dir)});
      const before = seen.filter((u) => u.includes("@aws-sdk")).length;
      await openStore("s3://bucket/x", { s3: { region: "us-east-1" } });
      process.stdout.write(JSON.stringify({ before, after: seen.filter((u) => u.includes("@aws-sdk")).length }));
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    const { before, after } = JSON.parse(out) as { before: number; after: number };
    assert.equal(before, 0, "no @aws-sdk module loaded for a local store");
    assert.ok(after > 0, "the s3:// URL loads it (the hook sees modules)");
  });
});
