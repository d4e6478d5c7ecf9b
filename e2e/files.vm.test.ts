// File operations with coreutils on the kernel NFS client, and a 256 MiB file in and out.
import { test } from "node:test";
import { guestTest } from "./vm/suite.ts";

test("coreutils file operations and a 256 MiB file byte-exact", { timeout: 15 * 60_000 }, async (t) => {
  await guestTest(t, { script: "files", memMb: 3072, timeoutMs: 12 * 60_000 });
});
