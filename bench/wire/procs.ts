/**
 * Child processes of `npm run bench:wire` and what /proc says about them. Every process started
 * here is tracked, so that a failure or Ctrl-C stops all of them (the harness also runs as PID 1
 * of its own PID namespace: whatever survives it is killed by the kernel when it exits).
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readFileSync } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** The last 16 KiB it printed (stdout and stderr). */
  output(): string;
  exited: Promise<number | string>;
  /** True once it has exited. */
  done(): boolean;
  /** SIGTERM, then SIGKILL after graceMs; resolves when it has exited. */
  stop(graceMs?: number): Promise<number | string>;
}

const live = new Set<Proc>();

export function startProc(name: string, cmd: string, args: string[], opts: SpawnOptions = {}, onLine?: (line: string) => void): Proc {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  let out = "";
  let partial = "";
  const add = (chunk: Buffer): void => {
    const s = chunk.toString("utf8");
    out = (out + s).slice(-16384);
    if (onLine) {
      const lines = (partial + s).split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) onLine(l);
    }
  };
  child.stdout?.on("data", add);
  child.stderr?.on("data", add);
  let finished = false;
  const exited = new Promise<number | string>((resolve) => {
    child.on("error", (err) => {
      finished = true;
      resolve(err.message);
    });
    child.on("exit", (code, signal) => {
      finished = true;
      resolve(code ?? signal ?? "unknown");
    });
  });
  const p: Proc = {
    name,
    child,
    pid: child.pid,
    output: () => out,
    exited,
    done: () => finished,
    async stop(graceMs = 10_000) {
      if (!finished) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      }
      live.delete(p);
      return exited;
    },
  };
  live.add(p);
  void exited.then(() => live.delete(p));
  return p;
}

/** Stops every tracked process (on failure or interruption). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(3_000)));
}

/** Runs a command to completion; rejects with its output unless it exits 0. */
export async function run(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<string> {
  const p = startProc(cmd, cmd, args, opts);
  const code = await p.exited;
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${code}:\n${p.output()}`);
  return p.output();
}

/** CPU seconds (user + system) of a process from /proc; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in USER_HZ (100) ticks
  } catch {
    return undefined;
  }
}

/** Peak resident memory (VmHWM) in MiB; undefined once the process is gone. */
export function peakRssMiB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes and regular files below a directory (what a volume or an export holds). */
export async function dirUsage(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return; // removed meanwhile (a WAL object collected, a temp file renamed)
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        try {
          bytes += (await lstat(p)).size;
          files++;
        } catch {
          // gone meanwhile
        }
      }
    }
  };
  await walk(dir);
  return { bytes, files };
}

/** Resolves once something accepts TCP connections on host:port. */
export async function waitForPort(host: string, port: number, timeoutMs: number, alive: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${what} exited before listening on ${host}:${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${what} did not listen on ${host}:${port} within ${timeoutMs} ms`);
}

/**
 * Waits until the given processes together use < 5% of a core over half a second (background
 * flushes and compaction done), at most maxMs; returns the seconds waited.
 */
export async function settle(pids: number[], maxMs: number): Promise<number> {
  const t0 = performance.now();
  const total = (): number => pids.reduce((s, p) => s + (cpuSeconds(p) ?? 0), 0);
  let last = total();
  while (performance.now() - t0 < maxMs) {
    await sleep(500);
    const now = total();
    if (now - last < 0.025) break;
    last = now;
  }
  return (performance.now() - t0) / 1000;
}
