/**
 * The `zerofs` command as users run it: configuration errors, --help, wrong password, the
 * ZEROFS_NEW_PASSWORD flow, the HTTP endpoint, and the export policy.
 */
import assert from "node:assert/strict";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CreateMode, Nfs3Proc as P, Nfs3Status, StableHow } from "../../src/nfs/nfs3-types.ts";
import { MOUNT_PROGRAM, MountProc } from "../../src/nfs/mount.ts";
import { AuthStat, RejectStat } from "../../src/nfs/rpc.ts";
import { XdrWriter } from "../../src/nfs/xdr.ts";
import { Nfs3Client, sattr } from "../../../test/support/nfs/nfs3-client.ts";
import { RpcClient, authSys, connectFromReservedPort, successBody } from "../../../test/support/nfs/rpc-client.ts";
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
    const s = await startZerofs({ url: vol, password: "first", env: { ZEROFS_MEMORY_CACHE_MB: "64" } });
    try {
      const base = `http://127.0.0.1:${s.httpPort}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      const c = await Nfs3Client.connect(s.nfsPort);
      const root = await c.mount("/");
      await c.ok(P.GETATTR, { object: root });
      const f = (await c.ok(P.CREATE, { where: { dir: root, name: Buffer.from("m") }, how: { mode: CreateMode.GUARDED, attributes: sattr() } })).obj!;
      await c.ok(P.WRITE, { file: f, offset: 0n, count: 20_000, stable: StableHow.FILE_SYNC, data: Buffer.alloc(20_000, 7) });
      c.close();
      // Procedure numbers a client makes up share one label set: no series per number.
      const raw = await RpcClient.connect(s.nfsPort);
      for (const proc of [6, 77, 4242, 2 ** 32 - 1]) await raw.call(MOUNT_PROGRAM, 3, proc);
      await raw.close();
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /zerofs_rpc_requests_total\{program="nfs",procedure="GETATTR",status="success"\} 1/);
      assert.match(metrics, /zerofs_rpc_requests_total\{program="mount",procedure="other",status="proc_unavail"\} 4/);
      assert.doesNotMatch(metrics, /procedure="(6|77|4242|4294967295)"/);
      assert.match(metrics, /zerofs_segments_written_total [1-9]/, "file data went to a segment");
      assert.match(metrics, /zerofs_segment_written_bytes_total [1-9]\d*/);
      assert.match(metrics, /zerofs_memory_cache_used_bytes\{cache="extent"\} 20000/);
      assert.match(metrics, /zerofs_segment_space_amplification \d/);
      assert.match(metrics, /zerofs_store_requests_total\{op="putIfAbsent",outcome="ok"\}/);
      assert.match(metrics, /zerofs_wal_flush_duration_seconds_count \d+/);
      // ZEROFS_MEMORY_CACHE_MB=64: a quarter for SST blocks, the rest for file data.
      assert.match(metrics, /zerofs_memory_cache_limit_bytes\{cache="block"\} 16777216/);
      assert.match(metrics, /zerofs_memory_cache_limit_bytes\{cache="extent"\} 50331648/);
      assert.match(metrics, /zerofs_memory_cache_used_bytes\{cache="extent"\} \d+/);
      assert.match(s.output(), /"msg":"memory cache budget"/);
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

  it("safe defaults over the wire: unreserved source ports refused, root and group 0 squashed, EXPORT lists the policy", async () => {
    const vol = join(dir, "vol-secure");
    // Set up with the relaxations (as root, from any port): a 0660 root:root file and a
    // world-writable directory.
    let s = await startZerofs({ url: vol });
    const c = await Nfs3Client.connect(s.nfsPort);
    let root = await c.mount("/");
    const secret = (await c.ok(P.CREATE, { where: { dir: root, name: Buffer.from("secret") }, how: { mode: CreateMode.GUARDED, attributes: sattr({ mode: 0o660 }) } })).obj!;
    await c.ok(P.WRITE, { file: secret, offset: 0n, count: 4, stable: StableHow.FILE_SYNC, data: Buffer.from("root") });
    await c.ok(P.MKDIR, { where: { dir: root, name: Buffer.from("pub") }, attributes: sattr({ mode: 0o777 }) });
    c.close();
    assert.equal(await s.stop(), 0);

    s = await startZerofs({ url: vol, safeDefaults: true });
    try {
      const serving = JSON.parse(s.output().split("\n").find((l) => l.includes('"zerofs serving"'))!) as Record<string, unknown>;
      assert.equal(serving.squash, "root");
      assert.equal(serving.insecure, false);
      // An ordinary (unreserved) source port: MOUNT and NFS refused with AUTH_TOOWEAK.
      const weak = await RpcClient.connect(s.nfsPort);
      const mnt = await weak.call(MOUNT_PROGRAM, 3, MountProc.MNT, new XdrWriter().string("/").toBuffer(), { cred: authSys({ uid: 0, gid: 0 }) });
      assert.deepEqual(mnt.kind === "denied" ? [mnt.rejectStat, mnt.authStat] : mnt.kind, [RejectStat.AUTH_ERROR, AuthStat.AUTH_TOOWEAK]);
      const weakNfs = Nfs3Client.over(weak, { uid: 1000, gid: 1000 });
      await assert.rejects(weakNfs.call(P.GETATTR, { object: root }), /denied 1/);
      weak.destroy();
      assert.match(s.output(), /refusing calls from an unreserved source port.*ZEROFS_INSECURE=true/);

      // A reserved port (this test runs as root) is served, but root is squashed...
      const rootClient = Nfs3Client.over(await connectFromReservedPort(s.nfsPort), { uid: 0, gid: 0 });
      root = await rootClient.mount("/");
      const denied = await rootClient.call(P.CREATE, { where: { dir: root, name: Buffer.from("x") }, how: { mode: CreateMode.GUARDED, attributes: sattr() } });
      assert.equal(denied.status, Nfs3Status.NFS3ERR_ACCES, "squashed root may not create in root's 0755 directory");
      assert.equal((await rootClient.call(P.READ, { file: secret, offset: 0n, count: 10 })).status, Nfs3Status.NFS3ERR_ACCES);
      // ...and so is group 0, primary or supplementary.
      rootClient.cred = authSys({ uid: 1000, gid: 0 });
      assert.equal((await rootClient.call(P.READ, { file: secret, offset: 0n, count: 10 })).status, Nfs3Status.NFS3ERR_ACCES);
      rootClient.cred = authSys({ uid: 1000, gid: 1000, gids: [0] });
      assert.equal((await rootClient.call(P.WRITE, { file: secret, offset: 0n, count: 1, stable: StableHow.FILE_SYNC, data: Buffer.from("x") })).status, Nfs3Status.NFS3ERR_ACCES);
      // Files squashed root creates where it may belong to the anonymous ids.
      rootClient.cred = authSys({ uid: 0, gid: 0 });
      const pub = (await rootClient.ok(P.LOOKUP, { what: { dir: root, name: Buffer.from("pub") } })).object;
      const made = await rootClient.ok(P.CREATE, { where: { dir: pub, name: Buffer.from("by-root") }, how: { mode: CreateMode.GUARDED, attributes: sattr() } });
      assert.deepEqual([made.objAttributes?.uid, made.objAttributes?.gid], [65534, 65534]);

      const ex = successBody(await rootClient.rpc.call(MOUNT_PROGRAM, 3, MountProc.EXPORT));
      assert.equal(ex.bool(), true);
      assert.equal(ex.string(1024), "/");
      const groups: string[] = [];
      while (ex.bool()) groups.push(ex.string(255));
      assert.deepEqual(groups, ["127.0.0.0/8", "::1/128"], "EXPORT shows the CIDR policy as the export's groups");
      rootClient.close();
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it("subdirectory mount paths stay out of info-level logs", async () => {
    const vol = join(dir, "vol-names");
    const s = await startZerofs({ url: vol });
    try {
      const c = await Nfs3Client.connect(s.nfsPort);
      const root = await c.mount("/");
      await c.ok(P.MKDIR, { where: { dir: root, name: Buffer.from("payroll-2026") }, attributes: sattr({ mode: 0o755 }) });
      await c.mount("/payroll-2026");
      await assert.rejects(c.mount("/layoffs-plan"), /mountstat3 2/);
      c.close();
    } finally {
      await s.stop();
    }
    assert.match(s.output(), /"subdirectory":true,"msg":"MOUNT: mounted"/);
    assert.doesNotMatch(s.output(), /payroll-2026|layoffs-plan/, "directory names are secret at rest");
  });

  it("refuses a non-loopback --listen without --allow (exit 2, saying how to admit everyone)", async () => {
    const r = await runZerofs({ url: join(dir, "vol-never"), args: ["--listen", "0.0.0.0"], timeoutMs: 30_000 });
    assert.equal(r.code, 2, r.output);
    assert.match(r.output, /ZEROFS_LISTEN=|--listen="0\.0\.0\.0" is not a loopback address/);
    assert.match(r.output, /"\*" \(the same as 0\.0\.0\.0\/0,::\/0\) to admit everyone/);
  });

  it("the HTTP endpoint honours ZEROFS_HTTP_ALLOWED_CLIENTS", async () => {
    const s = await startZerofs({ url: join(dir, "vol-http"), env: { ZEROFS_HTTP_ALLOWED_CLIENTS: "192.0.2.0/24" } });
    try {
      await assert.rejects(fetch(`http://127.0.0.1:${s.httpPort}/metrics`), "a client outside the policy is disconnected");
    } finally {
      await s.stop();
    }
  });

  it("a new volume is announced loudly; ZEROFS_NO_CREATE refuses to create one (exit 1); objects are 0600", async () => {
    const vol = join(dir, "vol-new");
    const refused = await runZerofs({ url: vol, env: { ZEROFS_NO_CREATE: "true" }, timeoutMs: 30_000 });
    assert.equal(refused.code, 1, refused.output);
    assert.match(refused.output, new RegExp(`no volume in file://${vol.replaceAll("/", "\\/")} .*ZEROFS_NO_CREATE`));
    assert.deepEqual(await readdir(vol).catch(() => []), [], "nothing was written");

    let s = await startZerofs({ url: vol });
    assert.equal(await s.stop(), 0);
    const warn = s.output().split("\n").find((l) => l.includes("initialized a NEW, EMPTY volume"));
    assert.ok(warn, s.output());
    assert.equal((JSON.parse(warn) as { level: number; url: string }).level, 40, "warn level");
    assert.equal((JSON.parse(warn) as { url: string }).url, vol);
    assert.equal(((await stat(join(vol, "keys/dek"))).mode & 0o777).toString(8), "600");

    // An existing volume opens with ZEROFS_NO_CREATE, without the warning; a group-readable
    // password file is warned about.
    const pwFile = join(dir, "pw");
    await writeFile(pwFile, "protocol-test-password\n");
    await chmod(pwFile, 0o644);
    s = await startZerofs({ url: vol, env: { ZEROFS_NO_CREATE: "true", ZEROFS_ENCRYPTION_PASSWORD: "", ZEROFS_ENCRYPTION_PASSWORD_FILE: pwFile } });
    assert.equal(await s.stop(), 0);
    assert.doesNotMatch(s.output(), /initialized a NEW/);
    assert.match(s.output(), /password file is readable by group or others/);
  });
});
