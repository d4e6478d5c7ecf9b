/**
 * The chart's alerts and dashboard against a real Prometheus (built from the Go module proxy,
 * scripts/tools/prometheus-tools.sh) on 127.0.0.1, scraping a real `zerofs` (S3 volume on
 * versitygw, so its disk cache exists) and a real operator (its /metrics endpoint, reconciling a
 * ZeroFSVolume in a real control plane), after a small NFS workload:
 *  - every metric name an alert or a panel uses exists in Prometheus;
 *  - every panel query returns data (a finite value), except the few listed in EMPTY_PANELS with
 *    why they cannot have data in this test (their metrics must still exist);
 *  - the dashboard's variable queries find the volume;
 *  - Prometheus loads the rendered rules, evaluates every one without error, and a healthy
 *    system raises no alert, not even a pending one.
 * The scrape config plays the chart's PodMonitors: job names zerofs / zerofs-operator, target
 * labels namespace, volume, pod; honor_labels for the operator.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import type { ZeroFSVolume } from "../../operator/src/api/types.ts";
import { OperatorMetrics } from "../../operator/src/controller/metrics.ts";
import { startHttpServer } from "../../operator/src/http-server.ts";
import type { Operator } from "../../operator/src/operator.ts";
import { CreateMode, Nfs3Proc as P, StableHow } from "../../server/src/nfs/nfs3-types.ts";
import { startControlPlane, type ControlPlane } from "../../e2e/k8s/controlplane.ts";
import { ensureNamespace, newOperator, testLogger } from "../../e2e/k8s/harness.ts";
import { Nfs3Client, sattr } from "../support/nfs/nfs3-client.ts";
import { startVersitygw, type Versitygw } from "../support/versitygw.ts";
import { startZerofs, type ZerofsProcess } from "../support/zerofs-process.ts";
import { alertRules, BUILD_TIMEOUT_MS, dashboard, metricNamesIn, MONITORING_ON, prometheusTools, renderChart } from "./support.ts";

const NS = "team-a";
const VOLUME = "photos";
const SCRAPE_INTERVAL = "1s";
/** What $__rate_interval becomes: covers the whole workload at a 1 s scrape interval. */
const RATE_INTERVAL = "2m";

/**
 * Panel queries that cannot return data here, by "panel title / refId", with why. Their metric
 * names are still checked to exist.
 */
const EMPTY_PANELS: Record<string, string> = {
  "Password rotation state / A": "no volume is Rotating: the test rotates no password (zerofs_operator_volume_phase exists with the volume's Pending/Provisioning phase)",
};

async function freePort(): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

describe("dashboard and alerts against a real Prometheus scraping zerofs and the operator", { timeout: BUILD_TIMEOUT_MS + 20 * 60_000 }, () => {
  let dir: string;
  let vgw: Versitygw;
  let server: ZerofsProcess;
  let plane: ControlPlane;
  let op: Operator;
  let opHttp: import("node:http").Server;
  let prom: ChildProcess;
  let promOut = "";
  let api: string;

  const query = async (expr: string): Promise<PromResult[]> => {
    const r = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await r.json()) as { status: string; error?: string; data: { resultType: string; result: PromResult[] } };
    assert.equal(body.status, "success", `query ${expr}: ${body.error}`);
    return body.data.result;
  };
  const get = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${api}${path}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await r.json()) as { status: string; error?: string; data: T };
    assert.equal(body.status, "success", `${path}: ${body.error}`);
    return body.data;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-prometheus-"));
    const [{ prometheus }, v, p] = await Promise.all([prometheusTools(), startVersitygw(), startControlPlane({ preApplyCrds: true })]);
    vgw = v;
    plane = p;
    server = await startZerofs({
      url: `s3://${vgw.bucket}/monitoring`,
      env: { AWS_ENDPOINT_URL: vgw.endpoint, AWS_ACCESS_KEY_ID: vgw.accessKeyId, AWS_SECRET_ACCESS_KEY: vgw.secretAccessKey, AWS_DEFAULT_REGION: vgw.region, AWS_ALLOW_HTTP: "true" },
    });

    op = newOperator(plane.adminKubeConfig, { name: "op", metrics: new OperatorMetrics({ defaultMetrics: true }) });
    await op.start();
    opHttp = await startHttpServer(op, "127.0.0.1", 0, testLogger("op-http"));
    const opPort = (opHttp.address() as { port: number }).port;

    // The rules as the chart renders them: Prometheus evaluates them every second.
    const pr = (await renderChart(MONITORING_ON)).find((d) => d.kind === "PrometheusRule")!;
    await writeFile(join(dir, "rules.yaml"), stringify(pr.spec));
    await writeFile(
      join(dir, "prometheus.yml"),
      stringify({
        global: { scrape_interval: SCRAPE_INTERVAL, evaluation_interval: SCRAPE_INTERVAL },
        rule_files: [join(dir, "rules.yaml")],
        scrape_configs: [
          { job_name: "zerofs", static_configs: [{ targets: [`127.0.0.1:${server.httpPort}`], labels: { namespace: NS, volume: VOLUME, pod: `${VOLUME}-server-0` } }] },
          { job_name: "zerofs-operator", honor_labels: true, static_configs: [{ targets: [`127.0.0.1:${opPort}`], labels: { namespace: "zerofs-system", pod: "zerofs-operator-0" } }] },
        ],
      }),
    );
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    prom = spawn(prometheus, [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    // If the test process dies without its after() hook, do not leave Prometheus running.
    const killProm = (): void => void prom.kill("SIGKILL");
    process.once("exit", killProm);
    prom.once("exit", () => process.removeListener("exit", killProm));
    prom.stdout!.on("data", (c: Buffer) => (promOut += c.toString()));
    prom.stderr!.on("data", (c: Buffer) => (promOut += c.toString()));
    for (let i = 0; ; i++) {
      if (prom.exitCode !== null) throw new Error(`prometheus exited ${prom.exitCode}:\n${promOut.slice(-3000)}`);
      const ok = await fetch(`${api}/-/ready`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 300) throw new Error(`prometheus not ready in 30 s:\n${promOut.slice(-3000)}`);
      await sleep(100);
    }
    await waitForUp(2);

    // Created while Prometheus watches, so that the reconciles fall in the rate() windows. No
    // kubelet runs: the volume stays Pending/Provisioning, which is what its phase series says.
    await ensureNamespace(plane.admin, NS);
    const vol = {
      apiVersion: "zerofs.io/v1alpha1",
      kind: "ZeroFSVolume",
      metadata: { name: VOLUME, namespace: NS },
      spec: { storage: { url: `s3://bucket/${NS}/${VOLUME}`, endpoint: "http://minio.storage:9000", allowHttp: true, credentialsSecretRef: { name: "s3" } }, encryption: { passwordSecretRef: { name: "pw" } } },
    } as unknown as ZeroFSVolume;
    await plane.admin.create(vol);

    await workload(server.nfsPort);
    // A few more scrapes so every rate() window holds the workload's samples on both sides.
    await sleep(5_000);
  }, { timeout: BUILD_TIMEOUT_MS + 10 * 60_000 });

  after(async () => {
    if (prom && prom.exitCode === null) {
      prom.kill("SIGTERM");
      await new Promise((r) => prom.once("exit", r));
    }
    await new Promise<void>((r) => (opHttp ? opHttp.close(() => r()) : r()));
    await op?.stop();
    await server?.stop();
    await vgw?.stop();
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function waitForUp(n: number): Promise<void> {
    for (let i = 0; i < 300; i++) {
      const up = await query("up == 1");
      if (up.length >= n) return;
      await sleep(200);
    }
    throw new Error(`targets not up: ${JSON.stringify(await get("/api/v1/targets"))}`);
  }

  it("every metric an alert or a panel uses exists in Prometheus", async () => {
    const present = new Set(await get<string[]>("/api/v1/label/__name__/values"));
    const used = new Map<string, string[]>();
    const note = (m: string, where: string) => used.set(m, [...(used.get(m) ?? []), where]);
    for (const r of (await alertRules()).groups.flatMap((g) => g.rules)) for (const m of metricNamesIn(r.expr)) note(m, `alert ${r.alert}`);
    for (const p of (await dashboard()).panels) for (const t of p.targets ?? []) for (const m of metricNamesIn(t.expr)) note(m, `panel "${p.title}"`);
    const missing = [...used].filter(([m]) => !present.has(m)).map(([m, w]) => `${m} (${w.join(", ")})`);
    assert.deepEqual(missing, [], "metrics used but not exported");
  });

  it("every panel query returns data after the workload (exceptions: EMPTY_PANELS)", async () => {
    const dash = await dashboard();
    const empty: string[] = [];
    const unexpectedData: string[] = [];
    let checked = 0;
    for (const p of dash.panels) {
      for (const t of p.targets ?? []) {
        const key = `${p.title} / ${t.refId}`;
        const expr = t.expr.replaceAll("$__rate_interval", RATE_INTERVAL).replaceAll("$namespace", ".*").replaceAll("$volume", ".*");
        const result = await query(expr);
        const finite = result.filter((r) => Number.isFinite(Number(r.value[1])));
        checked++;
        if (finite.length === 0 && !(key in EMPTY_PANELS)) empty.push(`${key}: ${expr} -> ${JSON.stringify(result).slice(0, 200)}`);
        if (finite.length > 0 && key in EMPTY_PANELS) unexpectedData.push(key);
      }
    }
    assert.ok(checked > 30, `${checked} queries checked`);
    assert.deepEqual(empty, [], "panel queries without data");
    assert.deepEqual(unexpectedData, [], "EMPTY_PANELS entries that now have data: remove them");
    // The filtered form (the variables set to this volume) finds the same volume.
    const ops = await query(`sum by (volume) (rate(zerofs_rpc_requests_total{job="zerofs", namespace=~"${NS}", volume=~"${VOLUME}", program="nfs"}[${RATE_INTERVAL}]))`);
    assert.deepEqual(ops.map((r) => r.metric.volume), [VOLUME]);
    const phase = await query(`zerofs_operator_volume_phase{job="zerofs-operator", namespace="${NS}", volume="${VOLUME}"} == 1`);
    assert.equal(phase.length, 1, `the operator reports the volume's phase with its own namespace label: ${JSON.stringify(phase)}`);
  });

  it("the dashboard's variables find the namespace and the volume", async () => {
    const dash = await dashboard();
    for (const v of dash.templating.list.filter((x) => x.type === "query")) {
      const m = /^label_values\((.*), (\w+)\)$/.exec(v.definition ?? "");
      assert.ok(m, `variable ${v.name}: ${v.definition}`);
      const sel = m[1]!.replaceAll("$namespace", ".*");
      const values = await get<string[]>(`/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(sel)}`);
      assert.deepEqual(values, [v.name === "namespace" ? NS : VOLUME], `variable ${v.name}`);
    }
  });

  it("Prometheus loads every rule, evaluates each without error, and a healthy system raises no alert (but the unprovisioned volume's)", async () => {
    const expected = (await alertRules()).groups.flatMap((g) => g.rules).map((r) => r.alert).sort();
    type Rules = { groups: { rules: { name: string; health: string; lastError?: string; state: string }[] }[] };
    const loaded = (await get<Rules>("/api/v1/rules")).groups.flatMap((g) => g.rules);
    assert.deepEqual(loaded.map((r) => r.name).sort(), expected);
    for (const r of loaded) assert.equal(r.health, "ok", `${r.name}: ${r.lastError ?? ""}`);
    const alerts = await get<{ alerts: { labels: { alertname: string; volume?: string }; state: string }[] }>("/api/v1/alerts");
    // No kubelet runs here, so the operator's volume stays Provisioning: that alert waits out
    // its 15 minutes, pending. Nothing else may even be pending.
    assert.deepEqual(alerts.alerts.map((a) => `${a.labels.alertname} ${a.labels.volume ?? ""} ${a.state}`), [`ZeroFSVolumeNotReady ${VOLUME} pending`]);
  });
});

/** A small NFS workload touching the procedures, the WAL and the store (data and metadata). */
async function workload(port: number): Promise<void> {
  const c = await Nfs3Client.connect(port);
  try {
    const root = await c.mount("/");
    const dir = (await c.ok(P.MKDIR, { where: { dir: root, name: Buffer.from("work") }, attributes: sattr({ mode: 0o755 }) })).obj!;
    const data = Buffer.alloc(256 * 1024, 7);
    for (let i = 0; i < 20; i++) {
      const name = Buffer.from(`f${i}`);
      const fh = (await c.ok(P.CREATE, { where: { dir, name }, how: { mode: CreateMode.UNCHECKED, attributes: sattr({ mode: 0o644 }) } })).obj!;
      await c.ok(P.WRITE, { file: fh, offset: 0n, count: data.length, stable: i % 2 === 0 ? StableHow.FILE_SYNC : StableHow.UNSTABLE, data });
      if (i % 2 === 1) await c.ok(P.COMMIT, { file: fh, offset: 0n, count: 0 });
      await c.ok(P.GETATTR, { object: fh });
      const r = await c.ok(P.READ, { file: fh, offset: 0n, count: data.length });
      assert.equal(Buffer.from(r.data).length, data.length);
      await c.ok(P.READDIRPLUS, { dir, cookie: 0n, cookieverf: Buffer.alloc(8), dircount: 4096, maxcount: 32768 });
      if (i % 4 === 3) await c.ok(P.REMOVE, { object: { dir, name } });
      await sleep(200);
    }
  } finally {
    c.close();
  }
}
