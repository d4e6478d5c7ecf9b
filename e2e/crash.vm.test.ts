// Durability across kill -9 of the server while the guest's kernel client (hard mount) writes:
// every fsync'd file is intact after the restarts (see e2e/vm/guest/crash.sh). The kill points
// come from a seeded generator: E2E_CRASH_SEED reproduces a run, E2E_CRASH_KILLS sets how many.
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { withZerofs, reportSteps } from "./vm/suite.ts";
import { checkGuest, startVm, type VmRunOptions } from "./vm/vm.ts";

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("durability: fsync'd files survive kill -9 of the server at random points; the hard mount carries on", { timeout: 15 * 60_000 }, async (t) => {
  const seed = Number(process.env.E2E_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const kills = Number(process.env.E2E_CRASH_KILLS ?? 4);
  const rand = mulberry32(seed);
  t.diagnostic(`seed ${seed} (E2E_CRASH_SEED=${seed} repeats these kill points), ${kills} kills while writing + 1 after`);
  await withZerofs(t, {}, async (server) => {
    const opts: VmRunOptions = { script: "crash", server, timeoutMs: 12 * 60_000 };
    const vm = await startVm(opts);
    const log: string[] = [];
    let problem = "";
    try {
      await vm.waitForLine(/^CRASH-WRITING$/, { timeoutMs: 3 * 60_000 });
      for (let k = 0; k < kills; k++) {
        // The guest must have made progress since the last restart, then a random moment.
        await vm.waitForLine(/^CRASH-PROGRESS /, { from: vm.lines.length, timeoutMs: 3 * 60_000 });
        const delay = Math.round(rand() * 4000);
        await sleep(delay);
        await server.kill9();
        const down = Math.round(200 + rand() * 1500);
        await sleep(down);
        const t0 = Date.now();
        await server.start();
        log.push(`kill ${k + 1}: ${delay} ms after a progress line, down ${down} ms, restart took ${Date.now() - t0} ms`);
      }
      await vm.waitForLine(/^CRASH-PROGRESS /, { from: vm.lines.length, timeoutMs: 3 * 60_000 });
      await vm.signal("stop");
      await vm.waitForLine(/^WRITES-DONE /, { timeoutMs: 5 * 60_000 });
      await server.kill9();
      await server.start();
      log.push("kill after the final sync, restarted");
      await vm.signal("verify");
    } catch (err) {
      problem = `orchestration failed: ${(err as Error).message}`;
      vm.kill();
    }
    const r = await vm.done;
    for (const l of log) t.diagnostic(l);
    await checkGuest(opts, r, problem);
    const verified = r.console.split("\n").find((l) => l.startsWith("CRASH-VERIFIED")) ?? "";
    const notes = r.console.split("\n").filter((l) => l.startsWith("NOTE:"));
    t.diagnostic(verified);
    for (const n of notes) t.diagnostic(n);
    reportSteps(t, r);
  });
});
