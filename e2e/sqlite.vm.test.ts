// SQLite on the kernel NFS client: 100,000 rows, integrity_check, synchronous=OFF and FULL.
import { test } from "node:test";
import { guestTest } from "./vm/suite.ts";

test("SQLite: 100,000 rows in transactions, queries, integrity_check (synchronous OFF and FULL)", { timeout: 15 * 60_000 }, async (t) => {
  await guestTest(t, { script: "sqlite", timeoutMs: 12 * 60_000 });
});
