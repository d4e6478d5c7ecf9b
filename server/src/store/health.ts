/**
 * Health of the object store as seen from its requests: "healthy", or "degraded" from the
 * first request that got no answer within its deadline (a stall) or after `failureThreshold`
 * failed requests in a row, until requests get answers again. Reads and writes are tracked
 * apart: a store that still answers reads but fails every write (a read-only or deleted
 * volume directory) stays degraded until a write succeeds, instead of flapping with each read.
 *
 * One log line per state change (warn when the outage starts, info when it ends, with the
 * outage's figures); individual failures are logged at debug only, with their stack, since a
 * retry loop (the WAL writer retries every few seconds) would otherwise repeat the same trace
 * for as long as the outage lasts.
 */
import type { Logger } from "pino";
import type { StoreOp } from "./errors.ts";

export type StoreState = "healthy" | "degraded";

export interface StoreHealthOptions {
  /** The store's description, for log lines. */
  store: string;
  logger?: Logger;
  /** Consecutive failed requests that make the store degraded. Default 3. */
  failureThreshold?: number;
  /** Called on every state change (metrics). */
  onChange?: (state: StoreState) => void;
  /** Called for every request that passed its deadline (metrics). */
  onTimeout?: (op: StoreOp) => void;
}

export interface StoreHealthStatus {
  state: StoreState;
  /** When the current state began. */
  since: Date;
  /** Why the store is degraded: the first failure or stall of the outage. */
  reason: string | undefined;
}

type Kind = "read" | "write";
const kindOf = (op: StoreOp): Kind => (op === "get" || op === "head" || op === "list" ? "read" : "write");

export class StoreHealth {
  readonly stats = { failures: 0, timeouts: 0, outages: 0 };
  #state: StoreState = "healthy";
  #since = new Date();
  #reason: string | undefined;
  readonly #consecutiveFailures: Record<Kind, number> = { read: 0, write: 0 };
  /** Which kinds of request are failing; degraded while any is. */
  readonly #failing: Record<Kind, boolean> = { read: false, write: false };
  /** Figures of the current outage, for the line that ends it. */
  #outage = { failures: 0, timeouts: 0 };
  readonly #opts: StoreHealthOptions;
  readonly #threshold: number;

  constructor(opts: StoreHealthOptions) {
    this.#opts = opts;
    this.#threshold = Math.max(1, opts.failureThreshold ?? 3);
  }

  get state(): StoreState {
    return this.#state;
  }

  status(): StoreHealthStatus {
    return { state: this.#state, since: this.#since, reason: this.#reason };
  }

  /** A request got an answer (a missing object or a lost precondition is an answer too). */
  success(op: StoreOp): void {
    const kind = kindOf(op);
    this.#consecutiveFailures[kind] = 0;
    this.#failing[kind] = false;
    if (this.#state === "healthy" || this.#failing.read || this.#failing.write) return;
    const outageSeconds = Math.round((Date.now() - this.#since.getTime()) / 100) / 10;
    this.#opts.logger?.info(
      { store: this.#opts.store, outageSeconds, failedRequests: this.#outage.failures, timedOutRequests: this.#outage.timeouts },
      "object store available again",
    );
    this.#set("healthy", undefined);
  }

  /** A request failed without an answer (refused connection, I/O error, 5xx after retries). */
  failure(op: StoreOp, key: string, err: unknown): void {
    const kind = kindOf(op);
    this.stats.failures++;
    const n = ++this.#consecutiveFailures[kind];
    if (this.#state === "degraded") this.#outage.failures++;
    this.#opts.logger?.debug({ err, store: this.#opts.store, op, key }, "object store request failed");
    if (n < this.#threshold) return;
    this.#failing[kind] = true;
    if (this.#state === "healthy") {
      this.#outage = { failures: n, timeouts: 0 };
      this.#degrade(op, key, `${n} ${kind}s in a row failed, the last with: ${messageOf(err)}`);
    }
  }

  /** A request got no answer within its deadline. */
  timeout(op: StoreOp, key: string, deadlineMs: number): void {
    this.stats.timeouts++;
    this.#failing[kindOf(op)] = true;
    this.#opts.onTimeout?.(op);
    this.#opts.logger?.debug({ store: this.#opts.store, op, key, deadlineSeconds: deadlineMs / 1000 }, "object store request passed its deadline");
    if (this.#state === "degraded") {
      this.#outage.timeouts++;
      return;
    }
    this.#outage = { failures: 0, timeouts: 1 };
    this.#degrade(op, key, `no answer within ${formatSeconds(deadlineMs)}`);
  }

  #degrade(op: StoreOp, key: string, reason: string): void {
    this.stats.outages++;
    this.#opts.logger?.warn(
      { store: this.#opts.store, op, key, reason },
      "object store unavailable: serving what is cached, writes wait for it (NFS clients are told to retry)",
    );
    this.#set("degraded", `${op} ${JSON.stringify(key)}: ${reason}`);
  }

  #set(state: StoreState, reason: string | undefined): void {
    this.#state = state;
    this.#since = new Date();
    this.#reason = reason;
    this.#opts.onChange?.(state);
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
