/**
 * Running the operator in-process against the test control plane with the identity the chart
 * gives it: the chart's ServiceAccount and RBAC are rendered by the real helm and applied, and the
 * operator authenticates with a token of that ServiceAccount, so a missing permission in the
 * chart fails these tests the way it would fail in a cluster.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { R } from "../../operator/src/kube/resources.ts";
import type { KubeClient } from "../../operator/src/kube/client.ts";
import { isAlreadyExists } from "../../operator/src/kube/errors.ts";
import { Operator, type OperatorOptions } from "../../operator/src/operator.ts";
import type { ControlPlane } from "./controlplane.ts";

export const CHART = "charts/zerofs-operator";
export const OPERATOR_NAMESPACE = "zerofs-system";
export const RELEASE = "zerofs";
/** The chart's resource names for release "zerofs" (release-qualified full name). */
export const SERVICE_ACCOUNT = `${RELEASE}-zerofs-operator`;
export const LEASE_NAME = `${RELEASE}-zerofs-operator`;

export async function ensureNamespace(c: KubeClient, name: string): Promise<void> {
  try {
    await c.create({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

/** Renders the chart's ServiceAccount and RBAC with helm (extra `helmArgs`, e.g. --set watchNamespace=x) and applies them. */
export async function applyChartRbac(plane: ControlPlane, namespace = OPERATOR_NAMESPACE, helmArgs: string[] = []): Promise<void> {
  await ensureNamespace(plane.admin, namespace);
  const manifests = await plane.helm([
    "template", RELEASE, CHART, "--namespace", namespace, ...helmArgs,
    "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml",
  ]);
  await plane.kubectl(["apply", "--server-side", "--field-manager=e2e-test", "-f", "-"], manifests);
}

/** A kubeconfig that authenticates as the ServiceAccount, with a bound token from the TokenRequest API. */
export async function serviceAccountKubeConfig(plane: ControlPlane, namespace = OPERATOR_NAMESPACE, sa = SERVICE_ACCOUNT): Promise<KubeConfig> {
  const token = (await plane.kubectl(["create", "token", sa, "-n", namespace, "--duration=4h"])).trim();
  const admin = plane.adminKubeConfig.getCurrentCluster();
  if (!admin) throw new Error("admin kubeconfig has no cluster");
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "local", server: admin.server, caData: admin.caData, skipTLSVerify: false }],
    users: [{ name: sa, token }],
    contexts: [{ name: "local", cluster: "local", user: sa }],
    currentContext: "local",
  });
  return kc;
}

export const testLogger = (name: string): Logger =>
  pino({ level: process.env.OPERATOR_LOG_LEVEL ?? "warn", base: { op: name } }, pino.destination(2));

/** `kubectl auth can-i` as the chart's ServiceAccount (impersonated by the admin): true for "yes". */
export async function saCan(plane: ControlPlane, verb: string, resource: string, namespace?: string): Promise<boolean> {
  const args = ["auth", "can-i", verb, resource, `--as=system:serviceaccount:${OPERATOR_NAMESPACE}:${SERVICE_ACCOUNT}`];
  args.push(...(namespace ? ["-n", namespace] : ["--all-namespaces"]));
  try {
    return (await plane.kubectl(args)).trim() === "yes";
  } catch (err) {
    if (/exit 1: /.test((err as Error).message)) return false; // "no" exits 1
    throw err;
  }
}

/** An operator tuned for tests: short polls, short backoff. */
export function newOperator(kc: KubeConfig, o: Partial<OperatorOptions> & { name?: string } = {}): Operator {
  return new Operator({
    kubeConfig: kc,
    serverImage: "zerofs/zerofs:test",
    log: testLogger(o.name ?? "op"),
    deletionPollMs: 300,
    rotationPollMs: 300,
    queueBaseDelayMs: 200,
    // One pod per password Job: the Job controller waits 10 s, 20 s... between pod retries.
    jobBackoffLimit: 0,
    leaderElection: false,
    ...o,
  });
}

/** Counts the operator's write requests (create/apply/patch/update/delete) while `fn` runs. */
export async function countWrites(op: Operator, fn: () => Promise<void>): Promise<string[]> {
  const writes: string[] = [];
  const stop = op.client.observe((verb, resource) => {
    if (["create", "apply", "patch", "update", "delete"].includes(verb)) writes.push(`${verb} ${resource}`);
  });
  try {
    await fn();
  } finally {
    stop();
  }
  return writes;
}

export { R };
