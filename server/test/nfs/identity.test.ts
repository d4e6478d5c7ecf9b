/**
 * The export's identity policy through the NFSv3 handler on a real file system: root squash
 * maps uid 0 and gid 0 (primary and supplementary) to the anonymous ids; it is the default.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ZeroFsNfs3Handler } from "../../src/nfs/zerofs-handler.ts";
import { squashIdentity } from "../../src/nfs/identity.ts";
import { Nfs3Status, StableHow } from "../../src/nfs/nfs3-types.ts";
import { AuthFlavor, type RpcCredentials } from "../../src/nfs/rpc.ts";
import { openFs, root, type Fixture } from "../fs/helpers.ts";

const caller = (uid: number, gid: number, gids: number[] = []): RpcCredentials => ({
  flavor: AuthFlavor.AUTH_SYS,
  uid,
  gid,
  gids,
  machineName: "test",
  remoteAddress: "127.0.0.1",
  remotePort: 700,
});

describe("identity policy", () => {
  let fx: Fixture;
  let file: Buffer;
  before(async () => {
    fx = await openFs();
    // The case from the issue: a 0660 root:root file, readable and writable by group 0 only.
    const r = await fx.fs.create(root, fx.fs.rootIno, "secret", { mode: "guarded", attrs: { mode: 0o660 } });
    await fx.fs.write(root, r.attrs.ino, 0, Buffer.from("root only"), StableHow.FILE_SYNC);
    file = fx.fs.handleOf(r.attrs);
  });
  after(async () => {
    await fx.close();
  });

  const readAs = (h: ZeroFsNfs3Handler, c: RpcCredentials) => h.read(c, { file, offset: 0n, count: 100 });
  const writeAs = (h: ZeroFsNfs3Handler, c: RpcCredentials) =>
    h.write(c, { file, offset: 0n, count: 1, stable: StableHow.FILE_SYNC, data: Buffer.from("x") });

  it("root squash denies a caller claiming gid 0, primary or supplementary", async () => {
    const h = new ZeroFsNfs3Handler(fx.fs, { identity: { squash: "root", anonUid: 65534, anonGid: 65534 } });
    for (const c of [caller(1000, 0), caller(1000, 1000, [5, 0]), caller(0, 0), caller(0, 1000, [0])]) {
      assert.equal((await readAs(h, c)).status, Nfs3Status.NFS3ERR_ACCES, `READ as ${JSON.stringify([c.uid, c.gid, c.gids])}`);
      assert.equal((await writeAs(h, c)).status, Nfs3Status.NFS3ERR_ACCES, `WRITE as ${JSON.stringify([c.uid, c.gid, c.gids])}`);
    }
  });

  it("root squash is the default; none must be asked for", async () => {
    const byDefault = new ZeroFsNfs3Handler(fx.fs);
    assert.equal((await readAs(byDefault, caller(1000, 0))).status, Nfs3Status.NFS3ERR_ACCES);
    assert.equal((await readAs(byDefault, caller(0, 0))).status, Nfs3Status.NFS3ERR_ACCES);
    const none = new ZeroFsNfs3Handler(fx.fs, { identity: { squash: "none", anonUid: 65534, anonGid: 65534 } });
    assert.equal((await readAs(none, caller(1000, 0))).status, Nfs3Status.NFS3_OK, "no_root_squash: group 0 reads");
    assert.equal((await readAs(none, caller(0, 1))).status, Nfs3Status.NFS3_OK, "no_root_squash: root reads");
  });

  it("maps ids as knfsd does", () => {
    const p = { squash: "root", anonUid: 4242, anonGid: 4343 } as const;
    assert.deepEqual(squashIdentity(caller(0, 0, [0, 7]), p), { uid: 4242, gid: 4343, gids: [4343, 7] });
    assert.deepEqual(squashIdentity(caller(0, 7, [8]), p), { uid: 4242, gid: 7, gids: [8] });
    assert.deepEqual(squashIdentity(caller(1000, 1000, [1, 2]), p), { uid: 1000, gid: 1000, gids: [1, 2] });
    assert.deepEqual(squashIdentity(caller(1000, 0, [0]), { ...p, squash: "all" }), { uid: 4242, gid: 4343, gids: [] });
    assert.deepEqual(squashIdentity({ ...caller(0, 0), flavor: AuthFlavor.AUTH_NONE }, { ...p, squash: "none" }), { uid: 4242, gid: 4343, gids: [] });
  });
});
