/**
 * The operator against a real kube-apiserver + etcd + kube-controller-manager, running in-process
 * with the chart's ServiceAccount identity (token) and RBAC.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ANN_PASSWORD_HASH, FINALIZER } from "../src/api/constants.ts";
import type { ZeroFSVolume } from "../src/api/types.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { KubeApiError } from "../src/kube/errors.ts";
import type { Deployment, NetworkPolicy, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service } from "../src/kube/types.ts";
import type { Operator } from "../src/operator.ts";
import { startControlPlane, type ControlPlane } from "../../e2e/k8s/controlplane.ts";
import { applyChartRbac, countWrites, ensureNamespace, newOperator, R, serviceAccountKubeConfig } from "../../e2e/k8s/harness.ts";
import { finishPod, markPodReady, podsMatching } from "../../e2e/k8s/kubelet.ts";
import { waitFor } from "../../e2e/k8s/wait.ts";
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { startVersitygw } from "../../test/support/versitygw.ts";

const SERVER_PODS = "app.kubernetes.io/name=zerofs,app.kubernetes.io/component=server";

function volumeManifest(ns: string, name: string, spec: Record<string, unknown> = {}): ZeroFSVolume {
  return {
    apiVersion: "zerofs.io/v1alpha1",
    kind: "ZeroFSVolume",
    metadata: { name, namespace: ns, uid: "" },
    spec: {
      storage: { url: `s3://bucket/${ns}/${name}`, endpoint: "http://minio.storage:9000", allowHttp: true, credentialsSecretRef: { name: "s3" } },
      encryption: { passwordSecretRef: { name: "pw" } },
      ...spec,
    },
  };
}

function secret(ns: string, name: string, data: Record<string, string>): Secret {
  return { apiVersion: "v1", kind: "Secret", metadata: { name, namespace: ns }, type: "Opaque", stringData: data };
}

async function createVolume(c: KubeClient, v: ZeroFSVolume): Promise<ZeroFSVolume> {
  const { uid: _uid, ...metadata } = v.metadata;
  return await c.create({ ...v, metadata } as ZeroFSVolume);
}

const getVolume = (c: KubeClient, ns: string, name: string) => c.get<ZeroFSVolume>(R.volumes, ns, name);
const cond = (v: ZeroFSVolume | undefined, type: string) => v?.status?.conditions?.find((x) => x.type === type);

describe("operator against a real API server", { timeout: 50 * 60_000 }, () => {
  let plane: ControlPlane;
  let op: Operator;
  let admin: KubeClient;
  const describeVolume = (ns: string, name: string) => async () => JSON.stringify((await getVolume(admin, ns, name))?.status ?? null);

  before(async () => {
    plane = await startControlPlane({ preApplyCrds: true });
    admin = plane.admin;
    await applyChartRbac(plane);
    op = newOperator(await serviceAccountKubeConfig(plane), { name: "op" });
    await op.start();
  }, { timeout: 45 * 60_000 });

  after(async () => {
    await op?.stop();
    await plane?.stop();
  });

  it("rejects invalid specs in the API server (schema and CEL)", async () => {
    const ns = "invalid";
    await ensureNamespace(admin, ns);
    const reject = async (v: ZeroFSVolume, pattern: RegExp) => {
      await assert.rejects(createVolume(admin, v), (e: unknown) => e instanceof KubeApiError && e.status === 422 && pattern.test(e.message));
    };
    await reject(volumeManifest(ns, "bad-url", { storage: { url: "http://not-s3" } }), /spec\.storage\.url/);
    await reject(volumeManifest(ns, "bad-cidr", { nfs: { allowedCIDRs: ["10.0.0.0/99"] } }), /must be a CIDR/);
    await reject(volumeManifest(ns, "bad-http", { storage: { url: "s3://bucket/x", endpoint: "http://x:9000" } }), /allowHttp/);
    await reject(volumeManifest(ns, "bad-delete", { storage: { url: "s3://bucket" }, deletionPolicy: "Delete" }), /deleting a whole bucket is refused/);
    await reject(volumeManifest(ns, "bad-squash", { nfs: { squash: "some" } }), /squash/);
    await reject(volumeManifest(ns, "a-very-long-name-that-is-longer-than-forty-chars"), /metadata\.name: Too long/);
    await reject(volumeManifest(ns, "9-starts-with-a-digit"), /metadata\.name in body should match/);
    // Immutable once set (CEL transition rule).
    await createVolume(admin, volumeManifest(ns, "ok"));
    await assert.rejects(
      admin.patch(R.volumes, ns, "ok", { spec: { storage: { url: "s3://bucket/elsewhere" } } }),
      (e: unknown) => e instanceof KubeApiError && e.status === 422 && /spec\.storage\.url is immutable/.test(e.message),
    );
  });

  it("missing Secret: Ready=False with a reason; recovers when the Secret appears", async () => {
    const ns = "missing-secret";
    await ensureNamespace(admin, ns);
    await createVolume(admin, volumeManifest(ns, "vol"));
    const v = await waitFor("Ready=False/PasswordSecretNotFound", async () => {
      const x = await getVolume(admin, ns, "vol");
      return cond(x, "Ready")?.reason === "PasswordSecretNotFound" ? x : undefined;
    }, { describe: describeVolume(ns, "vol") });
    assert.equal(cond(v, "Ready")?.status, "False");
    assert.match(cond(v, "Ready")?.message ?? "", /password Secret missing-secret\/pw .* not found/);
    assert.equal(v.status?.phase, "Pending");
    assert.equal(await admin.get(R.deployments, ns, "zerofs-vol"), undefined, "nothing runs without a password");

    // A Secret without the key: a different, equally clear reason.
    await admin.create(secret(ns, "pw", { wrong: "x" }));
    await waitFor("PasswordKeyMissing", async () => cond(await getVolume(admin, ns, "vol"), "Ready")?.reason === "PasswordKeyMissing", { describe: describeVolume(ns, "vol") });
    await admin.apply(secret(ns, "pw", { password: "correct horse battery staple" }));
    await admin.create(secret(ns, "s3", { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "key" }));
    await waitFor("the Deployment after the Secret appeared", () => admin.get<Deployment>(R.deployments, ns, "zerofs-vol"));
    await waitFor("reason no longer about the Secret", async () => {
      const r = cond(await getVolume(admin, ns, "vol"), "Ready")?.reason;
      return r !== "PasswordSecretNotFound" && r !== "PasswordKeyMissing" && r !== undefined;
    }, { describe: describeVolume(ns, "vol") });
  });

  describe("a volume's life", () => {
    const ns = "life";
    let vol: ZeroFSVolume;

    before(async () => {
      await ensureNamespace(admin, ns);
      await admin.create(secret(ns, "pw", { password: "first-password" }));
      await admin.create(secret(ns, "s3", { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "key" }));
      vol = await createVolume(admin, volumeManifest(ns, "data", { capacity: "20Gi", nfs: { allowedCIDRs: ["10.0.0.0/8"] } }));
    });

    it("creates the children with the right specs, labels and owner references", async () => {
      const dep = await waitFor("Deployment zerofs-data", () => admin.get<Deployment>(R.deployments, ns, "zerofs-data"));
      const svc = await waitFor("Service zerofs-data", () => admin.get<Service>(R.services, ns, "zerofs-data"));
      const pv = await waitFor("PersistentVolume", () => admin.get<PersistentVolume>(R.pvs, undefined, "zerofs-life-data"));
      const claim = await waitFor("claim", () => admin.get<PersistentVolumeClaim>(R.pvcs, ns, "data"));
      const pwSecret = await waitFor("password Secret", () => admin.get<Secret>(R.secrets, ns, "zerofs-data-password"));
      const live = (await getVolume(admin, ns, "data"))!;
      const owner = (o: { metadata: { ownerReferences?: { uid: string; kind: string; controller?: boolean }[] } }) => o.metadata.ownerReferences?.[0];
      for (const o of [dep, svc, claim, pwSecret]) {
        assert.equal(owner(o)?.uid, vol.metadata.uid);
        assert.equal(owner(o)?.kind, "ZeroFSVolume");
        assert.equal(owner(o)?.controller, true);
      }
      assert.equal(pv.metadata.ownerReferences, undefined);
      assert.deepEqual(live.metadata.finalizers, [FINALIZER]);

      assert.equal(dep.spec.replicas, 1);
      assert.deepEqual(dep.spec.strategy, { type: "Recreate" });
      const pod = dep.spec.template?.spec as { containers: { env: { name: string; value?: string }[]; readinessProbe: { httpGet: { path: string } } }[]; securityContext: { runAsNonRoot: boolean } };
      const env = new Map(pod.containers[0]!.env.map((e) => [e.name, e.value]));
      assert.equal(env.get("ZEROFS_ENCRYPTION_PASSWORD_FILE"), "/var/run/zerofs/password/password");
      assert.equal(env.get("ZEROFS_ALLOWED_CLIENTS"), "10.0.0.0/8");
      assert.equal(env.get("ZEROFS_SQUASH"), "root", "root squash by default");
      assert.equal(env.get("ZEROFS_INSECURE"), "false", "privileged source ports by default");
      const np = await waitFor("NetworkPolicy zerofs-data", () => admin.get<NetworkPolicy>(R.networkPolicies, ns, "zerofs-data"));
      assert.deepEqual(np.spec.ingress, [{ ports: [{ protocol: "TCP", port: 2049 }], from: [{ ipBlock: { cidr: "10.0.0.0/8" } }] }]);
      assert.equal(np.metadata.ownerReferences?.[0]?.uid, vol.metadata.uid);
      assert.equal(env.get("ZEROFS_CAPACITY_BYTES"), String(20 * 2 ** 30));
      assert.equal(pod.containers[0]!.readinessProbe.httpGet.path, "/readyz");
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.match(dep.spec.template?.metadata?.annotations?.[ANN_PASSWORD_HASH] ?? "", /^hmac-sha256:/);

      assert.equal(svc.spec.type, "ClusterIP");
      assert.ok(svc.spec.clusterIP);
      assert.equal(pv.spec.nfs?.server, svc.spec.clusterIP, "the PV points at the ClusterIP, not a DNS name");
      assert.equal(claim.spec.volumeName, "zerofs-life-data");
      assert.equal(Buffer.from(pwSecret.data?.password ?? "", "base64").toString(), "first-password");
      // Server-side apply with the operator's field manager.
      const managers = ((dep.metadata as { managedFields?: { manager: string; operation: string }[] }).managedFields ?? []).map((m) => `${m.manager}/${m.operation}`);
      assert.ok(managers.includes("zerofs-operator/Apply"), managers.join(","));
    });

    it("becomes Ready when the server pod is ready and the claim bound", async () => {
      const pod = await waitFor("a server pod", async () => (await podsMatching(admin, ns, SERVER_PODS))[0]);
      await markPodReady(admin, pod);
      const v = await waitFor("Ready=True", async () => {
        const x = await getVolume(admin, ns, "data");
        return cond(x, "Ready")?.status === "True" ? x : undefined;
      }, { timeoutMs: 60_000, describe: describeVolume(ns, "data") });
      assert.equal(v.status?.phase, "Ready");
      const svc = await admin.get<Service>(R.services, ns, "zerofs-data");
      assert.deepEqual(v.status?.server, { clusterIP: svc?.spec.clusterIP, port: 2049, path: "/", serviceName: "zerofs-data" });
      assert.equal(v.status?.persistentVolumeName, "zerofs-life-data");
      assert.deepEqual(v.status?.mountOptions, ["nfsvers=3", "tcp", "nolock", "port=2049", "mountport=2049"]);
      assert.match(v.status?.activePasswordHash ?? "", /^hmac-sha256:[0-9a-f]{32}$/);
      assert.equal(v.status?.observedGeneration, v.metadata.generation);
      const printed = await plane.kubectl(["get", "zerofsvolumes", "-n", ns, "-o", "wide"]);
      assert.match(printed, /READY\s+PHASE\s+SERVER\s+AGE\s+MESSAGE/);
      assert.match(printed, /data\s+True\s+Ready\s+10\.0\.0\./);
      const events = await plane.kubectl(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=data", "-o", "jsonpath={.items[*].reason}"]);
      assert.match(events, /Ready/);
    });

    it("a second reconcile of an unchanged volume makes zero writes", async () => {
      const ctl = op.activeController!;
      const before = JSON.stringify((await admin.list(R.deployments, ns)).items.map((d) => d.metadata.resourceVersion));
      const writes = await countWrites(op, async () => {
        ctl.queue.add(`${ns}/data`);
        await new Promise((r) => setTimeout(r, 1500));
      });
      assert.deepEqual(writes, []);
      assert.equal(JSON.stringify((await admin.list(R.deployments, ns)).items.map((d) => d.metadata.resourceVersion)), before);
    });

    it("a spec change rolls out and advances observedGeneration", async () => {
      const updated = await admin.patch<ZeroFSVolume>(R.volumes, ns, "data", { spec: { server: { logLevel: "debug" } } });
      const gen = updated.metadata.generation ?? 0;
      assert.ok(gen > (vol.metadata.generation ?? 0));
      await waitFor("the Deployment with ZEROFS_LOG_LEVEL=debug", async () => {
        const d = await admin.get<Deployment>(R.deployments, ns, "zerofs-data");
        return JSON.stringify(d?.spec.template?.spec).includes('"ZEROFS_LOG_LEVEL","value":"debug"');
      });
      const v = await waitFor("observedGeneration", async () => {
        const x = await getVolume(admin, ns, "data");
        return x?.status?.observedGeneration === gen ? x : undefined;
      }, { describe: describeVolume(ns, "data") });
      assert.equal(cond(v, "Ready")?.observedGeneration, gen);
      // Recreate: the new pod comes once the old one is gone; make it ready again.
      const pod = await waitFor("the new server pod", async () => {
        const pods = await podsMatching(admin, ns, SERVER_PODS);
        return pods.find((p) => JSON.stringify(p.spec).includes('"debug"'));
      });
      await markPodReady(admin, pod);
      await waitFor("Ready again", async () => cond(await getVolume(admin, ns, "data"), "Ready")?.status === "True", { describe: describeVolume(ns, "data") });
    });

    it("the Service is never re-created: its ClusterIP survives reconciles and spec changes", async () => {
      const v = await getVolume(admin, ns, "data");
      const svc = await admin.get<Service>(R.services, ns, "zerofs-data");
      assert.equal(v?.status?.server?.clusterIP, svc?.spec.clusterIP);
      assert.equal(svc?.metadata.creationTimestamp !== undefined, true);
    });

    it("deletion waits while a Pod uses the claim (or a finished Pod still names it), then removes everything", async () => {
      const consumer = (name: string): Pod => ({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: ns },
        spec: { containers: [{ name: "app", image: "busybox" }], volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }] },
      });
      await admin.create(consumer("app"));
      // A finished pod mounts nothing, but pvc-protection keeps the claim while it exists.
      const done = await admin.create<Pod>(consumer("done"));
      await finishPod(admin, done, 0);
      await admin.delete(R.volumes, ns, "data");
      const blocked = await waitFor("DeletionBlocked naming the pod", async () => {
        const x = await getVolume(admin, ns, "data");
        return cond(x, "Ready")?.reason === "DeletionBlocked" ? x : undefined;
      }, { describe: describeVolume(ns, "data") });
      assert.match(cond(blocked, "Ready")?.message ?? "", /Pod life\/app mounts PersistentVolumeClaim life\/data/);
      assert.equal(blocked.status?.phase, "Deleting");
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok(await admin.get(R.pvs, undefined, "zerofs-life-data"), "the PV stays while blocked");
      assert.ok(await admin.get(R.deployments, ns, "zerofs-data"), "the server stays while blocked");

      await admin.delete(R.pods, ns, "app");
      const stillBlocked = await waitFor("DeletionBlocked naming only the finished pod", async () => {
        const m = cond(await getVolume(admin, ns, "data"), "Ready")?.message ?? "";
        return !m.includes("Pod life/app ") && m.includes("Pod life/done") ? m : undefined;
      }, { describe: describeVolume(ns, "data") });
      assert.match(stillBlocked, /Pod life\/done \(Succeeded\) still references PersistentVolumeClaim life\/data; Kubernetes keeps the claim until the pod is deleted/);
      assert.ok(await admin.get(R.pvs, undefined, "zerofs-life-data"), "the PV stays while a finished pod names the claim");
      await admin.delete(R.pods, ns, "done");
      await waitFor("the volume to be gone", async () => (await getVolume(admin, ns, "data")) === undefined, { timeoutMs: 60_000, describe: describeVolume(ns, "data") });
      await waitFor("the PV to be gone", async () => (await admin.get(R.pvs, undefined, "zerofs-life-data")) === undefined);
      await waitFor("the claim to be gone", async () => (await admin.get(R.pvcs, ns, "data")) === undefined);
      // Garbage collection (kube-controller-manager) removes the owned children.
      await waitFor("the Deployment to be collected", async () => (await admin.get(R.deployments, ns, "zerofs-data")) === undefined, { timeoutMs: 90_000 });
      await waitFor("the Service to be collected", async () => (await admin.get(R.services, ns, "zerofs-data")) === undefined, { timeoutMs: 90_000 });
    });
  });

  describe("what a volume's author may not do", () => {
    const ns = "author";
    before(async () => {
      await ensureNamespace(admin, ns);
      await ensureNamespace(admin, "victim");
      await admin.create(secret(ns, "pw", { password: "pw-1" }));
      await admin.create(secret(ns, "s3", { AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "key" }));
    });
    const pendingClaim = (namespace: string, name: string): PersistentVolumeClaim => ({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name, namespace, labels: { owner: "someone-else" } },
      spec: { accessModes: ["ReadWriteMany"], storageClassName: "slow", resources: { requests: { storage: "1Gi" } } },
    });
    const untouched = (c: PersistentVolumeClaim | undefined) => {
      assert.deepEqual(c?.metadata.labels, { owner: "someone-else" });
      assert.equal(c?.spec.volumeName, undefined);
      const managers = ((c?.metadata as { managedFields?: { manager: string }[] }).managedFields ?? []).map((m) => m.manager);
      assert.ok(!managers.includes("zerofs-operator"), managers.join(","));
    };

    it("a claim in another namespace is refused with a condition; the pending claim there is untouched", async () => {
      await admin.create(pendingClaim("victim", "shared"));
      await createVolume(admin, volumeManifest(ns, "reach", { persistentVolume: { claim: { namespace: "victim", name: "shared" } } }));
      const v = await waitFor("Ready=False/ClaimNamespaceNotAllowed", async () => {
        const x = await getVolume(admin, ns, "reach");
        return cond(x, "Ready")?.reason === "ClaimNamespaceNotAllowed" ? x : undefined;
      }, { describe: describeVolume(ns, "reach") });
      assert.match(cond(v, "Ready")?.message ?? "", /claim\.namespace victim is not the volume's namespace author/);
      await new Promise((r) => setTimeout(r, 1000));
      untouched(await admin.get<PersistentVolumeClaim>(R.pvcs, "victim", "shared"));
      assert.equal(await admin.get(R.pvs, undefined, `zerofs-${ns}-reach`), undefined, "nothing was provisioned");
    });

    it("an existing object the operator does not own is never taken over: Degraded=ResourceNotOwned and an Event", async () => {
      // Someone's pending claim with the name the volume's claim would get.
      await admin.create(pendingClaim(ns, "taken"));
      await createVolume(admin, volumeManifest(ns, "taken"));
      const v = await waitFor("Degraded=True/ResourceNotOwned", async () => {
        const x = await getVolume(admin, ns, "taken");
        return cond(x, "Degraded")?.reason === "ResourceNotOwned" ? x : undefined;
      }, { describe: describeVolume(ns, "taken") });
      assert.equal(cond(v, "Degraded")?.status, "True");
      assert.match(cond(v, "Degraded")?.message ?? "", /PersistentVolumeClaim author\/taken already exists and was not made by the operator/);
      untouched(await admin.get<PersistentVolumeClaim>(R.pvcs, ns, "taken"));
      assert.equal(await admin.get(R.pvs, undefined, `zerofs-${ns}-taken`), undefined, "no PV pre-bound to someone else's claim");
      const events = await plane.kubectl(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=taken", "-o", "jsonpath={.items[*].reason}"]);
      assert.match(events, /ResourceNotOwned/);
      // The rest of the volume is still provisioned (only the foreign object is left alone).
      assert.ok(await admin.get(R.deployments, ns, "zerofs-taken"));
    });

    it("a server image outside the allow-list is refused; no Deployment runs it", async () => {
      await createVolume(admin, volumeManifest(ns, "miner", { server: { image: "evil/miner:latest" } }));
      const v = await waitFor("Ready=False/ImageNotAllowed", async () => {
        const x = await getVolume(admin, ns, "miner");
        return cond(x, "Ready")?.reason === "ImageNotAllowed" ? x : undefined;
      }, { describe: describeVolume(ns, "miner") });
      assert.match(cond(v, "Ready")?.message ?? "", /evil\/miner:latest is not allowed/);
      assert.equal(await admin.get(R.deployments, ns, "zerofs-miner"), undefined);
      const events = await plane.kubectl(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=miner", "-o", "jsonpath={.items[*].reason}"]);
      assert.match(events, /ImageNotAllowed/);
    });
  });

  it("deletionPolicy Delete removes the storage prefix (and only it); Retain keeps the data", async () => {
    const vgw = await startVersitygw();
    const s3 = new S3Client({ endpoint: vgw.endpoint, region: vgw.region, forcePathStyle: true, credentials: { accessKeyId: vgw.accessKeyId, secretAccessKey: vgw.secretAccessKey } });
    try {
      const ns = "data-policy";
      await ensureNamespace(admin, ns);
      await admin.create(secret(ns, "pw", { password: "pw-1" }));
      await admin.create(secret(ns, "s3", { AWS_ACCESS_KEY_ID: vgw.accessKeyId, AWS_SECRET_ACCESS_KEY: vgw.secretAccessKey }));
      for (const key of ["vols/a/manifest/00001", "vols/a/sst/x.sst", "vols/ab/keep", "vols/b/manifest/00001"]) {
        await s3.send(new PutObjectCommand({ Bucket: vgw.bucket, Key: key, Body: "x" }));
      }
      const mk = (name: string, prefix: string, deletionPolicy: string) =>
        createVolume(admin, volumeManifest(ns, name, {
          storage: { url: `s3://${vgw.bucket}/${prefix}`, endpoint: vgw.endpoint, allowHttp: true, region: vgw.region, credentialsSecretRef: { name: "s3" } },
          persistentVolume: { create: false },
          deletionPolicy,
        }));
      await mk("gone", "vols/a", "Delete");
      await mk("kept", "vols/b", "Retain");
      await waitFor("both servers", async () => (await admin.get(R.deployments, ns, "zerofs-gone")) && (await admin.get(R.deployments, ns, "zerofs-kept")));
      await admin.delete(R.volumes, ns, "gone");
      await admin.delete(R.volumes, ns, "kept");
      await waitFor("both volumes deleted", async () => !(await getVolume(admin, ns, "gone")) && !(await getVolume(admin, ns, "kept")), { timeoutMs: 60_000, describe: describeVolume(ns, "gone") });
      const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: vgw.bucket, Prefix: "vols/" }))).Contents ?? []).map((o) => o.Key).sort();
      assert.deepEqual(keys, ["vols/ab/keep", "vols/b/manifest/00001"]);
      const events = await plane.kubectl(["get", "events", "-n", ns, "-o", "jsonpath={.items[*].message}"]);
      assert.match(events, /deleted 2 objects under s3:\/\/zerofs-test\/vols\/a/);
    } finally {
      s3.destroy();
      await vgw.stop();
    }
  });
});
