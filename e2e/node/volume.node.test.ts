/**
 * A ZeroFSVolume on a real node (work in progress of issue 11, step 4): the chart's operator runs
 * as a pod, the volume's store is an S3 bucket on versitygw on the host (reached by the server
 * pod through the VM's forwarded port), its cache claim binds a local PersistentVolume on the
 * node, and the volume becomes Ready with the real server pod running and its readiness probe
 * really passing; two consumer pods mount its claim through the kubelet's NFS mount: one writes
 * and fsyncs, the other reads the bytes back.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startVersitygw, type Versitygw } from "../../test/support/versitygw.ts";
import { CHART, OPERATOR_NAMESPACE, RELEASE } from "../k8s/harness.ts";
import { waitFor } from "../k8s/wait.ts";
import { GUEST_HOST_ADDRESS } from "../vm/vm.ts";
import { buildImages } from "./images.ts";
import { NODE_NAME, startNodeCluster, type NodeCluster } from "./node.ts";

let cluster: NodeCluster;
let vgw: Versitygw;
const NS = "apps";

before(async () => {
  const images = await buildImages();
  vgw = await startVersitygw();
  const vgwPort = Number(new URL(vgw.endpoint).port);
  cluster = await startNodeCluster({ images: [images.server.archive, images.operator.archive], forwardPorts: [vgwPort] });
}, { timeout: 60 * 60_000 });

after(async () => {
  await cluster?.stop();
  await vgw?.stop();
}, { timeout: 5 * 60_000 });

const apply = (o: unknown): Promise<string> => cluster.plane.kubectl(["apply", "-f", "-"], JSON.stringify(o));

test("a ZeroFSVolume becomes Ready with its server pod running on the node", { timeout: 40 * 60_000 }, async () => {
  const k = (args: string[]): Promise<string> => cluster.plane.kubectl(args);
  await cluster.plane.helm(["install", RELEASE, CHART, "--namespace", OPERATOR_NAMESPACE, "--create-namespace", "--set", "replicaCount=1"]);
  await k(["create", "namespace", NS]);
  // The cache claim's storage: a local PersistentVolume on the node (node.sh makes the folder).
  await apply({
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name: "node-cache-1" },
    spec: {
      capacity: { storage: "5Gi" },
      accessModes: ["ReadWriteOnce"],
      persistentVolumeReclaimPolicy: "Delete",
      storageClassName: "node-local",
      local: { path: "/tmp/node/pv/cache-1" },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [NODE_NAME] }] }] } },
    },
  });
  await apply({ apiVersion: "v1", kind: "Secret", metadata: { name: "pw", namespace: NS }, stringData: { password: "correct horse battery staple, node edition" } });
  await apply({ apiVersion: "v1", kind: "Secret", metadata: { name: "s3", namespace: NS }, stringData: { AWS_ACCESS_KEY_ID: vgw.accessKeyId, AWS_SECRET_ACCESS_KEY: vgw.secretAccessKey } });
  const vgwPort = Number(new URL(vgw.endpoint).port);
  await apply({
    apiVersion: "zerofs.io/v1alpha1",
    kind: "ZeroFSVolume",
    metadata: { name: "shared", namespace: NS },
    spec: {
      storage: { url: `s3://${vgw.bucket}/node/shared`, endpoint: `http://${GUEST_HOST_ADDRESS}:${vgwPort}`, allowHttp: true, region: vgw.region, credentialsSecretRef: { name: "s3" } },
      encryption: { passwordSecretRef: { name: "pw", key: "password" } },
      cache: { size: "2Gi", storageClassName: "node-local" },
      // The consumer pods below write as root into the volume's root folder (owned by root):
      // with root squash they would be the anonymous user there.
      nfs: { squash: "none" },
      server: { resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } } },
      deletionPolicy: "Retain",
    },
  });
  const describe = async (): Promise<string> =>
    `${await k(["get", "zerofsvolume,pods,pvc,pv", "-A", "-o", "wide"]).catch((e: unknown) => String(e))}\n` +
    `${await k(["get", "events", "-n", NS]).catch((e: unknown) => String(e))}\n${await cluster.describe()}`;
  await waitFor("the volume to be Ready", async () => {
    const v = JSON.parse(await k(["get", "zerofsvolume", "shared", "-n", NS, "-o", "json"])) as { status?: { conditions?: { type: string; status: string }[] } };
    return v.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  }, { timeoutMs: 30 * 60_000, intervalMs: 5000, describe });
  const pods = JSON.parse(await k(["get", "pods", "-n", NS, "-l", "app.kubernetes.io/component=server", "-o", "json"])) as { items: { spec: { nodeName?: string }; status: { conditions?: { type: string; status: string }[] } }[] };
  assert.equal(pods.items.length, 1);
  assert.equal(pods.items[0]?.spec.nodeName, NODE_NAME);
  assert.ok(pods.items[0]?.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"), "the server pod's readiness probe passes");
});

async function runToCompletion(name: string, script: string): Promise<{ phase: string; log: string }> {
  const images = await buildImages();
  await apply({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS },
    spec: {
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      // As root: the image's user is 65532, and the new volume's root folder is root's (0755).
      securityContext: { runAsUser: 0, runAsGroup: 0 },
      containers: [{ name: "c", image: images.server.name, imagePullPolicy: "Never", command: ["sh", "-c", script], volumeMounts: [{ name: "data", mountPath: "/data" }] }],
      volumes: [{ name: "data", persistentVolumeClaim: { claimName: "shared" } }],
    },
  });
  const phase = await waitFor(`pod ${name} to finish`, async () => {
    const p = (await cluster.plane.kubectl(["get", "pod", name, "-n", NS, "-o", "jsonpath={.status.phase}"])).trim();
    return p === "Succeeded" || p === "Failed" ? p : undefined;
  }, {
    timeoutMs: 15 * 60_000,
    intervalMs: 3000,
    describe: async () => `${await cluster.plane.kubectl(["get", "events", "-n", NS]).catch((e: unknown) => String(e))}\n${await cluster.describe()}`,
  });
  return { phase, log: await cluster.podLog(NS, name) };
}

test("two consumer pods share the volume: one writes and fsyncs, the other reads the same bytes", { timeout: 40 * 60_000 }, async () => {
  const w = await runToCompletion("writer", [
    "set -e",
    "head -c 3000000 /dev/urandom > /tmp/blob",
    "cp /tmp/blob /data/blob && sync /data/blob",
    "sha256sum /tmp/blob | cut -d' ' -f1 > /data/blob.sha256",
    "sync",
    "echo WROTE $(cat /data/blob.sha256)",
  ].join("\n"));
  assert.equal(w.phase, "Succeeded", `writer: ${w.log}`);
  const wrote = /WROTE ([0-9a-f]{64})/.exec(w.log)?.[1];
  assert.ok(wrote, `the writer printed its hash: ${w.log}`);
  const r = await runToCompletion("reader", "set -e\necho READ $(sha256sum /data/blob | cut -d' ' -f1)");
  assert.equal(r.phase, "Succeeded", `reader: ${r.log}`);
  assert.equal(/READ ([0-9a-f]{64})/.exec(r.log)?.[1], wrote);
});
