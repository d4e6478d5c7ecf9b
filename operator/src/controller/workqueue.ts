/**
 * A rate-limited work queue of volume keys ("namespace/name"), with the semantics of client-go's:
 *  - dedup: a key waiting in the queue is queued once, however many events arrive;
 *  - a key is never processed by two workers at once: an add while it is processed marks it
 *    dirty and it is queued again when the worker finishes;
 *  - failures requeue with per-key exponential backoff (base * 2^n, capped, with jitter), reset
 *    by forget() after a success;
 *  - addAfter() schedules a key (requeue-after); the earliest pending time wins.
 */
export interface WorkQueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  onDepth?: (depth: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly base: number;
  private readonly max: number;
  private readonly onDepth: ((depth: number) => void) | undefined;
  private shuttingDown = false;

  constructor(o: WorkQueueOptions = {}) {
    this.base = o.baseDelayMs ?? 500;
    this.max = o.maxDelayMs ?? 300_000;
    this.onDepth = o.onDepth;
  }

  get depth(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const w = this.waiters.shift();
    if (w) {
      this.processing.add(key);
      w(key);
      return;
    }
    this.queued.add(key);
    this.queue.push(key);
    this.onDepth?.(this.queue.length);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const cur = this.timers.get(key);
    if (cur && cur.at <= at) return;
    if (cur) clearTimeout(cur.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Requeue after a failure with exponential backoff; returns the delay used. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const exp = Math.min(this.max, this.base * 2 ** Math.min(n, 30));
    // ±20% jitter so that keys failing together (an API outage) do not retry in lockstep; capped.
    const delay = Math.min(this.max, Math.round(exp * (0.8 + Math.random() * 0.4)));
    this.addAfter(key, delay);
    return delay;
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Clears the backoff of a key after a successful reconcile. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Next key to process; undefined once shut down. Call done(key) afterwards. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.processing.add(key);
      this.onDepth?.(this.queue.length);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  /** Stops handing out work; waiting get() calls resolve undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }
}
