/**
 * Protocol tests of the real `zerofs` command with an INDEPENDENT NFS client: libnfs's
 * command-line tools (Debian libnfs-utils: nfs-cp, nfs-cat, nfs-ls), plus our own wire client
 * where libnfs has no tool (many files quickly, reusing file handles across a restart).
 * The same suite runs on the embedded default (local directory) and on a real S3 server.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CreateMode, Nfs3Proc as P, Nfs3Status, StableHow } from "../../src/nfs/nfs3-types.ts";
import { Nfs3Client, sattr } from "../../../test/support/nfs/nfs3-client.ts";
import { startZerofs, type ZerofsOptions, type ZerofsProcess } from "../../../test/support/zerofs-process.ts";

const run = promisify(execFile);

export interface Volume {
  /** zerofs options for this volume (location, env). */
  options: ZerofsOptions;
  /** Directories holding every byte the volume stored (scanned for plaintext). */
  storageDirs: string[];
  cleanup(): Promise<void>;
}

function url(port: number, path: string): string {
  // libnfs matches the URL path against the export list and needs "<export>/<path>": the export
  // is "/", hence the double slash.
  return `nfs://127.0.0.1//${path}?version=3&nfsport=${port}&mountport=${port}`;
}

async function nfsCp(from: string, to: string): Promise<void> {
  await run("nfs-cp", [from, to], { maxBuffer: 1 << 20 });
}

async function nfsCat(u: string): Promise<Buffer> {
  const { stdout } = await run("nfs-cat", [u], { encoding: "buffer", maxBuffer: 64 << 20 });
  return stdout;
}

async function nfsLs(port: number, dir: string): Promise<string[]> {
  const { stdout } = await run("nfs-ls", [`nfs://127.0.0.1/${dir}?version=3&nfsport=${port}&mountport=${port}`], { maxBuffer: 64 << 20 });
  // "-rw-rw----  1     0     0     10485760 name"
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => l.replace(/^\S+\s+\d+\s+\d+\s+\d+\s+\d+\s/, ""));
}

async function* walk(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile()) yield p;
  }
}

export interface SuiteOptions {
  /**
   * Run everything inside this directory below the export (no leading slash): our wire client
   * MOUNTs it as a subdirectory mount, libnfs URLs address paths inside it.
   */
  subdir?: string;
  /** Called after every server start (e.g. to create `subdir` through the admin API). */
  afterStart?: (server: ZerofsProcess) => Promise<void>;
  /** Extra checks on the mounted subdirectory (its FSSTAT, say), run after the first test. */
  checkMount?: (client: Nfs3Client, root: Buffer) => Promise<void>;
}

export function libnfsSuite(name: string, makeVolume: () => Promise<Volume>, opts: SuiteOptions = {}): void {
  describe(`libnfs against zerofs on ${name}`, () => {
    /** A path of the suite's tree, from the export. */
    const at = (p: string): string => (opts.subdir === undefined ? p : p === "" ? opts.subdir : `${opts.subdir}/${p}`);
    const mountPath = opts.subdir === undefined ? "/" : `/${opts.subdir}`;
    let vol: Volume;
    let server: ZerofsProcess;
    let work: string;
    let cacheDir: string;
    const start = async (): Promise<ZerofsProcess> => {
      server = await startZerofs({ ...vol.options, cacheDir });
      await opts.afterStart?.(server);
      return server;
    };

    before(async () => {
      // `make test` installs libnfs-utils (scripts/tools/ensure-apt.sh) before the suites run in parallel.
      await run("nfs-cp", ["--help"]).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") throw new Error("nfs-cp not found: install Debian's libnfs-utils (make test-deps)", { cause: err });
      });
      vol = await makeVolume();
      work = await mkdtemp(join(tmpdir(), "zerofs-libnfs-"));
      cacheDir = await mkdtemp(join(tmpdir(), "zerofs-libnfs-cache-"));
      await start();
    });
    after(async () => {
      await server.stop();
      await vol.cleanup();
      await rm(work, { recursive: true, force: true });
      await rm(cacheDir, { recursive: true, force: true });
    });

    const sizes = [0, 1, 65535, 65536, 65537, 10 * 1024 * 1024];
    const contents = new Map<string, Buffer>();

    it(`copies files in and out byte-exact (sizes ${sizes.join(", ")})`, async () => {
      for (const size of sizes) {
        const data = randomBytes(size);
        const name = `file-${size}.bin`;
        contents.set(name, data);
        await writeFile(join(work, name), data);
        await nfsCp(join(work, name), url(server.nfsPort, at(name)));
        assert.ok((await nfsCat(url(server.nfsPort, at(name)))).equals(data), `nfs-cat ${name}`);
        await nfsCp(url(server.nfsPort, at(name)), join(work, `${name}.out`));
        assert.ok((await readFile(join(work, `${name}.out`))).equals(data), `nfs-cp out ${name}`);
      }
      const listed = await nfsLs(server.nfsPort, at(""));
      for (const n of contents.keys()) assert.ok(listed.includes(n), `nfs-ls lists ${n}: ${listed.join(", ")}`);
      if (opts.checkMount) {
        const c = await Nfs3Client.connect(server.nfsPort);
        try {
          await opts.checkMount(c, await c.mount(mountPath));
        } finally {
          c.close();
        }
      }
    });

    const DIR_ENTRIES = 10_000;
    let handles: Map<string, Buffer>;

    it(`lists a ${DIR_ENTRIES}-entry directory completely`, async () => {
      const c = await Nfs3Client.connect(server.nfsPort);
      try {
        const root = await c.mount(mountPath);
        const dir = (await c.ok(P.MKDIR, { where: { dir: root, name: Buffer.from("big") }, attributes: sattr({ mode: 0o755 }) })).obj!;
        const names = Array.from({ length: DIR_ENTRIES }, (_, i) => `entry-${String(i).padStart(5, "0")}-${"x".repeat(i % 40)}`);
        for (let i = 0; i < names.length; i += 200) {
          await Promise.all(
            names.slice(i, i + 200).map((n) =>
              c.ok(P.CREATE, { where: { dir, name: Buffer.from(n) }, how: { mode: CreateMode.GUARDED, attributes: sattr({ mode: 0o644 }) } }),
            ),
          );
        }
        const listed = await nfsLs(server.nfsPort, at("big"));
        assert.equal(listed.length, DIR_ENTRIES, "nfs-ls line count");
        assert.deepEqual([...listed].sort(), [...names].sort());
      } finally {
        c.close();
      }
    });

    it("keeps file handles valid across a restart and reads everything back", async () => {
      let c = await Nfs3Client.connect(server.nfsPort);
      const root = await c.mount(mountPath);
      handles = new Map();
      for (const n of contents.keys()) handles.set(n, (await c.ok(P.LOOKUP, { what: { dir: root, name: Buffer.from(n) } })).object);
      // An UNSTABLE write that is never committed: a clean shutdown must still keep it.
      const tail = (await c.ok(P.CREATE, { where: { dir: root, name: Buffer.from("unstable.bin") }, how: { mode: CreateMode.UNCHECKED, attributes: sattr() } })).obj!;
      const tailData = randomBytes(200_000);
      await c.ok(P.WRITE, { file: tail, offset: 0n, count: tailData.length, stable: StableHow.UNSTABLE, data: tailData });
      c.close();

      assert.equal(await server.stop(), 0, "SIGTERM exits 0");
      await start();
      c = await Nfs3Client.connect(server.nfsPort);
      try {
        for (const [n, fh] of handles) {
          const data = contents.get(n)!;
          const attr = await c.ok(P.GETATTR, { object: fh });
          assert.equal(attr.objAttributes.size, BigInt(data.length), `${n} size through its old handle`);
          const parts: Buffer[] = [];
          for (let off = 0; off < data.length || off === 0; off += 1 << 20) {
            const r = await c.ok(P.READ, { file: fh, offset: BigInt(off), count: 1 << 20 });
            parts.push(Buffer.from(r.data));
            if (r.eof) break;
          }
          assert.ok(Buffer.concat(parts).equals(data), `${n} content through its old handle`);
        }
        const r = await c.ok(P.READ, { file: tail, offset: 0n, count: 1 << 20 });
        assert.ok(Buffer.from(r.data).equals(tailData), "uncommitted write survived the clean shutdown");
        // A handle with another volume's id is never another file.
        const foreign = Buffer.from(handles.get("file-1.bin")!);
        foreign[foreign.length - 1]! ^= 0x5a;
        foreign[2]! ^= 0xff;
        const bad = await c.call(P.GETATTR, { object: foreign });
        assert.ok(bad.status === Nfs3Status.NFS3ERR_BADHANDLE || bad.status === Nfs3Status.NFS3ERR_STALE, `foreign handle → ${bad.status}`);
      } finally {
        c.close();
      }
      for (const [n, data] of contents) assert.ok((await nfsCat(url(server.nfsPort, at(n)))).equals(data), `libnfs reads ${n} after restart`);
      assert.equal((await nfsLs(server.nfsPort, at("big"))).length, DIR_ENTRIES);
    });

    it("what COMMIT and FILE_SYNC acknowledged survives kill -9; the write verifier changes on restart", async () => {
      let c = await Nfs3Client.connect(server.nfsPort);
      let root = await c.mount(mountPath);
      const create = async (n: string): Promise<Buffer> =>
        (await c.ok(P.CREATE, { where: { dir: root, name: Buffer.from(n) }, how: { mode: CreateMode.UNCHECKED, attributes: sattr() } })).obj!;
      const synced = randomBytes(300_000);
      const committed = randomBytes(2_500_000);
      const fSync = await create("file-sync.bin");
      const w = await c.ok(P.WRITE, { file: fSync, offset: 0n, count: synced.length, stable: StableHow.FILE_SYNC, data: synced });
      assert.equal(w.committed, StableHow.FILE_SYNC);
      const fCommit = await create("committed.bin");
      let verf: Buffer | undefined;
      for (let off = 0; off < committed.length; off += 1 << 20) {
        const part = committed.subarray(off, off + (1 << 20));
        const r = await c.ok(P.WRITE, { file: fCommit, offset: BigInt(off), count: part.length, stable: StableHow.UNSTABLE, data: part });
        assert.equal(r.committed, StableHow.UNSTABLE, "UNSTABLE writes are answered UNSTABLE");
        verf ??= Buffer.from(r.verf);
      }
      const commit = await c.ok(P.COMMIT, { file: fCommit, offset: 0n, count: 0 });
      assert.ok(Buffer.from(commit.verf).equals(verf!), "same verifier within one server run");
      c.close();
      await server.kill();
      await start();
      c = await Nfs3Client.connect(server.nfsPort);
      try {
        root = await c.mount(mountPath);
        const read = async (fh: Buffer, n: number): Promise<Buffer> => {
          const parts: Buffer[] = [];
          for (let off = 0; off < n; off += 1 << 20) parts.push(Buffer.from((await c.ok(P.READ, { file: fh, offset: BigInt(off), count: 1 << 20 })).data));
          return Buffer.concat(parts);
        };
        assert.ok((await read(fSync, synced.length)).equals(synced), "FILE_SYNC data survived kill -9");
        assert.ok((await read(fCommit, committed.length)).equals(committed), "committed data survived kill -9");
        const again = await c.ok(P.COMMIT, { file: fCommit, offset: 0n, count: 0 });
        assert.ok(!Buffer.from(again.verf).equals(verf!), "a restarted server has a new write verifier, so clients resend uncommitted writes");
      } finally {
        c.close();
      }
    });

    it("never stores file names or contents in plaintext", async () => {
      const marker = `ZEROFS-PLAINTEXT-MARKER-${randomBytes(4).toString("hex")}`;
      const name = `${marker}.txt`;
      await writeFile(join(work, "marker"), `${marker}\n`.repeat(5000));
      await nfsCp(join(work, "marker"), url(server.nfsPort, at(name)));
      // Make everything durable and flushed into SSTs: a clean restart does both.
      assert.equal(await server.stop(), 0);
      await start();
      assert.ok((await nfsCat(url(server.nfsPort, at(name)))).toString().startsWith(marker));
      let files = 0;
      for (const dir of vol.storageDirs) {
        for await (const f of walk(dir)) {
          files++;
          const bytes = await readFile(f);
          assert.equal(bytes.indexOf(marker), -1, `${f} holds the marker in plaintext`);
        }
      }
      assert.ok(files > 3, `expected stored objects under ${vol.storageDirs.join(", ")}`);
    });
  });
}
