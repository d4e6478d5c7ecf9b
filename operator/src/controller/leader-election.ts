/**
 * Leader election with a coordination.k8s.io/v1 Lease, following client-go's algorithm:
 *  - a candidate takes the Lease when it is free (no holder) or expired, where "expired" is
 *    judged by the candidate's own clock: leaseDurationSeconds after the candidate last saw the
 *    record change (clocks of different machines are never compared);
 *  - every write is a PUT with the resourceVersion read, so two candidates cannot both win;
 *  - the leader renews every retryPeriod and steps down if it could not renew for renewDeadline
 *    (shorter than the lease duration, so it stops before anyone else may start);
 *  - on graceful shutdown the leader releases the Lease (holder cleared) for a fast hand-over.
 */
import type { Logger } from "pino";
import type { KubeClient } from "../kube/client.ts";
import { isConflict, isNotFound } from "../kube/errors.ts";
import { R } from "../kube/resources.ts";
import type { Lease } from "../kube/types.ts";
import type { OperatorMetrics } from "./metrics.ts";

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  metrics?: OperatorMetrics;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => Promise<void> | void;
  /** Called when leadership is lost or released; the process should stop acting as leader at once. */
  onStoppedLeading: () => Promise<void> | void;
}

/** Lease times are MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(d = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectionOptions, "metrics">> & { metrics?: OperatorMetrics };
  private leading = false;
  private stopped = false;
  private observed: { record: string; at: number } | undefined;
  private observedHolder = "";
  private lease: Lease | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(o: LeaderElectionOptions) {
    this.o = { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...o };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    const log = this.o.log;
    while (!this.stopped) {
      // Candidate: try until acquired.
      while (!this.stopped && !(await this.tryAcquireOrRenew())) await this.sleep(jitter(this.o.retryPeriodMs));
      if (this.stopped) break;
      this.leading = true;
      this.o.metrics?.leader.set(1);
      log.info({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity }, "became leader");
      try {
        await this.o.onStartedLeading();
      } catch (err) {
        log.error({ err: (err as Error).message }, "starting as leader failed; stepping down");
        await this.stepDown();
        continue;
      }
      // Leader: renew until a renewal deadline passes without success.
      let lastRenew = Date.now();
      while (!this.stopped) {
        await this.sleep(this.o.retryPeriodMs);
        if (this.stopped) break;
        if (await this.tryAcquireOrRenew()) lastRenew = Date.now();
        else if (this.observedHolder && this.observedHolder !== this.o.identity) {
          log.error({ holder: this.observedHolder }, "another replica holds the leader Lease; stepping down");
          break;
        } else if (Date.now() - lastRenew > this.o.renewDeadlineMs) {
          log.error({ lease: `${this.o.namespace}/${this.o.name}` }, "could not renew the leader Lease in time; stepping down");
          break;
        }
      }
      if (!this.stopped) await this.stepDown();
    }
  }

  private async stepDown(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    this.o.metrics?.leader.set(0);
    try {
      await this.o.onStoppedLeading();
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, "stopping as leader failed");
    }
  }

  /** Graceful: stop, and release the Lease if held (after the caller stopped its work). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    const wasLeader = this.leading;
    await this.stepDown();
    if (wasLeader) await this.release();
  }

  private async release(): Promise<void> {
    const l = this.lease;
    if (!l || l.spec.holderIdentity !== this.o.identity) return;
    try {
      await this.o.client.update<Lease>({
        ...l,
        spec: { ...l.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(), acquireTime: null },
      });
      this.o.log.info("released the leader Lease");
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, "could not release the leader Lease (it expires by itself)");
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, identity } = this.o;
    const now = new Date();
    try {
      const cur = await client.get<Lease>(R.leases, namespace, name);
      if (!cur) {
        this.lease = await client.create<Lease>({
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds: this.o.leaseDurationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
        });
        this.observe(this.lease, now);
        return true;
      }
      this.observe(cur, now);
      const holder = cur.spec.holderIdentity ?? "";
      const duration = (cur.spec.leaseDurationSeconds ?? this.o.leaseDurationSeconds) * 1000;
      if (holder && holder !== identity && this.observed && this.observed.at + duration > now.getTime()) return false;
      const spec: Lease["spec"] = {
        ...cur.spec,
        holderIdentity: identity,
        leaseDurationSeconds: this.o.leaseDurationSeconds,
        renewTime: microTime(now),
      };
      if (holder !== identity) {
        spec.acquireTime = microTime(now);
        spec.leaseTransitions = (cur.spec.leaseTransitions ?? 0) + 1;
      }
      this.lease = await client.update<Lease>({ ...cur, spec });
      this.observe(this.lease, now);
      return true;
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) this.o.log.warn({ err: (err as Error).message }, "leader election: Lease request failed");
      return false;
    }
  }

  private observe(l: Lease, now: Date): void {
    const record = `${l.spec.holderIdentity ?? ""}|${l.spec.renewTime ?? ""}|${l.spec.leaseDurationSeconds ?? ""}`;
    if (this.observed?.record !== record) this.observed = { record, at: now.getTime() };
    this.observedHolder = l.spec.holderIdentity ?? "";
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }
}

const jitter = (ms: number): number => Math.round(ms * (1 + Math.random() * 0.2));
