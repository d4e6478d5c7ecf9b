/**
 * The chart on a real node: `helm install` runs the operator image as pods (two replicas, leader
 * election on); the kubelet's readiness probes pass, the operators reach the API server through
 * the "kubernetes" Service (kube-proxy), one of them holds the Lease; `helm uninstall` removes
 * the operator and keeps the CRD.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { CHART, LEASE_NAME, OPERATOR_NAMESPACE, RELEASE } from "../k8s/harness.ts";
import { waitFor } from "../k8s/wait.ts";
import { buildImages } from "./images.ts";
import { startNodeCluster, type NodeCluster } from "./node.ts";

let cluster: NodeCluster;

before(async () => {
  const images = await buildImages();
  cluster = await startNodeCluster({ images: [images.server.archive, images.operator.archive] });
}, { timeout: 60 * 60_000 });

after(async () => {
  await cluster?.stop();
}, { timeout: 5 * 60_000 });

interface Deployment {
  status?: { readyReplicas?: number; availableReplicas?: number };
}

test("helm install runs the operator as ready pods holding the leader Lease", { timeout: 30 * 60_000 }, async () => {
  const k = (args: string[]): Promise<string> => cluster.plane.kubectl(args);
  await cluster.plane.helm(["install", RELEASE, CHART, "--namespace", OPERATOR_NAMESPACE, "--create-namespace"]);
  const describe = async (): Promise<string> =>
    `${await k(["get", "pods", "-n", OPERATOR_NAMESPACE, "-o", "wide"]).catch((e: unknown) => String(e))}\n` +
    `${await k(["get", "events", "-n", OPERATOR_NAMESPACE]).catch((e: unknown) => String(e))}\n${await cluster.describe()}`;
  await waitFor("the operator Deployment's two replicas to be ready", async () => {
    const d = JSON.parse(await k(["get", "deployment", "-n", OPERATOR_NAMESPACE, "-l", `app.kubernetes.io/instance=${RELEASE}`, "-o", "json"])) as { items: Deployment[] };
    return d.items.length === 1 && d.items[0]?.status?.readyReplicas === 2;
  }, { timeoutMs: 20 * 60_000, intervalMs: 3000, describe });
  const holder = await waitFor("a leader in the Lease", async () => {
    const h = await k(["get", "lease", LEASE_NAME, "-n", OPERATOR_NAMESPACE, "-o", "jsonpath={.spec.holderIdentity}"]).catch(() => "");
    return h || undefined;
  }, { timeoutMs: 5 * 60_000, intervalMs: 2000, describe });
  const pods = (await k(["get", "pods", "-n", OPERATOR_NAMESPACE, "-o", "jsonpath={.items[*].metadata.name}"])).split(" ");
  assert.ok(pods.some((p) => holder.startsWith(p)), `the Lease holder ${holder} is one of the operator pods ${pods.join(", ")}`);

  await cluster.plane.helm(["uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE]);
  await waitFor("the operator's pods to be gone", async () => (await k(["get", "pods", "-n", OPERATOR_NAMESPACE, "-o", "name"])).trim() === "", { timeoutMs: 5 * 60_000, intervalMs: 2000, describe });
  assert.match(await k(["get", "crd", "zerofsvolumes.zerofs.io", "-o", "name"]), /zerofsvolumes/);
});
