import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ANN_CREDENTIALS_DIGEST, ANN_PASSWORD_HASH, FIELD_MANAGER, LABEL_MANAGED_BY, SECRET_KEY_ACTIVE, SECRET_KEY_PENDING } from "../src/api/constants.ts";
import { buildDeployment } from "../src/builders/deployment.ts";
import { buildPasswordJob } from "../src/builders/jobs.ts";
import { cacheClaimName, persistentVolumeName, rotationJobName, serverName, verifyJobName } from "../src/builders/names.ts";
import { buildPasswordSecret, parsePasswordSecret } from "../src/builders/secret.ts";
import { cacheSizeGb } from "../src/builders/server-pod.ts";
import { buildNetworkPolicy } from "../src/builders/network-policy.ts";
import { buildService } from "../src/builders/service.ts";
import { DEFAULT_NETWORK, PRIVATE_CIDRS, effectiveAllowedCIDRs } from "../src/api/policy.ts";
import { buildCacheClaim, buildConsumerClaim, buildPersistentVolume } from "../src/builders/storage.ts";
import { normalized, volume } from "./fixtures.ts";

type Env = { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } };
type Container = { name: string; image: string; command: string[]; args: string[]; env: Env[]; [k: string]: unknown };
type PodSpec = { containers: Container[]; volumes: Record<string, unknown>[]; securityContext: Record<string, unknown>; [k: string]: unknown };

function podSpecOf(o: { spec: Record<string, unknown> }): PodSpec {
  return (o.spec.template as { spec: PodSpec }).spec;
}
const envMap = (c: Container) => new Map(c.env.map((e) => [e.name, e.value ?? e.valueFrom]));
const network = (v: Parameters<typeof normalized>[0]) => ({ allowedClients: effectiveAllowedCIDRs(normalized(v), DEFAULT_NETWORK), httpAllowedClients: PRIVATE_CIDRS });

describe("Deployment builder", () => {
  const v = volume({ nfs: { allowedCIDRs: ["10.0.0.0/8", "192.168.0.0/16"], squash: "root", readOnly: true }, capacity: "100Gi" });
  const spec = normalized(v);
  const d = buildDeployment({ volume: v, spec, image: "zerofs:1", cacheClaimName: cacheClaimName(v, spec), replicas: 1, passwordHash: "hmac-sha256:abc", credentialsDigest: "d1", network: network(v) });

  it("runs one replica with strategy Recreate, owned by the volume", () => {
    assert.equal(d.metadata.name, "zerofs-data");
    assert.equal(d.metadata.namespace, "apps");
    assert.equal(d.spec.replicas, 1);
    assert.deepEqual(d.spec.strategy, { type: "Recreate" });
    assert.deepEqual(d.metadata.ownerReferences, [
      { apiVersion: "zerofs.io/v1alpha1", kind: "ZeroFSVolume", name: "data", uid: v.metadata.uid, controller: true, blockOwnerDeletion: true },
    ]);
    assert.equal(d.metadata.labels?.[LABEL_MANAGED_BY], FIELD_MANAGER);
    const tmplLabels = d.spec.template?.metadata?.labels ?? {};
    for (const [k, val] of Object.entries(d.spec.selector?.matchLabels ?? {})) assert.equal(tmplLabels[k], val, `selector label ${k} on the pod template`);
  });

  it("runs `zerofs <url>` non-root with a read-only root filesystem and probes on /readyz", () => {
    const ps = podSpecOf(d);
    const c = ps.containers[0]!;
    assert.deepEqual(c.command, ["zerofs"]);
    assert.deepEqual(c.args, ["s3://bucket/volumes/data"]);
    assert.equal(c.image, "zerofs:1");
    assert.equal(ps.securityContext.runAsNonRoot, true);
    assert.equal(ps.securityContext.runAsUser, 65532);
    assert.deepEqual(ps.securityContext.sysctls, [{ name: "net.ipv4.ip_unprivileged_port_start", value: "2049" }]);
    assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } });
    assert.deepEqual((c.readinessProbe as { httpGet: unknown }).httpGet, { path: "/readyz", port: "http" });
    const live = c.livenessProbe as { httpGet: unknown; periodSeconds: number; failureThreshold: number; timeoutSeconds: number };
    assert.deepEqual(live.httpGet, { path: "/healthz", port: "http" });
    // A busy node must not get a healthy server restarted: a minute without an answer, 10 s per try.
    assert.ok(live.periodSeconds * live.failureThreshold >= 60, `liveness gives up after ${live.periodSeconds * live.failureThreshold} s`);
    assert.ok(live.timeoutSeconds >= 10, `liveness timeout ${live.timeoutSeconds} s`);
    assert.equal(ps.automountServiceAccountToken, false);
  });

  it("passes the configuration contract as environment, the password as a mounted file", () => {
    const c = podSpecOf(d).containers[0]!;
    const env = envMap(c);
    assert.equal(env.get("ZEROFS_ENCRYPTION_PASSWORD_FILE"), "/var/run/zerofs/password/password");
    assert.equal(env.has("ZEROFS_ENCRYPTION_PASSWORD"), false, "never the password itself in the environment");
    assert.equal(env.has("ZEROFS_NEW_PASSWORD_FILE"), false);
    assert.equal(env.get("SLATEDB_CACHE_DIR"), "/var/cache/zerofs");
    assert.equal(env.get("SLATEDB_CACHE_SIZE_GB"), "9");
    assert.equal(env.get("ZEROFS_LISTEN"), "0.0.0.0");
    assert.equal(env.get("ZEROFS_NFS_PORT"), "2049");
    assert.equal(env.get("ZEROFS_HTTP_PORT"), "9090");
    assert.equal(env.get("ZEROFS_ALLOWED_CLIENTS"), "10.0.0.0/8,192.168.0.0/16");
    assert.equal(env.get("ZEROFS_SQUASH"), "root");
    assert.equal(env.get("ZEROFS_READ_ONLY"), "true");
    assert.equal(env.get("ZEROFS_ANON_UID"), "65534");
    assert.equal(env.get("ZEROFS_CAPACITY_BYTES"), String(100 * 2 ** 30));
    assert.equal(env.get("AWS_ENDPOINT_URL"), "https://s3.example.com");
    assert.equal(env.get("AWS_DEFAULT_REGION"), "us-east-1");
    assert.equal(env.get("AWS_ALLOW_HTTP"), "false");
    assert.deepEqual(env.get("AWS_ACCESS_KEY_ID"), { secretKeyRef: { name: "s3", key: "AWS_ACCESS_KEY_ID" } });
    assert.deepEqual(env.get("AWS_SECRET_ACCESS_KEY"), { secretKeyRef: { name: "s3", key: "AWS_SECRET_ACCESS_KEY" } });
    assert.equal(env.get("ZEROFS_LOG_LEVEL"), "info");
    const vols = podSpecOf(d).volumes;
    assert.deepEqual(vols[0], { name: "password", secret: { secretName: "zerofs-data-password", defaultMode: 0o400, items: [{ key: SECRET_KEY_ACTIVE, path: SECRET_KEY_ACTIVE }] } });
    assert.deepEqual(vols[1], { name: "cache", persistentVolumeClaim: { claimName: cacheClaimName(v, spec) } });
  });

  it("annotates the pod template with the password hash and credentials digest (a change restarts the server)", () => {
    const ann = d.spec.template?.metadata?.annotations ?? {};
    assert.equal(ann[ANN_PASSWORD_HASH], "hmac-sha256:abc");
    assert.equal(ann[ANN_CREDENTIALS_DIGEST], "d1");
  });

  it("scales to zero during a password change and copies scheduling fields", () => {
    const v2 = volume({
      server: { nodeSelector: { disk: "ssd" }, tolerations: [{ key: "k", operator: "Exists" }], podLabels: { team: "a" }, podAnnotations: { x: "y" }, logLevel: "debug", resources: { limits: { memory: "1Gi" } } },
    });
    const s2 = normalized(v2);
    const d2 = buildDeployment({ volume: v2, spec: s2, image: "i", cacheClaimName: "c", replicas: 0, passwordHash: "h", network: network(v2) });
    assert.equal(d2.spec.replicas, 0);
    const ps = podSpecOf(d2);
    assert.deepEqual(ps.nodeSelector, { disk: "ssd" });
    assert.deepEqual(ps.tolerations, [{ key: "k", operator: "Exists" }]);
    assert.equal(d2.spec.template?.metadata?.labels?.team, "a");
    assert.equal(d2.spec.template?.metadata?.annotations?.x, "y");
    assert.deepEqual(ps.containers[0]!.resources, { limits: { memory: "1Gi" } });
    assert.equal(envMap(ps.containers[0]!).get("ZEROFS_LOG_LEVEL"), "debug");
    assert.equal(envMap(ps.containers[0]!).has("AWS_ACCESS_KEY_ID"), true);
  });

  it("omits credentials and allowed clients when not configured", () => {
    const v3 = volume({ storage: { url: "s3://bkt/p" } });
    const d3 = buildDeployment({ volume: v3, spec: normalized(v3), image: "i", cacheClaimName: "c", replicas: 1, passwordHash: "h", network: network(v3) });
    const env = envMap(podSpecOf(d3).containers[0]!);
    for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "ZEROFS_CAPACITY_BYTES"]) assert.equal(env.has(k), false, k);
  });

  it("is safe by default: root squash, secure ports, an explicit client list for NFS and HTTP, a memory limit", () => {
    const v4 = volume({ storage: { url: "s3://bkt/p" } });
    const d4 = buildDeployment({ volume: v4, spec: normalized(v4), image: "i", cacheClaimName: "c", replicas: 1, passwordHash: "h", network: network(v4) });
    const c = podSpecOf(d4).containers[0]!;
    const env = envMap(c);
    assert.equal(env.get("ZEROFS_SQUASH"), "root");
    assert.equal(env.get("ZEROFS_INSECURE"), "false");
    assert.equal(env.get("ZEROFS_LISTEN"), "0.0.0.0");
    // Never "everyone" by omission: the server refuses a non-loopback listener without a list.
    assert.equal(env.get("ZEROFS_ALLOWED_CLIENTS"), "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7");
    assert.equal(env.get("ZEROFS_HTTP_LISTEN"), "0.0.0.0");
    assert.equal(env.get("ZEROFS_HTTP_ALLOWED_CLIENTS"), PRIVATE_CIDRS.join(","));
    assert.deepEqual(c.resources, { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "2Gi" } });
    const pw = podSpecOf(d4).volumes[0] as { secret: { defaultMode: number } };
    assert.equal(pw.secret.defaultMode, 0o400, "password file readable by its owner only (the kubelet adds fsGroup read)");
    // Relaxing is explicit, in the spec.
    const open = volume({ nfs: { insecure: true, squash: "none", allowedCIDRs: ["0.0.0.0/0", "::/0"] } });
    const env2 = envMap(podSpecOf(buildDeployment({ volume: open, spec: normalized(open), image: "i", cacheClaimName: "c", replicas: 1, passwordHash: "h", network: network(open) })).containers[0]!);
    assert.equal(env2.get("ZEROFS_INSECURE"), "true");
    assert.equal(env2.get("ZEROFS_SQUASH"), "none");
    assert.equal(env2.get("ZEROFS_ALLOWED_CLIENTS"), "0.0.0.0/0,::/0");
  });

  it("always sets a memory limit, never below the request", () => {
    const res = (r: Record<string, unknown>) => {
      const x = volume({ server: { resources: r } });
      return podSpecOf(buildDeployment({ volume: x, spec: normalized(x), image: "i", cacheClaimName: "c", replicas: 1, passwordHash: "h", network: network(x) })).containers[0]!.resources;
    };
    assert.deepEqual(res({ requests: { cpu: "1" } }), { requests: { cpu: "1" }, limits: { memory: "2Gi" } });
    assert.deepEqual(res({ requests: { memory: "8Gi" } }), { requests: { memory: "8Gi" }, limits: { memory: "8Gi" } });
    assert.deepEqual(res({ limits: { memory: "512Mi", cpu: "2" } }), { limits: { memory: "512Mi", cpu: "2" } });
  });
});

describe("NetworkPolicy builder", () => {
  it("admits NFS only from the allowed client networks, metrics only from named peers", () => {
    const v = volume({ nfs: { allowedCIDRs: ["10.1.0.0/16"] } });
    const np = buildNetworkPolicy(v, normalized(v), { allowedClients: effectiveAllowedCIDRs(normalized(v), DEFAULT_NETWORK), metricsFrom: [] });
    assert.equal(np.metadata.name, "zerofs-data");
    assert.equal(np.metadata.ownerReferences?.[0]?.uid, v.metadata.uid);
    assert.deepEqual(np.spec.podSelector, { matchLabels: { "app.kubernetes.io/name": "zerofs", "app.kubernetes.io/instance": "data", "app.kubernetes.io/component": "server" } });
    assert.deepEqual(np.spec.policyTypes, ["Ingress"]);
    assert.deepEqual(np.spec.ingress, [{ ports: [{ protocol: "TCP", port: 2049 }], from: [{ ipBlock: { cidr: "10.1.0.0/16" } }] }], "no metrics rule when no one is named");
  });

  it("adds the spec's NFS peers and the operator's and spec's metrics peers", () => {
    const prom = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } }, podSelector: { matchLabels: { app: "prometheus" } } };
    const client = { podSelector: { matchLabels: { role: "nfs-client" } } };
    const team = { namespaceSelector: { matchLabels: { team: "a" } } };
    const v = volume({ networkPolicy: { nfsFrom: [client], metricsFrom: [team] } });
    const np = buildNetworkPolicy(v, normalized(v), { allowedClients: effectiveAllowedCIDRs(normalized(v), DEFAULT_NETWORK), metricsFrom: [prom] });
    assert.deepEqual(np.spec.ingress?.[0]?.from, [...PRIVATE_CIDRS.map((cidr) => ({ ipBlock: { cidr } })), client]);
    assert.deepEqual(np.spec.ingress?.[1], { ports: [{ protocol: "TCP", port: 9090 }], from: [prom, team] });
  });

  it("refuses to build an NFS rule without sources (an empty from admits everyone)", () => {
    const v = volume();
    assert.throws(() => buildNetworkPolicy(v, normalized(v), { allowedClients: [], metricsFrom: [] }), /admit everyone/);
  });
});

describe("Service builder", () => {
  it("is a ClusterIP Service on 2049 selecting the server pods", () => {
    const v = volume();
    const s = buildService(v);
    assert.equal(s.spec.type, "ClusterIP");
    assert.equal(s.metadata.name, serverName(v));
    assert.deepEqual(s.spec.ports?.[0], { name: "nfs", port: 2049, targetPort: "nfs", protocol: "TCP" });
    assert.equal(s.spec.clusterIP, undefined);
    assert.equal(buildService(v, "10.0.0.7").spec.clusterIP, "10.0.0.7", "re-created Services ask for the recorded IP");
  });
});

describe("storage builders", () => {
  const v = volume({ capacity: "50Gi", persistentVolume: { reclaimPolicy: "Retain" } });
  const spec = normalized(v);

  it("points the NFS PersistentVolume at the ClusterIP with safe mount options", () => {
    const pv = buildPersistentVolume(v, spec, "10.0.0.9");
    assert.equal(pv.metadata.name, "zerofs-apps-data");
    assert.equal(pv.metadata.ownerReferences, undefined, "cluster-scoped: no owner reference to a namespaced owner");
    assert.deepEqual(pv.spec.nfs, { server: "10.0.0.9", path: "/" });
    assert.deepEqual(pv.spec.mountOptions, ["nfsvers=3", "tcp", "nolock", "port=2049", "mountport=2049"]);
    assert.deepEqual(pv.spec.accessModes, ["ReadWriteMany"]);
    assert.equal(pv.spec.storageClassName, undefined);
    assert.deepEqual(pv.spec.capacity, { storage: "50Gi" });
    assert.deepEqual(pv.spec.claimRef, { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: "apps", name: "data" });
  });

  it("binds the consumers' claim to the PV and keeps an existing claim's request", () => {
    const c = buildConsumerClaim(v, spec);
    assert.equal(c.spec.volumeName, persistentVolumeName(v));
    assert.equal(c.spec.storageClassName, "");
    assert.deepEqual(c.spec.resources, { requests: { storage: "50Gi" } });
    assert.equal(c.metadata.ownerReferences?.length, 1);
    assert.deepEqual(buildConsumerClaim(v, spec, "10Gi").spec.resources, { requests: { storage: "10Gi" } });
    const other = volume({ persistentVolume: { claim: { namespace: "web", name: "shared" } } });
    const oc = buildConsumerClaim(other, normalized(other));
    assert.equal(oc.metadata.namespace, "web");
    assert.equal(oc.metadata.name, "shared");
    assert.equal(oc.metadata.ownerReferences, undefined, "owner references cannot cross namespaces");
  });

  it("names the cache claim after its size and class", () => {
    const c = buildCacheClaim(v, spec);
    assert.deepEqual(c.spec.resources, { requests: { storage: "10Gi" } });
    assert.deepEqual(c.spec.accessModes, ["ReadWriteOnce"]);
    const bigger = volume({ cache: { size: "20Gi" } });
    assert.notEqual(cacheClaimName(bigger, normalized(bigger)), c.metadata.name);
    assert.match(c.metadata.name ?? "", /^zerofs-data-cache-[0-9a-f]{8}$/);
  });

  it("computes SLATEDB_CACHE_SIZE_GB as 90% of the claim", () => {
    assert.equal(cacheSizeGb("10Gi"), "9");
    assert.equal(cacheSizeGb("1Gi"), "0.9");
    assert.equal(cacheSizeGb("100Mi"), "0.08");
    assert.equal(cacheSizeGb(1), "0.01");
  });
});

describe("password Secret and Jobs", () => {
  const v = volume();
  const spec = normalized(v);

  it("round-trips the rotation state through the Secret", () => {
    const st = {
      active: Buffer.from("old"),
      activeHash: "hmac-sha256:a",
      hmacKey: Buffer.alloc(32, 1),
      pending: { password: Buffer.from("new"), hash: "hmac-sha256:b", startedAt: "2026-01-01T00:00:00Z" },
      failedHash: "hmac-sha256:c",
    };
    const s = buildPasswordSecret(v, st, "7");
    assert.equal(s.metadata.resourceVersion, "7", "writes are conditional on the state they were decided from");
    assert.equal(s.metadata.ownerReferences?.[0]?.uid, v.metadata.uid);
    assert.deepEqual(parsePasswordSecret(s), st);
    const idle = buildPasswordSecret(v, { active: Buffer.from("x"), activeHash: "h", hmacKey: Buffer.alloc(32) });
    assert.equal(idle.data?.[SECRET_KEY_PENDING], undefined);
    assert.equal(parsePasswordSecret({ ...idle, metadata: { ...idle.metadata, annotations: {} } }), undefined);
  });

  it("rotate Job changes old -> new; verify Job checks new -> new; both use ZEROFS_NEW_PASSWORD_FILE", () => {
    const rot = buildPasswordJob("rotate", { volume: v, spec, image: "zerofs:1", targetHash: "hmac-sha256:b", network: network(v) });
    const ver = buildPasswordJob("verify", { volume: v, spec, image: "zerofs:1", targetHash: "hmac-sha256:b", network: network(v) });
    assert.equal(rot.metadata.name, rotationJobName(v, "hmac-sha256:b"));
    assert.equal(ver.metadata.name, verifyJobName(v, "hmac-sha256:b"));
    assert.ok((rot.metadata.name ?? "").length <= 63);
    const renv = envMap(podSpecOf(rot).containers[0]!);
    const venv = envMap(podSpecOf(ver).containers[0]!);
    assert.equal(renv.get("ZEROFS_ENCRYPTION_PASSWORD_FILE"), "/var/run/zerofs/password/password");
    assert.equal(renv.get("ZEROFS_NEW_PASSWORD_FILE"), "/var/run/zerofs/password/new-password");
    assert.equal(venv.get("ZEROFS_ENCRYPTION_PASSWORD_FILE"), "/var/run/zerofs/password/new-password");
    assert.equal(venv.get("ZEROFS_NEW_PASSWORD_FILE"), "/var/run/zerofs/password/new-password");
    assert.equal(podSpecOf(rot).restartPolicy, "Never");
    assert.equal(podSpecOf(rot).containers[0]!.terminationMessagePolicy, "FallbackToLogsOnError");
  });
});
