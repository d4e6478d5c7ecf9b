/** Prometheus metrics of the operator (own registry: several operators can live in one test process). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { KubeClient } from "../kube/client.ts";

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: "zerofs_operator_reconcile_total",
    help: "Reconciles of ZeroFSVolumes by result (success, error, requeue).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: "zerofs_operator_reconcile_errors_total",
    help: "Reconciles that failed and were requeued with backoff.",
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: "zerofs_operator_reconcile_duration_seconds",
    help: "Duration of one reconcile.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: "zerofs_operator_workqueue_depth", help: "Keys waiting in the work queue.", registers: [this.registry] });
  readonly queueAdds = new Counter({ name: "zerofs_operator_workqueue_adds_total", help: "Keys added to the work queue.", registers: [this.registry] });
  readonly queueRetries = new Counter({ name: "zerofs_operator_workqueue_retries_total", help: "Keys requeued with backoff after a failure.", registers: [this.registry] });
  readonly apiRequests = new Counter({
    name: "zerofs_operator_api_requests_total",
    help: "Kubernetes API requests by verb, resource and HTTP status code (0: no response).",
    labelNames: ["verb", "resource", "code"] as const,
    registers: [this.registry],
  });
  readonly apiDuration = new Histogram({
    name: "zerofs_operator_api_request_duration_seconds",
    help: "Kubernetes API request latency (watches: time to the response headers).",
    labelNames: ["verb"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly watchRestarts = new Counter({
    name: "zerofs_operator_watch_restarts_total",
    help: "Watches restarted, by resource and reason (expired: 410 Gone, relisted; error: reconnected with backoff).",
    labelNames: ["resource", "reason"] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({ name: "zerofs_operator_leader", help: "1 while this replica holds the leader Lease.", registers: [this.registry] });
  readonly volumes = new Gauge({
    name: "zerofs_operator_volumes",
    help: "ZeroFSVolumes by phase, as last reconciled.",
    labelNames: ["phase"] as const,
    registers: [this.registry],
  });
  readonly volumePhase = new Gauge({
    name: "zerofs_operator_volume_phase",
    help: "1 for each ZeroFSVolume's phase as last reconciled (labels namespace, volume, phase).",
    labelNames: ["namespace", "volume", "phase"] as const,
    registers: [this.registry],
  });
  readonly rotations = new Counter({
    name: "zerofs_operator_password_rotations_total",
    help: "Finished password rotations by result.",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly provisioning = new Counter({
    name: "zerofs_operator_provisioning_total",
    help: "Claims of zerofs.io/nfs StorageClasses provisioned, by mode (shared, dedicated) and result (succeeded, failed).",
    labelNames: ["mode", "result"] as const,
    registers: [this.registry],
  });
  readonly claimUsedBytes = new Gauge({
    name: "zerofs_operator_claim_used_bytes",
    help: "Bytes used by a shared-mode claim's directory, as last read from its server.",
    labelNames: ["namespace", "claim"] as const,
    registers: [this.registry],
  });
  readonly claimQuotaBytes = new Gauge({
    name: "zerofs_operator_claim_quota_bytes",
    help: "Byte quota of a shared-mode claim's directory (its requested storage).",
    labelNames: ["namespace", "claim"] as const,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    // Both results exist from the start: increase() cannot see a series' first sample, so an
    // alert on the first failed rotation needs the series at 0 before it.
    for (const result of ["succeeded", "failed"]) this.rotations.inc({ result }, 0);
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "zerofs_operator_" });
  }

  instrument(client: KubeClient): void {
    client.observe((verb, resource, code, seconds) => {
      this.apiRequests.inc({ verb, resource, code: String(code) });
      this.apiDuration.observe({ verb }, seconds);
    });
  }
}
