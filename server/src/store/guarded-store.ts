/**
 * Deadlines and health tracking for any ObjectStore.
 *
 * Every request gets a deadline: `timeoutMs`, plus one second per `minBytesPerSecond` bytes it
 * moves (a 64 MiB SST upload must not be held to the deadline of a HEAD). A request that passes
 * it is abandoned (its signal aborts, so S3 cancels the HTTP request and its retries) and fails
 * with StoreUnavailableError("timeout"): a frozen store costs each caller one deadline instead
 * of hanging it. Reads (get, head, list) that fail without an answer are retried with backoff
 * until their deadline, so a short blip of the store does not reach NFS clients as an error;
 * writes are retried by their callers (the WAL writer, the memtable flush), which own the
 * ordering and fencing rules that a blind retry here could break.
 *
 * Every outcome feeds a StoreHealth: answers (including "not found" and a lost precondition)
 * count as success, everything else as a failure or a timeout.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { InjectedCrashError, ObjectNotFoundError, PreconditionFailedError, StoreUnavailableError, type StoreOp } from "./errors.ts";
import { formatSeconds, type StoreHealth } from "./health.ts";
import { bodyLength, type ByteRange, type ObjectMeta, type ObjectStore, type PutBody, type PutResult, type RequestOptions } from "./object-store.ts";

export interface GuardedStoreOptions {
  /** Deadline of one request, retries included (ms). */
  timeoutMs: number;
  /** Requests moving n bytes get n / minBytesPerSecond extra seconds. Default 1 MiB/s. */
  minBytesPerSecond?: number;
  health: StoreHealth;
  /** First and longest pause between read retries (ms). Defaults 100 and 2000. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

const TIMED_OUT = Symbol("timed out");

export class GuardedStore implements ObjectStore {
  readonly description: string;
  readonly inner: ObjectStore;
  readonly health: StoreHealth;
  readonly #timeoutMs: number;
  readonly #bytesPerSecond: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  /** Aborted by close(): pending retry pauses end at once. */
  readonly #closed = new AbortController();

  constructor(inner: ObjectStore, opts: GuardedStoreOptions) {
    if (!(opts.timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${opts.timeoutMs}`);
    this.inner = inner;
    this.description = inner.description;
    this.health = opts.health;
    this.#timeoutMs = opts.timeoutMs;
    this.#bytesPerSecond = opts.minBytesPerSecond ?? 1024 * 1024;
    this.#retryBaseMs = opts.retryBaseMs ?? 100;
    this.#retryMaxMs = opts.retryMaxMs ?? 2000;
  }

  /** The deadline a request moving `bytes` gets (ms). */
  deadlineMs(bytes: number): number {
    return this.#timeoutMs + (bytes * 1000) / this.#bytesPerSecond;
  }

  get(key: string, range?: ByteRange, opts?: RequestOptions): Promise<Buffer> {
    return this.#call("get", key, range?.length ?? 0, true, opts, (signal) => this.inner.get(key, range, { signal }));
  }
  put(key: string, body: PutBody, opts?: RequestOptions): Promise<PutResult> {
    return this.#call("put", key, bodyLength(body), false, opts, (signal) => this.inner.put(key, body, { signal }));
  }
  putIfAbsent(key: string, body: Uint8Array, opts?: RequestOptions): Promise<PutResult> {
    return this.#call("putIfAbsent", key, body.length, false, opts, (signal) => this.inner.putIfAbsent(key, body, { signal }));
  }
  putIfMatch(key: string, body: Uint8Array, etag: string, opts?: RequestOptions): Promise<PutResult> {
    return this.#call("putIfMatch", key, body.length, false, opts, (signal) => this.inner.putIfMatch(key, body, etag, { signal }));
  }
  head(key: string, opts?: RequestOptions): Promise<ObjectMeta | null> {
    return this.#call("head", key, 0, true, opts, (signal) => this.inner.head(key, { signal }));
  }
  list(prefix: string, opts?: RequestOptions): Promise<ObjectMeta[]> {
    return this.#call("list", prefix, 0, true, opts, (signal) => this.inner.list(prefix, { signal }));
  }
  delete(key: string, opts?: RequestOptions): Promise<void> {
    return this.#call("delete", key, 0, false, opts, (signal) => this.inner.delete(key, { signal }));
  }
  async close(): Promise<void> {
    this.#closed.abort();
    await this.inner.close();
  }

  async #call<T>(op: StoreOp, key: string, bytes: number, retry: boolean, opts: RequestOptions | undefined, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const deadlineMs = this.deadlineMs(bytes);
    const start = performance.now();
    for (let attempt = 1; ; attempt++) {
      const attemptAbort = new AbortController();
      // (The inner store's close() ends what is still in flight when this store closes.)
      const signal = opts?.signal ? AbortSignal.any([attemptAbort.signal, opts.signal]) : attemptAbort.signal;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, deadlineMs - (performance.now() - start)));
      });
      const request = run(signal);
      try {
        const r = await Promise.race([request, timedOut]);
        if (r === TIMED_OUT) {
          attemptAbort.abort();
          // The abandoned request settles later (usually with an abort error): nobody waits for it.
          request.catch(() => undefined);
          this.health.timeout(op, key, deadlineMs);
          throw new StoreUnavailableError(this.description, op, key, "timeout", `no answer within ${formatSeconds(deadlineMs)} (the store's request deadline)`);
        }
        this.health.success(op);
        return r;
      } catch (err) {
        if (err instanceof StoreUnavailableError) throw err;
        if (err instanceof ObjectNotFoundError || err instanceof PreconditionFailedError) {
          this.health.success(op);
          throw err;
        }
        // A test's simulated kill -9 is not a store outage.
        if (err instanceof InjectedCrashError) throw err;
        this.health.failure(op, key, err);
        if (this.#closed.signal.aborted || opts?.signal?.aborted) throw err;
        const pause = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** (attempt - 1));
        const left = deadlineMs - (performance.now() - start);
        if (!retry || left <= pause) {
          const tries = attempt > 1 ? ` (${attempt} attempts in ${formatSeconds(performance.now() - start)})` : "";
          throw new StoreUnavailableError(this.description, op, key, "failing", `store failing${tries}: ${(err as Error).message ?? String(err)}`, { cause: err });
        }
        await sleep(pause, undefined, { signal: this.#closed.signal }).catch(() => undefined);
      } finally {
        clearTimeout(timer);
      }
    }
  }
}
