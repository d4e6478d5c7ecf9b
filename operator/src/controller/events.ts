/**
 * Kubernetes Events for significant transitions of a volume (provisioned, ready, rotation started
 * or finished, deletion blocked...). Repeats of the same event within ten minutes bump its count
 * instead of creating another object, like the kubelet's and client-go's recorders.
 */
import type { Logger } from "pino";
import type { KubeClient } from "../kube/client.ts";
import { R } from "../kube/resources.ts";

export type EventType = "Normal" | "Warning";

/** What an Event is about: a ZeroFSVolume, a claim... (list items carry no kind: callers set it). */
export interface EventSubject {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

interface Recent {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
  at: number;
}

const REPEAT_WINDOW_MS = 10 * 60_000;

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly component: string;
  private readonly instance: string;
  private readonly recent = new Map<string, Recent>();

  constructor(client: KubeClient, log: Logger, opts: { component?: string; instance?: string } = {}) {
    this.client = client;
    this.log = log;
    this.component = opts.component ?? "zerofs-operator";
    this.instance = opts.instance ?? "";
  }

  /** Best effort: an Event that cannot be written is logged, never fails the reconcile. */
  async emit(v: EventSubject, type: EventType, reason: string, message: string): Promise<void> {
    const key = `${v.metadata.uid ?? ""}\0${type}\0${reason}\0${message}`;
    const now = new Date();
    const ts = now.toISOString();
    const prev = this.recent.get(key);
    try {
      if (prev && now.getTime() - prev.at < REPEAT_WINDOW_MS) {
        prev.count++;
        prev.at = now.getTime();
        await this.client.patch(R.events, prev.namespace, prev.name, { count: prev.count, lastTimestamp: ts });
        return;
      }
      const name = `${v.metadata.name ?? "object"}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`;
      await this.client.create({
        apiVersion: "v1",
        kind: "Event",
        metadata: { name, namespace: v.metadata.namespace ?? "default" },
        involvedObject: {
          apiVersion: v.apiVersion,
          kind: v.kind,
          name: v.metadata.name,
          namespace: v.metadata.namespace,
          uid: v.metadata.uid,
          resourceVersion: v.metadata.resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.component, host: this.instance || undefined },
        reportingComponent: this.component,
        reportingInstance: this.instance || this.component,
        firstTimestamp: ts,
        lastTimestamp: ts,
        count: 1,
      });
      this.recent.set(key, { name, namespace: v.metadata.namespace ?? "default", count: 1, firstTimestamp: ts, at: now.getTime() });
      if (this.recent.size > 2000) this.prune(now.getTime());
    } catch (err) {
      this.log.warn({ err: (err as Error).message, reason }, "could not record event");
    }
  }

  private prune(now: number): void {
    for (const [k, r] of this.recent) if (now - r.at > REPEAT_WINDOW_MS) this.recent.delete(k);
  }
}
