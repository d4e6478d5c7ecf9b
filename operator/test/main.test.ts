/** The operator process's start-up outside a cluster. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";

const MAIN = join(import.meta.dirname, "../src/main.ts");

test("outside a cluster without KUBECONFIG the operator exits 2 naming what is missing (it used to retry forever)", { timeout: 120_000 }, async () => {
  const env = { ...process.env };
  delete env.KUBECONFIG;
  delete env.KUBERNETES_SERVICE_HOST;
  delete env.KUBERNETES_SERVICE_PORT;
  const child = spawn(process.execPath, [MAIN], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  // Generous: the start-up is a Node process loading TypeScript on a loaded machine.
  const killer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  const code = await new Promise<number | null>((ok) => child.once("exit", (c) => ok(c)));
  clearTimeout(killer);
  assert.equal(code, 2, `exit code (null = still running after 90 s, killed); output:\n${out}`);
  assert.match(out, /KUBECONFIG is not set and this is not a pod \(KUBERNETES_SERVICE_HOST is not set\)/);
});
