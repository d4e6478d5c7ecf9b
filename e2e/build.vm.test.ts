// Compiling a small C project with make -j2 on the kernel NFS client.
import { test } from "node:test";
import { guestTest } from "./vm/suite.ts";

test("build: a small C project with make -j2, incremental rebuilds, make clean", { timeout: 10 * 60_000 }, async (t) => {
  await guestTest(t, { script: "build", timeoutMs: 8 * 60_000 });
});
