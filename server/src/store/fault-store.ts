/**
 * Test wrapper that injects failures, delays and crashes into any ObjectStore.
 *
 * Calls are numbered 1, 2, ... in the order they are made (numbered synchronously on entry, so
 * concurrent calls get a deterministic number). `close()` is neither counted nor faulted, so a
 * test can always release the inner store.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { InjectedCrashError, ObjectStoreError, type StoreOp } from "./errors.ts";
import type { ByteRange, ObjectMeta, ObjectStore, PutBody, PutResult, RequestOptions } from "./object-store.ts";

export interface FaultRule {
  /** Only this call number (1-based, over all calls this store has seen). */
  nth?: number;
  /** Only these operations. */
  op?: StoreOp | StoreOp[];
  /** Only calls whose key (the prefix, for list) matches. */
  key?: string | RegExp | ((key: string) => boolean);
  /** How many times the rule fires; default once when `nth` is set, else unlimited. */
  times?: number;
  /** Delay before the call proceeds (or fails). */
  delayMs?: number;
  /** The error to throw; omit for delay-only rules. `true` means a generic injected error. */
  error?: true | Error | ((op: StoreOp, key: string) => Error);
  /** Forward the call to the inner store first, then throw: the write lands but the ack is lost. */
  afterInner?: boolean;
}

export interface CrashOptions {
  /** The call that trips the crash (call n+1) still reaches the inner store before the caller
   * gets InjectedCrashError: a write whose ack was lost when the process died ("mid-put"). */
  midPut?: boolean;
}

export interface FaultStats {
  /** Calls made (excluding close). */
  calls: number;
  /** Calls forwarded to the inner store. */
  forwarded: number;
  /** Calls that got an injected rule error. */
  injectedErrors: number;
  /** Calls that got InjectedCrashError. */
  crashed: number;
  byOp: Partial<Record<StoreOp, number>>;
}

interface ActiveRule extends FaultRule {
  remaining: number;
}

const DESCRIPTION_PREFIX = "fault+";

export class FaultInjectingStore implements ObjectStore {
  readonly description: string;
  readonly inner: ObjectStore;
  #rules: ActiveRule[] = [];
  /** Call numbers above this never reach the inner store (except a mid-put crash's own call). */
  #crashAfterCall = Infinity;
  #crashMidPut = false;
  readonly #stats: FaultStats = { calls: 0, forwarded: 0, injectedErrors: 0, crashed: 0, byOp: {} };

  constructor(inner: ObjectStore) {
    this.inner = inner;
    this.description = DESCRIPTION_PREFIX + inner.description;
  }

  /** Adds a rule; rules are checked in the order added and every matching one applies. */
  addRule(rule: FaultRule): this {
    this.#rules.push({ ...rule, remaining: rule.times ?? (rule.nth !== undefined ? 1 : Infinity) });
    return this;
  }

  /** Fails the nth call from now (1 = the next call). */
  failNth(n: number, error: FaultRule["error"] = true): this {
    return this.addRule({ nth: this.#stats.calls + n, error });
  }

  /** After `n` more calls, every call throws InjectedCrashError and nothing reaches the inner
   * store: a kill -9 of the writer. `crashAfter(0)` crashes now. Calls numbered <= n that are
   * still in flight (e.g. delayed) when the crash trips do reach the inner store. */
  crashAfter(n: number, options: CrashOptions = {}): this {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`crashAfter needs a non-negative integer, got ${n}`);
    this.#crashAfterCall = this.#stats.calls + n;
    this.#crashMidPut = options.midPut ?? false;
    return this;
  }

  /** Whether the crash has tripped. */
  get crashed(): boolean {
    return this.#stats.calls > this.#crashAfterCall;
  }

  /** Removes all rules and the pending/tripped crash ("restart" of the process). */
  reset(): this {
    this.#rules = [];
    this.#crashAfterCall = Infinity;
    this.#crashMidPut = false;
    return this;
  }

  get stats(): FaultStats {
    return { ...this.#stats, byOp: { ...this.#stats.byOp } };
  }

  get(key: string, range?: ByteRange, opts?: RequestOptions): Promise<Buffer> {
    return this.#call("get", key, opts, () => this.inner.get(key, range, opts));
  }
  put(key: string, body: PutBody, opts?: RequestOptions): Promise<PutResult> {
    return this.#call("put", key, opts, () => this.inner.put(key, body, opts));
  }
  putIfAbsent(key: string, body: Uint8Array, opts?: RequestOptions): Promise<PutResult> {
    return this.#call("putIfAbsent", key, opts, () => this.inner.putIfAbsent(key, body, opts));
  }
  putIfMatch(key: string, body: Uint8Array, etag: string, opts?: RequestOptions): Promise<PutResult> {
    return this.#call("putIfMatch", key, opts, () => this.inner.putIfMatch(key, body, etag, opts));
  }
  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.#call("head", key, opts, () => this.inner.head(key, opts));
  }
  list(prefix: string, opts?: RequestOptions): Promise<ObjectMeta[]> {
    return this.#call("list", prefix, opts, () => this.inner.list(prefix, opts));
  }
  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.#call("delete", key, opts, () => this.inner.delete(key, opts));
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  async #call<T>(op: StoreOp, key: string, opts: RequestOptions | undefined, forward: () => Promise<T>): Promise<T> {
    // Everything up to the first await runs synchronously, fixing this call's number.
    const n = ++this.#stats.calls;
    this.#stats.byOp[op] = (this.#stats.byOp[op] ?? 0) + 1;
    if (n > this.#crashAfterCall) {
      this.#stats.crashed++;
      if (n === this.#crashAfterCall + 1 && this.#crashMidPut) {
        this.#stats.forwarded++;
        await forward().catch(() => undefined);
      }
      throw new InjectedCrashError(this.description, op, key);
    }
    const rules = this.#rules.filter((r) => r.remaining > 0 && matches(r, n, op, key));
    for (const r of rules) r.remaining--;
    const delay = rules.reduce((sum, r) => sum + (r.delayMs ?? 0), 0);
    // A delayed call is cancelled like a real request when its caller gives up on it.
    if (delay > 0) await sleep(delay, undefined, opts?.signal ? { signal: opts.signal } : {});
    const failing = rules.find((r) => r.error !== undefined);
    if (failing && !failing.afterInner) {
      this.#stats.injectedErrors++;
      throw makeError(failing, this.description, op, key);
    }
    this.#stats.forwarded++;
    const result = await forward();
    if (failing) {
      this.#stats.injectedErrors++;
      throw makeError(failing, this.description, op, key);
    }
    return result;
  }
}

function matches(r: FaultRule, n: number, op: StoreOp, key: string): boolean {
  if (r.nth !== undefined && r.nth !== n) return false;
  if (r.op !== undefined && !(Array.isArray(r.op) ? r.op.includes(op) : r.op === op)) return false;
  if (r.key === undefined) return true;
  if (typeof r.key === "string") return r.key === key;
  if (r.key instanceof RegExp) return r.key.test(key);
  return r.key(key);
}

function makeError(r: FaultRule, store: string, op: StoreOp, key: string): Error {
  if (r.error === true || r.error === undefined) return new ObjectStoreError(store, op, key, "injected fault (fault-injecting store)");
  return typeof r.error === "function" ? r.error(op, key) : r.error;
}
