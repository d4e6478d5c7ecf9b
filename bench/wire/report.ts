/** Medians over the rounds of `npm run bench:wire`, and the tables it prints. */
import { SERVER_LABELS, type ServerKind } from "./servers.ts";
import { WORKLOADS, type Cost, type Params, type RoundResult, type WorkloadId } from "./workloads.ts";

export function median(xs: number[]): number | undefined {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1]! + s[m]!) / 2;
}

export interface Summary {
  /** Median rate per workload per server. */
  rates: Record<string, Partial<Record<WorkloadId, number>>>;
  /** Median of each cost figure per server. */
  costs: Record<string, Cost>;
  /** Median rate ratios per workload: "local/ganesha", "s3/ganesha", "s3/local". */
  ratios: Record<string, Partial<Record<WorkloadId, number>>>;
  /**
   * Median server CPU per unit of work (CPU-s per GiB for the sequential workloads, CPU µs per
   * operation otherwise): unlike the rates, barely moved by other load on the machine.
   */
  cpuPerUnit: Record<string, Partial<Record<WorkloadId, number>>>;
}

const perUnit = (unit: string, cpuS: number, ops: number, bytes: number): number => (unit === "MB/s" ? cpuS / (bytes / 2 ** 30) : (cpuS * 1e6) / ops);

export function summarize(results: RoundResult[], servers: ServerKind[]): Summary {
  const rates: Summary["rates"] = {};
  const costs: Summary["costs"] = {};
  const cpuPerUnit: Summary["cpuPerUnit"] = {};
  for (const s of servers) {
    const mine = results.filter((r) => r.server === s && r.error === undefined);
    rates[s] = {};
    cpuPerUnit[s] = {};
    for (const w of WORKLOADS) {
      const m = median(mine.map((r) => r.figures[w.id]?.rate ?? NaN));
      if (m !== undefined) rates[s][w.id] = m;
      const c = median(
        mine.map((r) => {
          const f = r.figures[w.id];
          return f ? perUnit(w.unit, f.serverCpuS, f.ops, f.bytes) : NaN;
        }),
      );
      if (c !== undefined) cpuPerUnit[s][w.id] = c;
    }
    const c: Cost = {};
    const keys = new Set(mine.flatMap((r) => Object.keys(r.cost))) as Set<keyof Cost>;
    for (const k of keys) {
      const m = median(mine.map((r) => r.cost[k] ?? NaN));
      if (m !== undefined) c[k] = m;
    }
    costs[s] = c;
  }
  const ratios: Summary["ratios"] = {};
  const pairs: [ServerKind, ServerKind][] = [
    ["local", "ganesha"],
    ["s3", "ganesha"],
    ["s3", "local"],
  ];
  for (const [a, b] of pairs) {
    if (!servers.includes(a) || !servers.includes(b)) continue;
    const r: Partial<Record<WorkloadId, number>> = {};
    for (const w of WORKLOADS) {
      const x = rates[a]?.[w.id];
      const y = rates[b]?.[w.id];
      if (x !== undefined && y !== undefined && y > 0) r[w.id] = x / y;
    }
    ratios[`${a}/${b}`] = r;
  }
  return { rates, costs, ratios, cpuPerUnit };
}

const fmt = (n: number | undefined, d = 0): string => (n === undefined || !Number.isFinite(n) ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }));

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  return [line(head), `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`, ...rows.map(line)].join("\n");
}

const RATIO_LABELS: Record<string, string> = { "local/ganesha": "local ÷ ganesha", "s3/ganesha": "versitygw ÷ ganesha", "s3/local": "versitygw ÷ local" };

export function formatTables(sum: Summary, servers: ServerKind[], p: Params): string {
  const ratioKeys = Object.keys(sum.ratios);
  const head = ["workload", ...servers.map((s) => SERVER_LABELS[s]), ...ratioKeys.map((k) => RATIO_LABELS[k] ?? k)];
  const rows = WORKLOADS.map((w) => [
    w.title(p),
    ...servers.map((s) => {
      const v = sum.rates[s]?.[w.id];
      return v === undefined ? "–" : `${fmt(v, w.unit === "MB/s" ? 1 : 0)} ${w.unit}`;
    }),
    ...ratioKeys.map((k) => fmt(sum.ratios[k]?.[w.id], 2)),
  ]);
  const costRows: [string, keyof Cost, number][] = [
    ["server CPU-s per GiB written (incl. background after COMMIT)", "cpuSPerGiBWritten", 1],
    ["versitygw CPU-s per GiB written", "helperCpuSPerGiBWritten", 1],
    ["sequential write: bytes PUT per user byte until idle (/metrics)", "putBytesPerByte", 2],
    ["sequential write: objects PUT per GiB until idle (/metrics)", "putsPerGiB", 0],
    ["sequential write: files added per GiB until idle (directory)", "storedFilesPerGiB", 0],
    ["sequential write: bytes stored per user byte after stop (directory)", "storedBytesPerByte", 2],
    ["random 4 KiB write: bytes PUT per user byte until idle (/metrics)", "randWritePutBytesPerByte", 1],
    ["random 4 KiB write: bytes stored per user byte after stop (directory)", "randWriteStoredBytesPerByte", 1],
    ["volume bytes per file byte after random writes and stop (directory)", "heldBytesPerFileByte", 2],
    ["server CPU µs per random 4 KiB write (incl. background)", "randWriteCpuUsPerOp", 0],
    ["server CPU µs per random 4 KiB read", "randReadCpuUsPerOp", 0],
    ["server peak RSS MiB (VmHWM)", "peakRssMiB", 0],
  ];
  const cost = table(
    ["server cost (medians)", ...servers.map((s) => SERVER_LABELS[s])],
    costRows.filter(([, k]) => servers.some((s) => sum.costs[s]?.[k] !== undefined)).map(([label, k, d]) => [label, ...servers.map((s) => fmt(sum.costs[s]?.[k], d))]),
  );
  const zerofs = servers.filter((s) => s !== "ganesha");
  const withGanesha = servers.includes("ganesha");
  const cpu = table(
    ["server CPU per unit of work (medians)", ...servers.map((s) => SERVER_LABELS[s]), ...(withGanesha ? zerofs.map((s) => `${s === "local" ? "local" : "versitygw"} ÷ ganesha`) : [])],
    WORKLOADS.map((w) => {
      const unit = w.unit === "MB/s" ? "CPU-s/GiB" : `µs/${w.unit === "IOPS" ? "op" : w.unit.replace("/s", "").replace("ops", "op").replace("entries", "entry").replace("files", "file")}`;
      const g = sum.cpuPerUnit.ganesha?.[w.id];
      return [
        `${w.id} (${unit})`,
        ...servers.map((s) => fmt(sum.cpuPerUnit[s]?.[w.id], w.unit === "MB/s" ? 1 : 0)),
        ...(withGanesha ? zerofs.map((s) => { const z = sum.cpuPerUnit[s]?.[w.id]; return z !== undefined && g ? fmt(z / g, 1) : "–"; }) : []),
      ];
    }),
  );
  return `${table(head, rows)}\n\n${cost}\n\n${cpu}\n(sequential write: until idle after COMMIT; ganesha's figures are at /proc's 10 ms resolution, and the kernel's page-cache writeback is not charged to it)`;
}
