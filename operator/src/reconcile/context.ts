/** What a reconcile needs: the API client, the informer caches, and its collaborators. */
import type { Logger } from "pino";
import type { ZeroFSVolume } from "../api/types.ts";
import type { EventRecorder } from "../controller/events.ts";
import type { OperatorMetrics } from "../controller/metrics.ts";
import type { KubeClient } from "../kube/client.ts";
import type { Informer } from "../kube/informer.ts";
import { DEFAULT_NETWORK, DEFAULT_POLICY, type NetworkDefaults, type VolumePolicy } from "../api/policy.ts";
import type { Deployment, Job, NetworkPolicy, PersistentVolume, PersistentVolumeClaim, Service } from "../kube/types.ts";
import type { DataDeleter } from "./data-deleter.ts";

export interface Caches {
  volumes: Informer<ZeroFSVolume>;
  deployments: Informer<Deployment>;
  services: Informer<Service>;
  /** Claims the operator made (label managed-by). */
  pvcs: Informer<PersistentVolumeClaim>;
  /** PersistentVolumes the operator made. */
  pvs: Informer<PersistentVolume>;
  /** Password-change Jobs. */
  jobs: Informer<Job>;
  networkPolicies: Informer<NetworkPolicy>;
}

export interface ReconcilerConfig {
  /** Server image when spec.server.image is empty. */
  serverImage: string;
  /** How often a blocked deletion looks again for pods and claims using the volume. */
  deletionPollMs: number;
  /** How often a rotation checks steps that are not watched (server pods going away). */
  rotationPollMs: number;
  /** backoffLimit of the password-change Jobs. */
  jobBackoffLimit: number;
  /** Client lists and NetworkPolicy defaults. */
  network: NetworkDefaults;
  /** What volume authors may ask for. */
  policy: VolumePolicy;
  /** The only namespace the operator sees (and has RBAC for); undefined: all. */
  namespace?: string;
}

export const DEFAULT_RECONCILER_CONFIG: Omit<ReconcilerConfig, "serverImage"> = {
  deletionPollMs: 5_000,
  rotationPollMs: 2_000,
  jobBackoffLimit: 2,
  network: DEFAULT_NETWORK,
  policy: DEFAULT_POLICY,
};

export interface ReconcileDeps {
  client: KubeClient;
  caches: Caches;
  log: Logger;
  events: EventRecorder;
  metrics: OperatorMetrics;
  config: ReconcilerConfig;
  dataDeleter: DataDeleter;
}

export interface ReconcileResult {
  /** Reconcile again after this long even without events. */
  requeueAfterMs?: number;
  /** Phase written to status (for the volumes-by-phase gauge). */
  phase?: string;
}
