/**
 * `kubectl zerofs` (the bundled single-file executable, as a user would install it) against a
 * real API server with the operator running in-process. There is no kubelet: the test plays it
 * (server pod readiness, the check Job's pod ending with the workload's real output, the
 * password Job). The API server's pod proxy is exercised for real: a running `zerofs` on this
 * machine stands in for a server pod whose podIP is this machine's non-loopback address (the API
 * server refuses to proxy to loopback). Pod logs need a kubelet: only their error path is tested.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { ZeroFSVolume } from "../src/api/types.ts";
import type { KubeClient } from "../src/kube/client.ts";
import type { Job, Pod, Secret } from "../src/kube/types.ts";
import type { Operator } from "../src/operator.ts";
import { CHECK_WORKLOAD } from "../plugin/src/check-workload.ts";
import { startControlPlane, REPO_ROOT, type ControlPlane } from "../../e2e/k8s/controlplane.ts";
import { applyChartRbac, countWrites, ensureNamespace, newOperator, R, serviceAccountKubeConfig } from "../../e2e/k8s/harness.ts";
import { finishPod, markPodReady, podsMatching } from "../../e2e/k8s/kubelet.ts";
import { waitFor } from "../../e2e/k8s/wait.ts";
import { NODE_BIN, startZerofs, type ZerofsProcess } from "../../test/support/zerofs-process.ts";

const run = promisify(execFile);
const SERVER_PODS = "app.kubernetes.io/name=zerofs,app.kubernetes.io/component=server";
const NS = "plug";
const cond = (v: ZeroFSVolume | undefined, type: string) => v?.status?.conditions?.find((x) => x.type === type);

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("kubectl zerofs against a real API server", { timeout: 50 * 60_000 }, () => {
  let plane: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  let dir: string;
  let plugin: string;
  const getVolume = (name = "vol") => admin.get<ZeroFSVolume>(R.volumes, NS, name);
  const describeVolume = async () => JSON.stringify((await getVolume())?.status ?? null);

  /** Runs the bundled plugin; `input` is its stdin. */
  function kz(args: string[], o: { input?: string; env?: Record<string, string> } = {}): Promise<Result> {
    const p = spawn(NODE_BIN, [plugin, ...args], { env: { PATH: process.env.PATH, HOME: dir, KUBECONFIG: plane.kubeconfigPath, ...o.env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    p.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    p.stdin.end(o.input ?? "");
    return new Promise((resolve) => p.once("close", (code) => resolve({ code, stdout, stderr })));
  }

  /** Runs the bundled plugin on a pseudo-terminal (util-linux `script`), answering each prompt as it appears. */
  function kzTty(args: string[], answers: [prompt: string, answer: string][]): Promise<Result> {
    const q = (x: string) => `'${x.replace(/'/g, "'\\''")}'`;
    const cmd = [NODE_BIN, plugin, ...args].map(q).join(" ");
    const p = spawn("script", ["-qec", cmd, "/dev/null"], { env: { PATH: process.env.PATH, HOME: dir, KUBECONFIG: plane.kubeconfigPath }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let from = 0;
    const todo = [...answers];
    p.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      const next = todo[0];
      const at = next ? stdout.indexOf(next[0], from) : -1;
      if (next && at >= 0) {
        from = at + next[0].length;
        todo.shift();
        p.stdin.write(next[1]); // typed after the prompt, as a person would
      }
    });
    // stdin stays open until the plugin ends: an EOF would reach it as the end of the terminal.
    return new Promise((resolve) => p.once("close", (code) => resolve({ code, stdout, stderr: "" })));
  }

  async function serverReady(): Promise<Pod> {
    const pod = await waitFor("a server pod", async () => (await podsMatching(admin, NS, SERVER_PODS)).find((p) => !p.metadata.labels?.["zerofs.test/fake"]), { describe: describeVolume });
    await markPodReady(admin, pod);
    await waitFor("volume Ready", async () => cond(await getVolume(), "Ready")?.status === "True", { describe: describeVolume });
    return pod;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-plugin-"));
    plugin = join(dir, "kubectl-zerofs");
    await run(NODE_BIN, [join(REPO_ROOT, "operator/plugin/build.ts"), plugin]);
    plane = await startControlPlane({ preApplyCrds: true });
    admin = plane.admin;
    await applyChartRbac(plane);
    op = newOperator(await serviceAccountKubeConfig(plane), { name: "plugin" });
    await op.start();
    await ensureNamespace(admin, NS);
    await admin.apply<Secret>({ apiVersion: "v1", kind: "Secret", metadata: { name: "pw", namespace: NS }, type: "Opaque", data: { password: Buffer.from("first-password").toString("base64") } });
    await admin.create({
      apiVersion: "zerofs.io/v1alpha1",
      kind: "ZeroFSVolume",
      metadata: { name: "vol", namespace: NS },
      spec: { storage: { url: `s3://bucket/${NS}` }, encryption: { passwordSecretRef: { name: "pw" } } },
    });
    await serverReady();
  }, { timeout: 45 * 60_000 });

  after(async () => {
    await op?.stop();
    await plane?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("is one executable file: --help for every command, documented exit codes, bad usage exits 2", async () => {
    const main = await kz(["--help"]);
    assert.equal(main.code, 0);
    for (const c of ["status", "rotate", "check", "logs"]) assert.match(main.stdout, new RegExp(`^  ${c} `, "m"));
    for (const c of ["status", "rotate", "check", "logs"]) {
      const h = await kz([c, "--help"]);
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout, new RegExp(`Usage: kubectl zerofs ${c}`));
      assert.match(h.stdout, /Exit codes:\n  0  success\n  1 .*\n  2 .*\n  3 .*\n  4 /);
      assert.match(h.stdout, /-n, --namespace/);
      assert.match(h.stdout, /--kubeconfig/);
    }
    const bad = await kz(["status", "--frob"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Unknown option '--frob'/);
    const argvPassword = await kz(["rotate", "vol", "hunter2"]);
    assert.equal(argvPassword.code, 2, "a password on the command line is refused");
    assert.match(argvPassword.stderr, /unexpected argument/);
    const noConfig = await kz(["status"], { env: { KUBECONFIG: join(dir, "missing") } });
    assert.equal(noConfig.code, 2);
    assert.match(noConfig.stderr, /cannot load the kubeconfig/);
  });

  it("status lists the volumes and shows one volume's phase, conditions, pod and key fingerprint", async () => {
    const list = await kz(["status", "-n", NS]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /NAMESPACE\s+NAME\s+PHASE\s+READY\s+SERVER\s+ROTATION\s+CHECK\s+AGE/);
    assert.match(list.stdout, /plug\s+vol\s+Ready\s+True\s+10\.0\.0\.\d+\s+Idle/);
    const v = (await getVolume())!;
    const one = await kz(["status", "vol", "-n", NS, "--no-metrics"]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^Phase\s+Ready/m);
    assert.match(one.stdout, /^Server pod\s+zerofs-vol-\S+ Running, ready, restarts 0/m);
    assert.match(one.stdout, new RegExp(`password fingerprint ${v.status!.activePasswordHash!.slice("hmac-sha256:".length, "hmac-sha256:".length + 16)}`));
    assert.match(one.stdout, /^  Ready\s+True\s+/m);
    assert.match(one.stdout, new RegExp(`^Claim\\s+plug/vol \\(PV ${v.status!.persistentVolumeName}\\)`, "m"));
    const missing = await kz(["status", "nope", "-n", NS]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no ZeroFSVolume nope in namespace plug \(there: vol\)/);
  });

  it("status reads the server's /metrics through the API server's pod proxy", async () => {
    const ip = Object.values(networkInterfaces()).flat().find((a) => a && a.family === "IPv4" && !a.internal)?.address;
    assert.ok(ip, "this machine needs a non-loopback IPv4 address for the API server to proxy to");
    const s: ZerofsProcess = await startZerofs({
      url: join(dir, "vol-metrics"),
      env: { ZEROFS_HTTP_LISTEN: "0.0.0.0", ZEROFS_HTTP_ALLOWED_CLIENTS: "*", ZEROFS_LISTEN: "127.0.0.1" },
    });
    try {
      // A pod with the server's labels (no pod-template-hash: the ReplicaSet leaves it alone),
      // created after the real one so that the plugin prefers it, "running" at this machine's address.
      const fake = await admin.create<Pod>({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "zerofs-vol-metrics", namespace: NS, labels: { "app.kubernetes.io/name": "zerofs", "app.kubernetes.io/instance": "vol", "app.kubernetes.io/component": "server", "zerofs.test/fake": "1" } },
        spec: { containers: [{ name: "zerofs", image: "zerofs/zerofs:test", ports: [{ name: "http", containerPort: s.httpPort! }] }] },
      });
      await markPodReady(admin, fake);
      await admin.patch(R.pods, NS, "zerofs-vol-metrics", { status: { podIP: ip, podIPs: [{ ip }] } }, { subresource: "status" });
      const r = await kz(["status", "vol", "-n", NS, "-o", "json"]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as { metrics?: { ready: boolean; store: { byOp: Record<string, { requests: number }> }; cache: { memory: Record<string, { limitBytes: number }> } }; metricsError?: string; server: { pods: { name: string }[] } };
      assert.equal(report.server.pods[0]?.name, "zerofs-vol-metrics");
      assert.equal(report.metricsError, undefined);
      assert.equal(report.metrics?.ready, true);
      assert.ok(Object.keys(report.metrics?.store.byOp ?? {}).length > 0, r.stdout);
      assert.ok((report.metrics?.cache.memory.block?.limitBytes ?? 0) > 0);
      const text = await kz(["status", "vol", "-n", NS]);
      assert.match(text.stdout, /Metrics \(server \/metrics through the API server\):\n  NFS/);
      await admin.delete(R.pods, NS, "zerofs-vol-metrics");
      await waitFor("the fake pod gone", async () => !(await admin.get(R.pods, NS, "zerofs-vol-metrics")));
    } finally {
      await s.stop();
    }
    // The real server pod has no address (no kubelet): the report says why, and still exits 0.
    const r = await kz(["status", "vol", "-n", NS, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match((JSON.parse(r.stdout) as { metricsError: string }).metricsError, /GET metrics of pod plug\/zerofs-vol-\S+ through the API server proxy/);
  });

  async function checkJobPod(): Promise<{ job: Job; pod: Pod }> {
    const job = await waitFor("the check Job", async () => (await admin.list<Job>(R.jobs, NS, { labelSelector: "app.kubernetes.io/component=check" })).items.find((j) => !j.metadata.deletionTimestamp));
    const pod = await waitFor("the check Job's pod", async () => (await podsMatching(admin, NS, `batch.kubernetes.io/job-name=${job.metadata.name}`))[0]);
    return { job, pod };
  }

  it("check runs a Job on the volume's claim, records the workload's figures in status.check and prints them", async () => {
    const running = kz(["check", "vol", "-n", NS, "--size-mb", "4", "--files", "20", "-o", "json"]);
    const { job, pod } = await checkJobPod();
    const v = (await getVolume())!;
    const spec = job.spec as { backoffLimit: number; template: { spec: { volumes: { persistentVolumeClaim?: { claimName: string } }[]; containers: { command: string[]; image: string; env: { name: string; value: string }[] }[]; securityContext: { runAsNonRoot: boolean } } } };
    assert.equal(spec.template.spec.volumes[0]?.persistentVolumeClaim?.claimName, v.status!.persistentVolumeClaim!.name);
    const c = spec.template.spec.containers[0]!;
    assert.deepEqual(c.command.slice(0, 2), ["node", "-e"]);
    assert.equal(c.image, "zerofs/zerofs:test", "the volume's server image");
    assert.deepEqual(Object.fromEntries(c.env.map((e) => [e.name, e.value])).CHECK_SIZE_MB, "4");
    assert.equal(spec.template.spec.securityContext.runAsNonRoot, true);
    assert.equal(spec.backoffLimit, 0);
    // Play the kubelet: run the Job's real workload here, on a local directory, and end the pod with its output.
    const local = await mkdtemp(join(dir, "check-"));
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.name === "CHECK_DIR" ? local : e.value]));
    const out = await run(NODE_BIN, ["-e", CHECK_WORKLOAD], { env: { ...env, PATH: process.env.PATH } });
    await finishPod(admin, pod, 0, out.stdout.trim());
    const r = await running;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Started Job plug\/zerofs-vol-check-[0-9a-f]{6}: 4 MiB write\/read\/verify and 20 files through claim plug\/vol/);
    const printed = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(printed.result, "Passed");
    assert.equal(printed.bytes, 4 << 20);
    assert.ok((printed.writeMiBPerSecond as number) > 0 && (printed.readMiBPerSecond as number) > 0 && (printed.metadataOpsPerSecond as number) > 0);
    const check = (await getVolume())!.status!.check!;
    assert.equal(check.result, "Passed");
    assert.equal(check.jobName, job.metadata.name);
    assert.equal(check.metadataOps, printed.metadataOps);
    await waitFor("the passed check's Job deleted", async () => !(await admin.get(R.jobs, NS, job.metadata.name ?? "")));
    // The operator leaves status.check alone: its reconciles neither remove it nor rewrite the
    // status because of it (an unchanged volume still costs zero writes).
    const writes = await countWrites(op, async () => {
      op.activeController!.queue.add(`${NS}/vol`);
      await new Promise((r2) => setTimeout(r2, 2000));
    });
    assert.deepEqual(writes, []);
    await admin.patch(R.volumes, NS, "vol", { metadata: { annotations: { "zerofs.test/poke": "1" } } });
    await new Promise((r2) => setTimeout(r2, 2000));
    assert.equal((await getVolume())!.status!.check?.result, "Passed");
    const text = await kz(["status", "vol", "-n", NS, "--no-metrics"]);
    assert.match(text.stdout, /^Last check\s+Passed \d+s ago: write [\d.]+ MiB\/s, read [\d.]+ MiB\/s, [\d.]+ metadata ops\/s/m);
  });

  it("a failed check exits 1, records the failure and keeps the Job", async () => {
    const running = kz(["check", "vol", "-n", NS, "--size-mb", "1"]);
    const { job, pod } = await checkJobPod();
    await finishPod(admin, pod, 1, JSON.stringify({ result: "Failed", message: "write 1 MiB: EIO: i/o error, write" }));
    const r = await running;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /Check of plug\/vol FAILED: write 1 MiB: EIO: i\/o error, write/);
    const check = (await getVolume())!.status!.check!;
    assert.equal(check.result, "Failed");
    assert.match(check.message ?? "", /EIO/);
    assert.ok(await admin.get(R.jobs, NS, job.metadata.name ?? ""), "kept for inspection");
    await admin.delete(R.jobs, NS, job.metadata.name ?? "", { propagationPolicy: "Background" });
  });

  it("logs: a pod on no node has no log, a node the API server cannot reach is named; an unknown volume exits 3", async () => {
    const unscheduled = await kz(["logs", "vol", "-n", NS]);
    assert.equal(unscheduled.code, 1);
    assert.match(unscheduled.stderr, /server pod plug\/zerofs-vol-\S+ is not scheduled on a node yet, so it has no log/);
    // A ready server pod bound to a node without a kubelet: the API server cannot fetch its log.
    // (spec.nodeName set at creation, as a scheduler's binding would.)
    const bound = await admin.create<Pod>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "zerofs-vol-bound", namespace: NS, labels: { "app.kubernetes.io/name": "zerofs", "app.kubernetes.io/instance": "vol", "app.kubernetes.io/component": "server", "zerofs.test/fake": "1" } },
      spec: { nodeName: "node-without-kubelet", containers: [{ name: "zerofs", image: "zerofs/zerofs:test" }] },
    });
    await markPodReady(admin, bound);
    try {
      const r = await kz(["logs", "vol", "-n", NS, "--tail", "10"]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /get logs of server pod plug\/zerofs-vol-bound \(node node-without-kubelet\): HTTP [45]\d\d/);
    } finally {
      // Bound to a node with no kubelet, a graceful delete would wait for pod GC's orphan sweep
      // (40 s or more), and the rotation test below rightly waits for every server pod to be gone.
      await admin.delete(R.pods, NS, "zerofs-vol-bound", { gracePeriodSeconds: 0 });
      await waitFor("the bound fake pod gone", async () => !(await admin.get(R.pods, NS, "zerofs-vol-bound")));
    }
    const missing = await kz(["logs", "nope", "-n", NS, "-f"]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no ZeroFSVolume nope in namespace plug/);
    const badTail = await kz(["logs", "vol", "--tail", "-3"]);
    assert.equal(badTail.code, 2);
  });

  it("rotate: the password from stdin, never argv; confirmation; the Secret updated; the rotation followed to the end", async () => {
    const before = await admin.get<Secret>(R.secrets, NS, "pw");
    const unconfirmed = await kz(["rotate", "vol", "-n", NS], { input: "second-password\n" });
    assert.equal(unconfirmed.code, 2, unconfirmed.stderr);
    assert.match(unconfirmed.stderr, /not confirmed: pass --yes/);
    const same = await kz(["rotate", "vol", "-n", NS, "--yes"], { input: "first-password\n" });
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /already holds this password: nothing to do/);
    const empty = await kz(["rotate", "vol", "-n", NS, "--yes"], { input: "\n" });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /the new password is empty; nothing was changed/);
    assert.equal((await admin.get<Secret>(R.secrets, NS, "pw"))?.metadata.resourceVersion, before?.metadata.resourceVersion, "nothing written so far");

    const pwFile = join(dir, "new-pw");
    await writeFile(pwFile, "second-password\n", { mode: 0o600 });
    const rotating = kz(["rotate", "vol", "-n", NS, "--password-file", pwFile, "--yes", "--timeout", "300"]);
    // Play the kubelet for the operator's rotation: the password Job ends well, the new server pod becomes ready.
    const job = await waitFor("the rotate Job", async () => (await admin.list<Job>(R.jobs, NS, { labelSelector: "zerofs.io/job=rotate" })).items[0], { describe: describeVolume });
    const busy = await kz(["rotate", "vol", "-n", NS, "--yes"], { input: "third-password" });
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /already rotating its password \(phase (StoppingServer|Changing)\)/);
    const jobPod = await waitFor("the rotate Job's pod", async () => (await podsMatching(admin, NS, `batch.kubernetes.io/job-name=${job.metadata.name}`))[0]);
    await finishPod(admin, jobPod, 0);
    await waitFor("the volume's new server pod", async () => {
      const pods = (await podsMatching(admin, NS, SERVER_PODS)).filter((p) => !(p.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions?.some((x) => x.type === "Ready" && x.status === "True"));
      if (pods[0]) await markPodReady(admin, pods[0]);
      return cond(await getVolume(), "Ready")?.status === "True" && (await getVolume())?.status?.passwordRotation?.phase === "Succeeded";
    }, { describe: describeVolume, timeoutMs: 120_000 });
    const r = await rotating;
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Rotating the password of volume plug\/vol \(phase Ready\):\n  1\. update Secret plug\/pw key password/);
    assert.match(r.stdout, /rotation: Succeeded/);
    assert.match(r.stdout, /waiting for the server to be ready again\nPassword rotated; the volume is Ready with the new password\./);
    const secret = await admin.get<Secret>(R.secrets, NS, "pw");
    assert.equal(Buffer.from(secret!.data!.password!, "base64").toString(), "second-password", "stored without the trailing newline, as the server reads it");
    assert.doesNotMatch(r.stdout + r.stderr, /second-password/, "the password is never printed");

    // At a terminal: asked twice without echo, then confirmation.
    const pw = (first: string, second: string, yes?: string): [string, string][] => [["New password: ", `${first}\r`], ["Repeat it: ", `${second}\r`], ...(yes ? [["Proceed? [y/N] ", `${yes}\r`] as [string, string]] : [])];
    const differ = await kzTty(["rotate", "vol", "-n", NS, "--no-wait"], pw("third-password", "third-passw0rd"));
    assert.equal(differ.code, 2, differ.stdout);
    assert.match(differ.stdout, /New password: \r?\nRepeat it: \r?\n.*the two passwords differ; nothing was changed/s);
    const declined = await kzTty(["rotate", "vol", "-n", NS, "--no-wait"], pw("third-password", "third-password", "n"));
    assert.equal(declined.code, 1, declined.stdout);
    assert.match(declined.stdout, /Proceed\? \[y\/N\] n\r?\nNothing was changed\./);
    const accepted = await kzTty(["rotate", "vol", "-n", NS, "--no-wait"], pw("third-password", "third-password", "y"));
    assert.equal(accepted.code, 0, accepted.stdout);
    assert.match(accepted.stdout, /Updated Secret plug\/pw key password\./);
    assert.doesNotMatch(differ.stdout + declined.stdout + accepted.stdout, /third-pass/, "nothing typed is echoed");
    const now = await admin.get<Secret>(R.secrets, NS, "pw");
    assert.equal(Buffer.from(now!.data!.password!, "base64").toString(), "third-password");
  });
});
