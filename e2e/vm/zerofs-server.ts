/**
 * The `zerofs` command as a child process on the host, for the kernel-client end-to-end suite:
 * a fresh data directory per test, listening on 127.0.0.1 (the VM reaches it as
 * 10.0.2.100, forwarded by qemu's restricted user-mode network: vm.ts). It can be killed with SIGKILL and started again on the
 * same port and data, so a guest with a hard mount carries on.
 *
 * The pinned Node binary runs server/src/main.ts directly (no npx wrapper: kill -9 must hit
 * the server itself).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");
const MAIN = join(REPO_ROOT, "server/src/main.ts");
const READY_TIMEOUT_MS = 60_000;
export const TEST_PASSWORD = "zerofs-e2e-password";

export interface ZerofsServer {
  /** The NFS/MOUNT/PORTMAP port on 127.0.0.1 (the same across restarts). */
  readonly port: number;
  /** Working directory of this server: data/, cache/, server.log. */
  readonly dir: string;
  readonly dataDir: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Starts the server again on the same port and data (after kill9 or stop). */
  start(): Promise<void>;
  /** SIGKILL, and waits until the process is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (clean stop: flushes); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** The server's log (all runs), pino JSON lines. */
  log(): Promise<string>;
  /** Log lines at warn level or above (pino level >= 40), for failure reports. */
  problems(): Promise<string[]>;
  /**
   * Calls `fn` when the server process exits without the harness asking (kill9/stop); returns
   * a function that removes the listener.
   */
  onUnexpectedExit(fn: (why: string) => void): () => void;
  /** Stops it if running and removes its directory. */
  dispose(opts?: { keep?: boolean }): Promise<void>;
}

export interface StartOptions {
  /** Extra environment for the server (e.g. ZEROFS_LOG_LEVEL). */
  env?: Record<string, string>;
  /** Parent of the server's directory (default: the OS temp dir). */
  parent?: string;
}

export async function startZerofs(opts: StartOptions = {}): Promise<ZerofsServer> {
  const dir = await mkdtemp(join(opts.parent ?? tmpdir(), "zerofs-e2e-"));
  const dataDir = join(dir, "data");
  const cacheDir = join(dir, "cache");
  await mkdir(dataDir);
  await mkdir(cacheDir);
  const logPath = join(dir, "server.log");
  const logStream: WriteStream = createWriteStream(logPath, { flags: "a" });
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> | undefined;
  let port = 0;
  let intentional = false;
  const exitListeners = new Set<(why: string) => void>();
  const killOnExit = (): void => {
    child?.kill("SIGKILL");
  };
  process.on("exit", killOnExit);

  const launch = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) throw new Error("zerofs is already running");
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SLATEDB_CACHE_DIR: cacheDir,
      SLATEDB_CACHE_SIZE_GB: "1",
      ZEROFS_ENCRYPTION_PASSWORD: TEST_PASSWORD,
      ZEROFS_NFS_PORT: String(port),
      ZEROFS_HTTP_PORT: "0",
      ZEROFS_LISTEN: "127.0.0.1",
      // qemu's user network reaches the server through host sockets with unreserved source
      // ports, and the guest scripts act as root on a fresh volume: opt out of `secure` and
      // root squash explicitly (the server's defaults stay safe).
      ZEROFS_INSECURE: "true",
      ZEROFS_SQUASH: "none",
      ...opts.env,
    };
    const c = spawn(process.execPath, [MAIN, dataDir], { env, stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    intentional = false;
    exited = new Promise((ok) => c.once("exit", (code) => ok(code)));
    c.once("exit", (code, signal) => {
      const why = `zerofs (pid ${c.pid}) exited unexpectedly: ${signal ? `signal ${signal}` : `exit code ${code}`}`;
      if (!intentional) {
        logStream.write(`{"e2e":"${why}"}\n`);
        for (const fn of exitListeners) fn(why);
      }
    });
    let buffered = "";
    const ready = new Promise<number>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`zerofs did not report "zerofs serving" within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      const onData = (chunk: Buffer): void => {
        logStream.write(chunk);
        buffered += chunk.toString("utf8");
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.includes('"zerofs serving"')) {
            clearTimeout(timer);
            try {
              ok((JSON.parse(line) as { nfsPort: number }).nfsPort);
            } catch (err) {
              fail(err instanceof Error ? err : new Error(String(err)));
            }
          }
        }
      };
      c.stdout.on("data", onData);
      c.stderr.on("data", (chunk: Buffer) => logStream.write(chunk));
      c.once("exit", (code, signal) => {
        clearTimeout(timer);
        fail(new Error(`zerofs exited (${code ?? signal}) before serving`));
      });
    });
    try {
      port = await ready;
    } catch (err) {
      const log = await readFile(logPath, "utf8").catch(() => "");
      throw new Error(`${(err as Error).message}\n--- server log (tail) ---\n${log.split("\n").slice(-40).join("\n")}`, { cause: err });
    }
  };

  await launch();

  const server: ZerofsServer = {
    get port() {
      return port;
    },
    dir,
    dataDir,
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    start: launch,
    async kill9() {
      if (!server.running) return;
      logStream.write(`{"e2e":"harness sent SIGKILL to pid ${child?.pid}"}\n`);
      intentional = true;
      child?.kill("SIGKILL");
      await exited;
    },
    async stop(timeoutMs = 60_000) {
      if (!server.running) return child?.exitCode ?? null;
      intentional = true;
      child?.kill("SIGTERM");
      const timer = setTimeout(() => child?.kill("SIGKILL"), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code ?? null;
    },
    log: () => readFile(logPath, "utf8"),
    onUnexpectedExit(fn) {
      exitListeners.add(fn);
      return () => exitListeners.delete(fn);
    },
    async problems() {
      const text = await readFile(logPath, "utf8").catch(() => "");
      return text.split("\n").filter((l) => {
        const m = /"level":(\d+)/.exec(l);
        return m !== null && Number(m[1]) >= 40;
      });
    },
    async dispose({ keep = false } = {}) {
      await server.stop().catch(() => undefined);
      process.removeListener("exit", killOnExit);
      await new Promise<void>((ok) => logStream.end(ok));
      if (!keep) await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
