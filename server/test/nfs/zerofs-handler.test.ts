/**
 * ZeroFsNfs3Handler's own policy on top of the filesystem: what it clamps and how it answers
 * edge cases the fs layer does not see as NFS (READ past the largest file, READDIR counts,
 * ACCESS on a read-only export).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_FILE_SIZE, RTMAX } from "../../src/fs/index.ts";
import * as codec from "../../src/nfs/nfs3-codec.ts";
import { Access3, CreateMode, Nfs3Status, StableHow, TimeHow, type Nfs3Credentials } from "../../src/nfs/nfs3-types.ts";
import { XdrWriter } from "../../src/nfs/xdr.ts";
import { ZeroFsNfs3Handler } from "../../src/nfs/zerofs-handler.ts";
import { openFs } from "../fs/helpers.ts";

/** These tests act as root on a fresh volume: no root squash (the default squashes). */
const TRUSTED = { squash: "none", anonUid: 65534, anonGid: 65534 } as const;
const ROOT_CRED: Nfs3Credentials = { flavor: 1, uid: 0, gid: 0, gids: [], machineName: "t", remoteAddress: "127.0.0.1", remotePort: 700 };
const attrs = { mode: 0o666, atime: { how: TimeHow.DONT_CHANGE }, mtime: { how: TimeHow.DONT_CHANGE } } as const;
const ALL_ACCESS = Access3.READ | Access3.LOOKUP | Access3.MODIFY | Access3.EXTEND | Access3.DELETE | Access3.EXECUTE;

async function createFile(h: ZeroFsNfs3Handler, dir: Buffer, name: string): Promise<Buffer> {
  const r = await h.create(ROOT_CRED, { where: { dir, name: Buffer.from(name) }, how: { mode: CreateMode.GUARDED, attributes: attrs } });
  assert.ok(r.status === Nfs3Status.NFS3_OK && r.obj !== undefined, `create ${name}: status ${r.status}`);
  return r.obj;
}

describe("ZeroFsNfs3Handler", () => {
  it("READ at or past the largest file size answers eof with no data, not FBIG", async () => {
    const fx = await openFs();
    try {
      const h = new ZeroFsNfs3Handler(fx.fs, { identity: TRUSTED });
      const f = await createFile(h, fx.fs.rootHandle(), "f");
      await h.write(ROOT_CRED, { file: f, offset: 0n, count: 5, stable: StableHow.FILE_SYNC, data: Buffer.from("hello") });
      for (const offset of [BigInt(MAX_FILE_SIZE) - 1n, BigInt(MAX_FILE_SIZE), BigInt(MAX_FILE_SIZE) + 1n, 2n ** 63n, 2n ** 64n - 1n]) {
        const r = await h.read(ROOT_CRED, { file: f, offset, count: 4096 });
        assert.equal(r.status, Nfs3Status.NFS3_OK, `READ at ${offset}: status ${r.status}`);
        assert.ok(r.status === Nfs3Status.NFS3_OK && r.eof && r.data.length === 0, `READ at ${offset}: eof with 0 bytes`);
      }
      // A bad handle is still an error, wherever the offset.
      const bad = await h.read(ROOT_CRED, { file: Buffer.alloc(16, 7), offset: 2n ** 60n, count: 1 });
      assert.notEqual(bad.status, Nfs3Status.NFS3_OK);
    } finally {
      await fx.close();
    }
  });

  it("READDIR / READDIRPLUS replies stay within rtmax whatever count the client asks for", async () => {
    const fx = await openFs();
    try {
      const h = new ZeroFsNfs3Handler(fx.fs, { identity: TRUSTED });
      const mk = await h.mkdir(ROOT_CRED, { where: { dir: fx.fs.rootHandle(), name: Buffer.from("big") }, attributes: attrs });
      assert.ok(mk.status === Nfs3Status.NFS3_OK && mk.obj);
      const dir = mk.obj;
      // ~4,400 entries of 250-byte names: about 1.2 MB of READDIR entries, more than rtmax (1 MiB).
      const names = Array.from({ length: 4400 }, (_, i) => `${String(i).padStart(6, "0")}${"n".repeat(244)}`);
      for (let i = 0; i < names.length; i += 200) await Promise.all(names.slice(i, i + 200).map((n) => createFile(h, dir, n)));
      const huge = 0xffff_ffff;
      const rd = await h.readdir(ROOT_CRED, { dir, cookie: 0n, cookieverf: Buffer.alloc(8), count: huge });
      assert.equal(rd.status, Nfs3Status.NFS3_OK);
      const w1 = new XdrWriter();
      codec.encodeReaddirResult(w1, rd, { count: huge });
      assert.ok(w1.length <= RTMAX, `READDIR reply of ${w1.length} bytes exceeds rtmax ${RTMAX}`);
      assert.ok(rd.status === Nfs3Status.NFS3_OK && !rd.eof && rd.entries.length > 1000, "a partial listing, resumable");
      const rdp = await h.readdirplus(ROOT_CRED, { dir, cookie: 0n, cookieverf: Buffer.alloc(8), dircount: huge, maxcount: huge });
      assert.equal(rdp.status, Nfs3Status.NFS3_OK);
      const w2 = new XdrWriter();
      codec.encodeReaddirplusResult(w2, rdp, { dircount: huge, maxcount: huge });
      assert.ok(w2.length <= RTMAX, `READDIRPLUS reply of ${w2.length} bytes exceeds rtmax ${RTMAX}`);
    } finally {
      await fx.close();
    }
  });

  it("ACCESS on a read-only export grants no MODIFY, EXTEND or DELETE", async () => {
    const fx = await openFs();
    try {
      const rw = new ZeroFsNfs3Handler(fx.fs, { identity: TRUSTED });
      const f = await createFile(rw, fx.fs.rootHandle(), "f");
      const rwDir = await rw.access(ROOT_CRED, { object: fx.fs.rootHandle(), access: ALL_ACCESS });
      assert.ok(rwDir.status === Nfs3Status.NFS3_OK && (rwDir.access & Access3.MODIFY) !== 0, "read-write export: root may modify");
      await fx.reopen({ readOnly: true });
      const ro = new ZeroFsNfs3Handler(fx.fs, { identity: TRUSTED, readOnly: true });
      for (const object of [fx.fs.rootHandle(), f]) {
        const r = await ro.access(ROOT_CRED, { object, access: ALL_ACCESS });
        assert.equal(r.status, Nfs3Status.NFS3_OK);
        const granted = r.status === Nfs3Status.NFS3_OK ? r.access : 0;
        assert.equal(granted & (Access3.MODIFY | Access3.EXTEND | Access3.DELETE), 0, `granted ${granted.toString(2)}`);
        assert.notEqual(granted & Access3.READ, 0, "reading is still granted");
      }
    } finally {
      await fx.close();
    }
  });
});
