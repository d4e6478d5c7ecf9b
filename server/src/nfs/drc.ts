/**
 * Duplicate request cache for non-idempotent NFS procedures. A client that times out resends
 * the same call (same xid), possibly on a new connection; running CREATE/REMOVE/RENAME twice
 * would turn a success into EXIST/NOENT. So:
 * - key = client address and port + the credential exactly as sent (flavor and body) + xid +
 *   procedure + a hash of the argument bytes. The port and credential matter: another user or
 *   another process on the same host replaying someone's xid and arguments must not be handed
 *   that caller's cached reply (an ACCES for one uid is not the answer for another). Clients
 *   retransmit from the same source port, also on a new connection (Linux rebinds it, and
 *   knfsd's cache keys on address and port too);
 * - a duplicate that arrives while the original runs waits for it and gets the same reply;
 * - a completed reply body is kept (bounded count and bytes, with a TTL) and replayed.
 * Failures (exceptions) are not cached: the waiters see the error and a later retry runs again.
 */
import { hash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { RpcBody } from "./rpc-server.ts";

export interface DrcOptions {
  maxEntries?: number;
  maxBytes?: number;
  ttlMs?: number;
}

/** Who sent a call, as far as the cache is concerned. */
export interface DrcCaller {
  remoteAddress: string;
  remotePort: number;
  credFlavor: number;
  /** The credential body bytes as sent. */
  credBody: Buffer;
}

export interface DrcStats {
  /** Calls executed through the cache. */
  misses: number;
  /** Duplicates answered from a completed entry. */
  hits: number;
  /** Duplicates that waited for the original still in progress. */
  joined: number;
}

/** Per-entry overhead counted against maxBytes besides the reply bytes. */
const ENTRY_OVERHEAD = 128;

/**
 * One exact-size copy outside Node's shared allocation pool: a cached slice of a pooled buffer
 * would pin the whole 8 KiB slab and make the byte budget meaningless.
 */
function compact(body: RpcBody): RpcBody {
  const len = body.reduce((n, b) => n + b.length, 0);
  const out = Buffer.allocUnsafeSlow(len);
  let at = 0;
  for (const b of body) at += b.copy(out, at);
  return [out];
}

export class DuplicateRequestCache {
  private readonly done: LRUCache<string, RpcBody>;
  /** In-progress calls live apart from the LRU so they can never be evicted while running. */
  private readonly running = new Map<string, Promise<RpcBody>>();
  readonly stats: DrcStats = { misses: 0, hits: 0, joined: 0 };

  constructor(opts: DrcOptions = {}) {
    this.done = new LRUCache<string, RpcBody>({
      max: opts.maxEntries ?? 8192,
      maxSize: opts.maxBytes ?? 16 * 1024 * 1024,
      sizeCalculation: (body) => body.reduce((n, b) => n + b.length, ENTRY_OVERHEAD),
      ttl: opts.ttlMs ?? 120_000,
      // A retransmission does not extend the entry's life.
      updateAgeOnGet: false,
    });
  }

  static key(caller: DrcCaller, xid: number, proc: number, args: Buffer): string {
    const cred = `${caller.credFlavor}:${hash("sha1", caller.credBody, "base64")}`;
    return `${caller.remoteAddress}|${caller.remotePort}|${cred}|${xid}|${proc}|${hash("sha1", args, "base64")}`;
  }

  /** Runs `exec` once per key; duplicates get the same reply body. */
  async execute(key: string, exec: () => Promise<RpcBody>): Promise<RpcBody> {
    const cached = this.done.get(key);
    if (cached !== undefined) {
      this.stats.hits++;
      return cached;
    }
    const pending = this.running.get(key);
    if (pending !== undefined) {
      this.stats.joined++;
      return pending;
    }
    this.stats.misses++;
    const p = exec();
    this.running.set(key, p);
    try {
      const body = await p;
      this.done.set(key, compact(body));
      return body;
    } finally {
      this.running.delete(key);
    }
  }

  get size(): number {
    return this.done.size;
  }

  get inProgress(): number {
    return this.running.size;
  }

  clear(): void {
    this.done.clear();
  }
}
