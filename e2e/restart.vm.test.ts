// Restarting the server (cleanly, then with kill -9) under a guest that holds open files and
// working directories on the mount: no ESTALE afterwards.
import { test } from "node:test";
import { withZerofs, reportSteps } from "./vm/suite.ts";
import { checkGuest, startVm, type VmRunOptions } from "./vm/vm.ts";

test("restart: open files and working directories survive a clean restart and a kill -9 (no ESTALE)", { timeout: 10 * 60_000 }, async (t) => {
  await withZerofs(t, {}, async (server) => {
    const opts: VmRunOptions = { script: "restart", server, timeoutMs: 8 * 60_000 };
    const vm = await startVm(opts);
    let problem = "";
    try {
      await vm.waitForLine(/^RESTART-READY clean$/, { timeoutMs: 3 * 60_000 });
      const code = await server.stop();
      if (code !== 0) throw new Error(`clean stop exited ${code}`);
      await server.start();
      await vm.signal("restarted-clean");
      await vm.waitForLine(/^RESTART-READY kill9$/, { timeoutMs: 3 * 60_000 });
      await server.kill9();
      await server.start();
      await vm.signal("restarted-kill9");
    } catch (err) {
      problem = `orchestration failed: ${(err as Error).message}`;
      vm.kill();
    }
    const r = await checkGuest(opts, await vm.done, problem);
    reportSteps(t, r);
  });
});
