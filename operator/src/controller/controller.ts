/**
 * Wires informers to the work queue and the queue to reconcile workers.
 *
 * Watched: ZeroFSVolumes; the children the operator labels (Deployments, Services, claims,
 * PersistentVolumes, Jobs), mapped back to their volume through the volume labels; and Secrets
 * (metadata only: their data is never cached) mapped to the volumes that reference them.
 */
import type { Logger } from "pino";
import { LABEL_MANAGED_BY, LABEL_VOLUME_NAME, LABEL_VOLUME_NAMESPACE, MANAGED_BY } from "../api/constants.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { KubeClient } from "../kube/client.ts";
import { Informer, type InformerEventType } from "../kube/informer.ts";
import { R } from "../kube/resources.ts";
import type { Deployment, Job, KubeObject, NetworkPolicy, PersistentVolume, PersistentVolumeClaim, Service } from "../kube/types.ts";
import type { Caches, ReconcileDeps, ReconcilerConfig } from "../reconcile/context.ts";
import { S3DataDeleter, type DataDeleter } from "../reconcile/data-deleter.ts";
import { Reconciler } from "../reconcile/reconciler.ts";
import { EventRecorder } from "./events.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { WorkQueue } from "./workqueue.ts";
import type { StorageClass } from "../provisioner/claims.ts";
import { Provisioner, type AdminEndpointResolver } from "../provisioner/provisioner.ts";

export interface ControllerOptions {
  client: KubeClient;
  log: Logger;
  metrics: OperatorMetrics;
  config: ReconcilerConfig;
  /** Only this namespace (default: all). */
  namespace?: string;
  workers?: number;
  /** Enqueue every volume this often even without events (default 10 min). */
  resyncMs?: number;
  dataDeleter?: DataDeleter;
  /** Identity for Events' reportingInstance. */
  identity?: string;
  queueBaseDelayMs?: number;
  queueMaxDelayMs?: number;
  /** The StorageClass provisioner (zerofs.io/nfs); false: off. */
  provisioner?: false | { adminEndpoint?: AdminEndpointResolver; usageRefreshMs?: number };
}

const MANAGED = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;

export class Controller {
  readonly caches: Caches;
  readonly queue: WorkQueue;
  private readonly secrets: Informer<KubeObject>;
  /** Its own informers: every claim (not only the operator's) and the StorageClasses. */
  private readonly provisionerInformers: Informer<KubeObject>[] = [];
  readonly provisioner: Provisioner | undefined;
  private readonly o: ControllerOptions;
  private readonly reconciler: Reconciler;
  private readonly log: Logger;
  private workers: Promise<void>[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly phases = new Map<string, string>();
  private running = false;
  private onStop: (() => void) | undefined;

  constructor(o: ControllerOptions) {
    this.o = o;
    this.log = o.log;
    const m = o.metrics;
    const onRestart = (resource: string, reason: "expired" | "error") => m.watchRestarts.inc({ resource, reason });
    const inf = <T extends KubeObject>(r: (typeof R)[keyof typeof R], opts: { labelSelector?: string; metadataOnly?: boolean } = {}) =>
      new Informer<T>(o.client, r, o.log, { namespace: r.namespaced ? o.namespace : undefined, onRestart, ...opts });
    this.caches = {
      volumes: inf<ZeroFSVolume>(R.volumes),
      deployments: inf<Deployment>(R.deployments, { labelSelector: MANAGED }),
      services: inf<Service>(R.services, { labelSelector: MANAGED }),
      pvcs: inf<PersistentVolumeClaim>(R.pvcs, { labelSelector: MANAGED }),
      pvs: inf<PersistentVolume>(R.pvs, { labelSelector: MANAGED }),
      jobs: inf<Job>(R.jobs, { labelSelector: MANAGED }),
      networkPolicies: inf<NetworkPolicy>(R.networkPolicies, { labelSelector: MANAGED }),
    };
    this.secrets = inf<KubeObject>(R.secrets, { metadataOnly: true });
    this.queue = new WorkQueue({ baseDelayMs: o.queueBaseDelayMs, maxDelayMs: o.queueMaxDelayMs, onDepth: (d) => m.queueDepth.set(d) });
    const events = new EventRecorder(o.client, o.log, { instance: o.identity });
    if (o.provisioner !== false) {
      const claims = inf<PersistentVolumeClaim>(R.pvcs);
      const classes = inf<StorageClass>(R.storageClasses);
      this.provisionerInformers.push(claims as unknown as Informer<KubeObject>, classes as unknown as Informer<KubeObject>);
      this.provisioner = new Provisioner({
        client: o.client,
        log: o.log,
        metrics: m,
        events,
        volumes: this.caches.volumes,
        pvs: this.caches.pvs,
        claims,
        classes,
        adminEndpoint: o.provisioner?.adminEndpoint,
        usageRefreshMs: o.provisioner?.usageRefreshMs,
        queueBaseDelayMs: o.queueBaseDelayMs,
      });
    }
    const deps: ReconcileDeps = {
      client: o.client,
      caches: this.caches,
      log: o.log,
      events,
      metrics: m,
      config: o.config,
      dataDeleter: o.dataDeleter ?? new S3DataDeleter(),
    };
    this.reconciler = new Reconciler(deps);

    this.caches.volumes.on((type, v, old) => {
      if (type === "delete") {
        this.phases.delete(keyOf(v));
        this.updatePhaseGauge();
        return;
      }
      // The operator's own status writes change nothing it acts on: skip them.
      if (type === "update" && old && statusOnlyChange(old, v)) return;
      this.enqueue(keyOf(v));
    });
    const byLabels = (_t: InformerEventType, o2: KubeObject) => {
      const l = o2.metadata.labels ?? {};
      const ns = l[LABEL_VOLUME_NAMESPACE];
      const name = l[LABEL_VOLUME_NAME];
      if (ns && name) this.enqueue(`${ns}/${name}`);
    };
    for (const c of [this.caches.deployments, this.caches.services, this.caches.pvcs, this.caches.pvs, this.caches.jobs, this.caches.networkPolicies] as unknown as Informer<KubeObject>[]) c.on(byLabels);
    this.secrets.on((t, s) => {
      byLabels(t, s);
      const ns = s.metadata.namespace;
      for (const v of this.caches.volumes.list((x) => x.metadata.namespace === ns)) {
        const refs = [v.spec?.encryption?.passwordSecretRef?.name, v.spec?.storage?.credentialsSecretRef?.name];
        if (refs.includes(s.metadata.name)) this.enqueue(keyOf(v));
      }
    });
  }

  private enqueue(key: string): void {
    if (!this.running) return;
    this.o.metrics.queueAdds.inc();
    this.queue.add(key);
  }

  /** True once every informer listed successfully. */
  hasSynced(): boolean {
    return this.informers().every((i) => i.hasSynced());
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const all = this.informers();
    for (const i of all) i.start();
    // Stopping (shutdown, lost leadership) must not wait for caches that may never sync (e.g. the CRD is missing).
    const stopped = new Promise<"stopped">((r) => (this.onStop = () => r("stopped")));
    if ((await Promise.race([Promise.all(all.map((i) => i.waitForSync())), stopped])) === "stopped") return;
    this.log.info("caches synced; starting workers");
    for (const v of this.caches.volumes.list()) this.enqueue(keyOf(v));
    const n = this.o.workers ?? 2;
    this.workers = Array.from({ length: n }, (_, i) => this.worker(i));
    this.provisioner?.start();
    const resync = this.o.resyncMs ?? 600_000;
    this.resyncTimer = setInterval(() => {
      for (const v of this.caches.volumes.list()) this.enqueue(keyOf(v));
    }, resync);
    this.resyncTimer.unref();
  }

  /** Graceful: stop taking work, let running reconciles finish (up to timeoutMs), stop watches. */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.onStop?.();
    clearInterval(this.resyncTimer);
    this.queue.shutDown();
    const done = Promise.all([...this.workers, this.provisioner?.stop()]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      done.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) this.log.warn({ timeoutMs }, "reconciles still running at shutdown");
    await Promise.all(this.informers().map((i) => i.stop()));
    this.log.info("controller stopped");
  }

  private informers(): Informer<KubeObject>[] {
    return [...(Object.values(this.caches) as unknown as Informer<KubeObject>[]), this.secrets, ...this.provisionerInformers];
  }

  private async worker(id: number): Promise<void> {
    const m = this.o.metrics;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const end = m.reconcileDuration.startTimer();
      try {
        const r = await this.reconciler.reconcile(key);
        this.queue.forget(key);
        if (r.phase) {
          this.phases.set(key, r.phase);
          this.updatePhaseGauge();
        }
        if (r.requeueAfterMs !== undefined) {
          m.reconciles.inc({ result: "requeue" });
          this.queue.addAfter(key, r.requeueAfterMs);
        } else m.reconciles.inc({ result: "success" });
      } catch (err) {
        m.reconciles.inc({ result: "error" });
        m.reconcileErrors.inc();
        m.queueRetries.inc();
        const delay = this.queue.addRateLimited(key);
        this.log.error({ volume: key, worker: id, err: (err as Error).message, retryInMs: delay, failures: this.queue.failuresOf(key) }, "reconcile failed");
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  private updatePhaseGauge(): void {
    const counts = new Map<string, number>();
    for (const p of this.phases.values()) counts.set(p, (counts.get(p) ?? 0) + 1);
    this.o.metrics.volumes.reset();
    for (const [p, n] of counts) this.o.metrics.volumes.set({ phase: p }, n);
    // One series per volume (its current phase) so that an alert names the volume and a
    // "for:" clause measures how long that one volume stayed Degraded or Rotating.
    this.o.metrics.volumePhase.reset();
    for (const [key, p] of this.phases) {
      const slash = key.indexOf("/");
      this.o.metrics.volumePhase.set({ namespace: key.slice(0, slash), volume: key.slice(slash + 1), phase: p }, 1);
    }
  }
}

const keyOf = (v: ZeroFSVolume): string => `${v.metadata.namespace}/${v.metadata.name}`;

function statusOnlyChange(a: ZeroFSVolume, b: ZeroFSVolume): boolean {
  return (
    a.metadata.generation === b.metadata.generation &&
    a.metadata.deletionTimestamp === b.metadata.deletionTimestamp &&
    JSON.stringify(a.metadata.finalizers ?? []) === JSON.stringify(b.metadata.finalizers ?? []) &&
    JSON.stringify(a.metadata.annotations ?? {}) === JSON.stringify(b.metadata.annotations ?? {})
  );
}
