/**
 * The StorageClass provisioner (zerofs.io/nfs) against a real kube-apiserver + kube-controller-
 * manager (its PV binder binds the claims, its expander hands resizes to us), with the chart's
 * RBAC. There is no kubelet, so server pods never run: tests mark them Ready as a kubelet would
 * (e2e/k8s/kubelet.ts), and the operator's admin endpoint resolver points at servers on
 * 127.0.0.1: for volume "pool" a real `zerofs` process started with the token of the pool's admin
 * Secret (quotas as the real server keeps them), for volume "pool2" an in-memory fake of the admin
 * API (operator/test/support/fake-admin.ts, which also checks the token) whose usage figures and
 * stalls the tests control.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ZeroFSVolume } from "../src/api/types.ts";
import type { KubeClient } from "../src/kube/client.ts";
import type { KubeObject, PersistentVolume, PersistentVolumeClaim, Secret } from "../src/kube/types.ts";
import type { Operator } from "../src/operator.ts";
import type { DataDeleter, DataTarget } from "../src/reconcile/data-deleter.ts";
import { ANN_USED_BYTES, ANN_USED_INODES, type StorageClass } from "../src/provisioner/claims.ts";
import { startControlPlane, type ControlPlane } from "../../e2e/k8s/controlplane.ts";
import { applyChartRbac, ensureNamespace, newOperator, R, serviceAccountKubeConfig } from "../../e2e/k8s/harness.ts";
import { markPodReady, podsMatching } from "../../e2e/k8s/kubelet.ts";
import { waitFor } from "../../e2e/k8s/wait.ts";
import { startFakeAdmin, type FakeAdmin } from "./support/fake-admin.ts";
import type { KubeConfig } from "@kubernetes/client-node";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startZerofs, type ZerofsProcess } from "../../test/support/zerofs-process.ts";
import { AdminClient } from "../src/provisioner/admin-client.ts";

const POOL_NS = "storage";
const NS = "apps";

const secret = (ns: string, name: string, data: Record<string, string>): Secret => ({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace: ns }, type: "Opaque", stringData: data });

function storageClass(name: string, parameters: Record<string, string>, reclaimPolicy: "Delete" | "Retain"): StorageClass {
  return { apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name }, provisioner: "zerofs.io/nfs", parameters, reclaimPolicy, allowVolumeExpansion: true };
}

function claim(name: string, className: string, storage = "1Gi"): PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace: NS },
    spec: { storageClassName: className, accessModes: ["ReadWriteMany"], resources: { requests: { storage } } },
  };
}

const phaseOf = async (c: KubeClient, name: string) => (await c.get<PersistentVolumeClaim>(R.pvcs, NS, name))?.status?.phase;
const statusOf = (o: KubeObject | undefined) => o?.status as { capacity?: { storage?: string }; phase?: string } | undefined;

async function events(c: KubeClient, name: string): Promise<string[]> {
  const list = await c.list<KubeObject & { reason?: string; involvedObject?: { name?: string } }>(R.events, NS);
  return list.items.filter((e) => e.involvedObject?.name === name).map((e) => e.reason ?? "");
}

async function makeReady(c: KubeClient, ns: string, name: string): Promise<ZeroFSVolume> {
  const pod = await waitFor(`server pod of ${ns}/${name}`, async () => (await podsMatching(c, ns, `app.kubernetes.io/instance=${name},app.kubernetes.io/component=server`))[0]);
  await markPodReady(c, pod);
  return await waitFor(`${ns}/${name} Ready`, async () => {
    const v = await c.get<ZeroFSVolume>(R.volumes, ns, name);
    return v?.status?.conditions?.find((x) => x.type === "Ready")?.status === "True" ? v : undefined;
  }, { timeoutMs: 60_000 });
}

describe("StorageClass provisioner against a real API server", { timeout: 50 * 60_000 }, () => {
  let plane: ControlPlane;
  let admin: KubeClient;
  let kc: KubeConfig;
  let op: Operator;
  let fake: FakeAdmin;
  let real: ZerofsProcess;
  let realAdmin: AdminClient;
  let realDir = "";
  const deleted: DataTarget[] = [];
  const dataDeleter: DataDeleter = {
    deletePrefix: (t) => {
      deleted.push(t);
      return Promise.resolve(0);
    },
  };
  const startOperator = async (name: string) => {
    const adminEndpoint = (v: ZeroFSVolume) => (v.metadata.name === "pool" ? `http://127.0.0.1:${real.httpPort}` : fake.url);
    const o = newOperator(kc, { name, dataDeleter, provisioner: { adminEndpoint, usageRefreshMs: 500 }, shutdownTimeoutMs: 300 });
    await o.start();
    return o;
  };

  before(async () => {
    plane = await startControlPlane({ preApplyCrds: true });
    admin = plane.admin;
    await applyChartRbac(plane);
    kc = await serviceAccountKubeConfig(plane);
    // The fake accepts exactly the tokens of pool2's and pool3's admin Secrets, which the operator makes.
    fake = await startFakeAdmin(async () => {
      const tokens: string[] = [];
      for (const name of ["pool2", "pool3"]) {
        const s = await admin.get<Secret>(R.secrets, POOL_NS, `zerofs-${name}-admin`);
        if (s?.data?.token) tokens.push(Buffer.from(s.data.token, "base64").toString());
      }
      return tokens;
    });
    op = await startOperator("op");
    await ensureNamespace(admin, POOL_NS);
    await ensureNamespace(admin, NS);
    for (const ns of [POOL_NS, NS]) {
      await admin.create(secret(ns, "pw", { password: "pool-password" }));
      await admin.create(secret(ns, "s3", { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "key" }));
    }
    for (const name of ["pool", "pool2"]) {
      await admin.create({
        apiVersion: "zerofs.io/v1alpha1",
        kind: "ZeroFSVolume",
        metadata: { name, namespace: POOL_NS },
        spec: {
          storage: { url: `s3://bucket/${name}`, endpoint: "http://s3.storage:9000", allowHttp: true, credentialsSecretRef: { name: "s3" } },
          encryption: { passwordSecretRef: { name: "pw" } },
          persistentVolume: { create: false },
        },
      });
      await makeReady(admin, POOL_NS, name);
    }
    // The real server for "pool" gets the token the operator generated into the pool's Secret,
    // as the server pod would through its mount.
    const tok = await waitFor("pool's admin token", () => admin.get<Secret>(R.secrets, POOL_NS, "zerofs-pool-admin"));
    const token = Buffer.from(tok.data?.token ?? "", "base64").toString();
    realDir = await mkdtemp(join(tmpdir(), "zerofs-provisioner-"));
    await writeFile(join(realDir, "token"), token, { mode: 0o600 });
    real = await startZerofs({ url: join(realDir, "volume"), env: { ZEROFS_ADMIN_TOKEN_FILE: join(realDir, "token") } });
    realAdmin = new AdminClient({ baseUrl: `http://127.0.0.1:${real.httpPort}`, token });
    await admin.create(storageClass("zerofs-shared", { mode: "shared", volume: "pool", namespace: POOL_NS }, "Delete"));
    await admin.create(storageClass("zerofs-keep", { mode: "shared", volume: "pool", namespace: POOL_NS }, "Retain"));
    await admin.create(storageClass("zerofs-fake", { mode: "shared", volume: "pool2", namespace: POOL_NS }, "Delete"));
  }, { timeout: 45 * 60_000 });

  after(async () => {
    await op?.stop();
    await fake?.close();
    await real?.stop();
    if (realDir) await rm(realDir, { recursive: true, force: true });
    await plane?.stop();
  });

  const pvOf = async (name: string) => {
    const c = await admin.get<PersistentVolumeClaim>(R.pvcs, NS, name);
    return { claim: c!, pv: await admin.get<PersistentVolume>(R.pvs, undefined, `pvc-${c!.metadata.uid ?? ""}`) };
  };

  it("the server side: the pool's admin token Secret exists, is mounted, and the Service has the http port", async () => {
    const s = await admin.get<Secret>(R.secrets, POOL_NS, "zerofs-pool-admin");
    assert.ok(s?.data?.token, "token Secret");
    assert.equal(s.metadata.ownerReferences?.[0]?.kind, "ZeroFSVolume");
    const dep = await admin.get<KubeObject & { spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } }>(R.deployments, POOL_NS, "zerofs-pool");
    assert.equal(dep?.spec.template.spec.containers[0]?.env.find((e) => e.name === "ZEROFS_ADMIN_TOKEN_FILE")?.value, "/var/run/zerofs/admin/token");
  });

  it("shared mode: two claims are bound within seconds, each to its own directory with its quota", async () => {
    const t0 = Date.now();
    await admin.create(claim("a", "zerofs-shared", "1Gi"));
    await admin.create(claim("b", "zerofs-shared", "3Gi"));
    await waitFor("claims a and b Bound", async () => (await phaseOf(admin, "a")) === "Bound" && (await phaseOf(admin, "b")) === "Bound", { timeoutMs: 30_000 });
    const seconds = (Date.now() - t0) / 1000;
    process.stderr.write(`provisioner: two shared claims Bound in ${seconds.toFixed(1)} s\n`);
    assert.ok(seconds < 20, `bound in ${seconds} s`);
    const a = await pvOf("a");
    const b = await pvOf("b");
    for (const [x, size] of [[a, 2 ** 30], [b, 3 * 2 ** 30]] as const) {
      const pv = x.pv!;
      assert.equal(x.claim.spec.volumeName, pv.metadata.name);
      assert.equal(pv.spec.claimRef?.uid, x.claim.metadata.uid);
      assert.equal(pv.metadata.annotations?.["pv.kubernetes.io/provisioned-by"], "zerofs.io/nfs");
      assert.equal(x.claim.metadata.annotations?.["volume.kubernetes.io/storage-provisioner"], "zerofs.io/nfs");
      assert.equal(pv.spec.persistentVolumeReclaimPolicy, "Delete");
      const pool = await admin.get<ZeroFSVolume>(R.volumes, POOL_NS, "pool");
      assert.equal(pv.spec.nfs?.server, pool?.status?.server?.clusterIP);
      const dir = `${NS}_${x.claim.metadata.name}_${x.claim.metadata.uid}`;
      assert.equal(pv.spec.nfs?.path, `/${dir}`);
      assert.equal((await realAdmin.getDirectory(dir))?.quota.bytes, size, "the real server holds the quota = requested storage");
      const reasons = await events(admin, x.claim.metadata.name ?? "");
      assert.ok(reasons.includes("Provisioning") && reasons.includes("ProvisioningSucceeded"), reasons.join(","));
    }
    assert.notEqual(a.pv!.spec.nfs?.path, b.pv!.spec.nfs?.path);
  });

  it("usage shows on the claim, the PV, the volume's status.claims and the metric", async () => {
    // The real server's figures for claim a, as the operator must have copied them.
    const a = await pvOf("a");
    const realDirA = await realAdmin.getDirectory(`${NS}_a_${a.claim.metadata.uid}`);
    await waitFor("claim a annotated with the real server's usage", async () => (await admin.get<PersistentVolumeClaim>(R.pvcs, NS, "a"))?.metadata.annotations?.[ANN_USED_INODES] === String(realDirA?.usage.inodes), { timeoutMs: 15_000 });
    const pool = await waitFor("pool's status.claims lists a and b", async () => {
      const v = await admin.get<ZeroFSVolume>(R.volumes, POOL_NS, "pool");
      return v?.status?.claims?.length === 2 ? v : undefined;
    }, { timeoutMs: 15_000 });
    assert.deepEqual(pool.status?.claims?.map((x) => `${x.namespace}/${x.name}`), [`${NS}/a`, `${NS}/b`]);
    assert.equal(pool.status?.claims?.[0]?.quotaBytes, 2 ** 30);
    assert.equal(pool.status?.claims?.[0]?.usedBytes, realDirA?.usage.bytes);
    assert.equal(pool.status?.conditions?.find((x) => x.type === "Ready")?.status, "True", "the reconciler's status is untouched");

    // Changing figures (the fake's, which the test sets) follow within a refresh period.
    await admin.create(claim("u", "zerofs-fake"));
    await waitFor("claim u Bound", async () => (await phaseOf(admin, "u")) === "Bound", { timeoutMs: 30_000 });
    const u = await pvOf("u");
    await waitFor("u's directory on the fake", async () => fake.dirs.has(`${NS}_u_${u.claim.metadata.uid}`));
    fake.dirs.get(`${NS}_u_${u.claim.metadata.uid}`)!.usage = { bytes: 123_456, inodes: 7 };
    const c = await waitFor("used-bytes annotation on claim u", async () => {
      const x = await admin.get<PersistentVolumeClaim>(R.pvcs, NS, "u");
      return x?.metadata.annotations?.[ANN_USED_BYTES] === "123456" ? x : undefined;
    }, { timeoutMs: 15_000 });
    assert.equal(c.metadata.annotations?.[ANN_USED_INODES], "7");
    assert.equal((await admin.get<PersistentVolume>(R.pvs, undefined, u.pv!.metadata.name ?? ""))?.metadata.annotations?.[ANN_USED_BYTES], "123456");
    await waitFor("pool2's status.claims shows u's usage", async () => (await admin.get<ZeroFSVolume>(R.volumes, POOL_NS, "pool2"))?.status?.claims?.find((x) => x.name === "u")?.usedBytes === 123_456, { timeoutMs: 15_000 });
    await waitFor("the metric", async () => /zerofs_operator_claim_used_bytes\{namespace="apps",claim="u"\} 123456/.test(await op.metrics.registry.metrics()), { timeoutMs: 15_000 });
  });

  it("expansion: a larger request raises the quota, the PV capacity and the claim's status capacity", async () => {
    await admin.patch(R.pvcs, NS, "a", { spec: { resources: { requests: { storage: "2Gi" } } } });
    const a = await waitFor("claim a status capacity 2Gi", async () => {
      const x = await pvOf("a");
      return statusOf(x.claim)?.capacity?.storage === "2Gi" ? x : undefined;
    }, { timeoutMs: 30_000 });
    assert.equal((a.pv!.spec.capacity as { storage: string }).storage, "2Gi");
    assert.equal((await realAdmin.getDirectory(`${NS}_a_${a.claim.metadata.uid}`))?.quota.bytes, 2 * 2 ** 30, "the real server's quota grew");
    assert.ok((await events(admin, "a")).includes("VolumeResizeSuccessful"));
  });

  it("reclaimPolicy Delete removes the directory and the PV; Retain keeps both", async () => {
    await admin.create(claim("kept", "zerofs-keep"));
    await waitFor("claim kept Bound", async () => (await phaseOf(admin, "kept")) === "Bound", { timeoutMs: 30_000 });
    const kept = await pvOf("kept");
    const a = await pvOf("a");
    await admin.delete(R.pvcs, NS, "a");
    await admin.delete(R.pvcs, NS, "kept");
    await waitFor("PV of a deleted", async () => (await admin.get(R.pvs, undefined, a.pv!.metadata.name ?? "")) === undefined, { timeoutMs: 30_000 });
    assert.equal(await realAdmin.getDirectory(`${NS}_a_${a.claim.metadata.uid}`), undefined, "directory of a removed from the real server");
    await waitFor("PV of kept Released", async () => statusOf(await admin.get(R.pvs, undefined, kept.pv!.metadata.name ?? ""))?.phase === "Released", { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 2000)); // time for a wrong deletion to happen
    assert.ok(await admin.get(R.pvs, undefined, kept.pv!.metadata.name ?? ""), "Retain: the PV stays");
    assert.ok(await realAdmin.getDirectory(`${NS}_kept_${kept.claim.metadata.uid}`), "Retain: the directory stays on the real server");
  });

  it("an operator restarted mid-provisioning converges to one PV", async () => {
    fake.holdPuts = true;
    await admin.create(claim("restart", "zerofs-fake"));
    const uid = (await admin.get<PersistentVolumeClaim>(R.pvcs, NS, "restart"))!.metadata.uid!;
    await waitFor("the first operator's PUT in flight", async () => fake.requests.some((r) => r.startsWith(`PUT /v1/directories/${NS}_restart_`)));
    await op.stop(); // its PUT is still unanswered: the worker is abandoned mid-way and finishes later
    op = await startOperator("op2");
    await waitFor("the second operator's PUT", async () => fake.requests.filter((r) => r.startsWith(`PUT /v1/directories/${NS}_restart_`)).length >= 2);
    fake.release(); // both finish: two creates of the same PV name, one wins
    await waitFor("claim restart Bound", async () => (await phaseOf(admin, "restart")) === "Bound", { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1500));
    const pvs = (await admin.list<PersistentVolume>(R.pvs)).items.filter((p) => p.spec.claimRef?.uid === uid);
    assert.deepEqual(pvs.map((p) => p.metadata.name), [`pvc-${uid}`]);
    assert.equal([...fake.dirs.keys()].filter((d) => d.startsWith(`${NS}_restart_`)).length, 1);
  });

  it("dedicated mode: a ZeroFSVolume and a password Secret per claim; bound once the volume is Ready; Delete removes the volume and its data", async () => {
    await admin.create(storageClass("zerofs-dedicated", {
      mode: "dedicated",
      template: "storage:\n  url: s3://bucket/claims\n  endpoint: http://s3.storage:9000\n  allowHttp: true\n  credentialsSecretRef: {name: s3}\ncache: {size: 1Gi}\n",
    }, "Delete"));
    await admin.create(claim("own", "zerofs-dedicated", "4Gi"));
    const uid = (await admin.get<PersistentVolumeClaim>(R.pvcs, NS, "own"))!.metadata.uid!;
    const v = await waitFor("the claim's ZeroFSVolume", () => admin.get<ZeroFSVolume>(R.volumes, NS, `pvc-${uid}`));
    assert.equal(v.spec.storage.url, `s3://bucket/claims/${NS}/own-${uid}`);
    assert.equal(v.spec.capacity, "4Gi");
    assert.equal(v.spec.deletionPolicy, "Delete");
    const pw = await waitFor("the generated password Secret", () => admin.get<Secret>(R.secrets, NS, `pvc-${uid}-encryption`));
    assert.ok(Buffer.from(pw.data?.password ?? "", "base64").length >= 32);
    assert.equal(pw.metadata.ownerReferences?.[0]?.uid, v.metadata.uid, "kept with the volume that uses it");
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await phaseOf(admin, "own"), "Pending", "no PV before the volume is Ready");
    await makeReady(admin, NS, `pvc-${uid}`);
    await waitFor("claim own Bound", async () => (await phaseOf(admin, "own")) === "Bound", { timeoutMs: 30_000 });
    const { pv } = await pvOf("own");
    const ready = await admin.get<ZeroFSVolume>(R.volumes, NS, `pvc-${uid}`);
    assert.deepEqual(pv?.spec.nfs, { server: ready?.status?.server?.clusterIP, path: "/" });

    // Expansion: the volume's capacity (the server's ZEROFS_CAPACITY_BYTES), the PV and the claim.
    await admin.patch(R.pvcs, NS, "own", { spec: { resources: { requests: { storage: "6Gi" } } } });
    await waitFor("claim own status capacity 6Gi", async () => statusOf(await admin.get(R.pvcs, NS, "own"))?.capacity?.storage === "6Gi", { timeoutMs: 30_000 });
    assert.equal((await admin.get<ZeroFSVolume>(R.volumes, NS, `pvc-${uid}`))?.spec.capacity, "6Gi");
    assert.equal(((await admin.get<PersistentVolume>(R.pvs, undefined, `pvc-${uid}`))?.spec.capacity as { storage: string }).storage, "6Gi");

    await admin.delete(R.pvcs, NS, "own");
    await waitFor("the claim's volume and PV gone", async () => (await admin.get(R.volumes, NS, `pvc-${uid}`)) === undefined && (await admin.get(R.pvs, undefined, `pvc-${uid}`)) === undefined, { timeoutMs: 60_000 });
    assert.ok(deleted.some((t) => t.url === `s3://bucket/claims/${NS}/own-${uid}`), "its prefix deleted (deletionPolicy Delete)");
  });

  it("a claim waits while its shared volume is not Ready, and is bound soon after it becomes Ready", async () => {
    await admin.create({
      apiVersion: "zerofs.io/v1alpha1",
      kind: "ZeroFSVolume",
      metadata: { name: "pool3", namespace: POOL_NS },
      spec: {
        storage: { url: "s3://bucket/pool3", endpoint: "http://s3.storage:9000", allowHttp: true, credentialsSecretRef: { name: "s3" } },
        encryption: { passwordSecretRef: { name: "pw" } },
        persistentVolume: { create: false },
      },
    });
    await admin.create(storageClass("zerofs-later", { mode: "shared", volume: "pool3", namespace: POOL_NS }, "Delete"));
    await admin.create(claim("later", "zerofs-later"));
    const list = async () => (await admin.list<KubeObject & { reason?: string; message?: string; involvedObject?: { name?: string } }>(R.events, NS)).items.filter((e) => e.involvedObject?.name === "later");
    await waitFor("a Provisioning event saying what the claim waits for", async () => (await list()).some((e) => e.reason === "Provisioning" && /waiting for ZeroFSVolume storage\/pool3 to be Ready/.test(e.message ?? "")), { timeoutMs: 15_000 });
    // The retries back off (base 200 ms, doubling): the 7th is followed by a delay of at least
    // 200 ms * 2^6 * 0.8 (jitter) = 10.2 s, so a claim bound well before that was brought back by
    // the volume's Ready transition itself (measured: 0.3 s; without the trigger the claim waits
    // for the retry).
    const queue = op.activeController!.provisioner!.queue;
    await waitFor("seven waiting retries", async () => queue.failuresOf(`claim:${NS}/later`) >= 7, { timeoutMs: 40_000 });
    assert.equal(await phaseOf(admin, "later"), "Pending");
    const t0 = Date.now();
    await makeReady(admin, POOL_NS, "pool3");
    await waitFor("claim later Bound", async () => (await phaseOf(admin, "later")) === "Bound", { timeoutMs: 30_000 });
    const s = (Date.now() - t0) / 1000;
    process.stderr.write(`provisioner: a waiting claim Bound ${s.toFixed(1)} s after its volume's pod became Ready\n`);
    assert.ok(s < 7, `bound ${s} s after Ready: not by the Ready transition`);
  });

  it("a class with bad parameters gives ProvisioningFailed naming the parameter", async () => {
    await admin.create(storageClass("zerofs-bad", { mode: "shared" }, "Delete"));
    await admin.create(claim("bad", "zerofs-bad"));
    await waitFor("ProvisioningFailed", async () => (await events(admin, "bad")).includes("ProvisioningFailed"), { timeoutMs: 15_000 });
    const list = await admin.list<KubeObject & { reason?: string; message?: string; involvedObject?: { name?: string } }>(R.events, NS);
    assert.match(list.items.find((e) => e.involvedObject?.name === "bad" && e.reason === "ProvisioningFailed")?.message ?? "", /StorageClass zerofs-bad: parameter volume/);
    assert.equal(await phaseOf(admin, "bad"), "Pending");
  });
});
