/**
 * List + watch cache of one resource type, restarted forever:
 *  - the first list (and every relist) replaces the cache and reports adds, updates and the
 *    deletions missed while disconnected;
 *  - a watch that ends normally (server timeout) resumes from the last resourceVersion (bookmarks
 *    keep it fresh);
 *  - 410 Gone / "Expired" relists at once; any other error (connection refused, reset, 5xx,
 *    403 while RBAC propagates) retries with capped exponential backoff and jitter.
 * client-node's own informer stops for good on such errors and leaves restarting to the caller;
 * this loop is that restart, in one place.
 */
import type { Logger } from "pino";
import type { KubeClient, WatchEvent } from "./client.ts";
import { isGone } from "./errors.ts";
import type { ResourceType } from "./resources.ts";
import type { KubeObject } from "./types.ts";

export type InformerEventType = "add" | "update" | "delete";
export type InformerHandler<T> = (type: InformerEventType, obj: T, old?: T) => void;

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  metadataOnly?: boolean;
  /** Server-side watch timeout (seconds). */
  watchTimeoutSeconds?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  onRestart?: (resource: string, reason: "expired" | "error") => void;
}

const cacheKey = (o: KubeObject): string => `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;

/** resourceVersions are opaque strings, but etcd-backed ones are integers; compare them only then. */
function newer(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return true;
  return BigInt(a) >= BigInt(b);
}

export class Informer<T extends KubeObject> {
  readonly resource: ResourceType;
  private readonly client: KubeClient;
  private readonly opts: InformerOptions;
  private readonly log: Logger;
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  private resourceVersion = "";
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private synced = false;
  private syncWaiters: (() => void)[] = [];

  constructor(client: KubeClient, resource: ResourceType, log: Logger, opts: InformerOptions = {}) {
    this.client = client;
    this.resource = resource;
    this.opts = opts;
    this.log = log.child({ informer: resource.plural });
  }

  on(h: InformerHandler<T>): void {
    this.handlers.push(h);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves after the first successful list. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(`${namespace ?? ""}/${name}`);
  }

  list(filter?: (o: T) => boolean): T[] {
    const all = [...this.store.values()];
    return filter ? all.filter(filter) : all;
  }

  /**
   * Records an object the operator just wrote, so the next reconcile compares against it instead
   * of a cache that has not seen the watch event yet (which would cause a redundant write).
   */
  upsert(obj: T): void {
    const k = cacheKey(obj);
    const cur = this.store.get(k);
    if (!cur || newer(obj.metadata.resourceVersion, cur.metadata.resourceVersion)) this.store.set(k, obj);
  }

  /** Forgets an object the operator just deleted. */
  forget(namespace: string | undefined, name: string): void {
    this.store.delete(`${namespace ?? ""}/${name}`);
  }

  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.loop = undefined;
  }

  private emit(type: InformerEventType, obj: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        h(type, obj, old);
      } catch (err) {
        this.log.error({ err }, "informer handler failed");
      }
    }
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.resource, this.opts.namespace, {
      labelSelector: this.opts.labelSelector,
      metadataOnly: this.opts.metadataOnly,
    });
    const seen = new Set<string>();
    for (const item of list.items) {
      const k = cacheKey(item);
      seen.add(k);
      const old = this.store.get(k);
      this.store.set(k, item);
      if (!old) this.emit("add", item);
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion) this.emit("update", item, old);
    }
    for (const [k, old] of [...this.store]) {
      if (!seen.has(k)) {
        this.store.delete(k);
        this.emit("delete", old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion ?? "";
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private onEvent(e: WatchEvent<T>): void {
    const obj = e.object;
    if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
    if (e.type === "BOOKMARK") return;
    const k = cacheKey(obj);
    const old = this.store.get(k);
    if (e.type === "DELETED") {
      this.store.delete(k);
      this.emit("delete", obj);
    } else {
      this.store.set(k, obj);
      this.emit(old ? "update" : "add", obj, old);
    }
  }

  private async run(signal: AbortSignal): Promise<void> {
    const min = this.opts.minBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    let backoff = min;
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.client.watch<T>(
          this.resource,
          this.opts.namespace,
          {
            resourceVersion: this.resourceVersion,
            labelSelector: this.opts.labelSelector,
            metadataOnly: this.opts.metadataOnly,
            timeoutSeconds: this.opts.watchTimeoutSeconds ?? 300,
          },
          (e) => this.onEvent(e),
          signal,
        );
        backoff = min;
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) {
          this.log.info({ err: (err as Error).message }, "watch expired; relisting");
          this.opts.onRestart?.(this.resource.plural, "expired");
          this.resourceVersion = "";
          continue;
        }
        this.opts.onRestart?.(this.resource.plural, "error");
        const delay = Math.round(backoff * (0.5 + Math.random() * 0.5));
        this.log.warn({ err: (err as Error).message, retryInMs: delay }, "watch failed; retrying");
        await sleep(delay, signal);
        backoff = Math.min(max, backoff * 2);
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
