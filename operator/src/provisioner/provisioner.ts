/**
 * The StorageClass provisioner for `zerofs.io/nfs`, in the external-provisioner's protocol:
 *
 *  - a Pending claim whose class names this provisioner (the controller-manager marks it with
 *    volume.kubernetes.io/storage-provisioner, or the beta spelling) gets a PersistentVolume named
 *    pvc-<claim uid>, pre-bound to the claim by claimRef (with uid); the controller-manager binds
 *    them. The name is deterministic: a provisioner restarted mid-way finds its PV and never makes
 *    a second one. Events on the claim: Provisioning, ProvisioningSucceeded, ProvisioningFailed.
 *  - a Released PV it made, with reclaimPolicy Delete, has its storage removed (the claim's
 *    directory through the server's admin API, or the dedicated ZeroFSVolume with its data), then
 *    the PV is deleted. Retain keeps both.
 *  - a bound claim whose request grew (allowVolumeExpansion) gets the new quota, PV capacity and
 *    claim status capacity (the external-resizer's part).
 *  - usage of shared-mode claims is read from the servers periodically (one list per volume),
 *    shown as annotations on claim and PV, as metrics, and in the volume's status.claims.
 *
 * Work is keyed `claim:<ns>/<name>` and `pv:<name>` in a queue of its own; the controller shares
 * its ZeroFSVolume and PersistentVolume caches.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { API_VERSION, HTTP_PORT, KIND } from "../api/constants.ts";
import { quantityBytes } from "../api/quantity.ts";
import type { ClaimStatus, ZeroFSVolume } from "../api/types.ts";
import { adminTokenSecretName, readAdminToken } from "../builders/admin-token.ts";
import type { EventRecorder, EventType } from "../controller/events.ts";
import type { OperatorMetrics } from "../controller/metrics.ts";
import { WorkQueue } from "../controller/workqueue.ts";
import type { KubeClient } from "../kube/client.ts";
import { deepEqual } from "../kube/compare.ts";
import { isAlreadyExists, isNotFound } from "../kube/errors.ts";
import type { Informer } from "../kube/informer.ts";
import { R } from "../kube/resources.ts";
import type { PersistentVolume, PersistentVolumeClaim, Secret } from "../kube/types.ts";
import { findCondition, COND_READY } from "../status/conditions.ts";
import { AdminClient, type DirectoryInfo } from "./admin-client.ts";
import {
  ANN_CLAIM_NAME,
  ANN_DEDICATED_VOLUME,
  ANN_DIRECTORY,
  ANN_MODE,
  ANN_PROVISIONED_BY,
  ANN_SHARED_VOLUME,
  ANN_USED_BYTES,
  ANN_USED_INODES,
  LABEL_CLAIM_NAMESPACE,
  LABEL_CLAIM_UID,
  PROVISIONER_NAME,
  ParameterError,
  buildDedicatedVolume,
  buildProvisionedPv,
  claimDirectoryName,
  claimWantsUs,
  dedicatedPasswordSecretName,
  dedicatedVolumeName,
  parseClassParams,
  pvNameFor,
  requestedStorage,
  type ClassParams,
  type StorageClass,
} from "./claims.ts";

/** Base URL of a volume's admin API; undefined while it has no address. Injectable for tests. */
export type AdminEndpointResolver = (v: ZeroFSVolume) => string | undefined;

/** The server's Service (ClusterIP) on the HTTP port: the operator's pods reach it over the pod network. */
export const serviceAdminEndpoint: AdminEndpointResolver = (v) => {
  const ip = v.status?.server?.clusterIP;
  if (!ip) return undefined;
  return `http://${ip.includes(":") ? `[${ip}]` : ip}:${HTTP_PORT}`;
};

/** The provisioner's own field manager: status.claims is its field, the rest of status the reconciler's. */
export const PROVISIONER_FIELD_MANAGER = "zerofs-provisioner";
const BAD_CLASS_RETRY_MS = 60_000;
const MAX_STATUS_CLAIMS = 1000;

export interface ProvisionerOptions {
  client: KubeClient;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  volumes: Informer<ZeroFSVolume>;
  pvs: Informer<PersistentVolume>;
  claims: Informer<PersistentVolumeClaim>;
  classes: Informer<StorageClass>;
  adminEndpoint?: AdminEndpointResolver;
  /** How often shared-mode usage is read (default 60 s). */
  usageRefreshMs?: number;
  workers?: number;
  queueBaseDelayMs?: number;
}

interface Outcome {
  requeueAfterMs?: number;
  /**
   * Waiting for something outside (a volume to become Ready): retry with growing delays (up to
   * the queue's maximum) rather than at a fixed rate; the volume's own events bring the claim
   * back at once.
   */
  wait?: boolean;
}

const claimKind = (c: PersistentVolumeClaim) => ({ ...c, apiVersion: "v1", kind: "PersistentVolumeClaim" });
const isReady = (v: ZeroFSVolume) => findCondition(v.status?.conditions, COND_READY)?.status === "True" && !!v.status?.server?.clusterIP && !v.metadata.deletionTimestamp;
const ours = (pv: PersistentVolume | undefined): pv is PersistentVolume => pv?.metadata.annotations?.[ANN_PROVISIONED_BY] === PROVISIONER_NAME;
const splitKey = (k: string): [string, string] => {
  const i = k.indexOf("/");
  return [k.slice(0, i), k.slice(i + 1)];
};

export class Provisioner {
  readonly queue: WorkQueue;
  private readonly o: ProvisionerOptions;
  private readonly log: Logger;
  private readonly resolve: AdminEndpointResolver;
  private workers: Promise<void>[] = [];
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private running = false;
  /** Volumes last seen Ready (see the volumes handler). */
  private readonly readyVolumes = new Set<string>();

  constructor(o: ProvisionerOptions) {
    this.o = o;
    this.log = o.log.child({ subsystem: "provisioner" });
    this.resolve = o.adminEndpoint ?? serviceAdminEndpoint;
    this.queue = new WorkQueue({ baseDelayMs: o.queueBaseDelayMs });
    o.claims.on((type, c) => {
      if (type !== "delete") this.enqueue(`claim:${c.metadata.namespace}/${c.metadata.name}`);
    });
    o.pvs.on((type, pv) => {
      if (!ours(pv)) return;
      if (type !== "delete") this.enqueue(`pv:${pv.metadata.name}`);
      const ref = pv.spec.claimRef;
      if (ref?.namespace && ref.name) this.enqueue(`claim:${ref.namespace}/${ref.name}`);
    });
    o.volumes.on((type, v) => {
      // A dedicated claim's volume changed (say, became Ready): its claim may proceed.
      const l = v.metadata.labels ?? {};
      const name = v.metadata.annotations?.[ANN_CLAIM_NAME];
      if (l[LABEL_CLAIM_UID] && l[LABEL_CLAIM_NAMESPACE] && name) this.enqueue(`claim:${l[LABEL_CLAIM_NAMESPACE]}/${name}`);
      // A volume became Ready: claims waiting for one (shared mode) try again now. Readiness is
      // tracked here, not from the event's old object: the reconciler records its own status
      // writes in the cache (upsert) before the watch event arrives, so `old` may already be Ready.
      const key = `${v.metadata.namespace}/${v.metadata.name}`;
      if (type === "delete" || !isReady(v)) {
        this.readyVolumes.delete(key);
      } else if (!this.readyVolumes.has(key)) {
        this.readyVolumes.add(key);
        for (const c of this.o.claims.list((x) => !x.spec.volumeName && claimWantsUs(x))) this.enqueue(`claim:${c.metadata.namespace}/${c.metadata.name}`);
      }
    });
  }

  private enqueue(key: string): void {
    if (this.running) this.queue.add(key);
  }

  /** Starts workers; the caller has started the informers and waited for them to sync. */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const c of this.o.claims.list()) this.enqueue(`claim:${c.metadata.namespace}/${c.metadata.name}`);
    for (const pv of this.o.pvs.list(ours)) this.enqueue(`pv:${pv.metadata.name}`);
    this.workers = Array.from({ length: this.o.workers ?? 2 }, () => this.worker());
    this.refreshTimer = setInterval(() => this.refreshUsage(), this.o.usageRefreshMs ?? 60_000);
    this.refreshTimer.unref();
    this.refreshUsage();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.refreshTimer);
    this.queue.shutDown();
    await Promise.all(this.workers);
    await this.refreshing;
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        const r = key.startsWith("pv:") ? await this.reconcilePv(key.slice(3)) : await this.reconcileClaim(...splitKey(key.slice(6)));
        if (r.wait) {
          this.queue.addRateLimited(key);
          continue;
        }
        this.queue.forget(key);
        if (r.requeueAfterMs !== undefined) this.queue.addAfter(key, r.requeueAfterMs);
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        this.log.warn({ key, err: (err as Error).message, retryInMs: delay }, "provisioner step failed");
      } finally {
        this.queue.done(key);
      }
    }
  }

  private emit(c: PersistentVolumeClaim, type: EventType, reason: string, message: string): Promise<void> {
    return this.o.events.emit(claimKind(c), type, reason, message);
  }

  private async fail(c: PersistentVolumeClaim, mode: string, message: string, retryMs?: number): Promise<Outcome> {
    this.o.metrics.provisioning.inc({ mode, result: "failed" });
    this.log.warn({ claim: `${c.metadata.namespace}/${c.metadata.name}`, err: message }, "provisioning failed");
    await this.emit(c, "Warning", "ProvisioningFailed", message);
    return { requeueAfterMs: retryMs };
  }

  // --- claims -------------------------------------------------------------------------------

  async reconcileClaim(ns: string, name: string): Promise<Outcome> {
    const c = this.o.claims.get(ns, name);
    if (!c || c.metadata.deletionTimestamp) return {};
    if (c.spec.volumeName) {
      const pv = this.o.pvs.get(undefined, c.spec.volumeName);
      if (ours(pv) && pv.spec.claimRef?.uid === c.metadata.uid) await this.expand(c, pv);
      return {};
    }
    if (!claimWantsUs(c) || (c.status?.phase && c.status.phase !== "Pending")) return {};
    const sc = c.spec.storageClassName ? this.o.classes.get(undefined, c.spec.storageClassName) : undefined;
    if (!sc || sc.provisioner !== PROVISIONER_NAME) return {};
    const pvName = pvNameFor(c);
    if (this.o.pvs.get(undefined, pvName) ?? (await this.o.client.get(R.pvs, undefined, pvName, { metadataOnly: true }))) return {}; // made before: binding is the controller-manager's
    let params: ClassParams;
    try {
      if (c.spec.volumeMode === "Block") throw new ParameterError("volumeMode Block is not supported: ZeroFS volumes are NFS filesystems");
      if (c.spec.selector) throw new ParameterError("claims with a selector cannot be provisioned (no volume matches a selector before it exists)");
      if (c.spec.dataSource || c.spec.dataSourceRef) throw new ParameterError("data sources (clones, snapshots) are not supported");
      params = parseClassParams(sc);
      requestedStorage(c);
    } catch (err) {
      if (!(err instanceof ParameterError)) throw err;
      return await this.fail(c, sc.parameters?.mode ?? "shared", `StorageClass ${sc.metadata.name}: ${err.message}`, BAD_CLASS_RETRY_MS);
    }
    return params.mode === "shared" ? await this.provisionShared(c, sc, params) : await this.provisionDedicated(c, sc, params);
  }

  private async adminFor(v: ZeroFSVolume): Promise<AdminClient> {
    const where = `ZeroFSVolume ${v.metadata.namespace}/${v.metadata.name}`;
    const baseUrl = this.resolve(v);
    if (!baseUrl) throw new Error(`${where} has no address for its admin API yet`);
    const s = await this.o.client.get<Secret>(R.secrets, v.metadata.namespace, adminTokenSecretName(v));
    const token = s && readAdminToken(s);
    if (!token) throw new Error(`${where}: its admin token Secret ${v.metadata.namespace}/${adminTokenSecretName(v)} is missing or empty`);
    return new AdminClient({ baseUrl, token });
  }

  private async provisionShared(c: PersistentVolumeClaim, sc: StorageClass, p: Extract<ClassParams, { mode: "shared" }>): Promise<Outcome> {
    const vns = p.volume.namespace ?? c.metadata.namespace ?? "";
    const where = `ZeroFSVolume ${vns}/${p.volume.name}`;
    const v = this.o.volumes.get(vns, p.volume.name);
    if (!v) return await this.fail(c, "shared", `StorageClass ${sc.metadata.name}: ${where} (parameter volume) not found`, 10_000);
    if (!isReady(v)) {
      await this.emit(c, "Normal", "Provisioning", `waiting for ${where} to be Ready (${v.status?.message ?? "no status yet"})`);
      return { wait: true };
    }
    const size = requestedStorage(c);
    const dir = claimDirectoryName(c);
    await this.emit(c, "Normal", "Provisioning", `External provisioner is provisioning volume for claim "${c.metadata.namespace}/${c.metadata.name}": directory ${dir} of ${where}`);
    let info: DirectoryInfo;
    try {
      info = await (await this.adminFor(v)).putDirectory(dir, { bytes: size.bytes, inodes: null }, stripUndefined(p.owner));
    } catch (err) {
      await this.fail(c, "shared", `creating directory ${dir} on ${where}: ${(err as Error).message}`);
      throw err; // transient (server unreachable, degraded...): retried with backoff
    }
    const pv = buildProvisionedPv({
      claim: c,
      sc,
      server: v.status!.server!.clusterIP!,
      path: info.path,
      volumeMountOptions: v.status?.mountOptions,
      annotations: { [ANN_MODE]: "shared", [ANN_SHARED_VOLUME]: `${vns}/${p.volume.name}`, [ANN_DIRECTORY]: dir },
    });
    await this.createPv(c, pv, "shared", `directory ${info.path} of ${where}, quota ${size.quantity}`);
    this.scheduleRefresh();
    return {};
  }

  private async provisionDedicated(c: PersistentVolumeClaim, sc: StorageClass, p: Extract<ClassParams, { mode: "dedicated" }>): Promise<Outcome> {
    const ns = c.metadata.namespace ?? "";
    const vname = dedicatedVolumeName(c);
    const where = `ZeroFSVolume ${ns}/${vname}`;
    let v = this.o.volumes.get(ns, vname) ?? (await this.o.client.get<ZeroFSVolume>(R.volumes, ns, vname));
    if (v && v.metadata.labels?.[LABEL_CLAIM_UID] !== c.metadata.uid) {
      return await this.fail(c, "dedicated", `${where} already exists and was not made for this claim (label ${LABEL_CLAIM_UID}); it is left alone`, BAD_CLASS_RETRY_MS);
    }
    if (!v) {
      await this.emit(c, "Normal", "Provisioning", `External provisioner is provisioning volume for claim "${ns}/${c.metadata.name}": creating ${where}`);
      try {
        v = await this.o.client.create(buildDedicatedVolume(c, sc, p));
      } catch (err) {
        if (isAlreadyExists(err)) return { requeueAfterMs: 0 };
        // Rejected by the API server (schema, CEL: a template that is not a valid spec): the user's to fix.
        if ((err as { status?: number }).status === 422) return await this.fail(c, "dedicated", `StorageClass ${sc.metadata.name}: template rejected: ${(err as Error).message}`, BAD_CLASS_RETRY_MS);
        throw err;
      }
      this.o.volumes.upsert(v);
    }
    if (!p.passwordSecret) await this.ensurePasswordSecret(c, v);
    if (!isReady(v)) {
      await this.emit(c, "Normal", "Provisioning", `waiting for ${where} to be Ready (${v.status?.message ?? "no status yet"})`);
      return { wait: true };
    }
    const pv = buildProvisionedPv({
      claim: c,
      sc,
      server: v.status!.server!.clusterIP!,
      path: v.status?.server?.path ?? "/",
      volumeMountOptions: v.status?.mountOptions,
      annotations: { [ANN_MODE]: "dedicated", [ANN_DEDICATED_VOLUME]: `${ns}/${vname}` },
    });
    await this.createPv(c, pv, "dedicated", `${where}`);
    return {};
  }

  /**
   * A generated password, kept in the claim's namespace and owned by the volume that uses it: it
   * lives exactly as long as the data it encrypts (Retain keeps both).
   */
  private async ensurePasswordSecret(c: PersistentVolumeClaim, v: ZeroFSVolume): Promise<void> {
    const name = dedicatedPasswordSecretName(c);
    const ns = v.metadata.namespace;
    if (await this.o.client.get(R.secrets, ns, name, { metadataOnly: true })) return;
    try {
      await this.o.client.create<Secret>({
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name,
          namespace: ns,
          labels: { [LABEL_CLAIM_NAMESPACE]: ns, [LABEL_CLAIM_UID]: c.metadata.uid ?? "" },
          ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: v.metadata.name, uid: v.metadata.uid, blockOwnerDeletion: true }],
        },
        type: "Opaque",
        // 256 random bits as text (base64url): the password the store's key is wrapped with.
        data: { password: Buffer.from(randomBytes(32).toString("base64url")).toString("base64") },
      });
      this.log.info({ secret: `${ns}/${name}` }, "generated the encryption password of a dedicated volume");
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  private async createPv(c: PersistentVolumeClaim, pv: PersistentVolume, mode: string, what: string): Promise<void> {
    try {
      const made = await this.o.client.create(pv);
      this.o.pvs.upsert(made);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      return; // a previous attempt made it: nothing to announce twice
    }
    this.o.metrics.provisioning.inc({ mode, result: "succeeded" });
    this.log.info({ claim: `${c.metadata.namespace}/${c.metadata.name}`, pv: pv.metadata.name, mode }, "provisioned");
    await this.emit(c, "Normal", "ProvisioningSucceeded", `Successfully provisioned volume ${pv.metadata.name ?? ""}: ${what}`);
  }

  // --- expansion (the external-resizer's part) ------------------------------------------------

  private async expand(c: PersistentVolumeClaim, pv: PersistentVolume): Promise<void> {
    const want = c.spec.resources?.requests?.storage;
    const have = (pv.spec.capacity as { storage?: string } | undefined)?.storage;
    if (!want || !have) return;
    let wantBytes: number;
    try {
      wantBytes = quantityBytes(want);
    } catch {
      return;
    }
    const a = pv.metadata.annotations ?? {};
    if (wantBytes > quantityBytes(have)) {
      const sc = c.spec.storageClassName ? this.o.classes.get(undefined, c.spec.storageClassName) : undefined;
      if (!sc?.allowVolumeExpansion) return; // admission refuses it anyway
      await this.emit(c, "Normal", "Resizing", `External resizer is resizing volume ${pv.metadata.name ?? ""} to ${want}`);
      try {
        if (a[ANN_MODE] === "shared") {
          const [vns, vname] = splitKey(a[ANN_SHARED_VOLUME] ?? "/");
          const v = this.o.volumes.get(vns, vname);
          if (!v || !isReady(v)) throw new Error(`ZeroFSVolume ${vns}/${vname} is not Ready`);
          await (await this.adminFor(v)).putDirectory(a[ANN_DIRECTORY] ?? "", { bytes: wantBytes, inodes: null });
        } else if (a[ANN_MODE] === "dedicated") {
          const [vns, vname] = splitKey(a[ANN_DEDICATED_VOLUME] ?? "/");
          await this.o.client.patch(R.volumes, vns, vname, { spec: { capacity: want } });
        }
        const updated = await this.o.client.patch<PersistentVolume>(R.pvs, undefined, pv.metadata.name ?? "", { spec: { capacity: { storage: want } } });
        this.o.pvs.upsert(updated);
      } catch (err) {
        await this.emit(c, "Warning", "VolumeResizeFailed", `resize of ${pv.metadata.name ?? ""} to ${want} failed: ${(err as Error).message}`);
        throw err;
      }
    }
    // The claim's status follows the PV's capacity (also after a restart between the two writes).
    const pvCap = wantBytes > quantityBytes(have) ? want : have;
    const st = c.status as { capacity?: { storage?: string }; conditions?: { type: string }[] } | undefined;
    const cur = st?.capacity?.storage;
    if (cur !== undefined && quantityBytes(cur) >= quantityBytes(pvCap)) return;
    if (cur === undefined) return; // not bound yet by the controller-manager: it sets the capacity
    await this.o.client.patch(R.pvcs, c.metadata.namespace, c.metadata.name ?? "", {
      status: {
        capacity: { storage: pvCap },
        allocatedResources: { storage: pvCap },
        allocatedResourceStatuses: null,
        conditions: (st?.conditions ?? []).filter((x) => x.type !== "Resizing" && x.type !== "FileSystemResizePending"),
      },
    }, { subresource: "status" });
    await this.emit(c, "Normal", "VolumeResizeSuccessful", `resized volume ${pv.metadata.name ?? ""} to ${pvCap}`);
  }

  // --- deletion -------------------------------------------------------------------------------

  async reconcilePv(name: string): Promise<Outcome> {
    const pv = this.o.pvs.get(undefined, name);
    if (!ours(pv) || pv.metadata.deletionTimestamp) return {};
    if (pv.status?.phase !== "Released" || pv.spec.persistentVolumeReclaimPolicy !== "Delete") return {};
    const a = pv.metadata.annotations ?? {};
    if (a[ANN_MODE] === "shared") {
      const [vns, vname] = splitKey(a[ANN_SHARED_VOLUME] ?? "/");
      const v = this.o.volumes.get(vns, vname);
      // A volume that is gone took the directory with it; one that is not Ready cannot be asked yet.
      if (v && !v.metadata.deletionTimestamp) {
        if (!isReady(v)) return { requeueAfterMs: 5_000 };
        await (await this.adminFor(v)).deleteDirectory(a[ANN_DIRECTORY] ?? "");
      }
    } else if (a[ANN_MODE] === "dedicated") {
      const [vns, vname] = splitKey(a[ANN_DEDICATED_VOLUME] ?? "/");
      // Only the claim's own volume; its deletionPolicy (Delete) removes the data once this PV,
      // which points at its server, is gone.
      const v = await this.o.client.get<ZeroFSVolume>(R.volumes, vns, vname);
      if (v && v.metadata.labels?.[LABEL_CLAIM_UID] === pv.spec.claimRef?.uid && !v.metadata.deletionTimestamp) await this.o.client.delete(R.volumes, vns, vname);
    }
    await this.o.client.delete(R.pvs, undefined, name, { preconditions: { uid: pv.metadata.uid } });
    this.o.pvs.forget(undefined, name);
    this.log.info({ pv: name, mode: a[ANN_MODE] }, "deleted a released volume (reclaimPolicy Delete)");
    this.scheduleRefresh();
    return {};
  }

  // --- usage ------------------------------------------------------------------------------------

  private refreshSoon: NodeJS.Timeout | undefined;

  private scheduleRefresh(): void {
    if (this.refreshSoon || !this.running) return;
    this.refreshSoon = setTimeout(() => {
      this.refreshSoon = undefined;
      this.refreshUsage();
    }, 500);
    this.refreshSoon.unref();
  }

  /** One pass at a time; a pass lists each shared volume's directories once (bounded work). */
  refreshUsage(): void {
    if (this.refreshing || !this.running) return;
    this.refreshing = this.refreshPass()
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "usage refresh failed"))
      .finally(() => (this.refreshing = undefined));
  }

  /** Runs one refresh now and waits for it (tests). */
  async refreshNow(): Promise<void> {
    await this.refreshing;
    this.refreshUsage();
    await this.refreshing;
  }

  private async refreshPass(): Promise<void> {
    const byVolume = new Map<string, PersistentVolume[]>();
    for (const pv of this.o.pvs.list((x) => ours(x) && x.metadata.annotations?.[ANN_MODE] === "shared")) {
      const k = pv.metadata.annotations?.[ANN_SHARED_VOLUME] ?? "";
      byVolume.set(k, [...(byVolume.get(k) ?? []), pv]);
    }
    // Volumes that had claims listed but have none now get their list emptied.
    for (const v of this.o.volumes.list((x) => (x.status?.claims?.length ?? 0) > 0)) {
      const k = `${v.metadata.namespace}/${v.metadata.name}`;
      if (!byVolume.has(k)) byVolume.set(k, []);
    }
    // Gauges are replaced at the end of the pass: a scrape in the middle sees the last pass's values.
    const gauges: { labels: { namespace: string; claim: string }; used: number; quota: number | null }[] = [];
    for (const [key, pvs] of byVolume) {
      if (!this.running) return;
      const [vns, vname] = splitKey(key);
      const v = this.o.volumes.get(vns, vname);
      if (!v) continue;
      let dirs = new Map<string, DirectoryInfo>();
      if (pvs.length > 0 && isReady(v)) {
        try {
          dirs = new Map((await (await this.adminFor(v)).listDirectories()).map((d) => [d.name, d]));
        } catch (err) {
          this.log.warn({ volume: key, err: (err as Error).message }, "could not read claim usage");
        }
      }
      const claims: ClaimStatus[] = [];
      for (const pv of pvs) {
        const ref = pv.spec.claimRef;
        const dirName = pv.metadata.annotations?.[ANN_DIRECTORY] ?? "";
        const d = dirs.get(dirName);
        const entry: ClaimStatus = { namespace: ref?.namespace ?? "", name: ref?.name ?? "", persistentVolume: pv.metadata.name, directory: dirName };
        if (d) {
          if (d.quota.bytes !== null) entry.quotaBytes = d.quota.bytes;
          entry.usedBytes = d.usage.bytes;
          entry.usedInodes = d.usage.inodes;
          gauges.push({ labels: { namespace: entry.namespace, claim: entry.name }, used: d.usage.bytes, quota: d.quota.bytes });
          await this.annotateUsage(pv, d);
        }
        claims.push(entry);
      }
      claims.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
      await this.writeClaims(v, claims.slice(0, MAX_STATUS_CLAIMS));
    }
    this.o.metrics.claimUsedBytes.reset();
    this.o.metrics.claimQuotaBytes.reset();
    for (const g of gauges) {
      this.o.metrics.claimUsedBytes.set(g.labels, g.used);
      if (g.quota !== null) this.o.metrics.claimQuotaBytes.set(g.labels, g.quota);
    }
  }

  /** Annotations on the PV and its claim, written only when the numbers changed. */
  private async annotateUsage(pv: PersistentVolume, d: DirectoryInfo): Promise<void> {
    const want = { [ANN_USED_BYTES]: String(d.usage.bytes), [ANN_USED_INODES]: String(d.usage.inodes) };
    const differs = (a: Record<string, string> | undefined) => a?.[ANN_USED_BYTES] !== want[ANN_USED_BYTES] || a?.[ANN_USED_INODES] !== want[ANN_USED_INODES];
    try {
      if (differs(pv.metadata.annotations)) this.o.pvs.upsert(await this.o.client.patch<PersistentVolume>(R.pvs, undefined, pv.metadata.name ?? "", { metadata: { annotations: want } }));
      const ref = pv.spec.claimRef;
      const c = ref?.namespace && ref.name ? this.o.claims.get(ref.namespace, ref.name) : undefined;
      if (c && c.metadata.uid === ref?.uid && differs(c.metadata.annotations)) {
        this.o.claims.upsert(await this.o.client.patch<PersistentVolumeClaim>(R.pvcs, ref!.namespace, ref!.name!, { metadata: { annotations: want } }));
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async writeClaims(v: ZeroFSVolume, claims: ClaimStatus[]): Promise<void> {
    if (deepEqual(claims, v.status?.claims ?? [])) return;
    try {
      const updated = await this.o.client.apply<ZeroFSVolume>(
        { apiVersion: API_VERSION, kind: KIND, metadata: { name: v.metadata.name, namespace: v.metadata.namespace }, status: { claims } } as unknown as ZeroFSVolume,
        { subresource: "status", fieldManager: PROVISIONER_FIELD_MANAGER },
      );
      this.o.volumes.upsert(updated);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<T>;
}
