/**
 * One round of `npm run bench:wire` against one server: the workloads of issue 14's table, in
 * order, each measured with the server's CPU (and, for zerofs, its store counters and what its
 * volume holds) around it.
 */
import { evict, runLoad, type LoadResult } from "./client.ts";
import { cpuSeconds, dirUsage, settle } from "./procs.ts";
import { SERVER_LABELS, type ServerUnderTest, type StoreCounters } from "./servers.ts";

export interface Params {
  rounds: number;
  sizeMiB: number;
  randReads: number;
  randWrites: number;
  files: number;
  statOps: number;
  dirEntries: number;
  readdirPasses: number;
  seed: number;
  settleMaxS: number;
}

export type WorkloadId = "seqwrite" | "readcold" | "readwarm" | "randread" | "randwrite" | "smallfiles" | "stat" | "readdirplus" | "remove";

export const WORKLOADS: { id: WorkloadId; unit: string; title: (p: Params) => string }[] = [
  { id: "seqwrite", unit: "MB/s", title: (p) => `sequential write ${mib(p.sizeMiB)}, 1 MiB × 16 in flight + COMMIT` },
  { id: "readcold", unit: "MB/s", title: () => "sequential read, cold (restarted, files evicted)" },
  { id: "readwarm", unit: "MB/s", title: () => "sequential read, second pass" },
  { id: "randread", unit: "IOPS", title: () => "random 4 KiB read, 32 in flight" },
  { id: "randwrite", unit: "IOPS", title: () => "random 4 KiB write, 32 in flight + COMMIT" },
  { id: "smallfiles", unit: "files/s", title: () => "small files: CREATE + 4 KiB WRITE + COMMIT, 16 in flight" },
  { id: "stat", unit: "ops/s", title: () => "stat: LOOKUP + GETATTR, 16 in flight" },
  { id: "readdirplus", unit: "entries/s", title: (p) => `READDIRPLUS of a ${p.dirEntries.toLocaleString("en-US")}-entry directory (8 KiB replies)` },
  { id: "remove", unit: "ops/s", title: () => "REMOVE, 16 in flight" },
];

function mib(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024} GiB` : `${n} MiB`;
}

export interface Figure {
  rate: number;
  unit: string;
  seconds: number;
  ops: number;
  bytes: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  commitMs?: number;
  /** Server CPU during the workload (and the settling after it, for the writes). */
  serverCpuS: number;
  /** CPU of helper processes (versitygw) over the same window. */
  helperCpuS: number;
  clientCpuS: number;
  /** Seconds the server stayed busy after the writes were committed. */
  settleS?: number;
  store?: { putBytes: number; puts: number; getBytes: number; gets: number };
  dir?: { bytesAdded: number; filesAdded: number; bytesAfter: number };
}

/** Server cost figures derived from one round. */
export interface Cost {
  cpuSPerGiBWritten?: number;
  helperCpuSPerGiBWritten?: number;
  putBytesPerByte?: number;
  putsPerGiB?: number;
  storedBytesPerByte?: number;
  storedFilesPerGiB?: number;
  randWritePutBytesPerByte?: number;
  randWriteStoredBytesPerByte?: number;
  randWriteCpuUsPerOp?: number;
  randReadCpuUsPerOp?: number;
  heldBytesPerFileByte?: number;
  peakRssMiB?: number;
}

export interface RoundResult {
  round: number;
  server: string;
  figures: Partial<Record<WorkloadId | "mkfiles", Figure>>;
  cost: Cost;
  error?: string;
}

const GiB = 2 ** 30;
const fmt = (n: number, d = 0): string => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

function delta(a: StoreCounters | undefined, b: StoreCounters | undefined): Figure["store"] {
  if (!a || !b) return undefined;
  return { putBytes: b.putBytes - a.putBytes, puts: b.puts - a.puts, getBytes: b.getBytes - a.getBytes, gets: b.gets - a.gets };
}

async function usage(dirs: string[]): Promise<{ bytes: number; files: number }> {
  const all = await Promise.all(dirs.map((d) => dirUsage(d)));
  return all.reduce((s, u) => ({ bytes: s.bytes + u.bytes, files: s.files + u.files }), { bytes: 0, files: 0 });
}

export async function runRound(srv: ServerUnderTest, bin: string, p: Params, round: number, log: (s: string) => void): Promise<RoundResult> {
  const size = p.sizeMiB * 2 ** 20;
  const res: RoundResult = { round, server: srv.kind, figures: {}, cost: {} };
  const seed = p.seed;

  const measure = async (id: WorkloadId | "mkfiles", workload: string, params: Record<string, string | number>, opts: { store?: boolean } = {}): Promise<Figure> => {
    const pids = [srv.pid(), ...srv.helperPids()];
    const c0 = opts.store ? await srv.counters() : undefined;
    const d0 = opts.store ? await usage(srv.storageDirs) : undefined;
    const cpu0 = cpuSeconds(srv.pid()) ?? NaN;
    const h0 = srv.helperCpu();
    const r: LoadResult = await runLoad(bin, srv, workload, { seed, ...params });
    // After writes, wait for the server's background work (memtable flush, compaction) and
    // charge it to the workload: it is part of what a written byte costs.
    const settleS = opts.store ? await settle(pids, p.settleMaxS * 1000) : undefined;
    const cpu1 = cpuSeconds(srv.pid()) ?? NaN;
    const h1 = srv.helperCpu();
    const c1 = opts.store ? await srv.counters() : undefined;
    const d1 = opts.store ? await usage(srv.storageDirs) : undefined;
    const unit = WORKLOADS.find((w) => w.id === id)?.unit ?? "ops/s";
    const amount = unit === "MB/s" ? r.bytes / 1e6 : r.ops;
    const f: Figure = {
      rate: amount / r.seconds,
      unit,
      seconds: r.seconds,
      ops: r.ops,
      bytes: r.bytes,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      maxMs: r.maxMs,
      ...(r.commitMs >= 0 ? { commitMs: r.commitMs } : {}),
      serverCpuS: cpu1 - cpu0,
      helperCpuS: h1 - h0,
      clientCpuS: r.clientCpuS,
      ...(settleS !== undefined ? { settleS } : {}),
      ...(c0 && c1 ? { store: delta(c0, c1)! } : {}),
      ...(d0 && d1 ? { dir: { bytesAdded: d1.bytes - d0.bytes, filesAdded: d1.files - d0.files, bytesAfter: d1.bytes } } : {}),
    };
    res.figures[id] = f;
    const extra = [
      `server ${fmt(f.serverCpuS, 1)} CPU-s`,
      f.helperCpuS > 0 ? `versitygw ${fmt(f.helperCpuS, 1)} CPU-s` : "",
      `client ${fmt(f.clientCpuS, 1)} CPU-s`,
      f.commitMs !== undefined ? `COMMIT ${fmt(f.commitMs)} ms` : "",
      settleS !== undefined ? `busy ${fmt(settleS, 1)} s after` : "",
    ].filter(Boolean);
    log(`  [round ${round}] ${SERVER_LABELS[srv.kind].padEnd(19)} ${id.padEnd(11)} ${`${fmt(f.rate, unit === "MB/s" ? 1 : 0)} ${unit}`.padStart(18)}  p50 ${fmt(f.p50Ms, 2).padStart(8)} ms  p99 ${fmt(f.p99Ms, 2).padStart(8)} ms  ${fmt(f.seconds, 1).padStart(6)} s  (${extra.join(", ")})`);
    return f;
  };

  const evictDir = (d: string): Promise<void> => evict(bin, d);
  // What the volume holds once the server has stopped: zerofs flushes its memtable (and
  // finishes compaction) on a graceful stop, which the live store counters never see.
  let heldAfterStop = 0;
  const measureHeld = async (): Promise<void> => {
    heldAfterStop = (await usage(srv.storageDirs)).bytes;
  };

  const before = (await usage(srv.storageDirs)).bytes;
  const w = await measure("seqwrite", "write", { file: "seq.bin", size, bs: 1 << 20, inflight: 16 }, { store: true });
  await srv.restart({ cold: true, evict: evictDir, whileStopped: measureHeld });
  const seqHeld = heldAfterStop - before;
  await measure("readcold", "read", { file: "seq.bin", size, bs: 1 << 20, inflight: 16 });
  await measure("readwarm", "read", { file: "seq.bin", size, bs: 1 << 20, inflight: 16 });
  const rr = await measure("randread", "randread", { file: "seq.bin", size, bs: 4096, wbs: 1 << 20, ops: p.randReads, inflight: 32 });
  const beforeRw = (await usage(srv.storageDirs)).bytes;
  const rw = await measure("randwrite", "randwrite", { file: "seq.bin", size, bs: 4096, ops: p.randWrites, inflight: 32 }, { store: true });
  await srv.restart({ cold: false, evict: evictDir, whileStopped: measureHeld });
  const rwHeld = heldAfterStop - beforeRw;
  await measure("smallfiles", "smallfiles", { dir: "small", files: p.files, bs: 4096, inflight: 16 });
  await measure("stat", "stat", { dir: "small", files: p.files, ops: p.statOps, inflight: 16 });
  await measure("mkfiles", "mkfiles", { dir: "list", files: p.dirEntries, inflight: 32 });
  await measure("readdirplus", "readdirplus", { dir: "list", files: p.dirEntries, passes: p.readdirPasses });
  await measure("remove", "remove", { dir: "small", files: p.files, inflight: 16 });

  const gib = size / GiB;
  res.cost = {
    cpuSPerGiBWritten: w.serverCpuS / gib,
    ...(srv.helperPids().length > 0 ? { helperCpuSPerGiBWritten: w.helperCpuS / gib } : {}),
    ...(w.store ? { putBytesPerByte: w.store.putBytes / size, putsPerGiB: w.store.puts / gib } : {}),
    ...(w.dir ? { storedFilesPerGiB: w.dir.filesAdded / gib } : {}),
    storedBytesPerByte: seqHeld / size,
    ...(rw.store ? { randWritePutBytesPerByte: rw.store.putBytes / rw.bytes } : {}),
    randWriteStoredBytesPerByte: rwHeld / rw.bytes,
    randWriteCpuUsPerOp: (rw.serverCpuS * 1e6) / rw.ops,
    randReadCpuUsPerOp: (rr.serverCpuS * 1e6) / rr.ops,
    heldBytesPerFileByte: heldAfterStop / size,
    peakRssMiB: srv.peakRssMiB(),
  };
  return res;
}
