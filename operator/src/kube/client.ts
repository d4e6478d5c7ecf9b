/**
 * A small Kubernetes REST client. @kubernetes/client-node (2.0.1) provides the KubeConfig (kubeconfig
 * files, in-cluster service-account tokens that it re-reads, exec plugins, client certificates,
 * impersonation); the requests themselves are made here, because the operator needs things the
 * generated clients make awkward or get wrong:
 *  - server-side apply must be sent as `application/apply-patch+yaml` with a fieldManager (the
 *    generated patch methods pick a JSON-patch content type unless overridden per call);
 *  - typed model (de)serialisation drops fields the bundled models do not know;
 *  - watches must report 410 Gone / "Expired" distinctly so the informer can relist, and
 *    metadata-only watches (Secrets) need a special Accept header.
 * Every error names the verb and the object (`get Secret apps/db-password: HTTP 404 NotFound ...`).
 */
import http from "node:http";
import https from "node:https";
import { createInterface } from "node:readline";
import type { KubeConfig } from "@kubernetes/client-node";
import { FIELD_MANAGER } from "../api/constants.ts";
import { KubeApiError, WatchExpiredError, isNotFound, type StatusDetails } from "./errors.ts";
import { resourceFor, resourcePath, type ResourceType } from "./resources.ts";
import type { KubeList, KubeObject } from "./types.ts";

export type Verb = "get" | "list" | "create" | "apply" | "patch" | "update" | "delete" | "watch";
export const WRITE_VERBS: ReadonlySet<Verb> = new Set(["create", "apply", "patch", "update", "delete"]);

export interface RequestObserver {
  (verb: Verb, resource: string, code: number, seconds: number): void;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Only metadata (PartialObjectMetadataList): for Secrets, whose data the caller does not want cached. */
  metadataOnly?: boolean;
}

export interface WatchOptions extends ListOptions {
  resourceVersion: string;
  /** Server-side timeout; the watch ends cleanly after it and is resumed from the last resourceVersion. */
  timeoutSeconds?: number;
}

export interface WatchEvent<T = KubeObject> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
  object: T;
}

export interface DeleteOptions {
  propagationPolicy?: "Background" | "Foreground" | "Orphan";
  preconditions?: { uid?: string; resourceVersion?: string };
  /** 0 removes a pod at once, without waiting for its kubelet to confirm (kubectl's --force --grace-period=0). */
  gracePeriodSeconds?: number;
}

type PatchType = "merge" | "json" | "strategic";
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
};
const APPLY_CONTENT_TYPE = "application/apply-patch+yaml";
const METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
const METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
const REQUEST_TIMEOUT_MS = 30_000;

interface RequestOptions {
  verb: Verb;
  resource: string;
  /** For messages: "get Secret apps/x". */
  what: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  accept?: string;
  allowNotFound?: boolean;
}

function describe(verb: Verb, r: ResourceType, namespace?: string, name?: string, sub?: string): string {
  const target = name === undefined ? (namespace ? `in namespace ${namespace}` : "(all namespaces)") : namespace ? `${namespace}/${name}` : name;
  return `${verb} ${r.kind}${sub ? `/${sub}` : ""} ${target}`;
}

export class KubeClient {
  readonly kc: KubeConfig;
  readonly fieldManager: string;
  private readonly observers: RequestObserver[] = [];

  constructor(kc: KubeConfig, opts: { fieldManager?: string } = {}) {
    this.kc = kc;
    this.fieldManager = opts.fieldManager ?? FIELD_MANAGER;
  }

  /** Called after every request (metrics; tests count writes with it). */
  observe(o: RequestObserver): () => void {
    this.observers.push(o);
    return () => {
      const i = this.observers.indexOf(o);
      if (i >= 0) this.observers.splice(i, 1);
    };
  }

  async get<T extends KubeObject>(r: ResourceType, namespace: string | undefined, name: string, opts: { metadataOnly?: boolean } = {}): Promise<T | undefined> {
    const res = await this.request<T>("GET", resourcePath(r, namespace, name), {
      verb: "get",
      resource: r.plural,
      what: describe("get", r, namespace, name),
      allowNotFound: true,
      accept: opts.metadataOnly ? METADATA_ACCEPT : undefined,
    });
    return res ?? undefined;
  }

  /** Lists every page. */
  async list<T extends KubeObject>(r: ResourceType, namespace?: string, opts: ListOptions = {}): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let last: KubeList<T> | undefined;
    do {
      last = await this.request<KubeList<T>>("GET", resourcePath(r, namespace), {
        verb: "list",
        resource: r.plural,
        what: describe("list", r, namespace),
        query: { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit: 500, continue: cont },
        accept: opts.metadataOnly ? METADATA_LIST_ACCEPT : undefined,
      });
      if (!last) throw new Error(`list ${r.kind}: empty response`);
      items.push(...(last.items ?? []));
      cont = last.metadata?.continue || undefined;
    } while (cont);
    return { ...last, items, metadata: { resourceVersion: last.metadata?.resourceVersion } };
  }

  async create<T extends KubeObject>(obj: T, opts: { namespace?: string; subresource?: string; name?: string } = {}): Promise<T> {
    const r = resourceFor(obj.apiVersion, obj.kind);
    const ns = opts.namespace ?? obj.metadata.namespace;
    const path = opts.subresource ? resourcePath(r, ns, opts.name ?? obj.metadata.name, opts.subresource) : resourcePath(r, ns);
    return (await this.request<T>("POST", path, {
      verb: "create",
      resource: r.plural,
      what: describe("create", r, ns, obj.metadata.name, opts.subresource),
      query: { fieldManager: this.fieldManager },
      body: obj,
    })) as T;
  }

  /**
   * Server-side apply (PATCH, application/apply-patch+yaml; JSON is valid YAML). `force` takes
   * over fields another manager set (the operator is the authority for its children). A
   * metadata.resourceVersion in `obj` makes the apply conditional on it (409 Conflict otherwise).
   */
  async apply<T extends KubeObject>(obj: T, opts: { force?: boolean; subresource?: string; fieldManager?: string } = {}): Promise<T> {
    const r = resourceFor(obj.apiVersion, obj.kind);
    const name = obj.metadata.name ?? "";
    return (await this.request<T>("PATCH", resourcePath(r, obj.metadata.namespace, name, opts.subresource), {
      verb: "apply",
      resource: r.plural,
      what: describe("apply", r, obj.metadata.namespace, name, opts.subresource),
      query: { fieldManager: opts.fieldManager ?? this.fieldManager, force: opts.force ?? true },
      body: obj,
      contentType: APPLY_CONTENT_TYPE,
    })) as T;
  }

  async patch<T extends KubeObject>(
    r: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    opts: { type?: PatchType; subresource?: string } = {},
  ): Promise<T> {
    return (await this.request<T>("PATCH", resourcePath(r, namespace, name, opts.subresource), {
      verb: "patch",
      resource: r.plural,
      what: describe("patch", r, namespace, name, opts.subresource),
      query: { fieldManager: this.fieldManager },
      body: patch,
      contentType: PATCH_CONTENT_TYPE[opts.type ?? "merge"],
    })) as T;
  }

  /** PUT; with metadata.resourceVersion set this is an optimistic-concurrency update. */
  async update<T extends KubeObject>(obj: T, opts: { subresource?: string } = {}): Promise<T> {
    const r = resourceFor(obj.apiVersion, obj.kind);
    const name = obj.metadata.name ?? "";
    return (await this.request<T>("PUT", resourcePath(r, obj.metadata.namespace, name, opts.subresource), {
      verb: "update",
      resource: r.plural,
      what: describe("update", r, obj.metadata.namespace, name, opts.subresource),
      query: { fieldManager: this.fieldManager },
      body: obj,
    })) as T;
  }

  /** Deletes; false when the object was already gone. */
  async delete(r: ResourceType, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<boolean> {
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    const res = await this.request<unknown>("DELETE", resourcePath(r, namespace, name), {
      verb: "delete",
      resource: r.plural,
      what: describe("delete", r, namespace, name),
      body,
      allowNotFound: true,
    });
    return res !== undefined;
  }

  /**
   * One watch connection: resolves when the server ends it (timeout), rejects on a transport
   * error, and rejects with WatchExpiredError when the resourceVersion is too old (410).
   */
  async watch<T extends KubeObject>(r: ResourceType, namespace: string | undefined, opts: WatchOptions, onEvent: (e: WatchEvent<T>) => void, signal?: AbortSignal): Promise<void> {
    const timeoutSeconds = opts.timeoutSeconds ?? 300;
    const query: Record<string, string | number | boolean | undefined> = {
      watch: true,
      allowWatchBookmarks: true,
      resourceVersion: opts.resourceVersion,
      timeoutSeconds,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
    };
    const what = describe("watch", r, namespace);
    const started = performance.now();
    const res = await this.open("GET", resourcePath(r, namespace), query, undefined, undefined, opts.metadataOnly ? METADATA_ACCEPT : undefined, signal);
    if ((res.statusCode ?? 0) >= 300) {
      const raw = await readAll(res);
      this.notify("watch", r.plural, res.statusCode ?? 0, started);
      const status = parseStatus(raw);
      if (res.statusCode === 410) throw new WatchExpiredError(`${what}: ${status?.message ?? "resourceVersion too old"}`);
      throw new KubeApiError(what, res.statusCode ?? 0, status, raw);
    }
    this.notify("watch", r.plural, 200, started);
    await new Promise<void>((resolve, reject) => {
      let failed: Error | undefined;
      // A silent half-open connection would stall the informer forever: the server ends every
      // watch after timeoutSeconds and sends bookmarks, so a much longer silence means it is dead.
      let idle: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => res.destroy(new Error(`${what}: no data for ${timeoutSeconds + 60}s`)), (timeoutSeconds + 60) * 1000);
        idle.unref();
      };
      arm();
      res.on("data", arm);
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      lines.on("line", (line) => {
        if (failed || line.trim() === "") return;
        let ev: { type: string; object: unknown };
        try {
          ev = JSON.parse(line) as { type: string; object: unknown };
        } catch {
          failed = new Error(`${what}: malformed watch event: ${line.slice(0, 200)}`);
          res.destroy(failed);
          return;
        }
        if (ev.type === "ERROR") {
          const st = ev.object as StatusDetails;
          failed =
            st.code === 410 || st.reason === "Expired" || st.reason === "Gone"
              ? new WatchExpiredError(`${what}: ${st.message ?? "resourceVersion too old"}`)
              : new KubeApiError(what, st.code ?? 500, st);
          res.destroy();
          return;
        }
        try {
          onEvent(ev as WatchEvent<T>);
        } catch (err) {
          failed = err as Error;
          res.destroy();
        }
      });
      const finish = (err?: Error) => {
        clearTimeout(idle);
        if (failed) reject(failed);
        else if (err && !signal?.aborted) reject(err);
        else resolve();
      };
      res.once("error", finish);
      // readline re-emits the stream's error on the interface; without a listener it would throw.
      lines.once("error", finish);
      lines.once("close", () => finish());
    });
  }

  /**
   * A GET whose body the caller reads itself, for paths outside the REST resources: pod logs (a
   * stream with follow=true) and the API server's pod/service proxy. A status ≥ 300 becomes a
   * KubeApiError naming `what`.
   */
  async getRaw(path: string, what: string, query: Record<string, string | number | boolean | undefined> = {}, signal?: AbortSignal): Promise<http.IncomingMessage> {
    let res: http.IncomingMessage;
    try {
      res = await this.open("GET", path, query, undefined, undefined, "*/*", signal);
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
    }
    if ((res.statusCode ?? 0) >= 300) {
      const raw = await readAll(res);
      throw new KubeApiError(what, res.statusCode ?? 0, parseStatus(raw), raw);
    }
    return res;
  }

  private notify(verb: Verb, resource: string, code: number, started: number): void {
    const s = (performance.now() - started) / 1000;
    for (const o of this.observers) o(verb, resource, code, s);
  }

  private async request<T>(method: string, path: string, o: RequestOptions): Promise<T | undefined> {
    const started = performance.now();
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    let res: http.IncomingMessage;
    try {
      res = await this.open(method, path, o.query, body, o.contentType ?? (body ? "application/json" : undefined), o.accept, AbortSignal.timeout(REQUEST_TIMEOUT_MS));
    } catch (err) {
      this.notify(o.verb, o.resource, 0, started);
      throw new Error(`${o.what}: ${(err as Error).message}`, { cause: err });
    }
    const raw = await readAll(res);
    const code = res.statusCode ?? 0;
    this.notify(o.verb, o.resource, code, started);
    if (code === 404 && o.allowNotFound) return undefined;
    if (code >= 300) throw new KubeApiError(o.what, code, parseStatus(raw), raw);
    try {
      return (raw ? JSON.parse(raw) : {}) as T;
    } catch {
      throw new Error(`${o.what}: response is not JSON: ${raw.slice(0, 200)}`);
    }
  }

  private async open(
    method: string,
    path: string,
    query: Record<string, string | number | boolean | undefined> | undefined,
    body: string | undefined,
    contentType: string | undefined,
    accept: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<http.IncomingMessage> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    const url = new URL(cluster.server.replace(/\/+$/, "") + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    const opts: https.RequestOptions = { headers: {} };
    // Adds the CA, client certificate, bearer token (re-read for in-cluster tokens), impersonation, agent.
    await this.kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = { ...(opts.headers as Record<string, string>), Accept: accept ?? "application/json" };
    if (contentType) headers["Content-Type"] = contentType;
    if (body !== undefined) headers["Content-Length"] = String(Buffer.byteLength(body));
    const mod = url.protocol === "http:" ? http : https;
    return await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = mod.request(url, { ...opts, method, headers, signal }, resolve);
      req.once("error", reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.once("error", reject);
  });
}

function parseStatus(raw: string): StatusDetails | undefined {
  try {
    const s = JSON.parse(raw) as StatusDetails;
    return typeof s === "object" && s !== null ? s : undefined;
  } catch {
    return undefined;
  }
}

/** get() that maps 404 to undefined and other errors through, for callers that only care about existence. */
export async function exists(c: KubeClient, r: ResourceType, namespace: string | undefined, name: string): Promise<boolean> {
  try {
    return (await c.get(r, namespace, name, { metadataOnly: true })) !== undefined;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
