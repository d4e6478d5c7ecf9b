/**
 * `kubectl zerofs status [volume]`: without a name, one line per volume; with one, the
 * volume's phase and conditions, its server pod, the key fingerprint and last rotation, the
 * last check, and store and cache figures read from the server's /metrics through the API
 * server's pod proxy (pods/<pod>:9090/proxy/metrics).
 */
import { HTTP_PORT } from "../../src/api/constants.ts";
import type { VolumeCheckStatus, ZeroFSVolume } from "../../src/api/types.ts";
import { R } from "../../src/kube/resources.ts";
import type { Pod } from "../../src/kube/types.ts";
import type { Ctx } from "./context.ts";
import { MAX_METRICS_BYTES, parseMetrics, serverFigures, type ServerFigures } from "./metrics.ts";
import { age, bytes, getVolume, pct, podSummary, serverPods, table } from "./volume.ts";

const METRICS_TIMEOUT_MS = 5000;

export interface VolumeReport {
  namespace: string;
  name: string;
  phase: string;
  message?: string;
  storage: string;
  conditions: { type: string; status: string; reason: string; message: string; lastTransitionTime: string }[];
  server: { service?: string; clusterIP?: string; port?: number; path?: string; mountOptions?: string[]; pods: ReturnType<typeof podSummary>[] };
  claim?: { namespace: string; name: string };
  persistentVolume?: string;
  encryption: { keyFingerprint?: string; rotation?: { phase: string; startedAt?: string; message?: string; jobName?: string; lastChange?: string } };
  check?: VolumeCheckStatus;
  metrics?: ServerFigures;
  metricsError?: string;
}

/** The server's /metrics through the API server: the pod proxy reaches the pod's HTTP port. */
export async function fetchMetrics(ctx: Ctx, namespace: string, pod: string, port = HTTP_PORT): Promise<string> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}:${port}/proxy/metrics`;
  const res = await ctx.client.getRaw(path, `GET metrics of pod ${namespace}/${pod} through the API server proxy`, {}, AbortSignal.timeout(METRICS_TIMEOUT_MS));
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_METRICS_BYTES) {
      res.destroy();
      throw new Error(`metrics of pod ${namespace}/${pod} exceed ${MAX_METRICS_BYTES} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The port of the server container's "http" port (the operator's pods: 9090). */
export function metricsPort(pod: Pod): number {
  const containers = (pod.spec.containers ?? []) as { name: string; ports?: { name?: string; containerPort: number }[] }[];
  const c = containers.find((x) => x.name === "zerofs") ?? containers[0];
  return c?.ports?.find((p) => p.name === "http")?.containerPort ?? HTTP_PORT;
}

export async function volumeReport(ctx: Ctx, name: string, o: { metrics: boolean }): Promise<VolumeReport> {
  const v = await getVolume(ctx, name);
  const s = v.status ?? {};
  const pods = await serverPods(ctx, v);
  const rotationCond = s.conditions?.find((c) => c.type === "PasswordRotation");
  const report: VolumeReport = {
    namespace: v.metadata.namespace,
    name: v.metadata.name,
    phase: s.phase ?? "Unknown",
    message: s.message,
    storage: v.spec.storage.url + (v.spec.storage.endpoint ? ` (endpoint ${v.spec.storage.endpoint})` : ""),
    conditions: (s.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message, lastTransitionTime: c.lastTransitionTime })),
    server: { service: s.server?.serviceName, clusterIP: s.server?.clusterIP, port: s.server?.port, path: s.server?.path, mountOptions: s.mountOptions, pods: pods.map(podSummary) },
    claim: s.persistentVolumeClaim,
    persistentVolume: s.persistentVolumeName,
    encryption: {
      // A keyed hash (HMAC) of the password, shortened: equal fingerprints mean the same password.
      keyFingerprint: s.activePasswordHash?.replace(/^hmac-sha256:/, "").slice(0, 16),
      rotation: s.passwordRotation
        ? { phase: s.passwordRotation.phase, startedAt: s.passwordRotation.startedAt, message: s.passwordRotation.message, jobName: s.passwordRotation.jobName, lastChange: rotationCond?.lastTransitionTime }
        : undefined,
    },
    check: s.check,
  };
  const pod = pods[0];
  if (o.metrics) {
    if (!pod) report.metricsError = "no server pod";
    else {
      try {
        report.metrics = serverFigures(parseMetrics(await fetchMetrics(ctx, v.metadata.namespace, pod.metadata.name ?? "", metricsPort(pod))));
      } catch (err) {
        report.metricsError = (err as Error).message;
      }
    }
  }
  return report;
}

export function renderReport(r: VolumeReport, now = Date.now()): string {
  const lines: string[] = [];
  const kv = (k: string, v: string) => lines.push(`${k.padEnd(12)}${v}`);
  kv("Volume", `${r.namespace}/${r.name}`);
  kv("Phase", r.phase + (r.message ? ` (${r.message})` : ""));
  kv("Storage", r.storage);
  const svc = r.server.clusterIP ? `${r.server.service ?? "-"} ${r.server.clusterIP}:${r.server.port ?? 2049} path ${r.server.path ?? "/"}` : "not yet";
  kv("Service", svc);
  if (r.server.mountOptions) kv("Mount", `mount -t nfs -o ${r.server.mountOptions.join(",")} ${r.server.clusterIP ?? "<ip>"}:${r.server.path ?? "/"} /mnt`);
  if (r.server.pods.length === 0) kv("Server pod", "none");
  for (const p of r.server.pods) kv("Server pod", `${p.name} ${p.phase}${p.ready ? ", ready" : ", not ready"}, restarts ${p.restarts}${p.node ? `, node ${p.node}` : ""}`);
  kv("Claim", r.claim ? `${r.claim.namespace}/${r.claim.name}${r.persistentVolume ? ` (PV ${r.persistentVolume})` : ""}` : "none");
  kv("Key", r.encryption.keyFingerprint ? `password fingerprint ${r.encryption.keyFingerprint} (keyed hash; equal fingerprints = same password)` : "unknown yet");
  const rot = r.encryption.rotation;
  kv("Rotation", rot ? `${rot.phase}${rot.lastChange ? `, last change ${age(rot.lastChange, now)} ago (${rot.lastChange})` : ""}${rot.jobName ? `, job ${rot.jobName}` : ""}${rot.message ? `: ${rot.message}` : ""}` : "none yet");
  const c = r.check;
  kv(
    "Last check",
    c
      ? `${c.result} ${age(c.time, now)} ago: write ${c.writeMiBPerSecond ?? "-"} MiB/s, read ${c.readMiBPerSecond ?? "-"} MiB/s, ${c.metadataOpsPerSecond ?? "-"} metadata ops/s${c.message ? ` (${c.message})` : ""}`
      : "never (kubectl zerofs check)",
  );
  lines.push("", "Conditions:");
  lines.push(
    table([["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], ...r.conditions.map((x) => [x.type, x.status, x.reason, age(x.lastTransitionTime, now), x.message])])
      .trimEnd()
      .split("\n")
      .map((l) => `  ${l}`)
      .join("\n"),
  );
  lines.push("");
  const m = r.metrics;
  if (!m) lines.push(`Metrics: unavailable: ${r.metricsError ?? "not requested"}`);
  else {
    lines.push("Metrics (server /metrics through the API server):");
    lines.push(`  NFS         ${m.nfs.connections ?? "-"} connections, ${m.nfs.requests} requests (${m.nfs.errors} failed), read ${bytes(m.nfs.readBytes)}, written ${bytes(m.nfs.writtenBytes)}`);
    lines.push(
      `  Store       ${m.store.degraded === undefined ? "-" : m.store.degraded ? "DEGRADED" : "healthy"}, ${m.store.outages ?? 0} outages, WAL flushes ${m.store.walFlushes ?? "-"}` +
        (m.store.walFlushMeanSeconds !== undefined ? ` (mean ${(m.store.walFlushMeanSeconds * 1000).toFixed(1)} ms)` : ""),
    );
    const ops = Object.entries(m.store.byOp).sort(([a], [b]) => a.localeCompare(b));
    if (ops.length) {
      lines.push(
        table([["    OP", "REQUESTS", "ERRORS", "TIMEOUTS", "BYTES"], ...ops.map(([op, f]) => [`    ${op}`, String(f.requests), String(f.errors), String(f.timeouts), bytes(f.bytes)])]).trimEnd(),
      );
    }
    const mem = Object.entries(m.cache.memory)
      .map(([k, x]) => `${k} ${bytes(x.usedBytes)} of ${bytes(x.limitBytes)}`)
      .join(", ");
    lines.push(`  Cache       hit ratio: block ${pct(m.cache.blockHitRatio)}, extent ${pct(m.cache.extentHitRatio)}, disk ${pct(m.cache.diskHitRatio)}; memory ${mem || "-"}`);
    lines.push(`  Data        stored ${bytes(m.data.storedBytes)}, live ${bytes(m.data.liveBytes)}, space amplification ${m.data.spaceAmplification?.toFixed(2) ?? "-"}`);
    lines.push(`  Process     resident ${bytes(m.process.residentBytes)}, CPU ${m.process.cpuSeconds?.toFixed(1) ?? "-"} s`);
  }
  return lines.join("\n") + "\n";
}

/** One line per volume. */
export async function listVolumes(ctx: Ctx, allNamespaces: boolean): Promise<{ rows: Record<string, string>[]; text: string }> {
  const vols = (await ctx.client.list<ZeroFSVolume>(R.volumes, allNamespaces ? undefined : ctx.namespace)).items;
  const rows = vols.map((v) => ({
    namespace: v.metadata.namespace,
    name: v.metadata.name,
    phase: v.status?.phase ?? "Unknown",
    ready: v.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown",
    server: v.status?.server?.clusterIP ?? "-",
    rotation: v.status?.passwordRotation?.phase ?? "-",
    check: v.status?.check?.result ?? "-",
    age: age(v.metadata.creationTimestamp),
  }));
  if (rows.length === 0) return { rows, text: `no ZeroFSVolumes${allNamespaces ? "" : ` in namespace ${ctx.namespace}`}\n` };
  const head = ["NAMESPACE", "NAME", "PHASE", "READY", "SERVER", "ROTATION", "CHECK", "AGE"];
  return { rows, text: table([head, ...rows.map((r) => [r.namespace, r.name, r.phase, r.ready, r.server, r.rotation, r.check, r.age])]) };
}
