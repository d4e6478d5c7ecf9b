/**
 * A ZeroFSVolume on a real node (work in progress of issue 11, step 4): the chart's operator runs
 * as a pod, the volume's store is an S3 bucket on versitygw on the host (reached by the server
 * pod through the VM's forwarded port), its cache claim binds a local PersistentVolume on the
 * node, and the volume becomes Ready with the real server pod running and its readiness probe
 * really passing.
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
