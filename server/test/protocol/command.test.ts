/**
 * The `zerofs` command as users run it: configuration errors, --help, wrong password, the
 * ZEROFS_NEW_PASSWORD flow, the HTTP endpoint, and the export policy.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CreateMode, Nfs3Proc as P, Nfs3Status, StableHow } from "../../src/nfs/nfs3-types.ts";
import { Nfs3Client, sattr } from "../../../test/support/nfs/nfs3-client.ts";
import { runZerofs, startZerofs } from "../../../test/support/zerofs-process.ts";

async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(p, (await readFile(p)).toString("base64") + String((await stat(p)).mtimeMs));
    }
  };
  await walk(dir);
  return out;
}

describe("the zerofs command", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-cmd-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("--help lists the settings and exits 0", async () => {
    const r = await runZerofs({ url: dir, args: ["--help"] });
    assert.equal(r.code, 0);
    for (const v of ["SLATEDB_CACHE_DIR", "SLATEDB_CACHE_SIZE_GB", "ZEROFS_ENCRYPTION_PASSWORD", "AWS_ENDPOINT_URL", "ZEROFS_NEW_PASSWORD", "--port"]) {
      assert.ok(r.output.includes(v), `--help mentions ${v}`);
    }
  });

  it("a bad setting exits 2 naming the variable and what was expected", async () => {
    const r = await runZerofs({ url: dir, env: { SLATEDB_CACHE_SIZE_GB: "lots", ZEROFS_NFS_PORT: "99999" } });
    assert.equal(r.code, 2);
    assert.match(r.output, /SLATEDB_CACHE_SIZE_GB="lots": expected a number of GiB/);
    assert.match(r.output, /ZEROFS_NFS_PORT="99999": expected a port in 0\.\.65535/);
  });

  it("serves /metrics, /healthz and /readyz; a wrong password exits 1 and writes nothing", async () => {
    const vol = join(dir, "vol-a");
    const s = await startZerofs({ url: vol, password: "first" });
    try {
      const base = `http://127.0.0.1:${s.httpPort}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      const c = await Nfs3Client.connect(s.nfsPort);
      const root = await c.mount("/");
      await c.ok(P.GETATTR, { object: root });
      c.close();
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /zerofs_rpc_requests_total\{program="nfs",procedure="GETATTR",status="success"\} 1/);
      assert.match(metrics, /zerofs_store_requests_total\{op="putIfAbsent",outcome="ok"\}/);
      assert.match(metrics, /zerofs_wal_flush_duration_seconds_count \d+/);
    } finally {
      assert.equal(await s.stop(), 0);
    }
    const before = await snapshot(vol);
    const r = await runZerofs({ url: vol, password: "not-the-password" });
    assert.equal(r.code, 1);
    assert.match(r.output, /password/i);
    assert.deepEqual(await snapshot(vol), before, "a refused start writes nothing");
  });

  it("ZEROFS_NEW_PASSWORD changes the password and exits; the old one stops working, the data stays", async () => {
    const vol = join(dir, "vol-b");
    let s = await startZerofs({ url: vol, password: "old-password" });
    let c = await Nfs3Client.connect(s.nfsPort);
    let root = await c.mount("/");
    const f = (await c.ok(P.CREATE, { where: { dir: root, name: Buffer.from("keep.txt") }, how: { mode: CreateMode.GUARDED, attributes: sattr() } })).obj!;
    await c.ok(P.WRITE, { file: f, offset: 0n, count: 5, stable: StableHow.FILE_SYNC, data: Buffer.from("hello") });
    c.close();
    assert.equal(await s.stop(), 0);

    const wrong = await runZerofs({ url: vol, password: "guess", env: { ZEROFS_NEW_PASSWORD: "new-password" } });
    assert.equal(wrong.code, 1, "a rotation with the wrong old password fails");
    const change = await runZerofs({ url: vol, password: "old-password", env: { ZEROFS_NEW_PASSWORD: "new-password" } });
    assert.equal(change.code, 0, change.output);
    assert.match(change.output, /password changed/);
    assert.equal((await runZerofs({ url: vol, password: "old-password" })).code, 1, "the old password no longer opens the volume");

    s = await startZerofs({ url: vol, password: "new-password" });
    try {
      c = await Nfs3Client.connect(s.nfsPort);
      root = await c.mount("/");
      const fh = (await c.ok(P.LOOKUP, { what: { dir: root, name: Buffer.from("keep.txt") } })).object;
      assert.equal(Buffer.from((await c.ok(P.READ, { file: fh, offset: 0n, count: 100 })).data).toString(), "hello");
      c.close();
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it("export policy: client CIDRs, root squash and read-only", async () => {
    const vol = join(dir, "vol-c");
    // Nobody on loopback is allowed: the connection is closed at once.
    let s = await startZerofs({ url: vol, env: { ZEROFS_ALLOWED_CLIENTS: "192.0.2.0/24" } });
    try {
      const c = await Nfs3Client.connect(s.nfsPort);
      await assert.rejects(c.mount("/"), /closed/);
      c.close();
    } finally {
      await s.stop();
    }
    s = await startZerofs({ url: vol, env: { ZEROFS_SQUASH: "root", ZEROFS_ANON_UID: "4242", ZEROFS_ANON_GID: "4343" } });
    try {
      const c = await Nfs3Client.connect(s.nfsPort, { uid: 0, gid: 0 });
      const root = await c.mount("/");
      // The root directory of a new volume is root's 0755: squashed root may not create in it.
      const denied = await c.call(P.CREATE, { where: { dir: root, name: Buffer.from("x") }, how: { mode: CreateMode.GUARDED, attributes: sattr() } });
      assert.equal(denied.status, Nfs3Status.NFS3ERR_ACCES);
      c.close();
    } finally {
      await s.stop();
    }
    s = await startZerofs({ url: vol, env: { ZEROFS_READ_ONLY: "true" } });
    try {
      const c = await Nfs3Client.connect(s.nfsPort);
      const root = await c.mount("/");
      await c.ok(P.GETATTR, { object: root });
      const r = await c.call(P.MKDIR, { where: { dir: root, name: Buffer.from("d") }, attributes: sattr() });
      assert.equal(r.status, Nfs3Status.NFS3ERR_ROFS);
      c.close();
    } finally {
      await s.stop();
    }
  });
});
