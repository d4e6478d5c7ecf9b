/**
 * The operator as an object: leader election around the controller, metrics, health. main.ts
 * runs one in a pod; the integration tests run several in-process against a real API server.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { Controller } from "./controller/controller.ts";
import { LeaderElector } from "./controller/leader-election.ts";
import { OperatorMetrics } from "./controller/metrics.ts";
import { KubeClient } from "./kube/client.ts";
import type { NetworkDefaults, VolumePolicy } from "./api/policy.ts";
import { DEFAULT_RECONCILER_CONFIG } from "./reconcile/context.ts";
import type { DataDeleter } from "./reconcile/data-deleter.ts";
import type { AdminEndpointResolver } from "./provisioner/provisioner.ts";

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  serverImage: string;
  log?: Logger;
  metrics?: OperatorMetrics;
  /** Watch only this namespace (default: all). */
  namespace?: string;
  /** false: act as leader at once (single replica, tests). */
  leaderElection?:
    | false
    | { namespace: string; name: string; identity: string; leaseDurationSeconds?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  workers?: number;
  deletionPollMs?: number;
  rotationPollMs?: number;
  jobBackoffLimit?: number;
  resyncMs?: number;
  queueBaseDelayMs?: number;
  dataDeleter?: DataDeleter;
  shutdownTimeoutMs?: number;
  /** Client lists and NetworkPolicy defaults (default: DEFAULT_NETWORK). */
  network?: Partial<NetworkDefaults>;
  /** What volume authors may ask for (default: DEFAULT_POLICY). */
  policy?: Partial<VolumePolicy>;
  /** The StorageClass provisioner (zerofs.io/nfs): on by default; the admin endpoint resolver is injectable for tests. */
  provisioner?: false | { adminEndpoint?: AdminEndpointResolver; usageRefreshMs?: number };
}

export class Operator {
  readonly client: KubeClient;
  readonly metrics: OperatorMetrics;
  readonly log: Logger;
  private readonly o: OperatorOptions;
  private controller: Controller | undefined;
  private elector: LeaderElector | undefined;
  private started = false;

  constructor(o: OperatorOptions) {
    this.o = o;
    this.log = o.log ?? pino({ level: "info" });
    this.metrics = o.metrics ?? new OperatorMetrics();
    this.client = new KubeClient(o.kubeConfig);
    this.metrics.instrument(this.client);
  }

  get isLeader(): boolean {
    return this.controller !== undefined;
  }

  /** The running controller (only while leading). */
  get activeController(): Controller | undefined {
    return this.controller;
  }

  /** Ready: a standby is ready to take over; a leader once its caches are synced. */
  ready(): boolean {
    return this.started && (this.controller ? this.controller.hasSynced() : true);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const le = this.o.leaderElection;
    if (le === false || le === undefined) {
      await this.lead();
      return;
    }
    this.elector = new LeaderElector({
      client: this.client,
      namespace: le.namespace,
      name: le.name,
      identity: le.identity,
      log: this.log.child({ subsystem: "leader-election" }),
      metrics: this.metrics,
      leaseDurationSeconds: le.leaseDurationSeconds,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      onStartedLeading: () => this.lead(),
      onStoppedLeading: () => this.unlead(),
    });
    this.elector.start();
  }

  private async lead(): Promise<void> {
    const identity = this.o.leaderElection ? this.o.leaderElection.identity : "zerofs-operator";
    this.controller = new Controller({
      client: this.client,
      log: this.log,
      metrics: this.metrics,
      namespace: this.o.namespace,
      workers: this.o.workers,
      resyncMs: this.o.resyncMs,
      queueBaseDelayMs: this.o.queueBaseDelayMs,
      dataDeleter: this.o.dataDeleter,
      identity,
      provisioner: this.o.provisioner,
      config: {
        serverImage: this.o.serverImage,
        deletionPollMs: this.o.deletionPollMs ?? DEFAULT_RECONCILER_CONFIG.deletionPollMs,
        rotationPollMs: this.o.rotationPollMs ?? DEFAULT_RECONCILER_CONFIG.rotationPollMs,
        jobBackoffLimit: this.o.jobBackoffLimit ?? DEFAULT_RECONCILER_CONFIG.jobBackoffLimit,
        network: { ...DEFAULT_RECONCILER_CONFIG.network, ...this.o.network },
        policy: { ...DEFAULT_RECONCILER_CONFIG.policy, ...this.o.policy },
        namespace: this.o.namespace,
      },
    });
    await this.controller.start();
  }

  private async unlead(): Promise<void> {
    const c = this.controller;
    this.controller = undefined;
    await c?.stop(this.o.shutdownTimeoutMs);
  }

  /** Graceful shutdown: finish running reconciles, stop watches, release the Lease. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    // Controller first: a leader still waiting for its caches to sync (say, the CRD is missing)
    // is inside the elector's start callback, and the elector cannot stop before that returns.
    await this.controller?.stop(this.o.shutdownTimeoutMs);
    if (this.elector) await this.elector.stop();
    else await this.unlead();
  }
}
