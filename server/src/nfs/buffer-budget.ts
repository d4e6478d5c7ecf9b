/**
 * The server-wide budget of buffered RPC bytes: request bytes (partial records, complete
 * records waiting to run, records of calls in flight) and reply bytes (reserved for calls in
 * flight, then queued in sockets until the kernel takes them). Per-connection limits alone do
 * not bound memory: many connections each within its limits add up, so every connection counts
 * its bytes here and stops reading and starting calls while the total is over the limit (see
 * RpcConnection for the exact rule). Connections blocked on the budget register a waker and are
 * pumped again once the total falls back under the limit.
 */

export type BufferKind = "request" | "reply";

export class BufferBudget {
  readonly limit: number;
  private readonly used: Record<BufferKind, number> = { request: 0, reply: 0 };
  private blocked = new Set<() => void>();

  constructor(limit: number) {
    if (!(limit > 0)) throw new RangeError(`buffer budget must be > 0 bytes, got ${limit}`);
    this.limit = limit;
  }

  get total(): number {
    return this.used.request + this.used.reply;
  }

  bytes(kind: BufferKind): number {
    return this.used[kind];
  }

  get over(): boolean {
    return this.total >= this.limit;
  }

  /** Adds (n > 0) or releases (n < 0) bytes; releasing under the limit wakes blocked connections. */
  adjust(kind: BufferKind, n: number): void {
    if (n === 0) return;
    this.used[kind] += n;
    if (n < 0 && this.blocked.size > 0 && !this.over) {
      const wake = [...this.blocked];
      this.blocked.clear();
      // Not synchronously: the caller is usually in the middle of its own bookkeeping.
      queueMicrotask(() => {
        for (const w of wake) w();
      });
    }
  }

  /** Calls `wake` once the total is under the limit again (at most once per registration). */
  waitUnder(wake: () => void): void {
    this.blocked.add(wake);
  }

  forget(wake: () => void): void {
    this.blocked.delete(wake);
  }
}
