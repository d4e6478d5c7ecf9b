/**
 * The chart with the real helm against a real API server: lint, template, install (CRD from the
 * chart), the examples, and two in-process operator replicas authenticated as the chart's
 * ServiceAccount electing one leader through the chart's Lease RBAC.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import type { ZeroFSVolume } from "../src/api/types.ts";
import type { KubeClient } from "../src/kube/client.ts";
import type { Deployment, KubeObject, Lease } from "../src/kube/types.ts";
import type { Operator } from "../src/operator.ts";
import { startControlPlane, type ControlPlane } from "../../e2e/k8s/controlplane.ts";
import { CHART, LEASE_NAME, OPERATOR_NAMESPACE, RELEASE, SERVICE_ACCOUNT, ensureNamespace, newOperator, R, serviceAccountKubeConfig } from "../../e2e/k8s/harness.ts";
import { waitFor } from "../../e2e/k8s/wait.ts";

type RbacRole = KubeObject & { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
/** group/resource -> sorted verbs. */
function rulesTable(r: RbacRole): Record<string, string[]> {
  const t: Record<string, string[]> = {};
  for (const rule of r.rules) for (const g of rule.apiGroups) for (const res of rule.resources) t[`${g}/${res}`] = [...(t[`${g}/${res}`] ?? []), ...rule.verbs].sort();
  return t;
}
/** What the reconcile calls (see the comment in templates/_helpers.tpl). */
const NAMESPACED_RULES: Record<string, string[]> = {
  // create/delete: the provisioner's dedicated mode (a volume per claim).
  "zerofs.io/zerofsvolumes": ["create", "delete", "get", "list", "patch", "watch"],
  "zerofs.io/zerofsvolumes/status": ["patch"],
  "zerofs.io/zerofsvolumes/finalizers": ["update"],
  "apps/deployments": ["create", "get", "list", "patch", "watch"],
  "/services": ["create", "get", "list", "patch", "watch"],
  "networking.k8s.io/networkpolicies": ["create", "get", "list", "patch", "watch"],
  "/persistentvolumeclaims": ["create", "delete", "get", "list", "patch", "watch"],
  // The provisioner as resizer: the claim's capacity after an expansion.
  "/persistentvolumeclaims/status": ["patch"],
  "/secrets": ["create", "get", "list", "patch", "watch"],
  "batch/jobs": ["create", "delete", "list", "watch"],
  "/pods": ["list"],
  "/events": ["create", "patch"],
};
const CLUSTER_RULES: Record<string, string[]> = {
  "/persistentvolumes": ["create", "delete", "get", "list", "patch", "watch"],
  "storage.k8s.io/storageclasses": ["get", "list", "watch"],
};

const docs = (text: string): KubeObject[] => parseAllDocuments(text).map((d) => d.toJS() as KubeObject).filter((d) => d && d.kind);

describe("helm chart against a real API server", { timeout: 50 * 60_000 }, () => {
  let plane: ControlPlane;
  let admin: KubeClient;
  const operators: Operator[] = [];

  before(async () => {
    plane = await startControlPlane({ preApplyCrds: false });
    admin = plane.admin;
  }, { timeout: 45 * 60_000 });

  after(async () => {
    for (const o of operators) await o.stop();
    await plane?.stop();
  });

  it("helm lint passes", async () => {
    const out = await plane.helm(["lint", CHART, "--strict", "--set", "image.tag=0.1.0"]);
    assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it("helm template renders least-privilege RBAC, a hardened Deployment, and the CRD behind crds.enabled", async () => {
    const all = docs(await plane.helm(["template", RELEASE, CHART, "--namespace", OPERATOR_NAMESPACE]));
    const kinds = all.map((d) => d.kind).sort();
    assert.deepEqual(kinds, ["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"]);
    const crd = all.find((d) => d.kind === "CustomResourceDefinition")!;
    assert.equal(crd.metadata.annotations?.["helm.sh/resource-policy"], "keep");
    const clusterRole = all.find((d) => d.kind === "ClusterRole") as RbacRole;
    assert.deepEqual(rulesTable(clusterRole), { ...CLUSTER_RULES, ...NAMESPACED_RULES }, "every verb is one the reconcile calls");
    assert.ok(!clusterRole.rules.some((r) => r.verbs.includes("*") || r.resources.includes("*")), "no wildcards");

    // watchNamespace: the namespaced rules move into a Role there; the ClusterRole keeps PVs only.
    const ns = docs(await plane.helm(["template", RELEASE, CHART, "--namespace", OPERATOR_NAMESPACE, "--set", "watchNamespace=team-a"]));
    const byKind = (k: string) => ns.filter((d) => d.kind === k);
    assert.equal(byKind("ClusterRole").length, 1);
    assert.deepEqual(rulesTable(byKind("ClusterRole")[0] as RbacRole), CLUSTER_RULES, "only what must be cluster-scoped");
    const role = byKind("Role").find((r) => r.metadata.namespace === "team-a") as RbacRole;
    assert.deepEqual(rulesTable(role), NAMESPACED_RULES);
    const binding = byKind("RoleBinding").find((r) => r.metadata.namespace === "team-a") as KubeObject & { subjects: { name: string; namespace: string }[] };
    assert.deepEqual(binding.subjects.map((x) => `${x.namespace}/${x.name}`), [`${OPERATOR_NAMESPACE}/${SERVICE_ACCOUNT}`]);
    await assert.rejects(
      plane.helm(["template", RELEASE, CHART, "--set", "watchNamespace=team-a", "--set", "volumePolicy.allowCrossNamespaceClaims=true"]),
      /allowCrossNamespaceClaims needs watchNamespace empty/,
    );
    const dep = all.find((d) => d.kind === "Deployment") as Deployment;
    const pod = dep.spec.template?.spec as { serviceAccountName: string; securityContext: { runAsNonRoot: boolean }; containers: { env: { name: string; value?: string }[]; securityContext: { readOnlyRootFilesystem: boolean }; livenessProbe: unknown; readinessProbe: unknown }[] };
    assert.equal(pod.serviceAccountName, SERVICE_ACCOUNT);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.containers[0]!.securityContext.readOnlyRootFilesystem, true);
    assert.ok(pod.containers[0]!.livenessProbe && pod.containers[0]!.readinessProbe);
    // A busy node must not get a healthy operator restarted: a minute without an answer, 5 s per try.
    const live = pod.containers[0]!.livenessProbe as { periodSeconds: number; failureThreshold: number; timeoutSeconds?: number };
    assert.ok(live.periodSeconds * live.failureThreshold >= 60, `liveness gives up after ${live.periodSeconds * live.failureThreshold} s`);
    assert.ok((live.timeoutSeconds ?? 1) >= 5, `liveness timeout ${live.timeoutSeconds ?? 1} s`);
    const env = new Map(pod.containers[0]!.env.map((e) => [e.name, e.value]));
    assert.equal(env.get("LEADER_ELECT"), "true");
    assert.equal(env.get("LEASE_NAME"), LEASE_NAME);
    assert.equal(env.get("ZEROFS_SERVER_IMAGE"), "zerofs/zerofs:0.1.0");
    // Safe volume defaults and a narrow volume policy, from the chart's values.
    assert.equal(env.get("DEFAULT_ALLOWED_CIDRS"), "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7");
    assert.equal(env.get("NETWORK_POLICY"), "true");
    assert.equal(env.get("METRICS_FROM"), "[]");
    assert.equal(env.get("ALLOW_CROSS_NAMESPACE_CLAIMS"), "false");
    assert.equal(env.get("ALLOWED_SERVER_IMAGES"), "");
    assert.equal(env.get("ALLOW_TOLERATIONS"), "false");
    const custom = docs(await plane.helm([
      "template", RELEASE, CHART, "--show-only", "templates/deployment.yaml",
      "--set-json", 'networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]',
      "--set-json", 'volumePolicy.allowedImages=["registry.example.com/zerofs/*"]',
      "--set-json", 'volumeDefaults.allowedCIDRs=["10.240.0.0/16"]',
    ]))[0] as Deployment;
    const cenv = new Map(((custom.spec.template?.spec as typeof pod).containers[0]!.env).map((e) => [e.name, e.value]));
    assert.deepEqual(JSON.parse(cenv.get("METRICS_FROM") ?? ""), [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }]);
    assert.equal(cenv.get("ALLOWED_SERVER_IMAGES"), "registry.example.com/zerofs/*");
    assert.equal(cenv.get("DEFAULT_ALLOWED_CIDRS"), "10.240.0.0/16");
    await assert.rejects(plane.helm(["template", RELEASE, CHART, "--set-json", "volumeDefaults.allowedCIDRs=[]"]), /allowedCIDRs/);

    const noCrd = docs(await plane.helm(["template", RELEASE, CHART, "--set", "crds.enabled=false"]));
    assert.ok(!noCrd.some((d) => d.kind === "CustomResourceDefinition"));
    await assert.rejects(plane.helm(["template", RELEASE, CHART, "--set", "logLevel=loud"]), /logLevel/);
    await assert.rejects(plane.helm(["template", RELEASE, CHART, "--set", "replicaCount=-1"]), /replicaCount/);
  });

  it("helm install creates the CRD and the operator's objects; the examples are accepted", async () => {
    const out = await plane.helm(["install", RELEASE, CHART, "--namespace", OPERATOR_NAMESPACE, "--create-namespace"]);
    assert.match(out, /STATUS: deployed/);
    assert.match(out, /kind: ZeroFSVolume/, "NOTES.txt carries a ready-to-apply example");
    await waitFor("the CRD Established", async () => {
      const crd = await admin.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(R.crds, undefined, "zerofsvolumes.zerofs.io");
      return crd?.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
    });
    const dep = await admin.get<Deployment>(R.deployments, OPERATOR_NAMESPACE, `${RELEASE}-zerofs-operator`);
    assert.equal(dep?.spec.replicas, 2);
    assert.ok(await admin.get(R.serviceAccounts, OPERATOR_NAMESPACE, SERVICE_ACCOUNT));

    await ensureNamespace(admin, "examples");
    await waitFor("the examples to apply (the CRD is being served)", async () => {
      await plane.kubectl(["apply", "-n", "examples", "-f", "examples/"]);
      return true;
    }, { timeoutMs: 30_000, intervalMs: 1000 });
    const v = await admin.get<ZeroFSVolume>(R.volumes, "examples", "shared");
    assert.equal(v?.spec.storage.url, "s3://my-bucket/zerofs/shared");
  });

  it("two operator replicas with the chart's identity: one leader, and the other takes over", async () => {
    const kc = await serviceAccountKubeConfig(plane);
    const mk = (name: string) =>
      newOperator(kc, {
        name,
        leaderElection: { namespace: OPERATOR_NAMESPACE, name: LEASE_NAME, identity: name, leaseDurationSeconds: 4, renewDeadlineMs: 3000, retryPeriodMs: 500 },
      });
    const a = mk("replica-a");
    const b = mk("replica-b");
    operators.push(a, b);
    await a.start();
    await b.start();
    const leader = await waitFor("a leader", async () => operators.find((o) => o.isLeader));
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(operators.filter((o) => o.isLeader).length, 1, "exactly one leader");
    const lease = await admin.get<Lease>(R.leases, OPERATOR_NAMESPACE, LEASE_NAME);
    assert.equal(lease?.spec.holderIdentity, leader === a ? "replica-a" : "replica-b");
    // The leader reconciles the example volume.
    await waitFor("the example's server Deployment", () => admin.get(R.deployments, "examples", "zerofs-shared"));

    // The leader shuts down gracefully: it releases the Lease and the standby takes over.
    const standby = leader === a ? b : a;
    const t0 = Date.now();
    await leader.stop();
    await waitFor("the standby to lead", async () => standby.isLeader, { timeoutMs: 20_000 });
    const handover = Date.now() - t0;
    assert.ok(handover < 10_000, `hand-over took ${handover} ms`);
    const lease2 = await admin.get<Lease>(R.leases, OPERATOR_NAMESPACE, LEASE_NAME);
    assert.equal(lease2?.spec.holderIdentity, standby === a ? "replica-a" : "replica-b");
    assert.ok((lease2?.spec.leaseTransitions ?? 0) >= 1);
    // The new leader acts: a spec change reaches the Deployment.
    await admin.patch(R.volumes, "examples", "shared", { spec: { server: { logLevel: "warn" } } });
    await waitFor("the new leader to apply the change", async () =>
      JSON.stringify((await admin.get<Deployment>(R.deployments, "examples", "zerofs-shared"))?.spec.template).includes('"ZEROFS_LOG_LEVEL","value":"warn"'),
    );
  });

  it("helm uninstall keeps the CRD (and so every volume)", async () => {
    for (const o of operators) await o.stop();
    await plane.helm(["uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE]);
    await waitFor("the operator Deployment gone", async () => (await admin.get(R.deployments, OPERATOR_NAMESPACE, `${RELEASE}-zerofs-operator`)) === undefined);
    assert.ok(await admin.get(R.crds, undefined, "zerofsvolumes.zerofs.io"), "CRD kept");
    assert.ok(await admin.get(R.volumes, "examples", "shared"), "volumes kept");
  });
});
