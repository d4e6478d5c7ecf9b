/**
 * `npx node bench/metadata.ts` — the metadata rows of issue 14 against a `zerofs` child process
 * on a fresh local-directory volume, with the test client over loopback:
 *   - readdirplus: READDIRPLUS listings of a 2,000-entry directory (dircount 8 KiB, maxcount
 *     32 KiB, the sizes libnfs and the Linux client ask for), entries/s;
 *   - small: CREATE + 4 KiB WRITE UNSTABLE + COMMIT, 16 files in flight, files/s;
 *   - remove: REMOVE of those files, 16 in flight, removes/s.
 * Each phase runs `--rounds` times (default 5) and prints every round, the median and the
 * server's CPU per operation (from /proc). The client's own CPU is on the same 2 cores.
 *
 * Options: --s3 (the volume on a versitygw started on loopback instead of a local directory),
 * --rounds=<n>, --only=readdirplus,small,remove, --entries=<n> (default 2000),
 * --files=<n> per small/remove round (default 1500), --server-node-args="--cpu-prof
 * --cpu-prof-dir=/tmp/prof", --env=KEY=VALUE,... (extra server environment), --phase-times (print each
 * phase's window on the monotonic clock of --cpu-prof samples, to cut a profile to one phase).
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
import { startVersitygw, type Versitygw } from "../test/support/versitygw.ts";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, ...v] = a.replace(/^--/, "").split("=");
    return [k!, v.length > 0 ? v.join("=") : "true"] as [string, string];
  }),
);
const rounds = Number(args.get("rounds") ?? "5");
const only = args.get("only")?.split(",");
const entries = Number(args.get("entries") ?? "2000");
const files = Number(args.get("files") ?? "1500");
const serverNodeArgs = (args.get("server-node-args") ?? "").split(" ").filter(Boolean);
const extraEnv = Object.fromEntries((args.get("env") ?? "").split(",").filter(Boolean).map((kv) => kv.split("=") as [string, string]));
const want = (p: string): boolean => only === undefined || only.includes(p);

function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function startChild(dataDir: string, cacheDir: string, vgw: Versitygw | undefined): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const main = fileURLToPath(new URL("../server/src/main.ts", import.meta.url));
  const url = vgw ? `s3://${vgw.bucket}/bench-${Date.now()}` : dataDir;
  const s3Env = vgw ? { AWS_ENDPOINT_URL: vgw.endpoint, AWS_ALLOW_HTTP: "true", AWS_ACCESS_KEY_ID: vgw.accessKeyId, AWS_SECRET_ACCESS_KEY: vgw.secretAccessKey, AWS_DEFAULT_REGION: vgw.region } : {};
  const child: ChildProcess = spawn(process.execPath, [...serverNodeArgs, main, url, "--port", "0", "--http-port", "0", "--insecure", "--squash", "none"], {
    env: { ...process.env, SLATEDB_CACHE_DIR: cacheDir, SLATEDB_CACHE_SIZE_GB: "1", ZEROFS_ENCRYPTION_PASSWORD: "bench-metadata", ...s3Env, ...extraEnv },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const rec = JSON.parse(line) as { msg?: string; nfsPort?: number; level?: number };
        if (rec.msg === "zerofs serving" && rec.nfsPort) resolve(rec.nfsPort);
        else if ((rec.level ?? 0) >= 50) process.stderr.write(`server: ${line}\n`);
      } catch {
        process.stderr.write(`server: ${line}\n`);
      }
    });
    void exited.then((code) => reject(new Error(`server exited with code ${code} before serving`)));
  });
  return {
    port,
    pid: child.pid!,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

async function pool(total: number, inflight: number, op: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(inflight, total) }, async () => {
    while (next < total) await op(next++);
  }));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const name = (s: string): Buffer => Buffer.from(s, "utf8");
const results = new Map<string, { rate: number[]; cpuUs: number[]; unit: string }>();

async function measure(pid: number, phase: string, unit: string, n: number, work: () => Promise<void>): Promise<void> {
  const s0 = cpuSecondsOf(pid);
  const t0 = performance.now();
  const mono0 = process.hrtime.bigint() / 1000n;
  await work();
  const mono1 = process.hrtime.bigint() / 1000n;
  const seconds = (performance.now() - t0) / 1000;
  const cpuUs = ((cpuSecondsOf(pid) - s0) * 1e6) / n;
  const r = results.get(phase) ?? { rate: [], cpuUs: [], unit };
  r.rate.push(n / seconds);
  r.cpuUs.push(cpuUs);
  results.set(phase, r);
  console.log(`  ${phase.padEnd(44)} ${(n / seconds).toFixed(0).padStart(8)} ${unit}   server CPU ${cpuUs.toFixed(0)} µs per op`);
  // CLOCK_MONOTONIC µs, the clock of the server's --cpu-prof samples: cut a profile to one phase.
  if (args.has("phase-times")) console.log(`    phase window ${mono0}-${mono1} µs (monotonic)`);
}

const dataDir = await mkdtemp(join(tmpdir(), "zerofs-bench-meta-"));
const cacheDir = await mkdtemp(join(tmpdir(), "zerofs-bench-meta-cache-"));
const vgw = args.has("s3") ? await startVersitygw() : undefined;
const server = await startChild(dataDir, cacheDir, vgw);
const c = await Nfs3Client.connect(server.port);
const data = randomBytes(4096);
try {
  const root = await c.mount("/");
  const mkdir = async (n: string): Promise<Buffer> => (await c.ok(Nfs3Proc.MKDIR, { where: { dir: root, name: name(n) }, attributes: sattr({ mode: 0o755 }) })).obj!;
  const create = async (dir: Buffer, n: string): Promise<Buffer> =>
    (await c.ok(Nfs3Proc.CREATE, { where: { dir, name: name(n) }, how: { mode: CreateMode.UNCHECKED, attributes: sattr({ mode: 0o644 }) } })).obj!;
  let big: Buffer | undefined;
  if (want("readdirplus")) {
    big = await mkdir("big");
    await pool(entries, 32, async (i) => void (await create(big!, `entry-${String(i).padStart(6, "0")}`)));
  }
  const listing = async (): Promise<number> => {
    let cookie = 0n;
    let cookieverf: Buffer = Buffer.alloc(8);
    let seen = 0;
    for (;;) {
      const r = await c.ok(Nfs3Proc.READDIRPLUS, { dir: big!, cookie, cookieverf, dircount: 8192, maxcount: 32768 });
      for (const e of r.entries) {
        if (e.nameAttributes === undefined) throw new Error("READDIRPLUS entry without attributes");
        seen++;
        cookie = BigInt(e.cookie);
      }
      cookieverf = r.cookieverf;
      if (r.eof) return seen;
    }
  };
  if (big) await listing();
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}`);
    if (want("readdirplus")) {
      const passes = 10;
      await measure(server.pid, `READDIRPLUS ${entries} entries x${passes}`, "entries/s", passes * (entries + 2), async () => {
        for (let p = 0; p < passes; p++) if ((await listing()) !== entries + 2) throw new Error("short listing");
      });
    }
    if (want("small") || want("remove")) {
      const dir = await mkdir(`small-${round}`);
      const handles: Buffer[] = [];
      await measure(server.pid, "small files (CREATE+WRITE 4K+COMMIT) x16", "files/s", files, () =>
        pool(files, 16, async (i) => {
          const fh = await create(dir, `s${i}`);
          await c.ok(Nfs3Proc.WRITE, { file: fh, offset: 0n, count: 4096, stable: StableHow.UNSTABLE, data });
          await c.ok(Nfs3Proc.COMMIT, { file: fh, offset: 0n, count: 0 });
          handles[i] = fh;
        }),
      );
      if (want("remove")) {
        await measure(server.pid, "REMOVE x16", "removes/s", files, () => pool(files, 16, async (i) => void (await c.ok(Nfs3Proc.REMOVE, { object: { dir, name: name(`s${i}`) } }))));
      }
    }
  }
  console.log("medians");
  for (const [phase, r] of results) console.log(`  ${phase.padEnd(44)} ${median(r.rate).toFixed(0).padStart(8)} ${r.unit}   server CPU ${median(r.cpuUs).toFixed(0)} µs per op`);
} finally {
  await c.rpc.close();
  await server.stop();
  await vgw?.stop();
  if (!args.has("keep")) await Promise.all([rm(dataDir, { recursive: true, force: true }), rm(cacheDir, { recursive: true, force: true })]);
}
