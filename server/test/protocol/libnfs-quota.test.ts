/**
 * The libnfs protocol suite run inside a claim directory with a quota, through a subdirectory
 * mount (the shared-mode provisioner's setup): everything must work as on the whole export, and
 * FSSTAT through the mount reports the quota as the size.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Nfs3Proc as P } from "../../src/nfs/nfs3-types.ts";
import { libnfsSuite } from "./libnfs-suite.ts";
import { putClaim, tokenFile } from "./admin-support.ts";

const QUOTA = { bytes: 2 ** 30, inodes: 50_000 };
let token = "";

libnfsSuite(
  "a claim directory with a quota (subdirectory mount)",
  async () => {
    const dir = await mkdtemp(join(tmpdir(), "zerofs-vol-quota-"));
    const t = await tokenFile();
    token = t.token;
    return {
      options: { url: dir, env: { ZEROFS_ADMIN_TOKEN_FILE: t.path, ZEROFS_CLAIMS_DIR: "/claims" } },
      storageDirs: [dir],
      cleanup: async () => {
        await rm(dir, { recursive: true, force: true });
        await rm(t.dir, { recursive: true, force: true });
      },
    };
  },
  {
    subdir: "claims/suite",
    // Idempotent: every (re)start puts the same claim again.
    afterStart: async (s) => void (await putClaim(s, token, "suite", QUOTA)),
    checkMount: async (c, root) => {
      const st = await c.ok(P.FSSTAT, { fsroot: root });
      assert.equal(st.tbytes, BigInt(QUOTA.bytes), "df on the mount shows the quota as the size");
      assert.equal(st.tfiles, BigInt(QUOTA.inodes));
      assert.ok(st.fbytes < st.tbytes - 10_000_000n, `the suite's ~10 MB show as used: free ${st.fbytes}`);
      assert.equal(st.abytes, st.fbytes);
    },
  },
);

