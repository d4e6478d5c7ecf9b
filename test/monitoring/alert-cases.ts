/**
 * promtool unit tests of every alert in charts/zerofs-operator/files/alerts.yaml: each alert has
 * cases where it fires (with the labels it must carry) and cases where it must stay quiet.
 * rules.test.ts turns them into a `promtool test rules` file; the expected annotations are the
 * rule's own texts with $labels filled in (so a $labels reference to a label the expression
 * aggregated away fails the test: Prometheus would print nothing there).
 */

export interface AlertCase {
  alert: string;
  name: string;
  /** promtool input series: series selector -> expanding values notation. */
  series: Record<string, string>;
  evalTime: string;
  /** Labels of each alert expected to fire (severity included); [] for "quiet". */
  fires: Record<string, string>[];
  /** How the annotations print {{ $value | ... }} for this case (alerts that show it). */
  valueText?: string;
}

const srv = 'job="zerofs", namespace="team-a", volume="v1", pod="v1-server-0"';
const srvLabels = { job: "zerofs", namespace: "team-a", volume: "v1", pod: "v1-server-0" };
const op = 'job="zerofs-operator", namespace="zerofs-system", pod="zerofs-operator-0"';
const opLabels = { job: "zerofs-operator", namespace: "zerofs-system", pod: "zerofs-operator-0" };
const vol = { namespace: "team-a", volume: "v1" };

/** WAL flush histogram with `n` flushes a minute, all in bucket `le`. */
function walHistogram(le: string, n: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const b of ["0.5", "1", "2.5", "+Inf"]) {
    const filled = b === "+Inf" || Number(b) >= Number(le);
    out[`zerofs_wal_flush_duration_seconds_bucket{${srv}, le="${b}"}`] = filled ? `0+${n}x40` : "0x40";
  }
  return out;
}

export const ALERT_CASES: AlertCase[] = [
  { alert: "ZeroFSServerDown", name: "scrape fails for 6 minutes", series: { [`up{${srv}}`]: "1 1 0x10" }, evalTime: "8m", fires: [{ ...srvLabels, severity: "critical" }] },
  { alert: "ZeroFSServerDown", name: "a 3-minute blip", series: { [`up{${srv}}`]: "1 1 0 0 0 1x10" }, evalTime: "8m", fires: [] },
  { alert: "ZeroFSServerNotReady", name: "not ready for 11 minutes", series: { [`zerofs_ready{${srv}}`]: "0x15" }, evalTime: "11m", fires: [{ ...srvLabels, severity: "warning" }] },
  { alert: "ZeroFSServerNotReady", name: "ready", series: { [`zerofs_ready{${srv}}`]: "0 0 1x15" }, evalTime: "11m", fires: [] },
  { alert: "ZeroFSWriterFenced", name: "fenced", series: { [`zerofs_writer_fenced{${srv}}`]: "0 0 1x5" }, evalTime: "4m", fires: [{ ...srvLabels, severity: "critical" }] },
  { alert: "ZeroFSWriterFenced", name: "not fenced", series: { [`zerofs_writer_fenced{${srv}}`]: "0x5" }, evalTime: "4m", fires: [] },
  { alert: "ZeroFSWALFlushSlow", name: "every flush takes 1-2.5 s", series: walHistogram("2.5", 60), evalTime: "25m", fires: [{ ...vol, severity: "warning" }], valueText: "2.485s" },
  { alert: "ZeroFSWALFlushSlow", name: "flushes under 0.5 s", series: walHistogram("0.5", 60), evalTime: "25m", fires: [] },
  { alert: "ZeroFSWALFlushSlow", name: "no flushes at all (idle volume)", series: walHistogram("0.5", 0), evalTime: "25m", fires: [] },
  { alert: "ZeroFSObjectStoreDegraded", name: "degraded 6 minutes", series: { [`zerofs_store_degraded{${srv}}`]: "0 1x10" }, evalTime: "7m", fires: [{ ...srvLabels, severity: "critical" }] },
  { alert: "ZeroFSObjectStoreDegraded", name: "healthy", series: { [`zerofs_store_degraded{${srv}}`]: "0x10" }, evalTime: "7m", fires: [] },
  {
    alert: "ZeroFSObjectStoreErrors",
    name: "10% of requests fail",
    series: { [`zerofs_store_requests_total{${srv}, op="get", outcome="ok"}`]: "0+90x30", [`zerofs_store_requests_total{${srv}, op="put", outcome="error"}`]: "0+10x30" },
    evalTime: "20m",
    fires: [{ ...vol, severity: "warning" }],
    valueText: "10%",
  },
  {
    alert: "ZeroFSObjectStoreErrors",
    name: "1% of requests fail",
    series: { [`zerofs_store_requests_total{${srv}, op="get", outcome="ok"}`]: "0+99x30", [`zerofs_store_requests_total{${srv}, op="put", outcome="error"}`]: "0+1x30" },
    evalTime: "20m",
    fires: [],
  },
  { alert: "ZeroFSObjectStoreThrottled", name: "30 throttled attempts a minute", series: { [`zerofs_store_throttled_total{${srv}}`]: "0+30x30" }, evalTime: "25m", fires: [{ ...vol, severity: "warning" }] },
  { alert: "ZeroFSObjectStoreThrottled", name: "one throttled attempt a minute (a burst the SDK absorbs)", series: { [`zerofs_store_throttled_total{${srv}}`]: "0+1x30" }, evalTime: "25m", fires: [] },
  { alert: "ZeroFSObjectStoreStalls", name: "6 timeouts a minute", series: { [`zerofs_store_request_timeouts_total{${srv}, op="get"}`]: "0+6x30" }, evalTime: "20m", fires: [{ ...vol, severity: "warning" }] },
  { alert: "ZeroFSObjectStoreStalls", name: "no timeouts", series: { [`zerofs_store_request_timeouts_total{${srv}, op="get"}`]: "0x30" }, evalTime: "20m", fires: [] },
  {
    alert: "ZeroFSDiskCacheThrashing",
    name: "full and mostly missing",
    series: { [`zerofs_disk_cache_used_bytes{${srv}}`]: "970000000x80", [`zerofs_disk_cache_limit_bytes{${srv}}`]: "1000000000x80", [`zerofs_disk_cache_hit_ratio{${srv}}`]: "0.3x80" },
    evalTime: "70m",
    fires: [{ ...srvLabels, severity: "info" }],
  },
  {
    alert: "ZeroFSDiskCacheThrashing",
    name: "full but hitting (a full LRU cache is normal)",
    series: { [`zerofs_disk_cache_used_bytes{${srv}}`]: "970000000x80", [`zerofs_disk_cache_limit_bytes{${srv}}`]: "1000000000x80", [`zerofs_disk_cache_hit_ratio{${srv}}`]: "0.9x80" },
    evalTime: "70m",
    fires: [],
  },
  {
    alert: "ZeroFSDiskCacheThrashing",
    name: "no disk cache (local volume: both 0)",
    series: { [`zerofs_disk_cache_used_bytes{${srv}}`]: "0x80", [`zerofs_disk_cache_limit_bytes{${srv}}`]: "0x80", [`zerofs_disk_cache_hit_ratio{${srv}}`]: "0x80" },
    evalTime: "70m",
    fires: [],
  },
  { alert: "ZeroFSOperatorDown", name: "scrape fails", series: { [`up{${op}}`]: "0x10" }, evalTime: "7m", fires: [{ ...opLabels, severity: "warning" }] },
  { alert: "ZeroFSOperatorDown", name: "up", series: { [`up{${op}}`]: "1x10" }, evalTime: "7m", fires: [] },
  {
    alert: "ZeroFSOperatorReconcileErrors",
    name: "an error a minute for 40 minutes",
    series: { [`zerofs_operator_reconcile_errors_total{${op}}`]: "0+1x60" },
    evalTime: "40m",
    fires: [{ namespace: "zerofs-system", pod: "zerofs-operator-0", severity: "warning" }],
  },
  { alert: "ZeroFSOperatorReconcileErrors", name: "two errors long ago", series: { [`zerofs_operator_reconcile_errors_total{${op}}`]: "0 1 2x60" }, evalTime: "40m", fires: [] },
  {
    alert: "ZeroFSVolumeNotReady",
    name: "Provisioning for 16 minutes",
    series: { [`zerofs_operator_volume_phase{${op.replace('namespace="zerofs-system"', 'namespace="team-a"')}, volume="v1", phase="Provisioning"}`]: "1x20" },
    evalTime: "16m",
    fires: [{ ...vol, severity: "warning" }],
  },
  {
    alert: "ZeroFSVolumeNotReady",
    name: "Provisioning for 5 minutes, then Ready",
    series: {
      [`zerofs_operator_volume_phase{${op.replace('namespace="zerofs-system"', 'namespace="team-a"')}, volume="v1", phase="Provisioning"}`]: "1x5",
      [`zerofs_operator_volume_phase{${op.replace('namespace="zerofs-system"', 'namespace="team-a"')}, volume="v1", phase="Ready"}`]: "_x5 1x15",
    },
    evalTime: "16m",
    fires: [],
  },
  {
    alert: "ZeroFSVolumeDegraded",
    name: "Degraded for 15 minutes",
    series: { [`zerofs_operator_volume_phase{${op.replace('namespace="zerofs-system"', 'namespace="team-a"')}, volume="v1", phase="Degraded"}`]: "1x20" },
    evalTime: "15m",
    fires: [{ ...vol, severity: "warning" }],
  },
  {
    alert: "ZeroFSVolumeDegraded",
    name: "Ready",
    series: { [`zerofs_operator_volume_phase{${op.replace('namespace="zerofs-system"', 'namespace="team-a"')}, volume="v1", phase="Ready"}`]: "1x20" },
    evalTime: "15m",
    fires: [],
  },
  {
    alert: "ZeroFSPasswordRotationFailed",
    name: "one rotation failed",
    series: { [`zerofs_operator_password_rotations_total{${op}, result="failed"}`]: "0 0 0 1x60" },
    evalTime: "10m",
    fires: [{ namespace: "zerofs-system", pod: "zerofs-operator-0", severity: "warning" }],
  },
  {
    alert: "ZeroFSPasswordRotationFailed",
    name: "rotations succeeded",
    series: { [`zerofs_operator_password_rotations_total{${op}, result="failed"}`]: "0x60", [`zerofs_operator_password_rotations_total{${op}, result="succeeded"}`]: "0 0 0 1x60" },
    evalTime: "10m",
    fires: [],
  },
  {
    alert: "ZeroFSPasswordRotationStuck",
    name: "Rotating for 35 minutes",
    series: { [`zerofs_operator_volume_phase{${op.replace('namespace="zerofs-system"', 'namespace="team-a"')}, volume="v1", phase="Rotating"}`]: "1x40" },
    evalTime: "35m",
    fires: [{ ...vol, severity: "warning" }],
  },
  {
    alert: "ZeroFSPasswordRotationStuck",
    name: "a rotation that took 3 minutes",
    series: { [`zerofs_operator_volume_phase{${op.replace('namespace="zerofs-system"', 'namespace="team-a"')}, volume="v1", phase="Rotating"}`]: "1x3" },
    evalTime: "35m",
    fires: [],
  },
];
