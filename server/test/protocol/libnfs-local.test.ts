import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { promisify } from "node:util";
import { startZerofs } from "../../../test/support/zerofs-process.ts";
import { libnfsSuite } from "./libnfs-suite.ts";

libnfsSuite("the embedded default (local directory)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "zerofs-vol-"));
  return { options: { url: dir }, storageDirs: [dir], cleanup: () => rm(dir, { recursive: true, force: true }) };
});

it("libnfs run as root (a reserved source port) is served under the secure defaults, as squashed root", async () => {
  // libnfs binds a port below 1024 when it can, i.e. as root (which `make test` runs as).
  assert.equal(process.getuid?.(), 0, "this test needs root: libnfs binds a reserved source port only as root");
  const dir = await mkdtemp(join(tmpdir(), "zerofs-vol-secure-"));
  const s = await startZerofs({ url: dir, safeDefaults: true });
  try {
    const base = `nfs://127.0.0.1/?version=3&nfsport=${s.nfsPort}&mountport=${s.nfsPort}`;
    await promisify(execFile)("nfs-ls", [base]);
    const local = `${dir}-file`;
    await writeFile(local, "x");
    const cp = await promisify(execFile)("nfs-cp", [local, `nfs://127.0.0.1//f?version=3&nfsport=${s.nfsPort}&mountport=${s.nfsPort}`]).catch((e: Error) => e);
    assert.ok(cp instanceof Error, "root is squashed: it may not create in root's 0755 directory");
    await rm(local, { force: true });
    assert.doesNotMatch(s.output(), /unreserved source port/);
  } finally {
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
