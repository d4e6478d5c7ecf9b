/**
 * `npm run bench:nfs` — NFSv3 figures for a server on the embedded default store (a temporary
 * local directory; a fresh cache directory, which a local volume does not use), driven over
 * loopback TCP with the test client
 * (test/support/nfs): GETATTR and LOOKUP ops/s, small files/s (CREATE + 4 KiB WRITE UNSTABLE +
 * COMMIT), sequential 1 MiB WRITE and READ MB/s of a large file, READDIRPLUS entries/s. Each with
 * p50/p99 latency. Figures are printed, not asserted.
 *
 * The server runs as a child process (server/src/main.ts, the `zerofs` command) so that the
 * client's CPU (encoding, decoding, verifying every byte read) does not run on the server's
 * event loop; on a 2-core machine the two processes still share the cores. Each phase also
 * reports the CPU time the server and the client used (from /proc and process.cpuUsage).
 *
 * Options: --scale=<factor> (default 1: a 1 GiB file, 10,000-entry directory; 0.1 for a quick
 * look), --json (one JSON object on stdout instead of the table), --in-process (start the
 * server in this process instead: the numbers are then skewed by the shared event loop),
 * --server-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof" (extra node flags for the child),
 * --keep (leave the data directory behind), --only=<phases> (comma-separated: getattr, lookup,
 * small, readdirplus, write, read; read implies the write).
 *
 * The file data is incompressible (slices of a random pool), and every byte read is compared.
 * The first READ pass starts with a cold block cache, but the SST files were just written, so
 * they are in the OS page cache: neither pass reads the disk.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { CreateMode, Nfs3Proc, StableHow } from "../server/src/nfs/nfs3-types.ts";
import { Nfs3Client, sattr } from "../test/support/nfs/nfs3-client.ts";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, ...v] = a.replace(/^--/, "").split("=");
    return [k!, v.length > 0 ? v.join("=") : "true"] as [string, string];
  }),
);
const scale = Number(args.get("scale") ?? "1");
const asJson = args.has("json");
const inProcess = args.has("in-process");
const keep = args.has("keep");
const only = args.get("only")?.split(",");
const serverNodeArgs = (args.get("server-node-args") ?? "").split(" ").filter(Boolean);
if (!(scale > 0)) throw new Error(`--scale must be > 0, got ${args.get("scale")}`);

const MiB = 2 ** 20;
const PASSWORD = "bench-nfs-password";
const fmt = (n: number, d = 0): string => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const log = (s: string): void => {
  if (!asJson) console.log(s);
};

// ------------------------------------------------------------------ server

interface Server {
  port: number;
  pid: number | undefined;
  stop(): Promise<void>;
}

async function startChild(dataDir: string, cacheDir: string): Promise<Server> {
  const main = fileURLToPath(new URL("../server/src/main.ts", import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [...serverNodeArgs, main, dataDir, "--port", "0", "--http-port", "0", "--log-level", "info", "--insecure", "--squash", "none"], {
    env: { ...process.env, SLATEDB_CACHE_DIR: cacheDir, SLATEDB_CACHE_SIZE_GB: "8", ZEROFS_ENCRYPTION_PASSWORD: PASSWORD },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      try {
        const rec = JSON.parse(line) as { msg?: string; nfsPort?: number; level?: number };
        if (rec.msg === "zerofs serving" && rec.nfsPort) resolve(rec.nfsPort);
        else if ((rec.level ?? 0) >= 40 && !asJson) process.stderr.write(`server: ${line}\n`);
      } catch {
        if (!asJson) process.stderr.write(`server: ${line}\n`);
      }
    });
    void exited.then((code) => reject(new Error(`server exited with code ${code} before serving`)));
  });
  return {
    port,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      const code = await exited;
      if (code !== 0) throw new Error(`server exited with code ${code}`);
    },
  };
}

async function startInProcess(dataDir: string, cacheDir: string): Promise<Server> {
  const { readConfig } = await import("../server/src/config/config.ts");
  const { startServer } = await import("../server/src/server.ts");
  const { pino } = await import("pino");
  const config = readConfig([dataDir, "--port", "0", "--http-port", "0", "--insecure", "--squash", "none"], { SLATEDB_CACHE_DIR: cacheDir, SLATEDB_CACHE_SIZE_GB: "8", ZEROFS_ENCRYPTION_PASSWORD: PASSWORD });
  const s = await startServer(config, pino({ level: "warn" }));
  return { port: s.nfsPort, pid: undefined, stop: () => s.close() };
}

/** Peak resident memory of a process in MiB, from /proc (Linux); undefined elsewhere. */
function peakRssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) of a process, from /proc (Linux); undefined elsewhere. */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ measurement

interface Figure {
  name: string;
  /** Main figure, e.g. ops/s or MB/s. */
  rate: number;
  unit: string;
  count: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuS?: number;
  clientCpuS: number;
  note?: string;
  /** Phase window on the monotonic clock (µs), to cut a server --cpu-prof profile by phase. */
  monoStartUs: number;
  monoEndUs: number;
}

const figures: Figure[] = [];

/** Runs `total` operations with `inflight` of them outstanding; returns per-op latencies (ms). */
async function pool(total: number, inflight: number, op: (i: number) => Promise<void>): Promise<number[]> {
  const lat = new Array<number>(total);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inflight, total) }, async () => {
      while (next < total) {
        const i = next++;
        const s = performance.now();
        await op(i);
        lat[i] = performance.now() - s;
      }
    }),
  );
  return lat;
}

async function measure(
  server: Server,
  name: string,
  unit: string,
  work: () => Promise<{ lat: number[]; amount: number; count?: number; note?: string }>,
): Promise<Figure> {
  const cpu0 = process.cpuUsage();
  const s0 = cpuSecondsOf(server.pid);
  const t0 = performance.now();
  const m0 = process.hrtime.bigint();
  const { lat, amount, count, note } = await work();
  const m1 = process.hrtime.bigint();
  const seconds = (performance.now() - t0) / 1000;
  const s1 = cpuSecondsOf(server.pid);
  const cpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  const f: Figure = {
    name,
    rate: amount / seconds,
    unit,
    count: count ?? lat.length,
    seconds,
    p50Ms: pct(lat, 50),
    p99Ms: pct(lat, 99),
    clientCpuS: (cpu.user + cpu.system) / 1e6,
    ...(s0 !== undefined && s1 !== undefined ? { serverCpuS: s1 - s0 } : {}),
    ...(note ? { note } : {}),
    monoStartUs: Number(m0 / 1000n),
    monoEndUs: Number(m1 / 1000n),
  };
  figures.push(f);
  const cpuNote = `cpu server ${f.serverCpuS === undefined ? "?" : fmt(f.serverCpuS, 1)} s, client ${fmt(f.clientCpuS, 1)} s`;
  log(
    `${serverNodeArgs.length > 0 ? `  [${f.monoStartUs}-${f.monoEndUs}]\n` : ""}  ${name.padEnd(58)} ${`${fmt(f.rate, unit === "MB/s" ? 1 : 0)} ${unit}`.padStart(16)}   p50 ${fmt(f.p50Ms, 2).padStart(7)} ms  p99 ${fmt(f.p99Ms, 2).padStart(7)} ms   (${fmt(seconds, 1)} s; ${cpuNote}${note ? `; ${note}` : ""})`,
  );
  return f;
}

/**
 * Waits until the server has used < 5% CPU over half a second (background memtable flushes and
 * compaction done); returns the seconds waited and the server CPU seconds used meanwhile.
 */
async function settle(server: Server, maxMs = 180_000): Promise<{ seconds: number; cpu: number }> {
  const t0 = performance.now();
  if (server.pid === undefined) {
    await new Promise((r) => setTimeout(r, 2000));
    return { seconds: (performance.now() - t0) / 1000, cpu: NaN };
  }
  const first = cpuSecondsOf(server.pid) ?? 0;
  let last = first;
  while (performance.now() - t0 < maxMs) {
    await new Promise((r) => setTimeout(r, 500));
    const now = cpuSecondsOf(server.pid) ?? 0;
    if (now - last < 0.025) break;
    last = now;
  }
  return { seconds: (performance.now() - t0) / 1000, cpu: last - first };
}

// ------------------------------------------------------------------ data

/** Incompressible file contents: slices of a random pool larger than zstd's window and a WAL segment. */
const POOL = randomBytes(96 * MiB);
const dataAt = (offset: number, length: number): Buffer => {
  const start = offset % (POOL.length - length - 4096);
  return POOL.subarray(start, start + length);
};

const name = (s: string): Buffer => Buffer.from(s, "utf8");

// ------------------------------------------------------------------ phases

async function run(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), "zerofs-bench-nfs-data-"));
  const cacheDir = await mkdtemp(join(tmpdir(), "zerofs-bench-nfs-cache-"));
  const server = inProcess ? await startInProcess(dataDir, cacheDir) : await startChild(dataDir, cacheDir);
  let backgroundAfterWrite: { seconds: number; cpu: number } | undefined;
  let serverPeakRssMiB: number | undefined;
  const want = (phase: string): boolean => only === undefined || only.includes(phase);
  log(`ZeroFS NFS benchmark (scale ${scale}, node ${process.version}, server ${inProcess ? "in-process" : `child pid ${server.pid}`}, port ${server.port})`);
  const c = await Nfs3Client.connect(server.port);
  try {
    const root = await c.mount("/");
    const mkdir = async (dir: Buffer, n: string): Promise<Buffer> => (await c.ok(Nfs3Proc.MKDIR, { where: { dir, name: name(n) }, attributes: sattr({ mode: 0o755 }) })).obj!;
    const create = async (dir: Buffer, n: string): Promise<Buffer> =>
      (await c.ok(Nfs3Proc.CREATE, { where: { dir, name: name(n) }, how: { mode: CreateMode.UNCHECKED, attributes: sattr({ mode: 0o644 }) } })).obj!;

    // --- GETATTR and LOOKUP (32 in flight) on a directory of 1,000 files.
    const meta = await mkdir(root, "meta");
    const metaFiles = 1000;
    await pool(metaFiles, 32, async (i) => void (await create(meta, `f${i}`)));
    await pool(1000, 32, async () => void (await c.ok(Nfs3Proc.GETATTR, { object: meta }))); // warm-up
    const metaOps = Math.round(50_000 * scale);
    if (want("getattr")) {
      await measure(server, "GETATTR, 32 in flight", "ops/s", async () => {
        const lat = await pool(metaOps, 32, async () => void (await c.ok(Nfs3Proc.GETATTR, { object: meta })));
        return { lat, amount: metaOps };
      });
    }
    if (want("lookup")) {
      await measure(server, "LOOKUP, 32 in flight", "ops/s", async () => {
        const lat = await pool(metaOps, 32, async (i) => void (await c.ok(Nfs3Proc.LOOKUP, { what: { dir: meta, name: name(`f${(i * 7919) % metaFiles}`) } })));
        return { lat, amount: metaOps };
      });
    }

    // --- Small files: CREATE + WRITE 4 KiB UNSTABLE + COMMIT, 16 files in flight.
    if (want("small")) {
      const small = await mkdir(root, "small");
      const n = Math.round(4000 * scale);
      await measure(server, "small files (CREATE+WRITE 4K+COMMIT), 16 in flight", "files/s", async () => {
        const lat = await pool(n, 16, async (i) => {
          const fh = await create(small, `s${i}`);
          await c.ok(Nfs3Proc.WRITE, { file: fh, offset: 0n, count: 4096, stable: StableHow.UNSTABLE, data: dataAt(i * 4096, 4096) });
          await c.ok(Nfs3Proc.COMMIT, { file: fh, offset: 0n, count: 0 });
        });
        return { lat, amount: n };
      });
    }

    // --- READDIRPLUS of a 10,000-entry directory (created first, 32 CREATEs in flight).
    if (want("readdirplus")) {
      const big = await mkdir(root, "big");
      const entries = Math.round(10_000 * scale);
      await measure(server, `CREATE (empty files), 32 in flight`, "files/s", async () => {
        const lat = await pool(entries, 32, async (i) => void (await create(big, `entry-${String(i).padStart(6, "0")}`)));
        return { lat, amount: entries };
      });
      const listing = async (): Promise<{ lat: number[]; seen: number }> => {
        const lat: number[] = [];
        let cookie = 0n;
        let cookieverf: Buffer = Buffer.alloc(8);
        let seen = 0;
        for (;;) {
          const s = performance.now();
          const r = await c.ok(Nfs3Proc.READDIRPLUS, { dir: big, cookie, cookieverf, dircount: 65536, maxcount: 65536 });
          lat.push(performance.now() - s);
          for (const e of r.entries) {
            if (e.nameAttributes === undefined || e.nameHandle === undefined) throw new Error("READDIRPLUS entry without attributes or handle");
            seen++;
            cookie = BigInt(e.cookie);
          }
          cookieverf = r.cookieverf;
          if (r.eof) break;
        }
        if (seen !== entries + 2) throw new Error(`READDIRPLUS listed ${seen} entries, expected ${entries + 2}`);
        return { lat, seen };
      };
      await listing(); // warm-up
      const passes = 5;
      await measure(server, `READDIRPLUS ${fmt(entries)} entries (64 KiB replies)`, "entries/s", async () => {
        const lat: number[] = [];
        let seen = 0;
        for (let p = 0; p < passes; p++) {
          const r = await listing();
          lat.push(...r.lat);
          seen += r.seen;
        }
        return { lat, amount: seen, note: `${passes} listings, latency per reply` };
      });
    }

    // --- Sequential WRITE of a large file (1 MiB UNSTABLE, 16 in flight, then COMMIT), and READ.
    const fileBytes = Math.max(16, Math.round(1024 * scale)) * MiB;
    const writes = fileBytes / MiB;
    let seq: Buffer | undefined;
    if (want("write") || want("read")) {
      seq = await create(root, "sequential.bin");
      await measure(server, `sequential WRITE ${fmt(fileBytes / MiB)} MiB (1 MiB UNSTABLE x16 + COMMIT)`, "MB/s", async () => {
        const fh = seq!;
        const lat = await pool(writes, 16, async (i) => {
          const r = await c.ok(Nfs3Proc.WRITE, { file: fh, offset: BigInt(i * MiB), count: MiB, stable: StableHow.UNSTABLE, data: dataAt(i * MiB, MiB) });
          if (r.count !== MiB) throw new Error(`short WRITE: ${r.count}`);
        });
        const s = performance.now();
        await c.ok(Nfs3Proc.COMMIT, { file: fh, offset: 0n, count: 0 });
        const commitMs = performance.now() - s;
        return { lat, amount: fileBytes / 1e6, note: `COMMIT ${fmt(commitMs, 0)} ms` };
      });
      const settled = await settle(server);
      backgroundAfterWrite = settled;
      log(`  (then the server stayed busy ${fmt(settled.seconds, 1)} s, ${fmt(settled.cpu, 1)} s CPU: memtable flushes and compaction)`);
    }
    if (want("read") && seq) {
      const fh = seq;
      const readPass = async (): Promise<{ lat: number[]; amount: number }> => {
        let mismatches = 0;
        const lat = await pool(writes, 16, async (i) => {
          const r = await c.ok(Nfs3Proc.READ, { file: fh, offset: BigInt(i * MiB), count: MiB });
          if (!r.data.equals(dataAt(i * MiB, MiB))) mismatches++;
        });
        if (mismatches > 0) throw new Error(`READ returned wrong data for ${mismatches} MiB`);
        return { lat, amount: fileBytes / 1e6 };
      };
      await measure(server, `sequential READ, first pass (1 MiB x16)`, "MB/s", async () => ({
        ...(await readPass()),
        note: "block cache cold (SST files in the OS page cache)",
      }));
      await measure(server, `sequential READ, second pass (cached)`, "MB/s", readPass);
    }
  } finally {
    c.close();
    serverPeakRssMiB = peakRssMiB(server.pid);
    if (serverPeakRssMiB !== undefined) log(`  server peak RSS ${fmt(serverPeakRssMiB)} MiB`);
    await server.stop();
    if (!keep) {
      await rm(dataDir, { recursive: true, force: true });
      await rm(cacheDir, { recursive: true, force: true });
    } else log(`  data kept in ${dataDir} (cache ${cacheDir})`);
  }
  if (asJson) console.log(JSON.stringify({ scale, node: process.version, server: inProcess ? "in-process" : "child", figures, backgroundAfterWrite, serverPeakRssMiB }, null, 2));
}

await run();
