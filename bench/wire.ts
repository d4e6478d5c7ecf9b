/**
 * `npm run bench:wire` — issue 14's wire benchmark: the same independent NFSv3 client
 * (bench/wire/nfsload.c on Debian's libnfs) against `zerofs` on a local-directory volume,
 * `zerofs` on versitygw, and nfs-ganesha 4.3 (Debian, FSAL VFS) exporting a directory on the same
 * filesystem. Servers alternate (the order rotates each round); it prints the median of each
 * workload, the ratio zerofs ÷ ganesha, and per server the CPU-s per GiB written, bytes and
 * objects PUT per user byte, what the volume holds, and peak RSS. A script, not a test: figures
 * are printed (and written as JSON), never asserted.
 *
 * zerofs is driven only through its command line, environment and /metrics, so the same
 * harness measures the data path before and after a rewrite.
 *
 * Everything runs in a private network, mount and PID namespace (`unshare`): ganesha needs its
 * own rpcbind, and the host's port 111 is never touched; all three servers and the client share
 * that loopback. When the harness exits (also on Ctrl-C or a crash) the kernel kills whatever
 * it started in there.
 *
 * Settings (environment; BENCH_QUICK=1 picks small defaults, ~2 minutes):
 *   BENCH_ROUNDS (3)                     rounds, each runs every server once
 *   BENCH_SIZE_MB (1024; quick 128)      sequential file size in MiB
 *   BENCH_RAND_READS (20000; quick 4000) random 4 KiB READs
 *   BENCH_RAND_WRITES (5000; quick 1000) random 4 KiB WRITEs
 *   BENCH_FILES (4000; quick 500)        small files (CREATE + WRITE + COMMIT, then stat, REMOVE)
 *   BENCH_STAT_OPS (20000; quick 4000)   LOOKUP + GETATTR pairs
 *   BENCH_DIR_ENTRIES (2000)             entries of the READDIRPLUS directory
 *   BENCH_READDIR_PASSES (200; quick 20) full listings (ganesha lists 2,000 entries in ~3 ms: 20
 *                                        took 0.1 s, and the row's ratio swung 0.3-0.56 run to run)
 *   BENCH_SERVERS (local,s3,ganesha)     which servers
 *   BENCH_SEED (random)                  data and offsets; printed
 *   BENCH_SETTLE_MAX_S (120)             longest wait for a server to go idle after writes
 *   BENCH_OUT (bench/results/wire-<time>.json)  JSON results
 *   BENCH_KEEP=1                         keep the work directory (every round's volumes, exports, logs)
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { buildClient, ensureDebianPackages } from "./wire/client.ts";
import { stopAll, type Proc } from "./wire/procs.ts";
import { formatTables, summarize } from "./wire/report.ts";
import { SERVER_LABELS, setUpNamespace, startRpcbind, startServer, type ServerKind } from "./wire/servers.ts";
import { runRound, type Params, type RoundResult } from "./wire/workloads.ts";

const REPO_ROOT = resolve(import.meta.dirname, "..");
const SELF = fileURLToPath(import.meta.url);
const env = process.env;
const quick = env.BENCH_QUICK === "1";

function intEnv(name: string, full: number, small: number = full): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return quick ? small : full;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

function readParams(): { params: Params; servers: ServerKind[] } {
  const servers = (env.BENCH_SERVERS ?? "local,s3,ganesha").split(",").map((s) => s.trim()).filter(Boolean);
  for (const s of servers) if (!(s in SERVER_LABELS)) throw new Error(`BENCH_SERVERS: unknown server ${JSON.stringify(s)} (local, s3, ganesha)`);
  const params: Params = {
    rounds: intEnv("BENCH_ROUNDS", 3),
    sizeMiB: intEnv("BENCH_SIZE_MB", 1024, 128),
    randReads: intEnv("BENCH_RAND_READS", 20_000, 4_000),
    randWrites: intEnv("BENCH_RAND_WRITES", 5_000, 1_000),
    files: intEnv("BENCH_FILES", 4_000, 500),
    statOps: intEnv("BENCH_STAT_OPS", 20_000, 4_000),
    dirEntries: intEnv("BENCH_DIR_ENTRIES", 2_000),
    readdirPasses: intEnv("BENCH_READDIR_PASSES", 200, 20),
    seed: env.BENCH_SEED ? intEnv("BENCH_SEED", 1) : randomInt(1, 2 ** 31),
    settleMaxS: intEnv("BENCH_SETTLE_MAX_S", 120),
  };
  if (params.sizeMiB < 16) throw new Error("BENCH_SIZE_MB must be at least 16");
  return { params, servers: servers as ServerKind[] };
}

// ------------------------------------------------------------------ outside the namespace

async function outside(): Promise<number> {
  const { servers } = readParams(); // fail on bad settings before installing anything
  if (process.getuid?.() !== 0) {
    throw new Error("bench:wire runs as root: it creates network, mount and PID namespaces (unshare), mounts tmpfs on their /run, and installs Debian packages");
  }
  await ensureDebianPackages();
  const nfsload = await buildClient();
  let versitygw = "";
  if (servers.includes("s3")) {
    const { stdout } = await promisify(execFile)("bash", [join(REPO_ROOT, "scripts/tools/versitygw.sh")], { timeout: 15 * 60_000 });
    versitygw = stdout.trim().split("\n").at(-1) ?? "";
  }
  const workDir = await mkdtemp(join(tmpdir(), "zerofs-bench-wire-"));
  const child = spawn(
    "unshare",
    ["--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM", "--", process.execPath, SELF],
    { stdio: "inherit", env: { ...env, BENCH_WIRE_INSIDE: "1", BENCH_WIRE_WORKDIR: workDir, BENCH_WIRE_NFSLOAD: nfsload, BENCH_WIRE_VERSITYGW: versitygw } },
  );
  // Ctrl-C reaches the whole process group (the harness inside handles it). A SIGTERM sent to
  // this process alone goes to the harness inside directly: `unshare --fork` ignores SIGTERM
  // while it waits (its --kill-child covers unshare itself being killed).
  const forward = (): void => {
    try {
      for (const pid of readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "latin1").trim().split(/\s+/).filter(Boolean)) process.kill(Number(pid), "SIGTERM");
    } catch {
      child.kill("SIGKILL");
    }
  };
  process.on("SIGINT", () => {});
  process.on("SIGTERM", forward);
  process.on("SIGHUP", forward);
  process.on("exit", () => child.exitCode === null && child.kill("SIGKILL"));
  const code = await new Promise<number>((ok) => child.on("exit", (c, sig) => ok(c ?? (sig ? 128 : 1))));
  if (env.BENCH_KEEP === "1") console.log(`work directory kept: ${workDir}`);
  else await rm(workDir, { recursive: true, force: true });
  return code;
}

// ------------------------------------------------------------------ inside the namespace

let stopping = false;

async function inside(): Promise<number> {
  // PID 1 of the namespace: signals without a handler are ignored, so handle them.
  const onSignal = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    console.error(`\nbench:wire: ${sig}, stopping the servers`);
    void stopAll().finally(() => process.exit(130));
    setTimeout(() => process.exit(130), 20_000).unref();
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => onSignal(sig));

  const { params, servers } = readParams();
  const workDir = env.BENCH_WIRE_WORKDIR!;
  const bin = env.BENCH_WIRE_NFSLOAD!;
  const vgwBin = env.BENCH_WIRE_VERSITYGW ?? "";
  const log = (s: string): void => console.log(s);
  const started = new Date();
  const load0 = loadavg();
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["-C", REPO_ROOT, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    if (execFileSync("git", ["-C", REPO_ROOT, "status", "--porcelain", "--", "server"], { encoding: "utf8" }).trim() !== "") commit += "+dirty";
  } catch {
    // not a git checkout
  }
  log(`bench:wire  ${started.toISOString()}  commit ${commit}  node ${process.version}  ${cpus().length} CPUs  load ${load0.map((l) => l.toFixed(2)).join(" ")}`);
  log(`  seed ${params.seed}; ${params.rounds} round(s); servers ${servers.join(", ")}; sequential ${params.sizeMiB} MiB; random reads ${params.randReads}, writes ${params.randWrites}; small files ${params.files}; stat ${params.statOps}; directory ${params.dirEntries} entries × ${params.readdirPasses} listings`);

  await setUpNamespace();
  let rpcbind: Proc | undefined;
  if (servers.includes("ganesha")) rpcbind = await startRpcbind();

  const results: RoundResult[] = [];
  let failures = 0;
  const t0 = performance.now();
  for (let round = 1; round <= params.rounds && !stopping; round++) {
    // Rotate the order so that no server always runs first (or right after the same one).
    const order = servers.map((_, i) => servers[(i + round - 1) % servers.length]!);
    for (const kind of order) {
      if (stopping) break;
      let srv;
      try {
        srv = await startServer(kind, join(workDir, `round-${round}`), vgwBin, env.BENCH_KEEP === "1");
        results.push(await runRound(srv, bin, params, round, log));
      } catch (err) {
        if (stopping) break;
        failures++;
        const message = (err as Error).message;
        console.error(`  [round ${round}] ${SERVER_LABELS[kind]} FAILED: ${message}`);
        results.push({ round, server: kind, figures: {}, cost: {}, error: message });
      } finally {
        await srv?.destroy().catch((err: unknown) => console.error(`  stopping ${SERVER_LABELS[kind]}: ${(err as Error).message}`));
      }
    }
  }
  await rpcbind?.stop(3_000);
  if (stopping) return 130;
  const seconds = (performance.now() - t0) / 1000;
  const load1 = loadavg();

  const summary = summarize(results, servers);
  log(`\nMedians of ${params.rounds} round(s) (servers rotated each round), seed ${params.seed}, ${Math.round(seconds)} s, load ${load0[0]!.toFixed(2)} → ${load1[0]!.toFixed(2)} on ${cpus().length} CPUs:\n`);
  log(formatTables(summary, servers, params));

  const out = env.BENCH_OUT ?? join(REPO_ROOT, "bench/results", `wire-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(dirname(out), { recursive: true });
  const json = {
    benchmark: "bench:wire",
    started: started.toISOString(),
    seconds,
    commit,
    node: process.version,
    kernel: release(),
    cpus: cpus().length,
    loadavgStart: load0,
    loadavgEnd: load1,
    params,
    servers,
    summary,
    rounds: results,
  };
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  log(`\nresults: ${out}`);
  return failures > 0 ? 1 : 0;
}

const inNamespace = env.BENCH_WIRE_INSIDE === "1";
let code: number;
try {
  code = inNamespace ? await inside() : await outside();
} catch (err) {
  console.error(`bench:wire failed: ${(err as Error).stack ?? String(err)}`);
  code = 1;
} finally {
  if (inNamespace) await stopAll();
}
process.exit(code!);
