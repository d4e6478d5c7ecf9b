// Two guest processes writing concurrently on the kernel NFS client.
import { test } from "node:test";
import { guestTest } from "./vm/suite.ts";

test("concurrency: two writers in one directory, two large files, fio with two verifying writers", { timeout: 10 * 60_000 }, async (t) => {
  await guestTest(t, { script: "concurrency", timeoutMs: 8 * 60_000 });
});
