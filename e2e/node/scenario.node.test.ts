/**
 * The user's whole path on a real node, on ONE cluster boot (each boot costs minutes under TCG):
 * `helm install` (the operator as a pod, leader election on) → a Secret and two ZeroFSVolumes on
 * S3 (versitygw on the host, reached through the VM's forwarded port) become Ready with their
 * server pods really running → consumer pods mount the volume over NFS (one writes and fsyncs,
 * others read the same bytes) → the server pod is killed and replaced while a consumer keeps
 * writing → the Secret is edited and the password rotates through the real Jobs (checked on the
 * store from the host with the server's own keyring code) → `helm upgrade` to a new operator image
 * tag hands over without restarting the server → deleting a volume in use is blocked until its
 * pod goes; Retain keeps the store, Delete empties it → `helm uninstall` keeps the CRD.
 * The steps are tests of one file and build on each other: they run in order.
 * Nothing is faked: no pod status is patched, every Job runs the server image.
 * See e2e/node/README.md (section 4) for what each step showed and costs.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, test } from "node:test";
import { openKeyring, WrongPasswordError } from "../../server/src/crypto/keyring.ts";
import { parseS3Url } from "../../server/src/store/index.ts";
import { createS3StoreForTest, startVersitygw, type Versitygw } from "../../test/support/versitygw.ts";
import { CHART, LEASE_NAME, OPERATOR_NAMESPACE, RELEASE } from "../k8s/harness.ts";
import { waitFor } from "../k8s/wait.ts";
import { GUEST_HOST_ADDRESS } from "../vm/vm.ts";
import { buildImages, type Images } from "./images.ts";
import { NODE_NAME, startNodeCluster, type NodeCluster } from "./node.ts";

const NS = "apps";
const OLD_PASSWORD = "correct horse battery staple, node edition";
const NEW_PASSWORD = "a rotated password that the Jobs put in place";
/** The volume consumers use (Retain) and a second one that is deleted with its data (Delete). */
const SHARED = "shared";
const SCRATCH = "scratch";
const MIN = 60_000;

let cluster: NodeCluster;
let vgw: Versitygw;
let images: Images;
let upgradeTag: string;

before(async () => {
  images = await buildImages();
  // The upgrade's "new operator image": the same tree's image under a second tag.
  upgradeTag = `${images.operator.name.slice(images.operator.name.lastIndexOf(":") + 1)}-upgrade`;
  const upgradeName = `${images.operator.name.slice(0, images.operator.name.lastIndexOf(":"))}:${upgradeTag}`;
  vgw = await startVersitygw();
  cluster = await startNodeCluster({
    images: [images.server.archive, images.operator.archive],
    imageTags: [[images.operator.name, upgradeName]],
    forwardPorts: [Number(new URL(vgw.endpoint).port)],
  });
}, { timeout: 60 * MIN });

after(async () => {
  await cluster?.stop();
  await vgw?.stop();
}, { timeout: 5 * MIN });

const k = (args: string[], input?: string): Promise<string> => cluster.plane.kubectl(args, input);
const apply = (o: unknown): Promise<string> => k(["apply", "-f", "-"], JSON.stringify(o));
const getJson = async <T>(args: string[]): Promise<T> => JSON.parse(await k([...args, "-o", "json"])) as T;
const tail = (t: string, n: number): string => t.trimEnd().split("\n").slice(-n).join("\n");

interface Condition { type: string; status: string; reason?: string; message?: string }
interface Volume { metadata: { uid: string }; status?: { phase?: string; conditions?: Condition[]; passwordRotation?: { phase: string; jobName?: string; message?: string } } }
interface Pod {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string; containers: { image: string }[] };
  status: { phase?: string; conditions?: Condition[]; containerStatuses?: { restartCount: number; ready: boolean }[] };
}

const cond = (v: Volume, type: string): Condition | undefined => v.status?.conditions?.find((c) => c.type === type);
const podReady = (p: Pod): boolean => p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
const volume = (name: string): Promise<Volume> => getJson<Volume>(["get", "zerofsvolume", name, "-n", NS]);
const volumeReady = async (name: string): Promise<boolean> => cond(await volume(name), "Ready")?.status === "True";
const serverPods = async (name: string): Promise<Pod[]> =>
  (await getJson<{ items: Pod[] }>(["get", "pods", "-n", NS, "-l", `app.kubernetes.io/component=server,app.kubernetes.io/instance=${name}`])).items;
const eventReasons = async (name: string): Promise<string[]> =>
  (await getJson<{ items: { reason?: string }[] }>(["get", "events", "-n", NS, "--field-selector", `involvedObject.kind=ZeroFSVolume,involvedObject.name=${name}`])).items.map((e) => e.reason ?? "");
const operatorPods = async (): Promise<Pod[]> =>
  (await getJson<{ items: Pod[] }>(["get", "pods", "-n", OPERATOR_NAMESPACE, "-l", `app.kubernetes.io/instance=${RELEASE}`])).items;
const storeOf = (name: string): ReturnType<typeof createS3StoreForTest> => createS3StoreForTest(vgw, parseS3Url(volumeUrl(name)).prefix);
const volumeUrl = (name: string): string => `s3://${vgw.bucket}/node/${name}`;

/** `kubectl get --watch` in the background: one line per object change, printed by a jsonpath template. */
function watch(what: string[], template: string): { lines(): string[]; stop(): void } {
  const child = spawn(cluster.plane.kubectlBin, ["--kubeconfig", cluster.plane.kubeconfigPath, "get", ...what, "--watch", "-o", `jsonpath=${template}{"\\n"}`], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    out += `(stderr) ${c.toString()}`;
  });
  return { lines: () => out.split("\n").filter((l) => l.trim() !== ""), stop: () => child.kill("SIGTERM") };
}

/** Everything a failed wait should show: objects, events, the operator's and servers' logs, the node's daemons. */
async function describe(): Promise<string> {
  const safe = (p: Promise<string>): Promise<string> => p.catch((e: unknown) => `(${(e as Error).message})`);
  const parts = [
    await safe(k(["get", "zerofsvolume,deploy,pods,jobs,pvc", "-n", NS, "-o", "wide"])),
    await safe(k(["get", "pv,pods", "-A", "-o", "wide"])),
    await safe(k(["get", "zerofsvolume", "-n", NS, "-o", "jsonpath={range .items[*]}{.metadata.name}: {.status.phase} {.status.message} {.status.passwordRotation}{\"\\n\"}{end}"])),
    `--- events ${NS} ---\n${tail(await safe(k(["get", "events", "-n", NS, "--sort-by=.lastTimestamp"])), 40)}`,
    `--- events ${OPERATOR_NAMESPACE} ---\n${tail(await safe(k(["get", "events", "-n", OPERATOR_NAMESPACE, "--sort-by=.lastTimestamp"])), 20)}`,
  ];
  for (const p of await operatorPods().catch(() => [])) parts.push(`--- operator ${p.metadata.name} (last 30 lines) ---\n${tail(await cluster.podLog(OPERATOR_NAMESPACE, p.metadata.name), 30)}`);
  for (const v of [SHARED, SCRATCH]) {
    for (const p of await serverPods(v).catch(() => [])) parts.push(`--- server ${p.metadata.name} (last 20 lines) ---\n${tail(await cluster.podLog(NS, p.metadata.name), 20)}`);
  }
  parts.push(await cluster.describe());
  return parts.join("\n");
}

const consumerSpec = (claim: string, script: string, restartPolicy: "Never"): unknown => ({
  restartPolicy,
  automountServiceAccountToken: false,
  // As root: the image's user is 65532, and a new volume's root folder is root's (0755).
  securityContext: { runAsUser: 0, runAsGroup: 0 },
  // sh as PID 1 ignores SIGTERM: do not wait 30 s for the kill.
  terminationGracePeriodSeconds: 3,
  containers: [{ name: "c", image: images.server.name, imagePullPolicy: "Never", command: ["sh", "-c", script], volumeMounts: [{ name: "data", mountPath: "/data" }] }],
  volumes: [{ name: "data", persistentVolumeClaim: { claimName: claim } }],
});

async function runToCompletion(name: string, claim: string, script: string): Promise<string> {
  await apply({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: NS }, spec: consumerSpec(claim, script, "Never") });
  const phase = await waitFor(`pod ${name} to finish`, async () => {
    const p = (await k(["get", "pod", name, "-n", NS, "-o", "jsonpath={.status.phase}"])).trim();
    return p === "Succeeded" || p === "Failed" ? p : undefined;
  }, { timeoutMs: 15 * MIN, intervalMs: 3000, describe });
  const log = await cluster.podLog(NS, name);
  assert.equal(phase, "Succeeded", `pod ${name} failed: ${log}`);
  return log;
}

/** The long-running writer: a 3 MB blob, then one fsync'd line per second ("1", "2", ...), each acknowledged as SYNCED n. */
const WRITER = "writer";
const WRITER_SCRIPT = [
  "set -e",
  "head -c 3000000 /dev/urandom > /tmp/blob",
  "cp /tmp/blob /data/blob && sync /data/blob",
  "echo BLOB $(sha256sum /tmp/blob | cut -d' ' -f1)",
  "i=0",
  "while :; do i=$((i+1)); echo $i >> /data/seq; sync /data/seq; echo SYNCED $i; sleep 1; done",
].join("\n");
/** The reader: the blob's hash, and whether /data/seq is exactly the lines 1..n (n = its complete lines at the time). */
const READER_SCRIPT = [
  "set -e",
  "echo BLOB $(sha256sum /data/blob | cut -d' ' -f1)",
  "cp /data/seq /tmp/seq",
  "n=$(wc -l < /tmp/seq)",
  "seq 1 $n > /tmp/want",
  "head -n $n /tmp/seq > /tmp/got",
  "if cmp -s /tmp/want /tmp/got; then echo SEQ-OK $n; else echo SEQ-BAD $n; head -c 2000 /tmp/seq; fi",
].join("\n");

let blobHash = "";
let readers = 0;
async function writerSynced(): Promise<number> {
  const log = await cluster.podLog(NS, WRITER);
  let max = 0;
  for (const m of log.matchAll(/SYNCED (\d+)/g)) max = Math.max(max, Number(m[1]));
  return max;
}
/** Waits for the writer to acknowledge `more` fsyncs beyond what it had; fails if it stopped running. */
async function writerProgresses(what: string, more: number, timeoutMs = 10 * MIN): Promise<number> {
  const from = await writerSynced();
  return waitFor(`the writer to fsync ${more} more lines ${what} (from ${from})`, async () => {
    const phase = (await k(["get", "pod", WRITER, "-n", NS, "-o", "jsonpath={.status.phase}"])).trim();
    if (phase !== "Running") throw new Error(`the writer pod is ${phase}: ${tail(await cluster.podLog(NS, WRITER), 20)}`);
    const n = await writerSynced();
    return n >= from + more ? n : undefined;
  }, { timeoutMs, intervalMs: 3000, describe });
}
/** A new reader pod checks every fsync'd byte: the blob's hash and the sequence up to at least `atLeast`. */
async function checkData(atLeast: number): Promise<void> {
  readers += 1;
  const log = await runToCompletion(`reader-${readers}`, SHARED, READER_SCRIPT);
  assert.equal(/BLOB ([0-9a-f]{64})/.exec(log)?.[1], blobHash, `the blob's hash: ${log}`);
  const ok = /SEQ-OK (\d+)/.exec(log);
  assert.ok(ok, `the fsync'd lines are 1..n without a gap: ${log}`);
  assert.ok(Number(ok[1]) >= atLeast, `the reader saw ${ok[1]} lines, the writer had fsync'd ${atLeast}`);
}

test("helm install runs the operator as a pod that holds the leader Lease", { timeout: 30 * MIN }, async () => {
  // One replica: a second Node process costs minutes of the emulated node's CPU. The startup
  // allowance is the chart's knob for slow nodes: starting the operator took 2-5 min here.
  await cluster.plane.helm(["install", RELEASE, CHART, "--namespace", OPERATOR_NAMESPACE, "--create-namespace", "--set", "replicaCount=1", "--set", "startupTimeoutSeconds=900"]);
  const holder = await waitFor("the operator pod to be ready and hold the Lease", async () => {
    const pods = await operatorPods();
    if (pods.length !== 1 || !pods[0] || !podReady(pods[0])) return undefined;
    const h = await k(["get", "lease", LEASE_NAME, "-n", OPERATOR_NAMESPACE, "-o", "jsonpath={.spec.holderIdentity}"]).catch(() => "");
    return h.startsWith(pods[0].metadata.name) ? h : undefined;
  }, { timeoutMs: 20 * MIN, intervalMs: 3000, describe });
  assert.ok(holder);
});

test("two ZeroFSVolumes on S3 become Ready with their server pods running on the node", { timeout: 40 * MIN }, async () => {
  await k(["create", "namespace", NS]);
  // The cache claims' storage: local PersistentVolumes on the node (node.sh makes the folders).
  for (const i of [1, 2]) {
    await apply({
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: `node-cache-${i}` },
      spec: {
        capacity: { storage: "5Gi" },
        accessModes: ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: "node-local",
        local: { path: `/tmp/node/pv/cache-${i}` },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [NODE_NAME] }] }] } },
      },
    });
  }
  await apply({ apiVersion: "v1", kind: "Secret", metadata: { name: "pw", namespace: NS }, stringData: { password: OLD_PASSWORD } });
  // Its own password: only the shared volume rotates (each rotation stops and restarts a server,
  // minutes on this emulated node).
  await apply({ apiVersion: "v1", kind: "Secret", metadata: { name: "pw-scratch", namespace: NS }, stringData: { password: OLD_PASSWORD } });
  await apply({ apiVersion: "v1", kind: "Secret", metadata: { name: "s3", namespace: NS }, stringData: { AWS_ACCESS_KEY_ID: vgw.accessKeyId, AWS_SECRET_ACCESS_KEY: vgw.secretAccessKey } });
  const vgwPort = Number(new URL(vgw.endpoint).port);
  for (const [name, deletionPolicy] of [[SHARED, "Retain"], [SCRATCH, "Delete"]] as const) {
    await apply({
      apiVersion: "zerofs.io/v1alpha1",
      kind: "ZeroFSVolume",
      metadata: { name, namespace: NS },
      spec: {
        storage: { url: volumeUrl(name), endpoint: `http://${GUEST_HOST_ADDRESS}:${vgwPort}`, allowHttp: true, region: vgw.region, credentialsSecretRef: { name: "s3" } },
        encryption: { passwordSecretRef: { name: name === SHARED ? "pw" : "pw-scratch", key: "password" } },
        cache: { size: "2Gi", storageClassName: "node-local" },
        // The consumers write as root into the volume's root folder (owned by root): with root
        // squash they would be the anonymous user there.
        nfs: { squash: "none" },
        server: { resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } } },
        deletionPolicy,
      },
    });
  }
  for (const name of [SHARED, SCRATCH]) {
    await waitFor(`volume ${name} to be Ready`, () => volumeReady(name), { timeoutMs: 30 * MIN, intervalMs: 5000, describe });
    const pods = await serverPods(name);
    assert.equal(pods.length, 1, `one server pod for ${name}`);
    assert.equal(pods[0]?.spec.nodeName, NODE_NAME);
    assert.ok(pods[0] && podReady(pods[0]), `the server pod of ${name} passes its readiness probe`);
  }
  // Something in the Delete volume's store besides its key, for the deletion step to remove.
  await runToCompletion("scratch-writer", SCRATCH, "set -e\nhead -c 200000 /dev/urandom > /data/f && sync /data/f && echo DONE");
});

test("consumer pods share the volume: one writes and fsyncs, another reads the same bytes", { timeout: 30 * MIN }, async () => {
  await apply({ apiVersion: "v1", kind: "Pod", metadata: { name: WRITER, namespace: NS }, spec: consumerSpec(SHARED, WRITER_SCRIPT, "Never") });
  const synced = await waitFor("the writer's first fsync'd lines", async () => {
    const log = await cluster.podLog(NS, WRITER);
    const hash = /BLOB ([0-9a-f]{64})/.exec(log)?.[1];
    if (hash) blobHash = hash;
    const n = await writerSynced();
    return hash && n >= 3 ? n : undefined;
  }, { timeoutMs: 15 * MIN, intervalMs: 3000, describe });
  await checkData(synced);
});

test("killing the server pod: the Deployment replaces it, the consumer's hard mount carries on, every fsync'd byte is intact", { timeout: 30 * MIN }, async () => {
  const [old] = await serverPods(SHARED);
  assert.ok(old);
  const before = await writerSynced();
  // A 1 s grace period: the kubelet SIGKILLs the server long before it could shut down cleanly.
  await k(["delete", "pod", old.metadata.name, "-n", NS, "--grace-period=1", "--wait=false"]);
  await waitFor("a new, ready server pod", async () => {
    const pods = (await serverPods(SHARED)).filter((p) => p.metadata.uid !== old.metadata.uid && !p.metadata.deletionTimestamp);
    return pods.length === 1 && pods[0] && podReady(pods[0]);
  }, { timeoutMs: 15 * MIN, intervalMs: 3000, describe });
  const after = await writerProgresses("after the server pod was replaced", 5);
  assert.ok(after > before);
  await checkData(after);
});

test("editing the password Secret rotates the password through the real Jobs", { timeout: 40 * MIN }, async () => {
  const [oldServer] = await serverPods(SHARED);
  assert.ok(oldServer);
  await apply({ apiVersion: "v1", kind: "Secret", metadata: { name: "pw", namespace: NS }, stringData: { password: NEW_PASSWORD } });
  // Watch the Jobs and their pods while the rotation runs: the operator deletes the Jobs as soon
  // as it commits, which a poll could miss.
  const jobs = watch(["jobs", "-n", NS, "-l", "app.kubernetes.io/component=password-rotation"], "{.metadata.name} {.status.succeeded}");
  const jobPods = watch(["pods", "-n", NS, "-l", "app.kubernetes.io/component=password-rotation"], "{.metadata.name} {.status.phase} {.spec.containers[0].image}");
  let sawRotating = false;
  try {
    await waitFor("the rotation to succeed", async () => {
      const v = await volume(SHARED);
      if (v.status?.phase === "Rotating") sawRotating = true;
      return v.status?.passwordRotation?.phase === "Succeeded" && cond(v, "Ready")?.status === "True";
    }, { timeoutMs: 30 * MIN, intervalMs: 2000, describe });
  } finally {
    jobs.stop();
    jobPods.stop();
  }
  const succeededJobs = new Set(jobs.lines().filter((l) => /^\S+ [1-9]/.test(l)).map((l) => l.split(" ")[0] ?? ""));
  const serverImage = images.server.name.replace(/^docker\.io\//, "");
  for (const name of [SHARED]) {
    assert.ok([...succeededJobs].some((j) => j.startsWith(`zerofs-${name}-rotate-`)), `a rotate Job of ${name} succeeded: ${jobs.lines().join("; ")}`);
    const pods = jobPods.lines().filter((l) => l.startsWith(`zerofs-${name}-rotate-`) && / Succeeded \S*zerofs\/zerofs:/.test(l) && l.endsWith(serverImage));
    assert.ok(pods.length > 0, `a rotate Job pod of ${name} ran the server image to success: ${jobPods.lines().join("; ")}`);
  }
  assert.ok(sawRotating, "the volume reported the rotation in progress");
  for (const name of [SHARED]) {
    // The server image's password change ran in a Job's pod and exited 0 (the Job controller's count).
    assert.ok([...succeededJobs].some((j) => j.startsWith(`zerofs-${name}-rotate-`)), `a rotate Job of ${name} succeeded: ${[...succeededJobs].join(", ")}`);
    const v = await volume(name);
    const c = cond(v, "PasswordRotation");
    assert.equal(c?.reason, "Succeeded", `${name}: ${JSON.stringify(v.status)}`);
    assert.match(c?.message ?? "", /password was changed/);
    const reasons = await eventReasons(name);
    for (const r of ["PasswordRotationStarted", "PasswordRotated"]) assert.ok(reasons.includes(r), `${name}: Event ${r} among ${reasons.join(", ")}`);
  }
  const [newServer] = await serverPods(SHARED);
  assert.ok(newServer && newServer.metadata.uid !== oldServer.metadata.uid, "the server came back as a new pod");
  // The store, from the host, with the server's own keyring code: only the new password opens it
  // (and the other volume, whose Secret did not change, still has the old one).
  await assert.rejects(openKeyring(storeOf(SHARED), OLD_PASSWORD, { create: false }), WrongPasswordError, "the old password no longer opens the store");
  await openKeyring(storeOf(SHARED), NEW_PASSWORD, { create: false });
  await openKeyring(storeOf(SCRATCH), OLD_PASSWORD, { create: false });
  assert.equal((await volume(SCRATCH)).status?.passwordRotation?.phase ?? "Idle", "Idle");
  const after = await writerProgresses("after the rotation", 3);
  await checkData(after);
});

test("helm upgrade to a new operator image tag hands over without restarting the server; the consumer carries on", { timeout: 30 * MIN }, async () => {
  const [server] = await serverPods(SHARED);
  assert.ok(server);
  const restarts = server.status.containerStatuses?.[0]?.restartCount;
  const [oldOp] = await operatorPods();
  assert.ok(oldOp);
  await cluster.plane.helm(["upgrade", RELEASE, CHART, "--namespace", OPERATOR_NAMESPACE, "--reuse-values", "--set", `image.tag=${upgradeTag}`, "--set", "logLevel=debug"]);
  const holder = await waitFor("the upgraded operator pod to hold the Lease", async () => {
    const pods = await operatorPods();
    if (pods.length !== 1 || !pods[0] || pods[0].metadata.uid === oldOp.metadata.uid || !podReady(pods[0])) return undefined;
    if (!pods[0].spec.containers[0]?.image.endsWith(`:${upgradeTag}`)) return undefined;
    const h = await k(["get", "lease", LEASE_NAME, "-n", OPERATOR_NAMESPACE, "-o", "jsonpath={.spec.holderIdentity}"]).catch(() => "");
    return h.startsWith(pods[0].metadata.name) ? h : undefined;
  }, { timeoutMs: 20 * MIN, intervalMs: 3000, describe });
  assert.ok(holder);
  // The new leader reconciles every volume when it starts; give it time to (wrongly) touch the server.
  const synced = await writerProgresses("after the operator upgrade", 10);
  assert.ok(await volumeReady(SHARED));
  const [same] = await serverPods(SHARED);
  assert.equal(same?.metadata.uid, server.metadata.uid, "the server pod was not replaced");
  assert.equal(same?.status.containerStatuses?.[0]?.restartCount, restarts, "the server container was not restarted");
  await checkData(synced);
});

test("deleting a volume in use is blocked with a reason until its pod goes; Retain keeps the store", { timeout: 30 * MIN }, async () => {
  await k(["delete", "zerofsvolume", SHARED, "-n", NS, "--wait=false"]);
  const blocked = await waitFor("DeletionBlocked naming the writer pod", async () => {
    const v = await volume(SHARED);
    return cond(v, "Ready")?.reason === "DeletionBlocked" ? v : undefined;
  }, { timeoutMs: 10 * MIN, intervalMs: 2000, describe });
  assert.match(cond(blocked, "Ready")?.message ?? "", new RegExp(`Pod ${NS}/${WRITER} mounts PersistentVolumeClaim ${NS}/${SHARED}`));
  assert.equal(blocked.status?.phase, "Deleting");
  assert.ok((await eventReasons(SHARED)).includes("DeletionBlocked"));
  // Still blocked, and still serving, a while later.
  const synced = await writerProgresses("while the deletion waits", 5);
  assert.equal(cond(await volume(SHARED), "Ready")?.reason, "DeletionBlocked");
  await k(["delete", "pod", WRITER, "-n", NS, "--wait=false"]);
  // The readers have finished, but their pod objects still name the claim, and Kubernetes'
  // pvc-protection keeps a claim for as long as that is so: the operator says which.
  const finished = await waitFor("DeletionBlocked naming only the finished readers", async () => {
    const m = cond(await volume(SHARED), "Ready")?.message ?? "";
    return !m.includes(`Pod ${NS}/${WRITER} `) && m.includes(`Pod ${NS}/reader-1 (Succeeded) still references PersistentVolumeClaim ${NS}/${SHARED}`) ? m : undefined;
  }, { timeoutMs: 10 * MIN, intervalMs: 2000, describe });
  assert.match(finished, /Kubernetes keeps the claim until the pod is deleted/);
  await k(["delete", "pod", "-n", NS, ...Array.from({ length: readers }, (_, i) => `reader-${i + 1}`), "--wait=false"]);
  await waitFor(`volume ${SHARED} to be deleted`, async () => (await k(["get", "zerofsvolume", "-n", NS, "-o", "name"])).trim().split("\n").every((l) => !l.endsWith(`/${SHARED}`)), { timeoutMs: 15 * MIN, intervalMs: 3000, describe });
  const objects = await storeOf(SHARED).list("");
  assert.ok(objects.length > 1, `Retain keeps the store prefix (${objects.length} objects)`);
  // ...and it is still a usable volume: the new password opens it.
  await openKeyring(storeOf(SHARED), NEW_PASSWORD, { create: false });
  assert.ok(synced > 0);
});

test("deletionPolicy Delete removes the store prefix", { timeout: 30 * MIN }, async () => {
  assert.ok((await storeOf(SCRATCH).list("")).length > 1, "the Delete volume's store holds data before");
  await k(["delete", "pod", "scratch-writer", "-n", NS]);
  await k(["delete", "zerofsvolume", SCRATCH, "-n", NS, "--wait=false"]);
  await waitFor(`volume ${SCRATCH} to be deleted`, async () => (await k(["get", "zerofsvolume", "-n", NS, "-o", "name"])).trim() === "", { timeoutMs: 15 * MIN, intervalMs: 3000, describe });
  assert.deepEqual(await storeOf(SCRATCH).list(""), [], "nothing is left under the Delete volume's prefix");
});

test("helm uninstall keeps the CRD and leaves no operator objects", { timeout: 15 * MIN }, async () => {
  await cluster.plane.helm(["uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE]);
  await waitFor("the operator's pods to be gone", async () => (await operatorPods()).length === 0, { timeoutMs: 5 * MIN, intervalMs: 2000, describe });
  assert.match(await k(["get", "crd", "zerofsvolumes.zerofs.io", "-o", "name"]), /zerofsvolumes/);
  const sel = `app.kubernetes.io/instance=${RELEASE}`;
  assert.equal((await k(["get", "all,serviceaccount,role,rolebinding,configmap,secret", "-n", OPERATOR_NAMESPACE, "-l", sel, "-o", "name"])).trim(), "");
  assert.equal((await k(["get", "clusterrole,clusterrolebinding", "-l", sel, "-o", "name"])).trim(), "");
  // The leader Lease is the operator's own record, not a chart object, and it stays. The leader
  // releases it on a graceful stop when it still may (helm upgrade), but helm uninstall deletes
  // the operator's Role and ServiceAccount right after its Deployment, without waiting for the
  // pod, so the release is usually refused ("could not release the leader Lease (it expires by
  // itself)"). Either way nobody holds it any more: released, or no longer renewed and expired.
  const lease = async (): Promise<{ holder: string; renew: string; duration: number }> => {
    const j = JSON.parse(await k(["get", "lease", LEASE_NAME, "-n", OPERATOR_NAMESPACE, "-o", "json"])) as { spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number } };
    return { holder: j.spec?.holderIdentity ?? "", renew: j.spec?.renewTime ?? "", duration: j.spec?.leaseDurationSeconds ?? 0 };
  };
  const last = await lease();
  if (last.holder !== "") {
    assert.ok(last.duration > 0 && last.renew !== "", `a held Lease names its duration and renewal: ${JSON.stringify(last)}`);
    // renewTime is the (guest) operator's clock, so no comparison with ours: unchanged for a
    // whole lease duration means expired for every candidate.
    await new Promise((r) => setTimeout(r, last.duration * 1000 + 2000));
    const later = await lease();
    assert.equal(later.renew, last.renew, `nobody renews the Lease after helm uninstall: ${JSON.stringify(later)}`);
  }
});
