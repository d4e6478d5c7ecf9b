// git on the kernel NFS client: a few thousand small files committed, fsck'd and cloned.
import { test } from "node:test";
import { guestTest } from "./vm/suite.ts";

test("git: init, add and commit 2,000 files, fsck, gc, clone (local and file://)", { timeout: 15 * 60_000 }, async (t) => {
  await guestTest(t, { script: "git", timeoutMs: 12 * 60_000 });
});
