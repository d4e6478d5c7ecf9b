import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ANN_BETA_STORAGE_PROVISIONER,
  ANN_PROVISIONED_BY,
  ANN_STORAGE_PROVISIONER,
  buildDedicatedVolume,
  buildProvisionedPv,
  claimDirectoryName,
  claimWantsUs,
  dedicatedVolumeName,
  parseClassParams,
  pvNameFor,
  type StorageClass,
} from "../src/provisioner/claims.ts";
import { DIRECTORY_NAME_RE } from "../src/provisioner/admin-client.ts";
import type { PersistentVolumeClaim } from "../src/kube/types.ts";
import { buildNetworkPolicy } from "../src/builders/network-policy.ts";
import { buildDeployment } from "../src/builders/deployment.ts";
import { cacheClaimName } from "../src/builders/names.ts";
import { normalized, volume } from "./fixtures.ts";

const UID = "0f1e2d3c-4b5a-6978-8a9b-acbdcedfe0f1";
const claim = (over: Partial<PersistentVolumeClaim["metadata"]> = {}, storage = "5Gi"): PersistentVolumeClaim => ({
  metadata: { name: "data", namespace: "apps", uid: UID, annotations: { [ANN_STORAGE_PROVISIONER]: "zerofs.io/nfs" }, ...over },
  spec: { accessModes: ["ReadWriteMany"], storageClassName: "zerofs", resources: { requests: { storage } } },
});
const sc = (parameters: Record<string, string>, extra: Partial<StorageClass> = {}): StorageClass => ({ metadata: { name: "zerofs" }, provisioner: "zerofs.io/nfs", parameters, ...extra });

describe("StorageClass parameters", () => {
  it("shared mode needs a volume name; namespace and directory owner are optional", () => {
    assert.deepEqual(parseClassParams(sc({ mode: "shared", volume: "pool", namespace: "storage", directoryMode: "0770", directoryUID: "1000" })), {
      mode: "shared",
      volume: { namespace: "storage", name: "pool" },
      owner: { uid: 1000, gid: undefined, mode: 0o770 },
    });
    assert.equal(parseClassParams(sc({ volume: "pool" })).mode, "shared", "shared is the default mode");
    assert.throws(() => parseClassParams(sc({ mode: "shared" })), /parameter volume: the name of a ZeroFSVolume is required/);
    assert.throws(() => parseClassParams(sc({ volume: "Pool!" })), /"Pool!" is not a valid name/);
    assert.throws(() => parseClassParams(sc({ volume: "p", directoryMode: "999" })), /directoryMode: "999" is not an integer in 0..7777 \(octal\)/);
  });
  it("names unknown parameters and bad modes", () => {
    assert.throws(() => parseClassParams(sc({ volume: "p", quota: "1" })), /unknown parameter quota for mode shared/);
    assert.throws(() => parseClassParams(sc({ mode: "private" })), /mode: "private" is not shared or dedicated/);
  });
  it("dedicated mode needs a template whose storage.url is an s3 URL", () => {
    const p = parseClassParams(sc({ mode: "dedicated", template: "storage:\n  url: s3://bucket/claims/\n  endpoint: http://s3:9000\n  allowHttp: true\n" }));
    assert.equal(p.mode, "dedicated");
    if (p.mode === "dedicated") assert.equal(p.baseUrl, "s3://bucket/claims");
    assert.throws(() => parseClassParams(sc({ mode: "dedicated" })), /template: a ZeroFSVolume spec/);
    assert.throws(() => parseClassParams(sc({ mode: "dedicated", template: "storage: {url: /tmp/x}" })), /storage.url must be s3:/);
    assert.throws(() => parseClassParams(sc({ mode: "dedicated", template: "storage: [" })), /template: not YAML/);
  });
});

describe("names derived from a claim", () => {
  it("the PV is pvc-<uid> like the external provisioner's", () => assert.equal(pvNameFor(claim()), `pvc-${UID}`));
  it("the directory is namespace_name_uid, one valid component of at most 200 characters", () => {
    assert.equal(claimDirectoryName(claim()), `apps_data_${UID}`);
    const long = claimDirectoryName(claim({ name: "n".repeat(253), namespace: "x".repeat(63) }));
    assert.equal(long.length, 200);
    assert.ok(long.endsWith(`_${UID}`), "the uid survives the cut");
    assert.match(long, DIRECTORY_NAME_RE);
    assert.notEqual(claimDirectoryName(claim({ uid: "other" })), claimDirectoryName(claim()), "a re-created claim of the same name gets a new directory");
  });
  it("a dedicated volume's name fits the CRD's 40 characters and pattern", () => {
    const n = dedicatedVolumeName(claim());
    assert.ok(n.length <= 40);
    assert.match(n, /^[a-z]([-a-z0-9]*[a-z0-9])?$/);
  });
  it("claims are ours by the controller-manager's annotation or its beta spelling", () => {
    assert.equal(claimWantsUs(claim()), true);
    assert.equal(claimWantsUs(claim({ annotations: { [ANN_BETA_STORAGE_PROVISIONER]: "zerofs.io/nfs" } })), true);
    assert.equal(claimWantsUs(claim({ annotations: { [ANN_STORAGE_PROVISIONER]: "other.io/x" } })), false);
    assert.equal(claimWantsUs(claim({ annotations: {} })), false);
  });
});

describe("provisioned PersistentVolume", () => {
  it("is pre-bound by uid, sized by the request, with the class's reclaim policy and the volume's mount options", () => {
    const pv = buildProvisionedPv({ claim: claim(), sc: sc({ volume: "p" }, { reclaimPolicy: "Retain" }), server: "10.0.0.7", path: "/apps_data", volumeMountOptions: ["nfsvers=3", "tcp"], annotations: { a: "b" } });
    assert.equal(pv.metadata.name, `pvc-${UID}`);
    assert.equal(pv.metadata.annotations?.[ANN_PROVISIONED_BY], "zerofs.io/nfs");
    assert.deepEqual(pv.spec.claimRef, { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: "apps", name: "data", uid: UID });
    assert.deepEqual(pv.spec.nfs, { server: "10.0.0.7", path: "/apps_data" });
    assert.deepEqual(pv.spec.capacity, { storage: "5Gi" });
    assert.equal(pv.spec.persistentVolumeReclaimPolicy, "Retain");
    assert.equal(pv.spec.storageClassName, "zerofs");
    assert.deepEqual(pv.spec.mountOptions, ["nfsvers=3", "tcp"]);
    const dflt = buildProvisionedPv({ claim: claim(), sc: sc({ volume: "p" }, { mountOptions: ["hard"] }), server: "s", path: "/", annotations: {} });
    assert.equal(dflt.spec.persistentVolumeReclaimPolicy, "Delete", "a class without reclaimPolicy means Delete");
    assert.deepEqual(dflt.spec.mountOptions, ["hard"], "the class's mount options win");
  });
});

describe("dedicated ZeroFSVolume", () => {
  const p = parseClassParams(sc({ mode: "dedicated", template: "storage:\n  url: s3://bucket/claims\n  credentialsSecretRef: {name: s3}\ncache: {size: 2Gi}\n" }));
  it("gets the claim's prefix, a generated password Secret, its capacity, no PV of its own, and deletionPolicy from reclaimPolicy", () => {
    if (p.mode !== "dedicated") throw new Error("mode");
    const v = buildDedicatedVolume(claim(), sc({}, { reclaimPolicy: "Delete" }), p);
    assert.equal(v.metadata.name, `pvc-${UID}`);
    assert.equal(v.metadata.namespace, "apps");
    assert.equal(v.spec.storage.url, `s3://bucket/claims/apps/data-${UID}`);
    assert.deepEqual(v.spec.storage.credentialsSecretRef, { name: "s3" });
    assert.deepEqual(v.spec.encryption.passwordSecretRef, { name: `pvc-${UID}-encryption`, key: "password" });
    assert.equal(v.spec.capacity, "5Gi");
    assert.equal(v.spec.persistentVolume?.create, false);
    assert.equal(v.spec.deletionPolicy, "Delete");
    assert.equal(buildDedicatedVolume(claim(), sc({}, { reclaimPolicy: "Retain" }), p).spec.deletionPolicy, "Retain");
    assert.equal(v.metadata.ownerReferences, undefined, "not owned by the claim: Retain must outlive it");
  });
  it("a named password Secret is used as is", () => {
    const q = parseClassParams(sc({ mode: "dedicated", passwordSecret: "mine", template: "storage: {url: s3://bucket/c}" }));
    if (q.mode !== "dedicated") throw new Error("mode");
    assert.equal(buildDedicatedVolume(claim(), sc({}), q).spec.encryption.passwordSecretRef.name, "mine");
  });
});

describe("the server side of the admin API", () => {
  const v = volume();
  const spec = normalized(v);
  it("every server gets the admin token file from its own Secret", () => {
    const d = buildDeployment({ volume: v, spec, image: "z", cacheClaimName: cacheClaimName(v, spec), replicas: 1, passwordHash: "h", network: { allowedClients: ["10.0.0.0/8"], httpAllowedClients: ["10.0.0.0/8"] } });
    const pod = d.spec.template!.spec as { containers: { env: { name: string; value?: string }[]; volumeMounts: { name: string; mountPath: string }[] }[]; volumes: { name: string; secret?: { secretName: string; defaultMode: number } }[] };
    assert.equal(pod.containers[0]!.env.find((e) => e.name === "ZEROFS_ADMIN_TOKEN_FILE")?.value, "/var/run/zerofs/admin/token");
    assert.deepEqual(pod.volumes.find((x) => x.name === "admin-token")?.secret?.secretName, "zerofs-data-admin");
    assert.equal(pod.volumes.find((x) => x.name === "admin-token")?.secret?.defaultMode, 0o400);
    assert.ok(pod.containers[0]!.volumeMounts.some((m) => m.name === "admin-token" && m.mountPath === "/var/run/zerofs/admin"));
  });
  it("the NetworkPolicy admits the operator's pods to the HTTP port, in a rule of their own", () => {
    const peer = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "zerofs-system" } }, podSelector: { matchLabels: { app: "op" } } };
    const np = buildNetworkPolicy(v, spec, { allowedClients: ["10.0.0.0/8"], metricsFrom: [], adminFrom: [peer] });
    assert.deepEqual(np.spec.ingress?.[1], { ports: [{ protocol: "TCP", port: 9090 }], from: [peer] });
    assert.equal(buildNetworkPolicy(v, spec, { allowedClients: ["10.0.0.0/8"], metricsFrom: [] }).spec.ingress?.length, 1, "no peers, no rule");
  });
});
