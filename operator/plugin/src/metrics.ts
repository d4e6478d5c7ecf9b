/**
 * The server's /metrics (Prometheus text exposition format 0.0.4), read through the API server's
 * pod proxy, turned into the figures `kubectl zerofs status` shows. Only the metric names the
 * server documents as stable (server/src/observability/metrics.ts) are used.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Bounds what a hostile or broken endpoint can make us hold. */
export const MAX_METRICS_BYTES = 8 << 20;

function parseValue(s: string): number {
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  const v = Number(s);
  if (s === "" || Number.isNaN(v)) throw new Error(`not a number: ${JSON.stringify(s.slice(0, 40))}`);
  return v;
}

/** Parses `name{a="x",b="y\"z"} 1.5 [timestamp]` lines; comments and blank lines are skipped. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    try {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
      if (!m) throw new Error("no metric name");
      const name = m[1]!;
      let i = name.length;
      const labels: Record<string, string> = {};
      if (line[i] === "{") {
        i++;
        for (;;) {
          while (line[i] === " " || line[i] === ",") i++;
          if (line[i] === "}") {
            i++;
            break;
          }
          const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(i));
          if (!lm) throw new Error("bad label");
          i += lm[0].length;
          let v = "";
          for (;;) {
            const c = line[i++];
            if (c === undefined) throw new Error("unterminated label value");
            if (c === '"') break;
            if (c === "\\") {
              const e = line[i++];
              v += e === "n" ? "\n" : (e ?? "");
            } else v += c;
          }
          labels[lm[1]!] = v;
        }
      }
      const rest = line.slice(i).trim().split(/\s+/);
      out.push({ name, labels, value: parseValue(rest[0] ?? "") });
    } catch (err) {
      throw new Error(`metrics line ${n + 1}: ${(err as Error).message}: ${line.slice(0, 120)}`, { cause: err });
    }
  }
  return out;
}

export interface StoreOpFigures {
  requests: number;
  errors: number;
  bytes: number;
  timeouts: number;
}

export interface ServerFigures {
  ready: boolean | undefined;
  nfs: { connections: number | undefined; requests: number; errors: number; readBytes: number | undefined; writtenBytes: number | undefined };
  store: {
    degraded: boolean | undefined;
    outages: number | undefined;
    byOp: Record<string, StoreOpFigures>;
    walFlushes: number | undefined;
    walFlushMeanSeconds: number | undefined;
  };
  cache: {
    blockHitRatio: number | undefined;
    diskHitRatio: number | undefined;
    extentHitRatio: number | undefined;
    memory: Record<string, { usedBytes: number | undefined; limitBytes: number | undefined }>;
  };
  data: { storedBytes: number | undefined; liveBytes: number | undefined; spaceAmplification: number | undefined };
  process: { residentBytes: number | undefined; cpuSeconds: number | undefined };
}

export function serverFigures(samples: Sample[]): ServerFigures {
  const one = (name: string, labels: Record<string, string> = {}): number | undefined =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  const sum = (name: string, pred: (l: Record<string, string>) => boolean = () => true): number =>
    samples.filter((s) => s.name === name && pred(s.labels)).reduce((n, s) => n + s.value, 0);
  const byOp: Record<string, StoreOpFigures> = {};
  const op = (o: string) => (byOp[o] ??= { requests: 0, errors: 0, bytes: 0, timeouts: 0 });
  for (const s of samples) {
    const o = s.labels.op;
    if (o === undefined) continue;
    if (s.name === "zerofs_store_requests_total") {
      op(o).requests += s.value;
      if (s.labels.outcome !== "ok") op(o).errors += s.value;
    } else if (s.name === "zerofs_store_bytes_total") op(o).bytes += s.value;
    else if (s.name === "zerofs_store_request_timeouts_total") op(o).timeouts += s.value;
  }
  const memory: ServerFigures["cache"]["memory"] = {};
  for (const s of samples) {
    const c = s.labels.cache;
    if (c === undefined) continue;
    if (s.name === "zerofs_memory_cache_used_bytes") (memory[c] ??= { usedBytes: undefined, limitBytes: undefined }).usedBytes = s.value;
    if (s.name === "zerofs_memory_cache_limit_bytes") (memory[c] ??= { usedBytes: undefined, limitBytes: undefined }).limitBytes = s.value;
  }
  const flushes = one("zerofs_wal_flush_duration_seconds_count");
  const flushSum = one("zerofs_wal_flush_duration_seconds_sum");
  const ready = one("zerofs_ready");
  const degraded = one("zerofs_store_degraded");
  const nfs = (l: Record<string, string>) => l.program === "nfs";
  return {
    ready: ready === undefined ? undefined : ready === 1,
    nfs: {
      connections: one("zerofs_rpc_connections_open"),
      requests: sum("zerofs_rpc_requests_total", nfs),
      errors: sum("zerofs_rpc_requests_total", (l) => nfs(l) && l.status !== "success"),
      readBytes: one("zerofs_nfs_read_bytes_total"),
      writtenBytes: one("zerofs_nfs_written_bytes_total"),
    },
    store: {
      degraded: degraded === undefined ? undefined : degraded === 1,
      outages: one("zerofs_store_outages_total"),
      byOp,
      walFlushes: flushes,
      walFlushMeanSeconds: flushes && flushSum !== undefined ? flushSum / flushes : undefined,
    },
    cache: {
      blockHitRatio: one("zerofs_block_cache_hit_ratio"),
      diskHitRatio: one("zerofs_disk_cache_hit_ratio"),
      extentHitRatio: one("zerofs_extent_cache_hit_ratio"),
      memory,
    },
    data: {
      storedBytes: one("zerofs_segment_stored_bytes"),
      liveBytes: one("zerofs_segment_live_bytes"),
      spaceAmplification: one("zerofs_segment_space_amplification"),
    },
    process: { residentBytes: one("process_resident_memory_bytes"), cpuSeconds: one("process_cpu_seconds_total") },
  };
}
