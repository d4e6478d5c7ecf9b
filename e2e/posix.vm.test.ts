// POSIX permission and semantics checks (root and unprivileged users) on the kernel NFS client:
// the guest suite (e2e/vm/guest/posix-suite.ts) runs once in the VM, each of its checks is a
// subtest here.
import assert from "node:assert/strict";
import { test } from "node:test";
import { guestTest } from "./vm/suite.ts";

test("POSIX permissions and semantics as root and unprivileged users", { timeout: 10 * 60_000 }, async (t) => {
  const r = await guestTest(t, { script: "posix", timeoutMs: 8 * 60_000 });
  const lines = r.console.split("\n");
  assert.ok(lines.includes("posix suite: done"), "the guest suite did not finish");
  let n = 0;
  for (const line of lines) {
    const m = /^(ok|not ok) - (.*?)(?: :: (.*))?$/.exec(line);
    if (!m) continue;
    const [, status, name = "", why] = m;
    n++;
    await t.test(name, () => {
      if (status !== "ok") throw new Error(why ?? "failed");
    });
  }
  assert.ok(n >= 15, `only ${n} checks reported`);
});
