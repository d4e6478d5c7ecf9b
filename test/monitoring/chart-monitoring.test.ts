/**
 * The chart's monitoring objects (charts/zerofs-operator, monitoring.*), rendered by the real
 * helm: the PodMonitors select what the operator creates, the PrometheusRule is the alert file
 * that `promtool check rules` accepts and whose alerts `promtool test rules` fires and keeps
 * quiet case by case (alert-cases.ts), and the dashboard ConfigMap carries a well-formed
 * dashboard whose queries use only metrics the product registers. prometheus.k8s.test.ts runs
 * the same rules and queries against a real Prometheus scraping a real server and operator.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { HTTP_PORT, LABEL_VOLUME_NAME } from "../../operator/src/api/constants.ts";
import { buildDeployment } from "../../operator/src/builders/deployment.ts";
import { commonLabels } from "../../operator/src/builders/labels.ts";
import { normalized, volume } from "../../operator/test/fixtures.ts";
import { ALERT_CASES } from "./alert-cases.ts";
import {
  alertRules,
  BUILD_TIMEOUT_MS,
  dashboard,
  helmBin,
  metricNamesIn,
  metricTables,
  MONITORING_ON,
  productMetricNames,
  prometheusTools,
  renderChart,
  run,
  SCRAPE_METRICS,
  type AlertRule,
  type DashboardPanel,
  type KubeDoc,
  type RuleGroups,
} from "./support.ts";

type PodMonitorSpec = {
  selector: { matchLabels: Record<string, string> };
  namespaceSelector: { any?: boolean; matchNames?: string[] };
  podMetricsEndpoints: { port: string; path: string; honorLabels?: boolean; relabelings?: { sourceLabels?: string[]; targetLabel: string; replacement?: string }[] }[];
};

/** Prometheus's name for a pod label in Kubernetes service discovery. */
const podLabelMeta = (label: string): string => `__meta_kubernetes_pod_label_${label.replace(/[^a-zA-Z0-9_]/g, "_")}`;

/**
 * Fills {{ $labels.x }} the way Prometheus would (a label the alert lacks fails the test) and
 * {{ $value | ... }} with the case's expected text.
 */
function expand(text: string, labels: Record<string, string>, valueText: string | undefined, where: string): string {
  const withValue = text.replace(/\{\{\s*\$value[^}]*\}\}/g, () => {
    assert.ok(valueText !== undefined, `${where}: the annotation prints $value; give the case a valueText`);
    return valueText;
  });
  return withValue.replace(/\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, name: string) => {
    assert.ok(name in labels, `${where}: annotation uses $labels.${name}, which the alert does not carry (it has ${Object.keys(labels).join(", ")})`);
    return labels[name]!;
  });
}

const allRules = (g: RuleGroups): AlertRule[] => g.groups.flatMap((x) => x.rules);

describe("chart monitoring: PodMonitors, PrometheusRule (promtool), dashboard ConfigMap", { timeout: BUILD_TIMEOUT_MS + 10 * 60_000 }, () => {
  let dir: string;
  let rendered: KubeDoc[];
  let rules: RuleGroups;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-monitoring-"));
    await Promise.all([helmBin(), prometheusTools()]);
    rendered = await renderChart(MONITORING_ON);
    rules = await alertRules();
  }, { timeout: BUILD_TIMEOUT_MS });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("everything is off by default (PodMonitor and PrometheusRule need the prometheus-operator CRDs)", async () => {
    const kinds = (await renderChart()).map((d) => d.kind);
    for (const k of ["PodMonitor", "PrometheusRule", "ConfigMap"]) assert.ok(!kinds.includes(k), `${k} rendered by default`);
    assert.deepEqual(rendered.filter((d) => ["PodMonitor", "PrometheusRule", "ConfigMap"].includes(d.kind)).map((d) => d.kind).sort(), ["ConfigMap", "PodMonitor", "PodMonitor", "PrometheusRule"]);
  });

  it("the servers' PodMonitor selects the pods the operator creates, in any namespace, on their named metrics port", () => {
    const pm = rendered.find((d) => d.kind === "PodMonitor" && d.metadata.name.endsWith("-servers"))!;
    const spec = pm.spec as PodMonitorSpec;
    const v = volume({}, "photos", "team-a");
    const d = buildDeployment({ volume: v, spec: normalized(v), image: "i", cacheClaimName: "c", replicas: 1, passwordHash: "h", network: { allowedClients: ["10.0.0.0/8"], httpAllowedClients: ["10.0.0.0/8"] } });
    const podLabels = d.spec.template!.metadata!.labels!;
    for (const [k, val] of Object.entries(spec.selector.matchLabels)) assert.equal(podLabels[k], val, `server pods carry ${k}=${val}`);
    assert.deepEqual(commonLabels(v, "server"), { ...podLabels, ...commonLabels(v, "server") }, "the pod labels are the operator's common labels");
    // Other components (password Jobs, cache claims) are not scraped.
    assert.notEqual(commonLabels(v, "password-rotation")["app.kubernetes.io/component"], spec.selector.matchLabels["app.kubernetes.io/component"]);
    assert.deepEqual(spec.namespaceSelector, { any: true });
    const ep = spec.podMetricsEndpoints[0]!;
    const containers = d.spec.template!.spec!.containers as { ports: { name: string; containerPort: number }[] }[];
    const port = containers[0]!.ports.find((p) => p.name === ep.port);
    assert.equal(port?.containerPort, HTTP_PORT, `container port named ${ep.port} is the metrics port`);
    assert.equal(ep.path, "/metrics");
    assert.deepEqual(ep.relabelings, [
      { targetLabel: "job", replacement: "zerofs" },
      { sourceLabels: [podLabelMeta(LABEL_VOLUME_NAME)], targetLabel: "volume" },
    ]);
  });

  it("the operator's PodMonitor selects the chart's Deployment pods on port http, keeping the operator's own namespace/volume labels", () => {
    const pm = rendered.find((d) => d.kind === "PodMonitor" && !d.metadata.name.endsWith("-servers"))!;
    const spec = pm.spec as PodMonitorSpec;
    const dep = rendered.find((d) => d.kind === "Deployment")! as KubeDoc & { spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { ports: { name: string }[] }[] } } } };
    for (const [k, val] of Object.entries(spec.selector.matchLabels)) assert.equal(dep.spec.template.metadata.labels[k], val);
    assert.deepEqual(spec.namespaceSelector, { matchNames: ["zerofs-system"] });
    const ep = spec.podMetricsEndpoints[0]!;
    assert.ok(dep.spec.template.spec.containers[0]!.ports.some((p) => p.name === ep.port));
    assert.equal(ep.honorLabels, true, "zerofs_operator_volume_phase's namespace label must not become exported_namespace");
    assert.deepEqual(ep.relabelings, [{ targetLabel: "job", replacement: "zerofs-operator" }]);
  });

  it("values: extra labels, watchNamespace narrows the servers' PodMonitor, the dashboard's namespace and sidecar label", async () => {
    const r = await renderChart([
      ...MONITORING_ON,
      "--set", "watchNamespace=team-a",
      "--set", "monitoring.podMonitor.labels.release=kps",
      "--set", "monitoring.prometheusRule.labels.release=kps",
      "--set", "monitoring.grafanaDashboard.namespace=grafana",
      "--set", "monitoring.grafanaDashboard.annotations.grafana_folder=ZeroFS",
    ]);
    const servers = r.find((d) => d.kind === "PodMonitor" && d.metadata.name.endsWith("-servers"))!;
    assert.deepEqual((servers.spec as PodMonitorSpec).namespaceSelector, { matchNames: ["team-a"] });
    for (const d of r.filter((x) => x.kind === "PodMonitor" || x.kind === "PrometheusRule")) assert.equal(d.metadata.labels?.release, "kps", `${d.kind} ${d.metadata.name}`);
    const cm = r.find((d) => d.kind === "ConfigMap")!;
    assert.equal(cm.metadata.namespace, "grafana");
    assert.equal(cm.metadata.labels?.grafana_dashboard, "1");
    assert.equal(cm.metadata.annotations?.grafana_folder, "ZeroFS");
    await assert.rejects(renderChart(["--set", "monitoring.podMonitor.interval=soon"]), /interval/, "the schema refuses a malformed duration");
    await assert.rejects(renderChart(["--set", "monitoring.grafanaDashbord.enabled=true"]), /grafanaDashbord|additional/i, "the schema refuses a misspelt key");
  });

  it("the PrometheusRule is files/alerts.yaml and promtool check rules accepts it", async () => {
    const pr = rendered.find((d) => d.kind === "PrometheusRule")!;
    assert.deepEqual(pr.spec, rules);
    const file = join(dir, "rendered-rules.yaml");
    await writeFile(file, stringify(pr.spec));
    const { promtool } = await prometheusTools();
    const { stdout } = await run(promtool, ["check", "rules", file]);
    assert.match(stdout, new RegExp(`SUCCESS: ${allRules(rules).length} rules found`));
  });

  it("every alert has a severity, summary, description and runbook, and uses only metrics the product exports", async () => {
    const known = await productMetricNames();
    const names = allRules(rules).map((r) => r.alert);
    assert.equal(new Set(names).size, names.length, "alert names are unique");
    for (const r of allRules(rules)) {
      assert.match(r.labels?.severity ?? "", /^(critical|warning|info)$/, r.alert);
      for (const a of ["summary", "description", "runbook"]) assert.ok((r.annotations?.[a] ?? "").length > 20, `${r.alert}: annotation ${a}`);
      const used = metricNamesIn(r.expr);
      assert.ok(used.length > 0, `${r.alert}: no metric found in ${r.expr}`);
      for (const m of used) assert.ok(known.has(m) || SCRAPE_METRICS.has(m), `${r.alert} uses ${m}, which neither the server nor the operator registers`);
    }
  });

  it("promtool test rules: each alert fires in its bad case and stays quiet in its good ones", async () => {
    const byName = new Map(allRules(rules).map((r) => [r.alert, r]));
    for (const name of byName.keys()) {
      assert.ok(ALERT_CASES.some((c) => c.alert === name && c.fires.length > 0), `${name} has a firing case`);
      assert.ok(ALERT_CASES.some((c) => c.alert === name && c.fires.length === 0), `${name} has a quiet case`);
    }
    const tests = ALERT_CASES.map((c) => {
      const rule = byName.get(c.alert);
      assert.ok(rule, `case for unknown alert ${c.alert}`);
      return {
        name: `${c.alert}: ${c.name}`,
        interval: "1m",
        input_series: Object.entries(c.series).map(([series, values]) => ({ series, values })),
        alert_rule_test: [
          {
            eval_time: c.evalTime,
            alertname: c.alert,
            exp_alerts: c.fires.map((labels) => ({
              exp_labels: labels,
              exp_annotations: Object.fromEntries(Object.entries(rule.annotations ?? {}).map(([k, v]) => [k, expand(v, labels, c.valueText, `${c.alert} ${k}`)])),
            })),
          },
        ],
      };
    });
    const pr = rendered.find((d) => d.kind === "PrometheusRule")!;
    await writeFile(join(dir, "rules.yaml"), stringify(pr.spec));
    await writeFile(join(dir, "tests.yaml"), stringify({ rule_files: ["rules.yaml"], evaluation_interval: "1m", tests }));
    const { promtool } = await prometheusTools();
    const r = await run(promtool, ["test", "rules", join(dir, "tests.yaml")], { cwd: dir }).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`promtool test rules failed:\n${err.stdout ?? ""}${err.stderr ?? ""}`);
    });
    assert.match(r.stdout, /SUCCESS/);
  });

  it("the dashboard ConfigMap holds files/dashboard.json, a well-formed dashboard", async () => {
    const dash = await dashboard();
    const cm = rendered.find((d) => d.kind === "ConfigMap")!;
    assert.equal(cm.metadata.labels?.grafana_dashboard, "1", "the usual sidecar label");
    assert.deepEqual(JSON.parse(cm.data!["zerofs.json"]!), dash);

    assert.equal(dash.uid, "zerofs-volumes");
    assert.ok(dash.title && Number.isInteger(dash.schemaVersion));
    const vars = new Map(dash.templating.list.map((v) => [v.name, v]));
    assert.equal(vars.get("datasource")?.type, "datasource");
    assert.equal(vars.get("datasource")?.query, "prometheus");
    for (const n of ["namespace", "volume"]) assert.equal(vars.get(n)?.type, "query", `variable ${n}`);

    const flat: DashboardPanel[] = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
    const ids = flat.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
    const occupied = new Set<string>();
    for (const p of flat) {
      const g = p.gridPos;
      assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0 && g.y >= 0, `panel ${p.id} "${p.title}" fits the 24-column grid`);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          assert.ok(!occupied.has(`${x},${y}`), `panel ${p.id} "${p.title}" overlaps another at ${x},${y}`);
          occupied.add(`${x},${y}`);
        }
      }
      if (p.type === "row") continue;
      assert.ok(["timeseries", "stat", "table"].includes(p.type), `panel ${p.id}: type ${p.type}`);
      assert.ok(p.title && p.description, `panel ${p.id} has a title and a description`);
      assert.deepEqual(p.datasource, { type: "prometheus", uid: "${datasource}" }, `panel ${p.id} uses the datasource variable`);
      assert.ok(p.targets && p.targets.length > 0, `panel ${p.id} "${p.title}" has queries`);
      const refIds = p.targets.map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `panel ${p.id}: refIds unique`);
      for (const t of p.targets) {
        for (const v of t.expr.matchAll(/\$(\w+)/g)) assert.ok(vars.has(v[1]!) || v[1] === "__rate_interval", `panel ${p.id}: $${v[1]} is a dashboard variable`);
      }
    }
  });

  it("test/monitoring/README.md's alert and panel tables match the chart's files", async () => {
    const readme = await readFile(join(import.meta.dirname, "README.md"), "utf8");
    const m = /<!-- metric-tables:begin -->\n([\s\S]*?)\n<!-- metric-tables:end -->/.exec(readme);
    assert.ok(m, "README.md has the metric-tables markers");
    assert.equal(m[1], await metricTables());
  });

  it("every dashboard query uses only metrics the product exports", async () => {
    const known = await productMetricNames();
    const dash = await dashboard();
    for (const p of dash.panels) {
      for (const t of p.targets ?? []) {
        const used = metricNamesIn(t.expr);
        assert.ok(used.length > 0, `panel "${p.title}": no metric found in ${t.expr}`);
        for (const m of used) assert.ok(known.has(m) || SCRAPE_METRICS.has(m), `panel "${p.title}" uses ${m}, which neither the server nor the operator registers`);
      }
    }
  });
});
