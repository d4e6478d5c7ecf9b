/**
 * The chart installed with watchNamespace (real helm install, real API server): the operator's
 * permissions are a Role in that namespace plus PersistentVolumes cluster-wide, checked with
 * `kubectl auth can-i`, and the operator, authenticated as the chart's ServiceAccount, runs a
 * volume's whole life under exactly those permissions (any call outside them fails the test).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ZeroFSVolume } from "../src/api/types.ts";
import type { KubeClient } from "../src/kube/client.ts";
import type { Deployment, NetworkPolicy, PersistentVolume, PersistentVolumeClaim, Secret } from "../src/kube/types.ts";
import type { Operator } from "../src/operator.ts";
import { startControlPlane, type ControlPlane } from "../../e2e/k8s/controlplane.ts";
import { CHART, OPERATOR_NAMESPACE, RELEASE, ensureNamespace, newOperator, R, saCan, serviceAccountKubeConfig } from "../../e2e/k8s/harness.ts";
import { markPodReady, podsMatching } from "../../e2e/k8s/kubelet.ts";
import { waitFor } from "../../e2e/k8s/wait.ts";

const NS = "team-a";
const SERVER_PODS = "app.kubernetes.io/name=zerofs,app.kubernetes.io/component=server";
const secret = (name: string, data: Record<string, string>): Secret => ({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace: NS }, type: "Opaque", stringData: data });
const cond = (v: ZeroFSVolume | undefined, type: string) => v?.status?.conditions?.find((x) => x.type === type);

describe("operator with watchNamespace: namespaced RBAC", { timeout: 50 * 60_000 }, () => {
  let plane: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  const getVolume = (name: string) => admin.get<ZeroFSVolume>(R.volumes, NS, name);
  const describeVolume = (name: string) => async () => JSON.stringify((await getVolume(name))?.status ?? null);

  before(async () => {
    plane = await startControlPlane({ preApplyCrds: true });
    admin = plane.admin;
    await ensureNamespace(admin, NS);
    await ensureNamespace(admin, "elsewhere");
    // The real chart, installed the way a user would; no kubelet, so its operator pods never run
    // (replicaCount 0): the operator runs in-process with the ServiceAccount's token instead.
    await plane.helm([
      "install", RELEASE, CHART, "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
      "--set", `watchNamespace=${NS}`, "--set", "crds.enabled=false", "--set", "replicaCount=0",
    ]);
    op = newOperator(await serviceAccountKubeConfig(plane), { name: "ns-op", namespace: NS });
    await op.start();
  }, { timeout: 45 * 60_000 });

  after(async () => {
    await op?.stop();
    await plane?.stop();
  });

  it("grants the namespaced verbs in the watched namespace only, and PersistentVolumes cluster-wide", async () => {
    // In the watched namespace: what the reconcile needs.
    for (const [verb, res] of [["create", "secrets"], ["patch", "secrets"], ["delete", "persistentvolumeclaims"], ["create", "networkpolicies"], ["list", "pods"], ["delete", "jobs"]] as const) {
      assert.equal(await saCan(plane, verb, res, NS), true, `${verb} ${res} in ${NS}`);
    }
    // Never more than that, even there.
    for (const [verb, res] of [["delete", "secrets"], ["get", "pods"], ["delete", "deployments"], ["update", "secrets"]] as const) {
      assert.equal(await saCan(plane, verb, res, NS), false, `${verb} ${res} in ${NS}`);
    }
    // Nothing namespaced anywhere else.
    for (const [verb, res] of [["create", "secrets"], ["patch", "secrets"], ["get", "secrets"], ["delete", "persistentvolumeclaims"], ["list", "pods"], ["create", "deployments"]] as const) {
      assert.equal(await saCan(plane, verb, res, "elsewhere"), false, `${verb} ${res} in elsewhere`);
      assert.equal(await saCan(plane, verb, res), false, `${verb} ${res} in all namespaces`);
    }
    // PersistentVolumes are cluster-scoped: the one ClusterRole.
    assert.equal(await saCan(plane, "delete", "persistentvolumes"), true);
    assert.equal(await saCan(plane, "list", "nodes"), false);
  });

  it("runs a volume's life under those permissions: children with safe defaults, NetworkPolicy, Ready, blocked and finished deletion", async () => {
    await admin.create(secret("pw", { password: "first-password" }));
    await admin.create(secret("s3", { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "key" }));
    await admin.create({
      apiVersion: "zerofs.io/v1alpha1",
      kind: "ZeroFSVolume",
      metadata: { name: "data", namespace: NS },
      spec: {
        storage: { url: `s3://bucket/${NS}/data`, endpoint: "http://minio.storage:9000", allowHttp: true, credentialsSecretRef: { name: "s3" } },
        encryption: { passwordSecretRef: { name: "pw" } },
      },
    });
    const dep = await waitFor("Deployment zerofs-data", () => admin.get<Deployment>(R.deployments, NS, "zerofs-data"), { describe: describeVolume("data") });
    const env = new Map(((dep.spec.template?.spec as { containers: { env: { name: string; value?: string }[] }[] }).containers[0]!.env).map((e) => [e.name, e.value]));
    assert.equal(env.get("ZEROFS_SQUASH"), "root");
    assert.equal(env.get("ZEROFS_INSECURE"), "false");
    assert.equal(env.get("ZEROFS_ALLOWED_CLIENTS"), "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7");
    const np = await waitFor("NetworkPolicy zerofs-data", () => admin.get<NetworkPolicy>(R.networkPolicies, NS, "zerofs-data"));
    assert.deepEqual(np.spec.policyTypes, ["Ingress"]);
    assert.deepEqual(np.spec.ingress?.map((r) => r.ports?.map((p) => p.port)), [[2049]], "metrics closed unless someone is named");
    await waitFor("PersistentVolume", () => admin.get<PersistentVolume>(R.pvs, undefined, `zerofs-${NS}-data`));
    await waitFor("claim", () => admin.get<PersistentVolumeClaim>(R.pvcs, NS, "data"));
    const pod = await waitFor("a server pod", async () => (await podsMatching(admin, NS, SERVER_PODS))[0]);
    await markPodReady(admin, pod);
    await waitFor("Ready=True", async () => cond(await getVolume("data"), "Ready")?.status === "True", { timeoutMs: 60_000, describe: describeVolume("data") });

    // Deletion looks for users of the volume within the namespace it may read.
    await admin.create({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "app", namespace: NS },
      spec: { containers: [{ name: "app", image: "busybox" }], volumes: [{ name: "d", persistentVolumeClaim: { claimName: "data" } }] },
    });
    await admin.delete(R.volumes, NS, "data");
    const blocked = await waitFor("DeletionBlocked", async () => {
      const v = await getVolume("data");
      return cond(v, "Ready")?.reason === "DeletionBlocked" ? v : undefined;
    }, { describe: describeVolume("data") });
    assert.match(cond(blocked, "Ready")?.message ?? "", new RegExp(`Pod ${NS}/app mounts PersistentVolumeClaim ${NS}/data`));
    await admin.delete(R.pods, NS, "app");
    await waitFor("the volume gone", async () => (await getVolume("data")) === undefined, { timeoutMs: 60_000, describe: describeVolume("data") });
    await waitFor("the PV gone", async () => (await admin.get(R.pvs, undefined, `zerofs-${NS}-data`)) === undefined);
    const metrics = await op.metrics.registry.metrics();
    assert.doesNotMatch(metrics, /code="403"/, "no call was refused by RBAC");
  });
});
