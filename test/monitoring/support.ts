/**
 * Shared by the monitoring tests: the tools (promtool and prometheus from
 * scripts/tools/prometheus-tools.sh, helm from scripts/tools/k8s-tools.sh, each built once per
 * machine), the chart rendered with its monitoring on, and the metric names the product
 * registers (read from the prom-client registrations, so a renamed metric fails the tests).
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { parse, parseAllDocuments } from "yaml";

export const run = promisify(execFile);
export const REPO_ROOT = resolve(import.meta.dirname, "../..");
export const CHART = join(REPO_ROOT, "charts/zerofs-operator");
export const ALERTS_FILE = join(CHART, "files/alerts.yaml");
export const DASHBOARD_FILE = join(CHART, "files/dashboard.json");
/** The chart's values that turn every monitoring object on. */
export const MONITORING_ON = ["--set", "monitoring.podMonitor.enabled=true", "--set", "monitoring.prometheusRule.enabled=true", "--set", "monitoring.grafanaDashboard.enabled=true"];
/** A cold build of both takes minutes of 2 cores (test/monitoring/README.md). */
export const BUILD_TIMEOUT_MS = 40 * 60_000;

/** Parses a tools script's "name=dir" lines. */
async function toolDirs(script: string): Promise<Record<string, string>> {
  const { stdout } = await run("bash", [join(REPO_ROOT, "scripts/tools", script)], { maxBuffer: 16 << 20, timeout: BUILD_TIMEOUT_MS });
  const dirs: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^([a-z0-9]+)=(.+)$/.exec(line.trim());
    if (m) dirs[m[1]!] = m[2]!;
  }
  return dirs;
}

let prom: Promise<{ prometheus: string; promtool: string }> | undefined;
/** Paths of the prometheus and promtool binaries (built on first use). */
export function prometheusTools(): Promise<{ prometheus: string; promtool: string }> {
  prom ??= toolDirs("prometheus-tools.sh").then((d) => {
    if (!d.prometheus) throw new Error("prometheus-tools.sh printed no prometheus=<dir> line");
    return { prometheus: join(d.prometheus, "prometheus"), promtool: join(d.prometheus, "promtool") };
  });
  return prom;
}

let helm: Promise<string> | undefined;
/** Path of the helm binary the chart tests use. */
export function helmBin(): Promise<string> {
  helm ??= toolDirs("k8s-tools.sh").then((d) => {
    if (!d.helm) throw new Error("k8s-tools.sh printed no helm=<dir> line");
    return join(d.helm, "helm");
  });
  return helm;
}

export interface KubeDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

/** `helm template` of the chart (release "zerofs" in zerofs-system) with extra arguments. */
export async function renderChart(args: string[] = []): Promise<KubeDoc[]> {
  const { stdout } = await run(await helmBin(), ["template", "zerofs", CHART, "--namespace", "zerofs-system", ...args], { maxBuffer: 64 << 20, cwd: REPO_ROOT });
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as KubeDoc)
    .filter((d) => d && d.kind);
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleGroups {
  groups: { name: string; rules: AlertRule[] }[];
}

export async function alertRules(): Promise<RuleGroups> {
  return parse(await readFile(ALERTS_FILE, "utf8")) as RuleGroups;
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; legendFormat?: string; datasource?: { type: string; uid: string } }[];
  panels?: DashboardPanel[];
}
export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
  panels: DashboardPanel[];
}

export async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await readFile(DASHBOARD_FILE, "utf8")) as Dashboard;
}

/**
 * Every metric name the server and the operator register with prom-client (histograms expanded
 * to their _bucket/_sum/_count series), read from the sources.
 */
export async function productMetricNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const f of ["server/src/observability/metrics.ts", "operator/src/controller/metrics.ts"]) {
    const src = await readFile(join(REPO_ROOT, f), "utf8");
    for (const m of src.matchAll(/new (Counter|Gauge|Histogram)\(\{\s*name: "([a-z_:]+)"/g)) {
      const [, type, name] = m;
      if (type === "Histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
      else names.add(name!);
    }
  }
  return names;
}

/** Prometheus's own series names every scrape makes (not the product's). */
export const SCRAPE_METRICS = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped"]);

/**
 * Metric names a PromQL expression selects: identifiers followed by a selector or a range, not
 * functions, keywords, label names or strings.
 */
export function metricNamesIn(expr: string): string[] {
  // Strings and label matchers ({job="x", ...}) name no metrics.
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, "{}");
  const names = new Set<string>();
  // by (...) / without (...) / on (...) / ignoring (...) / group_left (...) list label names.
  const noGroupings = noStrings.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
  for (const m of noGroupings.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{|\[|\)|$|\s*[-+*/<>=!]|\s+(?:and|or|unless)\b)/g)) {
    const id = m[1]!;
    if (PROMQL_WORDS.has(id)) continue;
    // A function call is followed by "(": those are not matched above.
    names.add(id);
  }
  return [...names];
}

const PROMQL_WORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan", "le"]);

/** The alert and panel tables of test/monitoring/README.md, from the chart's files. */
export async function metricTables(): Promise<string> {
  const code = (ms: Iterable<string>): string => [...ms].map((m) => `\`${m}\``).join(", ");
  const lines = ["| alert | severity | for | metrics |", "|---|---|---|---|"];
  for (const r of (await alertRules()).groups.flatMap((g) => g.rules)) lines.push(`| ${r.alert} | ${r.labels?.severity ?? ""} | ${r.for ?? "-"} | ${code(metricNamesIn(r.expr))} |`);
  lines.push("", "| row | panel | metrics |", "|---|---|---|");
  let row = "";
  for (const p of (await dashboard()).panels) {
    if (p.type === "row") {
      row = p.title;
      continue;
    }
    lines.push(`| ${row} | ${p.title} | ${code(new Set((p.targets ?? []).flatMap((t) => metricNamesIn(t.expr))))} |`);
  }
  return lines.join("\n");
}
