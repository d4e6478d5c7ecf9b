/**
 * The servers `npm run bench:wire` compares, each started fresh per round inside the harness's
 * private network namespace: the `zerofs` command (server/src/main.ts, driven only through its
 * command line, environment and /metrics) on a local directory and on versitygw, and
 * nfs-ganesha (Debian, FSAL VFS) exporting a directory on the same filesystem.
 */
import { createServer } from "node:net";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { cpuSeconds, dirUsage, peakRssMiB, run, startProc, waitForPort, type Proc } from "./procs.ts";

const REPO_ROOT = resolve(import.meta.dirname, "../..");
/** The pinned Node 24 binary itself (not an npm wrapper), so /proc shows the server's own CPU. */
export const NODE_BIN = join(REPO_ROOT, "node_modules/node/bin/node");
const MAIN = join(REPO_ROOT, "server/src/main.ts");
const HOST = "127.0.0.1";

export type ServerKind = "local" | "s3" | "ganesha";
export const SERVER_LABELS: Record<ServerKind, string> = { local: "zerofs local", s3: "zerofs on versitygw", ganesha: "ganesha" };

/** Store counters from zerofs's /metrics: bytes and objects PUT (all put variants). */
export interface StoreCounters {
  putBytes: number;
  puts: number;
  getBytes: number;
  gets: number;
}

export interface RestartOptions {
  cold: boolean;
  evict: (dir: string) => Promise<void>;
  whileStopped?: () => Promise<void>;
}

export interface ServerUnderTest {
  kind: ServerKind;
  nfsPort: number;
  mountPort: number;
  exportPath: string;
  /** The process serving NFS. */
  pid(): number;
  /** Further processes whose CPU belongs to this server (versitygw). */
  helperPids(): number[];
  /** Directories holding what the server stored (volume, bucket or export). */
  storageDirs: string[];
  /** zerofs's store counters now; undefined for ganesha. */
  counters(): Promise<StoreCounters | undefined>;
  /**
   * Stop (gracefully: zerofs flushes its memtable), run whileStopped, start again. Cold: also
   * drop what it cached (its disk cache; the page cache of its files) before starting.
   */
  restart(opts: RestartOptions): Promise<void>;
  /** Peak RSS (MiB) over every lifetime of the NFS process so far. */
  peakRssMiB(): number;
  /** CPU seconds of the helper processes (versitygw) now. */
  helperCpu(): number;
  destroy(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok, fail) => s.once("error", fail).listen(0, HOST, ok));
  const a = s.address();
  await new Promise<void>((ok) => s.close(() => ok()));
  if (a === null || typeof a === "string") throw new Error("could not pick a free port");
  return a.port;
}

// ------------------------------------------------------------------ namespace

/**
 * Inside `unshare --net --mount --pid --fork --mount-proc`: loopback up (plus 127.0.0.2/32, so
 * glibc's AI_ADDRCONFIG accepts IPv4), and private /run and /var/lib/nfs so rpcbind's socket and
 * ganesha's state never meet the host's.
 */
export async function setUpNamespace(): Promise<void> {
  await run("ip", ["link", "set", "lo", "up"]);
  await run("ip", ["addr", "add", "127.0.0.2/32", "dev", "lo"]);
  await run("mount", ["-t", "tmpfs", "-o", "size=64m", "bench-wire-run", "/run"]);
  await mkdir("/var/lib/nfs", { recursive: true });
  await run("mount", ["-t", "tmpfs", "-o", "size=64m", "bench-wire-nfs", "/var/lib/nfs"]);
}

/** rpcbind for ganesha (it exits unless it can register), in the foreground. */
export async function startRpcbind(): Promise<Proc> {
  const p = startProc("rpcbind", "rpcbind", ["-f"]);
  await waitForPort(HOST, 111, 10_000, () => !p.done(), "rpcbind");
  return p;
}

// ------------------------------------------------------------------ zerofs

const PASSWORD = "bench-wire-password";

interface ZerofsRun {
  proc: Proc;
  nfsPort: number;
  httpPort: number;
}

async function startZerofs(url: string, cacheDir: string, env: Record<string, string>): Promise<ZerofsRun> {
  const httpPort = await freePort();
  let serving: ((port: number) => void) | undefined;
  const portP = new Promise<number>((ok) => (serving = ok));
  const proc = startProc(
    "zerofs",
    NODE_BIN,
    [MAIN, url],
    {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/root",
        SLATEDB_CACHE_DIR: cacheDir,
        SLATEDB_CACHE_SIZE_GB: "8",
        ZEROFS_ENCRYPTION_PASSWORD: PASSWORD,
        ZEROFS_NFS_PORT: "0",
        ZEROFS_HTTP_PORT: String(httpPort),
        ZEROFS_LOG_LEVEL: "info",
        // Served like ganesha's export below: no root squash, clients from any source port
        // (a server that does not know ZEROFS_INSECURE ignores it).
        ZEROFS_SQUASH: "none",
        ZEROFS_INSECURE: "true",
        ...env,
      },
    },
    (line) => {
      if (!line.startsWith("{")) return;
      try {
        const rec = JSON.parse(line) as { msg?: string; nfsPort?: number; level?: number };
        if (rec.msg === "zerofs serving" && rec.nfsPort) serving?.(rec.nfsPort);
        else if ((rec.level ?? 0) >= 50) process.stderr.write(`zerofs: ${line}\n`);
      } catch {
        // not a log record
      }
    },
  );
  const nfsPort = await Promise.race([
    portP,
    proc.exited.then((code) => {
      throw new Error(`zerofs exited (${code}) before serving:\n${proc.output()}`);
    }),
    new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`zerofs did not serve within 120 s:\n${proc.output()}`)), 120_000).unref()),
  ]);
  return { proc, nfsPort, httpPort };
}

async function scrape(httpPort: number): Promise<StoreCounters> {
  const text = await (await fetch(`http://${HOST}:${httpPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const c: StoreCounters = { putBytes: 0, puts: 0, getBytes: 0, gets: 0 };
  for (const line of text.split("\n")) {
    const m = /^(zerofs_store_bytes_total|zerofs_store_requests_total)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    const v = Number(m[3]);
    const op = labels.op ?? "";
    const isPut = op.startsWith("put");
    if (m[1] === "zerofs_store_bytes_total") {
      if (isPut) c.putBytes += v;
      else if (op === "get") c.getBytes += v;
    } else if (labels.outcome === "ok") {
      if (isPut) c.puts += v;
      else if (op === "get") c.gets += v;
    }
  }
  return c;
}

async function makeZerofs(kind: "local" | "s3", workDir: string, versitygwBin: string, keep: boolean): Promise<ServerUnderTest> {
  const base = join(workDir, kind === "local" ? "zerofs-local" : "zerofs-s3");
  const cacheRoot = join(base, "cache");
  await mkdir(cacheRoot, { recursive: true });
  let vgw: Versitygw | undefined;
  let url: string;
  let env: Record<string, string> = {};
  let storageDirs: string[];
  if (kind === "local") {
    url = join(base, "volume");
    await mkdir(url);
    storageDirs = [url];
  } else {
    vgw = await startVersitygw(versitygwBin, join(base, "versitygw"));
    url = `s3://${vgw.bucket}/volume`;
    env = {
      AWS_ENDPOINT_URL: vgw.endpoint,
      AWS_ACCESS_KEY_ID: vgw.accessKeyId,
      AWS_SECRET_ACCESS_KEY: vgw.secretAccessKey,
      AWS_DEFAULT_REGION: "us-east-1",
      AWS_ALLOW_HTTP: "true",
    };
    // The bucket only: versitygw also keeps one lock file per key hash in .vgwlocks/.
    storageDirs = [join(vgw.dataDir, vgw.bucket)];
  }
  let generation = 0;
  const newCache = async (): Promise<string> => {
    const d = join(cacheRoot, String(generation++));
    await mkdir(d);
    return d;
  };
  let cacheDir = await newCache();
  let cur = await startZerofs(url, cacheDir, env);
  let peak = 0;
  const stopCur = async (): Promise<void> => {
    peak = Math.max(peak, peakRssMiB(cur.proc.pid) ?? 0);
    const code = await cur.proc.stop(30_000);
    if (code !== 0) throw new Error(`zerofs exited with ${code} on SIGTERM:\n${cur.proc.output()}`);
  };
  return {
    kind,
    get nfsPort() {
      return cur.nfsPort;
    },
    get mountPort() {
      return cur.nfsPort; // zerofs serves MOUNT on its NFS port
    },
    exportPath: "/",
    pid: () => cur.proc.pid,
    helperPids: () => (vgw ? [vgw.proc.pid] : []),
    storageDirs,
    counters: () => scrape(cur.httpPort),
    async restart({ cold, evict, whileStopped }) {
      await stopCur();
      await whileStopped?.();
      if (cold) {
        // A fresh disk cache (S3: the cold read must come from the bucket), the page cache of
        // the volume's files (or the bucket's) dropped.
        await rm(cacheDir, { recursive: true, force: true });
        cacheDir = await newCache();
        for (const d of storageDirs) await evict(d);
      }
      cur = await startZerofs(url, cacheDir, env);
    },
    peakRssMiB: () => Math.max(peak, peakRssMiB(cur.proc.pid) ?? 0),
    helperCpu: () => (vgw ? (cpuSeconds(vgw.proc.pid) ?? 0) : 0),
    async destroy() {
      try {
        if (!cur.proc.done()) await stopCur();
      } finally {
        if (vgw) await vgw.proc.stop(5_000);
        if (!keep) await rm(base, { recursive: true, force: true });
      }
    },
  };
}

// ------------------------------------------------------------------ versitygw

interface Versitygw {
  proc: Proc;
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  dataDir: string;
}

async function startVersitygw(bin: string, dataDir: string): Promise<Versitygw> {
  await mkdir(dataDir, { recursive: true });
  const port = await freePort();
  const accessKeyId = "bench-wire-access";
  const secretAccessKey = "bench-wire-secret-0123456789";
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VGW_") && !k.startsWith("ROOT_")));
  const proc = startProc("versitygw", bin, ["--access", accessKeyId, "--secret", secretAccessKey, "--region", "us-east-1", "--port", `${HOST}:${port}`, "--quiet", "posix", dataDir], { env });
  await waitForPort(HOST, port, 15_000, () => !proc.done(), "versitygw");
  const endpoint = `http://${HOST}:${port}`;
  const bucket = "bench-wire";
  const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 3 });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return { proc, endpoint, bucket, accessKeyId, secretAccessKey, dataDir };
}

// ------------------------------------------------------------------ nfs-ganesha

const GANESHA_NFS_PORT = 2049;
const GANESHA_MOUNT_PORT = 20048;

function ganeshaConfig(exportDir: string): string {
  // NFSv3 over TCP only, no NLM/RQUOTA, no grace period; 1 MiB transfers like zerofs.
  return `NFS_CORE_PARAM {
  NFS_Port = ${GANESHA_NFS_PORT};
  MNT_Port = ${GANESHA_MOUNT_PORT};
  Protocols = 3;
  Bind_addr = ${HOST};
  Enable_NLM = false;
  Enable_RQUOTA = false;
}
NFSV4 { Graceless = true; }
EXPORT {
  Export_Id = 1;
  Path = ${exportDir};
  Pseudo = ${exportDir};
  Protocols = 3;
  Transports = TCP;
  Access_Type = RW;
  Squash = No_Root_Squash;
  PrivilegedPort = false;
  SecType = sys;
  MaxRead = 1048576;
  MaxWrite = 1048576;
  FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
`;
}

async function makeGanesha(workDir: string, keep: boolean): Promise<ServerUnderTest> {
  const base = join(workDir, "ganesha");
  const exportDir = join(base, "export");
  await mkdir(exportDir, { recursive: true });
  const conf = join(base, "ganesha.conf");
  await writeFile(conf, ganeshaConfig(exportDir));
  let lifetime = 0;
  const start = async (): Promise<Proc> => {
    const log = join(base, `ganesha-${lifetime++}.log`);
    const p = startProc("ganesha.nfsd", "ganesha.nfsd", ["-F", "-L", log, "-f", conf, "-p", join(base, "ganesha.pid"), "-N", "NIV_EVENT"]);
    try {
      await waitForPort(HOST, GANESHA_NFS_PORT, 30_000, () => !p.done(), "ganesha.nfsd");
      await waitForPort(HOST, GANESHA_MOUNT_PORT, 30_000, () => !p.done(), "ganesha.nfsd");
    } catch (err) {
      await p.stop(3_000);
      throw new Error(`${(err as Error).message}\n${p.output()}\n(log: ${log})`, { cause: err });
    }
    return p;
  };
  let cur = await start();
  let peak = 0;
  const stopCur = async (): Promise<void> => {
    peak = Math.max(peak, peakRssMiB(cur.pid) ?? 0);
    await cur.stop(15_000);
  };
  return {
    kind: "ganesha",
    nfsPort: GANESHA_NFS_PORT,
    mountPort: GANESHA_MOUNT_PORT,
    exportPath: exportDir,
    pid: () => cur.pid,
    helperPids: () => [],
    storageDirs: [exportDir],
    counters: () => Promise.resolve(undefined),
    async restart({ cold, evict, whileStopped }) {
      await stopCur();
      await whileStopped?.();
      if (cold) await evict(exportDir);
      cur = await start();
    },
    peakRssMiB: () => Math.max(peak, peakRssMiB(cur.pid) ?? 0),
    helperCpu: () => 0,
    async destroy() {
      try {
        if (!cur.done()) await stopCur();
      } finally {
        if (!keep) await rm(base, { recursive: true, force: true });
      }
    },
  };
}

/** Starts a fresh server with its data under workDir; destroy() removes that unless keep. */
export function startServer(kind: ServerKind, workDir: string, versitygwBin: string, keep: boolean): Promise<ServerUnderTest> {
  return kind === "ganesha" ? makeGanesha(workDir, keep) : makeZerofs(kind, workDir, versitygwBin, keep);
}

export { dirUsage };
