/**
 * Password rotation against a real API server: the operator scales the server to zero, runs the
 * password-change Job, and restarts the server with the new password; the test plays the
 * kubelet (server pod readiness, the Job pod's exit). The server's password change itself is
 * tested for real in password-change.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ANN_PASSWORD_HASH } from "../src/api/constants.ts";
import type { ZeroFSVolume } from "../src/api/types.ts";
import type { KubeClient } from "../src/kube/client.ts";
import type { Deployment, Job, Secret } from "../src/kube/types.ts";
import type { Operator } from "../src/operator.ts";
import { startControlPlane, type ControlPlane } from "../../e2e/k8s/controlplane.ts";
import { applyChartRbac, ensureNamespace, newOperator, R, serviceAccountKubeConfig } from "../../e2e/k8s/harness.ts";
import { finishPod, markPodReady, podsMatching } from "../../e2e/k8s/kubelet.ts";
import { waitFor } from "../../e2e/k8s/wait.ts";
import type { KubeConfig } from "@kubernetes/client-node";

const SERVER_PODS = "app.kubernetes.io/name=zerofs,app.kubernetes.io/component=server";
const cond = (v: ZeroFSVolume | undefined, type: string) => v?.status?.conditions?.find((x) => x.type === type);
const b64 = (s: Secret | undefined, k: string) => (s?.data?.[k] === undefined ? undefined : Buffer.from(s.data[k], "base64").toString());

describe("password rotation against a real API server", { timeout: 50 * 60_000 }, () => {
  let plane: ControlPlane;
  let admin: KubeClient;
  let saKc: KubeConfig;
  let op: Operator;
  const getVolume = (ns: string, name = "vol") => admin.get<ZeroFSVolume>(R.volumes, ns, name);
  const describeVolume = (ns: string) => async () => JSON.stringify((await getVolume(ns))?.status ?? null);
  const setPassword = (ns: string, pw: string) =>
    admin.apply<Secret>({ apiVersion: "v1", kind: "Secret", metadata: { name: "pw", namespace: ns }, type: "Opaque", data: { password: Buffer.from(pw).toString("base64") } });

  async function readyVolume(ns: string): Promise<ZeroFSVolume> {
    await ensureNamespace(admin, ns);
    await setPassword(ns, "first-password");
    await admin.create({
      apiVersion: "zerofs.io/v1alpha1",
      kind: "ZeroFSVolume",
      metadata: { name: "vol", namespace: ns },
      spec: { storage: { url: `s3://bucket/${ns}` }, encryption: { passwordSecretRef: { name: "pw" } }, persistentVolume: { create: false } },
    });
    await serverReady(ns);
    return (await getVolume(ns))!;
  }

  async function serverReady(ns: string): Promise<void> {
    const pod = await waitFor(`a running server pod in ${ns}`, async () => (await podsMatching(admin, ns, SERVER_PODS))[0], { describe: describeVolume(ns) });
    await markPodReady(admin, pod);
    await waitFor(`volume ${ns}/vol Ready`, async () => cond(await getVolume(ns), "Ready")?.status === "True", { describe: describeVolume(ns) });
  }

  async function jobOf(ns: string, kind: "rotate" | "verify"): Promise<Job> {
    return await waitFor(`the ${kind} Job in ${ns}`, async () => (await admin.list<Job>(R.jobs, ns, { labelSelector: `zerofs.io/job=${kind}` })).items[0], {
      describe: describeVolume(ns),
    });
  }

  /** Ends the Job's pod like a finished container (exit code and the server's message). */
  async function finishJob(ns: string, job: Job, exitCode: number, message = ""): Promise<void> {
    const pod = await waitFor(`a pod of Job ${job.metadata.name}`, async () => (await podsMatching(admin, ns, `batch.kubernetes.io/job-name=${job.metadata.name}`))[0]);
    await finishPod(admin, pod, exitCode, message);
  }

  before(async () => {
    plane = await startControlPlane({ preApplyCrds: true });
    admin = plane.admin;
    await applyChartRbac(plane);
    saKc = await serviceAccountKubeConfig(plane);
    op = newOperator(saKc, { name: "op1" });
    await op.start();
  }, { timeout: 45 * 60_000 });

  after(async () => {
    await op?.stop();
    await plane?.stop();
  });

  it("a Secret update rotates the password: server stopped, change Job, restart with the new password", async () => {
    const ns = "rotate-ok";
    const v0 = await readyVolume(ns);
    const oldHash = v0.status?.activePasswordHash;
    assert.ok(oldHash);

    await setPassword(ns, "second-password");
    const job = await jobOf(ns, "rotate");
    // Until the Job proves the new password, the server's password stays the old one.
    const mid = await admin.get<Secret>(R.secrets, ns, "zerofs-vol-password");
    assert.equal(b64(mid, "password"), "first-password");
    assert.equal(b64(mid, "new-password"), "second-password");
    const dep = await admin.get<Deployment>(R.deployments, ns, "zerofs-vol");
    assert.equal(dep?.spec.replicas, 0, "the server is scaled to zero during the change");
    assert.equal((await podsMatching(admin, ns, SERVER_PODS)).length, 0);
    const v1 = await getVolume(ns);
    assert.equal(v1?.status?.phase, "Rotating");
    assert.equal(cond(v1, "PasswordRotation")?.status, "True");
    assert.equal(cond(v1, "Ready")?.reason, "PasswordRotationInProgress");
    const env = JSON.stringify((job.spec.template as { spec: unknown }).spec);
    assert.match(env, /"ZEROFS_NEW_PASSWORD_FILE","value":"\/var\/run\/zerofs\/password\/new-password"/);
    assert.match(env, /"ZEROFS_ENCRYPTION_PASSWORD_FILE","value":"\/var\/run\/zerofs\/password\/password"/);

    await finishJob(ns, job, 0);
    const done = await waitFor("rotation Succeeded", async () => {
      const x = await getVolume(ns);
      return x?.status?.passwordRotation?.phase === "Succeeded" ? x : undefined;
    }, { describe: describeVolume(ns) });
    assert.notEqual(done.status?.activePasswordHash, oldHash);
    assert.equal(cond(done, "PasswordRotation")?.status, "False");
    assert.equal(cond(done, "PasswordRotation")?.reason, "Succeeded");
    const after = await admin.get<Secret>(R.secrets, ns, "zerofs-vol-password");
    assert.equal(b64(after, "password"), "second-password");
    assert.equal(b64(after, "new-password"), undefined);
    const dep2 = await waitFor("the server back at 1 replica", async () => {
      const d = await admin.get<Deployment>(R.deployments, ns, "zerofs-vol");
      return d?.spec.replicas === 1 ? d : undefined;
    });
    assert.equal(dep2.spec.template?.metadata?.annotations?.[ANN_PASSWORD_HASH], done.status?.activePasswordHash);
    await waitFor("the Job deleted", async () => (await admin.list(R.jobs, ns)).items.length === 0);
    await serverReady(ns);
    const events = await plane.kubectl(["get", "events", "-n", ns, "-o", "jsonpath={.items[*].reason}"]);
    assert.match(events, /PasswordRotationStarted/);
    assert.match(events, /PasswordRotated/);
  });

  it("a failed change is verified, rolled back, reported, and not retried", async () => {
    const ns = "rotate-fail";
    const v0 = await readyVolume(ns);
    await setPassword(ns, "second-password");
    await finishJob(ns, await jobOf(ns, "rotate"), 1, "wrong password: it does not match the key of the volume");
    // The verify Job (new -> new) fails too: the new password does not open the store.
    await finishJob(ns, await jobOf(ns, "verify"), 1, "wrong password: it does not match the key of the volume");
    const failed = await waitFor("rotation Failed", async () => {
      const x = await getVolume(ns);
      return x?.status?.passwordRotation?.phase === "Failed" ? x : undefined;
    }, { describe: describeVolume(ns) });
    assert.equal(failed.status?.activePasswordHash, v0.status?.activePasswordHash, "the volume keeps its password");
    assert.match(failed.status?.passwordRotation?.message ?? "", /wrong password/);
    assert.equal(cond(failed, "PasswordRotation")?.reason, "Failed");
    const s = await admin.get<Secret>(R.secrets, ns, "zerofs-vol-password");
    assert.equal(b64(s, "password"), "first-password");
    assert.equal(b64(s, "new-password"), undefined);
    await waitFor("the server back at 1 replica", async () => (await admin.get<Deployment>(R.deployments, ns, "zerofs-vol"))?.spec.replicas === 1);
    await serverReady(ns);
    const ready = await getVolume(ns);
    assert.equal(cond(ready, "Degraded")?.reason, "PasswordRotationFailed");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await admin.list(R.jobs, ns)).items.length, 0, "the same target is not retried");
    // A new password in the Secret starts a new attempt.
    await setPassword(ns, "third-password");
    await jobOf(ns, "rotate");
  });

  it("a Job that fails after the change landed is settled by the verify Job (commit, no lock-out)", async () => {
    const ns = "rotate-verify";
    await readyVolume(ns);
    await setPassword(ns, "second-password");
    await finishJob(ns, await jobOf(ns, "rotate"), 137, "killed");
    await finishJob(ns, await jobOf(ns, "verify"), 0);
    const done = await waitFor("rotation Succeeded", async () => {
      const x = await getVolume(ns);
      return x?.status?.passwordRotation?.phase === "Succeeded" ? x : undefined;
    }, { describe: describeVolume(ns) });
    assert.equal(b64(await admin.get<Secret>(R.secrets, ns, "zerofs-vol-password"), "password"), "second-password");
    assert.equal(cond(done, "PasswordRotation")?.reason, "Succeeded");
  });

  it("an operator restart in the middle of a rotation converges", async () => {
    const ns = "rotate-restart";
    await readyVolume(ns);
    await setPassword(ns, "second-password");
    const job = await jobOf(ns, "rotate");
    await op.stop(); // the operator goes away while the Job runs
    await finishJob(ns, job, 0);
    await waitFor("the Job Complete", async () => {
      const j = await admin.get<Job>(R.jobs, ns, job.metadata.name ?? "");
      return j?.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True");
    });
    const v = await getVolume(ns);
    assert.notEqual(v?.status?.passwordRotation?.phase, "Succeeded", "nothing committed without an operator");
    op = newOperator(saKc, { name: "op2" });
    await op.start();
    await waitFor("rotation Succeeded after the restart", async () => (await getVolume(ns))?.status?.passwordRotation?.phase === "Succeeded", { describe: describeVolume(ns) });
    assert.equal(b64(await admin.get<Secret>(R.secrets, ns, "zerofs-vol-password"), "password"), "second-password");
    await waitFor("the server back at 1 replica", async () => (await admin.get<Deployment>(R.deployments, ns, "zerofs-vol"))?.spec.replicas === 1);
    await serverReady(ns);
  });
});
