/**
 * Claim directories with quotas on a real `zerofs` process: the admin API (auth, idempotent PUT,
 * resize, DELETE with background reclaim that resumes after kill -9, bad input), NFS3ERR_DQUOT
 * at the limit, NFS3ERR_XDEV across claims, FSSTAT through a subdirectory mount, and usage that
 * is exact after kill -9.
 */
import assert from "node:assert/strict";
import { rename, rm, writeFile } from "node:fs/promises";
import { mkdtemp } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Registry } from "prom-client";
import { pino } from "pino";
import { CreateMode, Nfs3Proc as P, Nfs3Status, StableHow } from "../../src/nfs/nfs3-types.ts";
import { startHttpEndpoint } from "../../src/observability/http-endpoint.ts";
import { Nfs3Client, sattr } from "../../../test/support/nfs/nfs3-client.ts";
import { startZerofs, type ZerofsProcess } from "../../../test/support/zerofs-process.ts";
import { admin, putClaim, tokenFile } from "./admin-support.ts";
import { waitFor } from "./outage-support.ts";

const name = (s: string): Buffer => Buffer.from(s);

describe("claim directories with quotas (admin API and NFS)", () => {
  let vol: string;
  let cacheDir: string;
  let tok: Awaited<ReturnType<typeof tokenFile>>;
  let s: ZerofsProcess;
  const start = async (): Promise<void> => {
    s = await startZerofs({ url: vol, cacheDir, env: { ZEROFS_ADMIN_TOKEN_FILE: tok.path, ZEROFS_CLAIMS_DIR: "/claims" } });
  };

  before(async () => {
    vol = await mkdtemp(join(tmpdir(), "zerofs-quota-"));
    cacheDir = await mkdtemp(join(tmpdir(), "zerofs-quota-cache-"));
    tok = await tokenFile();
    await start();
  });
  after(async () => {
    await s.stop();
    await rm(vol, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
    await rm(tok.dir, { recursive: true, force: true });
  });

  it("refuses requests without the token (401), re-reads a rotated token file, answers JSON", async () => {
    for (const t of [undefined, "wrong", `${tok.token}x`]) {
      const r = await admin(s, "GET", "/v1/directories", t);
      assert.equal(r.status, 401, `token ${t}`);
      assert.equal(r.contentType, "application/json");
      assert.match(r.body.error ?? "", /token/);
    }
    assert.equal((await admin(s, "GET", "/v1/directories", tok.token)).status, 200);
    // A Secret update replaces the file (atomically, as the kubelet does).
    const next = `${tok.token}-rotated`;
    await writeFile(`${tok.path}.new`, next, { mode: 0o600 });
    await rename(`${tok.path}.new`, tok.path);
    assert.equal((await admin(s, "GET", "/v1/directories", tok.token)).status, 401, "the old token stops working");
    assert.equal((await admin(s, "GET", "/v1/directories", next)).status, 200);
    tok.token = next;
  });

  it("PUT is idempotent, resizes, and validates names and bodies (400, 409)", async () => {
    const first = await putClaim(s, tok.token, "alpha", { bytes: 1_000_000, inodes: 100 });
    assert.equal(first.name, "alpha");
    assert.equal(first.path, "/claims/alpha");
    assert.ok(first.projectId > 0);
    assert.deepEqual(first.usage, { bytes: 0, inodes: 1 });
    assert.deepEqual(await putClaim(s, tok.token, "alpha", { bytes: 1_000_000, inodes: 100 }), first, "same answer again");
    const grown = await putClaim(s, tok.token, "alpha", { bytes: 2_000_000, inodes: null });
    assert.deepEqual(grown.quota, { bytes: 2_000_000, inodes: null });
    assert.equal(grown.projectId, first.projectId);
    const got = await admin(s, "GET", "/v1/directories/alpha", tok.token);
    assert.deepEqual(got.body, grown);
    // ("." and ".." never arrive: URL parsers remove dot segments; the fs layer refuses them too.)
    for (const bad of ["a%2Fb", "x".repeat(201), "sp%20ace", "%ff", "a*b", "a%00b"]) {
      const r = await admin(s, "PUT", `/v1/directories/${bad}`, tok.token, { quota: { bytes: 1, inodes: 1 } });
      assert.equal(r.status, 400, `name ${bad}`);
      assert.match(r.body.error ?? "", /name/);
    }
    for (const body of ["{", JSON.stringify({ quota: { bytes: -1, inodes: null } }), JSON.stringify({ quota: { bytes: 1.5, inodes: null } }), JSON.stringify({}), JSON.stringify({ quota: { bytes: 1, inodes: 1 }, mode: 0o17777 })]) {
      const r = await admin(s, "PUT", "/v1/directories/beta", tok.token, body);
      assert.equal(r.status, 400, `body ${body}`);
      assert.equal(r.contentType, "application/json");
    }
    assert.equal((await admin(s, "GET", "/v1/directories/beta", tok.token)).status, 404, "nothing was created by bad requests");
    // A non-directory with a claim's name.
    const c = await Nfs3Client.connect(s.nfsPort);
    try {
      const claims = (await c.ok(P.LOOKUP, { what: { dir: await c.mount("/"), name: name("claims") } })).object;
      await c.ok(P.CREATE, { where: { dir: claims, name: name("file") }, how: { mode: CreateMode.GUARDED, attributes: sattr({ mode: 0o644 }) } });
    } finally {
      c.close();
    }
    assert.equal((await admin(s, "PUT", "/v1/directories/file", tok.token, { quota: { bytes: 1, inodes: 1 } })).status, 409);
    assert.equal((await admin(s, "POST", "/v1/directories/alpha", tok.token, {})).status, 405);
    const list = await admin(s, "GET", "/v1/directories", tok.token);
    assert.deepEqual(list.body.directories?.map((d) => d.name), ["alpha"]);
  });

  it("NFS: DQUOT at the limit, XDEV across claims, FSSTAT of a subdirectory mount shows the quota; metrics", async () => {
    await putClaim(s, tok.token, "small", { bytes: 100_000, inodes: 10 });
    await putClaim(s, tok.token, "other", { bytes: null, inodes: null });
    const c = await Nfs3Client.connect(s.nfsPort);
    try {
      const small = await c.mount("/claims/small");
      let st = await c.ok(P.FSSTAT, { fsroot: small });
      assert.deepEqual([st.tbytes, st.fbytes, st.abytes, st.tfiles, st.ffiles, st.afiles], [100_000n, 100_000n, 100_000n, 10n, 9n, 9n]);
      const f = (await c.ok(P.CREATE, { where: { dir: small, name: name("f") }, how: { mode: CreateMode.UNCHECKED, attributes: sattr() } })).obj!;
      await c.ok(P.WRITE, { file: f, offset: 0n, count: 99_000, stable: StableHow.FILE_SYNC, data: Buffer.alloc(99_000, 1) });
      const over = await c.call(P.WRITE, { file: f, offset: 99_000n, count: 1001, stable: StableHow.FILE_SYNC, data: Buffer.alloc(1001, 1) });
      assert.equal(over.status, Nfs3Status.NFS3ERR_DQUOT, "a write one byte past the limit");
      await c.ok(P.WRITE, { file: f, offset: 99_000n, count: 1000, stable: StableHow.FILE_SYNC, data: Buffer.alloc(1000, 1) });
      const grow = await c.call(P.SETATTR, { object: f, newAttributes: sattr({ size: 100_001n }), guard: undefined });
      assert.equal(grow.status, Nfs3Status.NFS3ERR_DQUOT, "a size-extending SETATTR");
      const create = await c.call(P.CREATE, { where: { dir: small, name: name("g") }, how: { mode: CreateMode.UNCHECKED, attributes: sattr() } });
      assert.equal(create.status, Nfs3Status.NFS3ERR_DQUOT, "a create while the bytes are full");
      st = await c.ok(P.FSSTAT, { fsroot: f });
      assert.deepEqual([st.tbytes, st.fbytes, st.abytes], [100_000n, 0n, 0n], "df: full");
      // Growing the claim (allowVolumeExpansion) shows at once.
      await putClaim(s, tok.token, "small", { bytes: 300_000, inodes: 10 });
      st = await c.ok(P.FSSTAT, { fsroot: small });
      assert.deepEqual([st.tbytes, st.fbytes], [300_000n, 200_000n]);
      // Across claims: EXDEV (the kernel falls back to copying).
      const other = await c.mount("/claims/other");
      const mv = await c.call(P.RENAME, { from: { dir: small, name: name("f") }, to: { dir: other, name: name("f") } });
      assert.equal(mv.status, Nfs3Status.NFS3ERR_XDEV);
      const ln = await c.call(P.LINK, { file: f, link: { dir: other, name: name("f") } });
      assert.equal(ln.status, Nfs3Status.NFS3ERR_XDEV);
      const root = await c.mount("/");
      assert.equal((await c.call(P.RENAME, { from: { dir: small, name: name("f") }, to: { dir: root, name: name("f") } })).status, Nfs3Status.NFS3ERR_XDEV);
      // The export root reports the volume.
      assert.ok((await c.ok(P.FSSTAT, { fsroot: root })).tbytes > 2n ** 40n);
    } finally {
      c.close();
    }
    const got = await admin(s, "GET", "/v1/directories/small", tok.token);
    assert.deepEqual(got.body.usage, { bytes: 100_000, inodes: 2 });
    const metrics = await (await fetch(`http://127.0.0.1:${s.httpPort}/metrics`)).text();
    assert.match(metrics, /zerofs_quota_used_bytes\{directory="small"\} 100000/);
    assert.match(metrics, /zerofs_quota_used_inodes\{directory="small"\} 2/);
    assert.match(metrics, /zerofs_quota_limit_bytes\{directory="small"\} 300000/);
    assert.match(metrics, /zerofs_quota_limit_inodes\{directory="small"\} 10/);
    assert.doesNotMatch(metrics, /zerofs_quota_limit_bytes\{directory="other"\}/, "unlimited: no limit sample");
  });

  it("usage is exact after kill -9 with writes in flight", async () => {
    await putClaim(s, tok.token, "crash", { bytes: null, inodes: null });
    let c = await Nfs3Client.connect(s.nfsPort);
    const dir = await c.mount("/claims/crash");
    const files: Buffer[] = [];
    for (let i = 0; i < 20; i++) files.push((await c.ok(P.CREATE, { where: { dir, name: name(`f${i}`) }, how: { mode: CreateMode.UNCHECKED, attributes: sattr() } })).obj!);
    // Writes, UNSTABLE and FILE_SYNC mixed: some acknowledged, then many in flight at kill -9.
    const inflight: Promise<unknown>[] = [];
    const write = (round: number, i: number): Promise<unknown> =>
      c.call(P.WRITE, { file: files[i]!, offset: BigInt(round * 7000), count: 7000, stable: (round + i) % 3 === 0 ? StableHow.FILE_SYNC : StableHow.UNSTABLE, data: Buffer.alloc(7000, round + 1) });
    for (let round = 0; round < 5; round++) await Promise.all(files.map((_, i) => write(round, i)));
    for (let round = 5; round < 40; round++) for (let i = 0; i < files.length; i++) inflight.push(write(round, i).catch(() => undefined));
    await new Promise((r) => setTimeout(r, 50));
    await s.kill();
    c.close();
    await Promise.all(inflight);
    await start();
    c = await Nfs3Client.connect(s.nfsPort);
    try {
      const d = await c.mount("/claims/crash");
      let bytes = 0;
      let inodes = 1;
      for (const [i] of files.entries()) {
        const r = await c.ok(P.LOOKUP, { what: { dir: d, name: name(`f${i}`) } });
        bytes += Number(r.objAttributes!.size);
        inodes++;
      }
      const got = await admin(s, "GET", "/v1/directories/crash", tok.token);
      assert.deepEqual(got.body.usage, { bytes, inodes }, "usage after kill -9 = the sizes the files have");
      assert.ok(bytes > 0, "some writes survived");
    } finally {
      c.close();
    }
  });

  it("DELETE detaches at once (ESTALE, 404), reclaims in the background and resumes after kill -9", async () => {
    // The kill races the background reclaim: a round in which the killed server had already
    // finished proves nothing about resuming, so it is repeated (with a new claim).
    for (let attempt = 0; ; attempt++) {
      const claim = `doomed${attempt}`;
      await putClaim(s, tok.token, claim, { bytes: null, inodes: null });
      let c = await Nfs3Client.connect(s.nfsPort);
      const root = await c.mount("/");
      const before = await c.ok(P.FSSTAT, { fsroot: root });
      const dir = await c.mount(`/claims/${claim}`);
      let sub = dir;
      for (let depth = 0; depth < 4; depth++) {
        await Promise.all(
          Array.from({ length: 150 }, async (_, i) => {
            const f = (await c.ok(P.CREATE, { where: { dir: sub, name: name(`f${i}`) }, how: { mode: CreateMode.UNCHECKED, attributes: sattr() } })).obj!;
            if (i % 10 === 0) await c.ok(P.WRITE, { file: f, offset: 0n, count: 50_000, stable: StableHow.UNSTABLE, data: Buffer.alloc(50_000, 9) });
          }),
        );
        sub = (await c.ok(P.MKDIR, { where: { dir: sub, name: name(`d${depth}`) }, attributes: sattr({ mode: 0o755 }) })).obj!;
      }
      await c.ok(P.COMMIT, { file: dir, offset: 0n, count: 0 });
      const full = await c.ok(P.FSSTAT, { fsroot: root });
      assert.equal(full.tfiles - full.ffiles, before.tfiles - before.ffiles + 604n);
      const del = await admin(s, "DELETE", `/v1/directories/${claim}`, tok.token);
      assert.equal(del.status, 202);
      await s.kill(); // right away: the reclaim is (at most) partly done
      c.close();
      await start();
      const pending = /"deletedTreesPending":(\d+)/.exec(s.output());
      assert.ok(pending, "the open log says how many deleted trees are pending");
      const finishedBeforeKill = pending[1] === "0";
      c = await Nfs3Client.connect(s.nfsPort);
      try {
        assert.equal((await c.call(P.GETATTR, { object: dir })).status, Nfs3Status.NFS3ERR_STALE, "the detached directory's handle");
        assert.equal((await admin(s, "GET", `/v1/directories/${claim}`, tok.token)).status, 404);
        assert.equal((await admin(s, "DELETE", `/v1/directories/${claim}`, tok.token)).status, 404);
        const r2 = await c.mount("/");
        await waitFor("the tree reclaimed", async () => {
          const st = await c.ok(P.FSSTAT, { fsroot: r2 });
          return st.tfiles - st.ffiles === before.tfiles - before.ffiles - 1n && st.tbytes - st.fbytes === before.tbytes - before.fbytes;
        }, 60_000);
        if (finishedBeforeKill) {
          assert.ok(attempt < 4, "the kill never caught the reclaim in progress");
          continue;
        }
        await waitFor("the restarted server's log of the finished reclaim", () => Promise.resolve(/reclaimed a deleted directory tree/.test(s.output())), 10_000);
        return;
      } finally {
        c.close();
      }
    }
  });
});

describe("the admin API switched off or out of reach", () => {
  it("is 404 without a token file, and a client outside the HTTP allow-list is cut off", async () => {
    const log = pino({ level: "silent" });
    const health = { healthy: () => ({ ok: true }), ready: () => ({ ok: true }) };
    const off = await startHttpEndpoint("127.0.0.1", 0, new Registry(), health, log);
    try {
      const r = await fetch(`http://127.0.0.1:${(off.address() as AddressInfo).port}/v1/directories`);
      assert.equal(r.status, 404);
      assert.match(await r.text(), /admin API is off/);
    } finally {
      off.close();
    }
    let called = false;
    const refused = await startHttpEndpoint("127.0.0.1", 0, new Registry(), health, log, () => false, () => void (called = true));
    try {
      await assert.rejects(fetch(`http://127.0.0.1:${(refused.address() as AddressInfo).port}/v1/directories`, { headers: { authorization: "Bearer x" } }));
      assert.equal(called, false);
    } finally {
      refused.close();
    }
  });
});
