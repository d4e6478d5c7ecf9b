/**
 * Runs this Node binary with `args` as a child process and reports how it ended; a child still
 * running after `timeoutMs` is killed and reported with exit code null (a process that does not
 * exit by itself is what some tests look for).
 */
import { spawn } from "node:child_process";

export interface NodeRun {
  stdout: string;
  stderr: string;
  /** Exit code; null if the child was killed at the timeout. */
  code: number | null;
}

export function runNode(args: string[], timeoutMs: number): Promise<NodeRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}
