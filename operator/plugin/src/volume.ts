/** Finding a volume and its server pod; small formatting helpers shared by the subcommands. */
import { APP_NAME, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_NAME } from "../../src/api/constants.ts";
import type { ZeroFSVolume } from "../../src/api/types.ts";
import { R } from "../../src/kube/resources.ts";
import type { Pod } from "../../src/kube/types.ts";
import { CliError, EXIT, type Ctx } from "./context.ts";

export async function getVolume(ctx: Ctx, name: string): Promise<ZeroFSVolume> {
  const v = await ctx.client.get<ZeroFSVolume>(R.volumes, ctx.namespace, name);
  if (v) return v;
  const others = (await ctx.client.list<ZeroFSVolume>(R.volumes, ctx.namespace).catch(() => ({ items: [] as ZeroFSVolume[] }))).items.map((x) => x.metadata.name);
  throw new CliError(
    EXIT.NOT_FOUND,
    `no ZeroFSVolume ${name} in namespace ${ctx.namespace}` + (others.length ? ` (there: ${others.join(", ")})` : " (none there; -n picks another namespace)"),
  );
}

export const serverPodSelector = (v: ZeroFSVolume): string => `${LABEL_NAME}=${APP_NAME},${LABEL_INSTANCE}=${v.metadata.name},${LABEL_COMPONENT}=server`;

/** The parts of a pod's status the plugin reads (kube/types.ts keeps Pod loose). */
interface PodStatus {
  phase?: string;
  podIP?: string;
  conditions?: { type: string; status: string }[];
  containerStatuses?: { name: string; restartCount?: number }[];
}
const st = (p: Pod): PodStatus => (p.status ?? {});
const isReady = (p: Pod): boolean => (st(p).conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

/** The volume's server pods, the one to talk to first: ready, then running, then newest. */
export async function serverPods(ctx: Ctx, v: ZeroFSVolume): Promise<Pod[]> {
  const pods = (await ctx.client.list<Pod>(R.pods, v.metadata.namespace, { labelSelector: serverPodSelector(v) })).items.filter((p) => !p.metadata.deletionTimestamp);
  const rank = (p: Pod) => (isReady(p) ? 2 : st(p).phase === "Running" ? 1 : 0);
  return pods.sort((a, b) => rank(b) - rank(a) || String(b.metadata.creationTimestamp ?? "").localeCompare(String(a.metadata.creationTimestamp ?? "")));
}

export function podSummary(p: Pod): { name: string; phase: string; ready: boolean; restarts: number; node?: string; ip?: string } {
  const s = st(p);
  const restarts = (s.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
  return { name: p.metadata.name ?? "", phase: s.phase ?? "Unknown", ready: isReady(p), restarts, node: p.spec.nodeName, ip: s.podIP };
}

export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "-";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let x = n;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${x} B` : `${x.toFixed(1)} ${units[i]}`;
}

export const pct = (r: number | undefined): string => (r === undefined || !Number.isFinite(r) ? "-" : `${(r * 100).toFixed(1)}%`);

/** Columns padded to their widest cell. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}
