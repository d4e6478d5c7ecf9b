/**
 * Deleting a volume (finalizer). Order matters: deleting an NFS server under live mounts hangs
 * the kubelets of the nodes that mounted it (their unmounts never finish), so:
 *  1. wait while anything uses the volume: a Pod mounting its claim (or any claim bound to its
 *     PersistentVolume, or its ClusterIP directly), a finished Pod still naming the claim (the
 *     pvc-protection controller would hold the claim for it), a foreign claim bound to the PV,
 *     another PV pointing at the server; the Ready condition and an Event name each of them;
 *  2. delete the consumers' claim and the PersistentVolume (cluster-scoped: no owner reference);
 *  3. deletionPolicy Delete: stop the server, then remove everything under the storage prefix;
 *  4. remove the finalizer; garbage collection removes the namespaced children (owner references).
 */
import { LABEL_MANAGED_BY, MANAGED_BY } from "../api/constants.ts";
import { normalizeSpec, type NormalizedSpec } from "../api/spec.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import { consumerClaim, persistentVolumeName, serverName } from "../builders/names.ts";
import { isNotFound } from "../kube/errors.ts";
import { R } from "../kube/resources.ts";
import type { Pod, PersistentVolume, PersistentVolumeClaim } from "../kube/types.ts";
import { deletePasswordJobs, serverPodsGone } from "../rotation/executor.ts";
import { computeStatus, MAX_BLOCKERS_SHOWN } from "../status/compute.ts";
import { writeStatus } from "../status/write.ts";
import type { ReconcileDeps, ReconcileResult } from "./context.ts";
import { hasFinalizer, removeFinalizer } from "./finalizer.ts";
import { readUserSecrets } from "./secrets.ts";

const ours = (o: { metadata: { labels?: Record<string, string> } }): boolean => o.metadata.labels?.[LABEL_MANAGED_BY] === MANAGED_BY;

/**
 * What still uses the volume. An operator restricted to one namespace (a Role, no cluster-wide
 * read) looks for claims and pods there only; a claim elsewhere still shows through the
 * PersistentVolume's claimRef, which it can read.
 */
export async function findBlockers(d: ReconcileDeps, v: ZeroFSVolume, pvName: string, claim: { namespace: string; name: string }, clusterIP: string | undefined): Promise<string[]> {
  const blockers: string[] = [];
  const scope = d.config.namespace;
  const ourClaim = `${claim.namespace}/${claim.name}`;
  // Claims that reach the server: ours, plus any other claim bound to our PersistentVolume.
  const claims = new Set<string>([ourClaim]);
  const allClaims = await d.client.list<PersistentVolumeClaim>(R.pvcs, scope);
  for (const c of allClaims.items) {
    if (c.spec.volumeName !== pvName) continue;
    const k = `${c.metadata.namespace}/${c.metadata.name}`;
    claims.add(k);
    if (!ours(c) || k !== ourClaim) blockers.push(`PersistentVolumeClaim ${k} is bound to PersistentVolume ${pvName}`);
  }
  const pods = await d.client.list<Pod>(R.pods, scope);
  for (const p of pods.items) {
    const phase = p.status?.phase;
    const finished = phase === "Succeeded" || phase === "Failed";
    const pk = `${p.metadata.namespace}/${p.metadata.name}`;
    for (const vol of p.spec.volumes ?? []) {
      const cn = vol.persistentVolumeClaim?.claimName;
      if (cn && claims.has(`${p.metadata.namespace}/${cn}`)) {
        // A finished pod no longer mounts anything, but the pvc-protection controller keeps a
        // claim while any pod object names it, so the claim (and this volume) would wait in
        // Terminating with no visible reason: name the pod instead.
        blockers.push(finished
          ? `Pod ${pk} (${phase}) still references PersistentVolumeClaim ${p.metadata.namespace}/${cn}; Kubernetes keeps the claim until the pod is deleted`
          : `Pod ${pk} mounts PersistentVolumeClaim ${p.metadata.namespace}/${cn}`);
      } else if (!finished && clusterIP && vol.nfs?.server === clusterIP) blockers.push(`Pod ${pk} mounts ${clusterIP}:${vol.nfs.path} directly`);
    }
  }
  const pvs = await d.client.list<PersistentVolume>(R.pvs);
  for (const pv of pvs.items) {
    if (pv.metadata.name === pvName) {
      const ref = pv.spec.claimRef;
      const k = ref ? `${ref.namespace ?? ""}/${ref.name ?? ""}` : "";
      if (pv.status?.phase === "Bound" && ref && !claims.has(k)) blockers.push(`PersistentVolume ${pvName} is bound to PersistentVolumeClaim ${k}`);
    } else if (clusterIP && pv.spec.nfs?.server === clusterIP) blockers.push(`PersistentVolume ${pv.metadata.name} points at the server (${clusterIP})`);
  }
  return blockers;
}

export async function reconcileDeletion(d: ReconcileDeps, cached: ZeroFSVolume): Promise<ReconcileResult> {
  if (!hasFinalizer(cached)) return {};
  // The cache may still hold a volume whose finalizer a previous reconcile just removed: confirm
  // with a fresh read before stopping servers or deleting data.
  const v = await d.client.get<ZeroFSVolume>(R.volumes, cached.metadata.namespace, cached.metadata.name);
  if (!v || v.metadata.uid !== cached.metadata.uid || !hasFinalizer(v)) return {};
  const key = `${v.metadata.namespace}/${v.metadata.name}`;
  let spec: NormalizedSpec | undefined;
  try {
    spec = normalizeSpec(v.spec, key);
  } catch {
    spec = undefined; // an invalid spec must not block deletion: fall back to the default names, keep the data
  }
  const pvName = persistentVolumeName(v);
  const claim = spec ? consumerClaim(v, spec) : { namespace: v.metadata.namespace, name: v.metadata.name };
  const svc = d.caches.services.get(v.metadata.namespace, serverName(v));
  const clusterIP = svc?.spec.clusterIP && svc.spec.clusterIP !== "None" ? svc.spec.clusterIP : v.status?.server?.clusterIP;
  const rotation = v.status?.passwordRotation ?? { phase: "Idle" };
  const status = (blockers: string[], step: string) =>
    computeStatus(v.status, { generation: v.metadata.generation ?? 0, deleting: { blockers, step }, rotation, clusterIP, activePasswordHash: v.status?.activePasswordHash }, new Date().toISOString());

  const blockers = await findBlockers(d, v, pvName, claim, clusterIP);
  if (blockers.length > 0) {
    const prevMessage = v.status?.message;
    const st = status(blockers, "");
    if (st.message !== prevMessage) {
      d.log.info({ blockers: blockers.slice(0, MAX_BLOCKERS_SHOWN), blockerCount: blockers.length }, "deletion blocked: the volume is still in use");
      await d.events.emit(v, "Warning", "DeletionBlocked", st.message ?? "");
    }
    await writeStatus(d.client, v, st, d.caches.volumes);
    return { requeueAfterMs: d.config.deletionPollMs, phase: "Deleting" };
  }

  let waiting = false;
  const liveClaim = await d.client.get<PersistentVolumeClaim>(R.pvcs, claim.namespace, claim.name);
  if (liveClaim && ours(liveClaim) && liveClaim.spec.volumeName === pvName) {
    if (!liveClaim.metadata.deletionTimestamp) await d.client.delete(R.pvcs, claim.namespace, claim.name);
    waiting = true;
  }
  const livePv = await d.client.get<PersistentVolume>(R.pvs, undefined, pvName);
  if (livePv && ours(livePv)) {
    if (!livePv.metadata.deletionTimestamp) await d.client.delete(R.pvs, undefined, pvName);
    waiting = true;
  }
  if (waiting) {
    await writeStatus(d.client, v, status([], `removing PersistentVolume ${pvName} and claim ${claim.namespace}/${claim.name}`), d.caches.volumes);
    return { requeueAfterMs: 1000, phase: "Deleting" };
  }

  if (spec?.deletionPolicy === "Delete") {
    // The server must be stopped first: a running server would keep writing into a prefix being emptied.
    await deletePasswordJobs({ ...d, jobs: d.caches.jobs }, v);
    try {
      await d.client.patch(R.deployments, v.metadata.namespace, serverName(v), { spec: { replicas: 0 } });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!(await serverPodsGone(d.client, v))) {
      await writeStatus(d.client, v, status([], "stopping the server before deleting its data"), d.caches.volumes);
      return { requeueAfterMs: 1000, phase: "Deleting" };
    }
    const secrets = await readUserSecrets(d.client, v, spec);
    if (secrets.credentialsProblem) {
      const msg = `cannot delete the data under ${spec.storage.url}: ${secrets.credentialsProblem.message} (set spec.deletionPolicy to Retain to finish deleting without removing the data)`;
      await writeStatus(d.client, v, status([], msg), d.caches.volumes);
      throw new Error(`${key}: ${msg}`);
    }
    await writeStatus(d.client, v, status([], `deleting the data under ${spec.storage.url}`), d.caches.volumes);
    const n = await d.dataDeleter.deletePrefix({
      url: spec.storage.url,
      endpoint: spec.storage.endpoint,
      region: spec.storage.region,
      allowHttp: spec.storage.allowHttp,
      accessKeyId: secrets.credentials?.accessKeyId,
      secretAccessKey: secrets.credentials?.secretAccessKey,
    });
    d.log.info({ objects: n, url: spec.storage.url }, "deleted the volume's data (deletionPolicy Delete)");
    await d.events.emit(v, "Normal", "DataDeleted", `deleted ${n} objects under ${spec.storage.url}`);
  }
  await removeFinalizer(d.client, v);
  d.caches.volumes.forget(v.metadata.namespace, v.metadata.name);
  d.log.info({ deletionPolicy: spec?.deletionPolicy ?? "Retain" }, "volume deleted");
  return {};
}
