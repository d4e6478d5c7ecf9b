/**
 * Runs the real `zerofs` command (server/src/main.ts on the pinned Node 24) as a child process
 * for protocol and end-to-end tests: fresh cache directory, ports picked by the server (port 0)
 * and read back from its "zerofs serving" log line, stop by SIGTERM or kill -9.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

const REPO_ROOT = resolve(import.meta.dirname, "../..");
/** The pinned Node 24 binary itself (not an npx wrapper), so signals reach the server. */
export const NODE_BIN = join(REPO_ROOT, "node_modules/node/bin/node");
export const MAIN = join(REPO_ROOT, "server/src/main.ts");

export interface ZerofsProcess {
  nfsPort: number;
  httpPort: number | undefined;
  proc: ChildProcess;
  /** Everything the server printed so far. */
  output(): string;
  /** SIGTERM and wait: the exit code. */
  stop(): Promise<number | null>;
  /** kill -9 and wait. */
  kill(): Promise<void>;
}

export interface ZerofsOptions {
  /** Volume location: a directory or s3://bucket/prefix. */
  url: string;
  password?: string;
  /** Extra environment (S3 settings, export policy...). */
  env?: Record<string, string>;
  args?: string[];
  /** Reuse a cache directory across restarts (default: a fresh one, removed on stop). */
  cacheDir?: string;
  /** Fixed NFS port (default: any free one). */
  port?: number;
  /**
   * Keep the server's safe defaults (root squash, reserved source ports). Without it the
   * harness relaxes them (TEST_RELAXATIONS): the test clients connect from unreserved ports
   * and act as root on a fresh volume whose root directory is root's.
   */
  safeDefaults?: boolean;
  /** Run as this user (the test runs as root: permission bits would not stop the server). */
  user?: { uid: number; gid: number };
}

/** What tests opt into unless `safeDefaults`: exports(5) `insecure` and `no_root_squash`. */
export const TEST_RELAXATIONS: Readonly<Record<string, string>> = Object.freeze({ ZEROFS_INSECURE: "true", ZEROFS_SQUASH: "none" });

/**
 * A free loopback port below Linux's ephemeral range (32768+): a port picked by binding port 0
 * and closing could be handed out again to the next port-0 listener (the server's own NFS
 * socket) before the server binds it.
 */
async function freeLoopbackPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (ok) {
      await new Promise<void>((done) => server.close(() => done()));
      return port;
    }
  }
  throw new Error("could not find a free loopback port below 32768");
}

export function zerofsEnv(opts: ZerofsOptions, cacheDir: string, httpPort = 0): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  return {
    ...env,
    SLATEDB_CACHE_DIR: cacheDir,
    SLATEDB_CACHE_SIZE_GB: "0.25",
    ZEROFS_ENCRYPTION_PASSWORD: opts.password ?? "protocol-test-password",
    ZEROFS_NFS_PORT: String(opts.port ?? 0),
    ZEROFS_HTTP_PORT: String(httpPort),
    ZEROFS_LOG_LEVEL: "info",
    ...(opts.safeDefaults === true ? {} : TEST_RELAXATIONS),
    ...opts.env,
  };
}

/**
 * Runs the command to completion (password change, bad config...): exit code and output. With
 * `timeoutMs`, a command still running then (e.g. serving when it should have refused) is
 * killed and reported with code null.
 */
export async function runZerofs(opts: ZerofsOptions & { timeoutMs?: number }): Promise<{ code: number | null; output: string }> {
  const cacheDir = opts.cacheDir ?? (await mkdtemp(join(tmpdir(), "zerofs-cache-")));
  try {
    const proc = spawn(NODE_BIN, [MAIN, ...(opts.args ?? []), opts.url], { env: zerofsEnv(opts, cacheDir), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
    proc.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs);
    const code = await new Promise<number | null>((r) => proc.on("exit", (c) => r(c)));
    clearTimeout(timer);
    return { code, output: out };
  } finally {
    if (!opts.cacheDir) await rm(cacheDir, { recursive: true, force: true });
  }
}

export async function startZerofs(opts: ZerofsOptions, timeoutMs = 60_000): Promise<ZerofsProcess> {
  const ownCache = opts.cacheDir === undefined;
  const cacheDir = opts.cacheDir ?? (await mkdtemp(join(tmpdir(), "zerofs-cache-")));
  if (ownCache && opts.user) await chown(cacheDir, opts.user.uid, opts.user.gid);
  // Port 0 disables the HTTP endpoint, so pick a free one for it.
  const env = zerofsEnv(opts, cacheDir, await freeLoopbackPort());
  const proc = spawn(NODE_BIN, [MAIN, ...(opts.args ?? []), opts.url], { env, stdio: ["ignore", "pipe", "pipe"], ...(opts.user ?? {}) });
  let out = "";
  const exited = new Promise<number | null>((r) => proc.on("exit", (c) => r(c)));
  const cleanup = async (): Promise<void> => {
    if (ownCache) await rm(cacheDir, { recursive: true, force: true });
  };
  const killOnExit = (): void => void proc.kill("SIGKILL");
  process.once("exit", killOnExit);
  const ports = await new Promise<{ nfsPort: number; httpPort: number | undefined }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`zerofs did not start within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (c: Buffer): void => {
      out += c.toString();
      for (const line of out.split("\n")) {
        if (!line.includes('"zerofs serving"')) continue;
        const j = JSON.parse(line) as { nfsPort: number; httpPort?: number };
        clearTimeout(timer);
        resolve({ nfsPort: j.nfsPort, httpPort: j.httpPort });
        return;
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", (c: Buffer) => (out += c.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`zerofs exited with ${code} before serving:\n${out}`));
    });
  });
  return {
    ...ports,
    proc,
    output: () => out,
    async stop() {
      proc.kill("SIGTERM");
      const code = await exited;
      process.removeListener("exit", killOnExit);
      await cleanup();
      return code;
    },
    async kill() {
      proc.kill("SIGKILL");
      await exited;
      process.removeListener("exit", killOnExit);
      await cleanup();
    },
  };
}
