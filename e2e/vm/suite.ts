/**
 * Glue for the kernel-client tests: one fresh zerofs server per test, the guest script run in
 * the VM against it, a clean stop of the server afterwards (exit code 0 and nothing at error
 * level in its log), and the guest's step times as test diagnostics.
 */
import type { TestContext } from "node:test";
import { startZerofs, type StartOptions, type ZerofsServer } from "./zerofs-server.ts";
import { runGuest, stepTimes, type VmResult, type VmRunOptions } from "./vm.ts";

export interface GuestTestOptions extends Omit<VmRunOptions, "server"> {
  serverOptions?: StartOptions;
}

/** Runs `fn` with a fresh server; on failure the server's folder is kept (its path is in the log). */
export async function withZerofs<T>(t: TestContext, opts: StartOptions, fn: (server: ZerofsServer) => Promise<T>): Promise<T> {
  const server = await startZerofs(opts);
  let ok = false;
  try {
    const r = await fn(server);
    const code = await server.stop();
    if (code !== 0) throw new Error(`zerofs did not stop cleanly (exit ${code}); log: ${server.dir}/server.log`);
    const errors = (await server.problems()).filter((l) => /"level":(5|6)\d/.test(l));
    if (errors.length > 0) throw new Error(`zerofs logged errors:\n${errors.slice(-20).join("\n")}`);
    ok = true;
    return r;
  } finally {
    if (!ok) t.diagnostic(`server folder kept: ${server.dir}`);
    await server.dispose({ keep: !ok });
  }
}

/** A fresh server, the guest script against it, step times reported. */
export async function guestTest(t: TestContext, opts: GuestTestOptions): Promise<VmResult> {
  return withZerofs(t, opts.serverOptions ?? {}, async (server) => {
    const r = await runGuest({ ...opts, server });
    reportSteps(t, r);
    return r;
  });
}

export function reportSteps(t: TestContext, r: VmResult): void {
  const steps = [...stepTimes(r.console)].map(([k, v]) => `${k}=${v.toFixed(1)}s`).join(" ");
  t.diagnostic(`VM ${Math.round(r.durationMs / 1000)} s; ${steps}`);
}
