/**
 * One TCP connection of the RPC server: record decoding, pipelined dispatch, reply writing and
 * flow control. Requests are dispatched as soon as their record completes and replies are
 * written as they finish (clients match them by xid), so one slow call never blocks others.
 *
 * Flow control (reading is paused — backpressure — whenever a call cannot start):
 * - at most `maxInFlight` calls and `maxInFlightBytes` of request records run at once; records
 *   beyond that (one chunk can complete many small records) wait in a backlog, in order;
 * - reply bytes are counted from the moment a call starts: each running call reserves an
 *   estimate of its reply (`replyHint`: READ's count, small for most calls), replaced by the
 *   real size when the reply is queued and released when the kernel has taken it. A call starts
 *   only while reserved + queued reply bytes stay within `maxPendingWriteBytes`, so a client
 *   that sends READs and never reads the replies pins at most that much, not maxInFlight MiB;
 * - every byte above is also counted in the server-wide BufferBudget; while it is exhausted a
 *   connection reads and starts calls only when it holds nothing at all (one call at a time),
 *   so a well-behaved client still gets answers while the hogs wait to be timed out.
 * Timeouts (idle, incomplete record, stalled replies) are enforced by the server's sweep from
 * the timestamps kept here.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { BufferBudget, BufferKind } from "./buffer-budget.ts";
import { frameRecord, RecordDecoder, RecordTooLargeError } from "./record-marking.ts";

/** What the server does with one record: the reply body to send, or null to close the connection. */
export type RecordDispatcher = (conn: RpcConnection, record: Buffer) => Promise<readonly Buffer[] | null>;

export interface ConnectionLimits {
  maxRecordBytes: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  maxPendingWriteBytes: number;
}

/** Why the server closed a connection (metrics label); "peer" when the client closed it. */
export type CloseReason = "peer" | "idle" | "record_timeout" | "stalled" | "evicted" | "protocol" | "shutdown" | "error";

export interface ConnectionEvents {
  /** A call started (true) or finished (false): the server tracks the total for close(). */
  inFlight(delta: 1 | -1): void;
  bytes(direction: "in" | "out", n: number): void;
  /** Estimated reply bytes of a complete record, reserved while its call runs. */
  replyHint(record: Buffer): number;
  /** The connection is being closed because of bad framing or an unparseable message. */
  protocolError(conn: RpcConnection, reason: string): void;
  closed(conn: RpcConnection, reason: CloseReason): void;
}

/** Reports IPv4-mapped IPv6 peers (dual-stack listeners) as plain IPv4, for export policies. */
export function normalizeAddress(addr: string | undefined): string {
  if (addr === undefined) return "";
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m?.[1] ?? addr;
}

interface Pending {
  record: Buffer;
  hint: number;
}

export class RpcConnection {
  readonly id: number;
  readonly socket: Socket;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly log: Logger;
  private readonly decoder: RecordDecoder;
  private readonly limits: ConnectionLimits;
  private readonly dispatch: RecordDispatcher;
  private readonly events: ConnectionEvents;
  private readonly budget: BufferBudget;
  private inFlight = 0;
  private inFlightBytes = 0;
  /** Complete records waiting for an in-flight slot (bounded: reading is paused meanwhile). */
  private backlog: Pending[] = [];
  private backlogBytes = 0;
  /** Bytes of the incomplete record held by the decoder, as last counted in the budget. */
  private partialBytes = 0;
  /** Reply estimates of the calls in flight. */
  private reservedReply = 0;
  /** Reply bytes handed to the socket whose write has not completed. */
  private queuedReply = 0;
  private paused = false;
  /** The socket is corked until the end of the current tick (replies batched into one writev). */
  private corked = false;
  /** Set by stopReading() / closeAfterReplies(): records still arriving are ignored. */
  private stopped = false;
  /** Set by closeAfterReplies(): end() once the calls already running have answered. */
  private endWhenIdle = false;
  /** Set by end(): incoming bytes are read and discarded so the peer's FIN is seen. */
  private draining = false;
  /** Set on close (queued replies released at once): late write callbacks must not release them twice. */
  private released = false;
  private closeReason: CloseReason | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly wake = (): void => this.pump();
  /** Last time (ms, monotonic) the peer sent bytes, a call finished or a reply was flushed. */
  lastActivity: number;
  /** When the incomplete record being received began (undefined at a record boundary). */
  recordStartedAt: number | undefined;
  /** When the queued replies last made progress (a write completed or the first was queued). */
  lastWriteProgress: number;
  /** True while reading is paused by this connection's own limits (not the server budget). */
  private pausedByOwnLimits = false;

  constructor(id: number, socket: Socket, limits: ConnectionLimits, budget: BufferBudget, dispatch: RecordDispatcher, events: ConnectionEvents, log: Logger) {
    this.id = id;
    this.socket = socket;
    this.remoteAddress = normalizeAddress(socket.remoteAddress);
    this.remotePort = socket.remotePort ?? 0;
    this.limits = limits;
    this.budget = budget;
    this.dispatch = dispatch;
    this.events = events;
    this.log = log.child({ conn: id, peer: `${this.remoteAddress}:${this.remotePort}` });
    // The socket's chunks are seen by nobody else: the decoder frees them once copied.
    this.decoder = new RecordDecoder(limits.maxRecordBytes, { consumeChunks: true });
    this.lastActivity = performance.now();
    this.lastWriteProgress = this.lastActivity;

    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.log.debug({ err }, "socket error"));
    socket.on("close", () => {
      this.releaseAll();
      this.events.closed(this, this.closeReason ?? (this.draining ? "shutdown" : "peer"));
      this.wakeIdle();
    });
  }

  get inFlightCount(): number {
    return this.inFlight;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  /** Bytes this connection holds (requests and replies), as counted in the server budget. */
  get heldBytes(): number {
    return this.partialBytes + this.backlogBytes + this.inFlightBytes + this.reservedReply + this.queuedReply;
  }

  get queuedReplyBytes(): number {
    return this.queuedReply;
  }

  /** Nothing running, waiting, queued or half-received: a candidate for idle timeout/eviction. */
  get idle(): boolean {
    return this.inFlight === 0 && this.backlog.length === 0 && this.queuedReply === 0 && this.decoder.idle;
  }

  /** Whether the incomplete-record clock runs (not while our own flow control holds the peer back). */
  get recordClockRunning(): boolean {
    return this.recordStartedAt !== undefined && !this.pausedByOwnLimits && !this.stopped;
  }

  private account(kind: BufferKind, n: number): void {
    this.budget.adjust(kind, n);
  }

  private onData(chunk: Buffer): void {
    this.events.bytes("in", chunk.length);
    if (this.stopped) return;
    this.lastActivity = performance.now();
    let records: Buffer[];
    let framingError: string | undefined;
    try {
      records = this.decoder.push(chunk);
    } catch (err) {
      // Record-level corruption (oversize): the stream is lost from here on, but the records
      // completed before the bad header are valid calls and get their answers first.
      framingError = err instanceof Error ? err.message : String(err);
      records = err instanceof RecordTooLargeError ? err.completed : [];
    }
    this.syncPartial();
    for (const record of records) {
      const hint = this.events.replyHint(record);
      this.backlog.push({ record, hint });
      this.backlogBytes += record.length;
      this.account("request", record.length);
    }
    if (framingError !== undefined) {
      this.log.warn({ reason: framingError }, "closing connection: bad record framing");
      this.events.protocolError(this, framingError);
      this.pump();
      this.closeAfterReplies();
      return;
    }
    this.pump();
  }

  /** Brings the budget in line with the decoder's incomplete record and its clock. */
  private syncPartial(): void {
    const now = this.decoder.bufferedBytes;
    if (now !== this.partialBytes) {
      this.account("request", now - this.partialBytes);
      this.partialBytes = now;
    }
    if (this.decoder.idle) this.recordStartedAt = undefined;
    else this.recordStartedAt ??= performance.now();
  }

  private get replyHeld(): number {
    return this.reservedReply + this.queuedReply;
  }

  private ownLimitsAllow(p: Pending): boolean {
    if (this.inFlight >= this.limits.maxInFlight) return false;
    // One call always runs, whatever its size (records are already capped)...
    if (this.inFlight > 0 && this.inFlightBytes + p.record.length > this.limits.maxInFlightBytes) return false;
    // ...and one reply may be pending whatever its size; beyond that, replies stay under the cap.
    return this.replyHeld === 0 || this.replyHeld + p.hint <= this.limits.maxPendingWriteBytes;
  }

  /** Over the server budget only a connection holding nothing but this record may go on. */
  private budgetAllows(): boolean {
    return !this.budget.over || (this.inFlight === 0 && this.replyHeld === 0);
  }

  /** Starts backlogged calls while limits allow, then adjusts reading. */
  private pump(): void {
    while (!this.stopped && !this.socket.destroyed && this.backlog[0] !== undefined) {
      const next = this.backlog[0];
      if (!this.ownLimitsAllow(next) || !this.budgetAllows()) break;
      this.backlog.shift();
      this.backlogBytes -= next.record.length;
      this.start(next);
    }
    this.updateFlow();
  }

  private start(p: Pending): void {
    const { record, hint } = p;
    this.inFlight++;
    this.inFlightBytes += record.length;
    // The record moves from backlog to in flight (both request bytes); the reply is reserved.
    this.reservedReply += hint;
    this.account("reply", hint);
    this.events.inFlight(1);
    this.dispatch(this, record)
      .then(
        (reply) => {
          if (reply === null) this.closeAfterReplies();
          else this.write(reply);
        },
        (err: unknown) => {
          // The dispatcher answers handler failures itself; reaching here is a server bug.
          this.log.error({ err }, "dispatch failed; closing connection");
          this.close("error");
        },
      )
      .finally(() => {
        this.inFlight--;
        this.inFlightBytes -= record.length;
        this.reservedReply -= hint;
        this.account("request", -record.length);
        this.account("reply", -hint);
        this.lastActivity = performance.now();
        this.events.inFlight(-1);
        this.pump();
        if (this.inFlight === 0) {
          this.wakeIdle();
          if (this.endWhenIdle) this.end(1000);
        }
      })
      .catch((err: unknown) => this.log.error({ err }, "connection bookkeeping failed"));
  }

  private write(body: readonly Buffer[]): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const framed = frameRecord(body);
    let n = 0;
    for (const b of framed) n += b.length;
    if (this.queuedReply === 0) this.lastWriteProgress = performance.now();
    this.queuedReply += n;
    this.account("reply", n);
    const flushed = (): void => {
      if (this.released) return;
      this.queuedReply -= n;
      this.account("reply", -n);
      this.lastWriteProgress = this.lastActivity = performance.now();
      this.pump();
    };
    // Corked until the end of this tick: the pieces of this reply, and of every other reply
    // finished in the same tick (calls in flight complete in bursts), go out in one writev —
    // one syscall instead of one per reply, and the payload is never joined in user space.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    framed.forEach((b, i) => this.socket.write(b, i === framed.length - 1 ? flushed : undefined));
    this.events.bytes("out", n);
  }

  private updateFlow(): void {
    if (this.socket.destroyed) return;
    const own =
      this.inFlight >= this.limits.maxInFlight ||
      this.inFlightBytes >= this.limits.maxInFlightBytes ||
      this.backlog.length > 0 ||
      this.replyHeld >= this.limits.maxPendingWriteBytes;
    // Over budget, even one more socket chunk is only read by a connection holding nothing.
    const budget = this.budget.over && this.heldBytes > 0;
    const mustPause = !this.draining && (this.stopped || own || budget);
    if (budget || (this.backlog.length > 0 && !this.budgetAllows())) this.budget.waitUnder(this.wake);
    // The incomplete-record clock restarts when our own limits stop holding the peer back.
    if (this.pausedByOwnLimits && !own && this.recordStartedAt !== undefined) this.recordStartedAt = performance.now();
    this.pausedByOwnLimits = mustPause && own;
    if (mustPause && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!mustPause && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private releaseAll(): void {
    if (this.released) return;
    // Calls still running keep their record and reservation until they finish (released then).
    this.account("request", -(this.partialBytes + this.backlogBytes));
    this.account("reply", -this.queuedReply);
    this.partialBytes = this.backlogBytes = this.queuedReply = 0;
    this.backlog = [];
    this.recordStartedAt = undefined;
    this.budget.forget(this.wake);
    this.released = true;
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Stops taking new requests: calls already running continue, backlogged ones are dropped. */
  stopReading(): void {
    this.stopped = true;
    this.account("request", -this.backlogBytes);
    this.backlog = [];
    this.backlogBytes = 0;
    this.updateFlow();
  }

  /**
   * After a protocol error: no new calls, but the calls received before the bad record still
   * answer; then the connection ends gracefully.
   */
  private closeAfterReplies(): void {
    this.closeReason ??= "protocol";
    this.stopReading();
    if (this.inFlight === 0) this.end(1000);
    else this.endWhenIdle = true;
  }

  /** Resolves when no call is in flight (or the socket closed). */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0 || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Flushes queued replies, sends FIN and waits for the peer to close (destroying after
   * `graceMs`). Not destroying right after our FIN matters: closing with unread input makes the
   * kernel send RST, which can discard replies the client has not read yet.
   */
  end(graceMs: number): void {
    if (this.socket.destroyed || this.draining) return;
    this.stopped = true;
    this.draining = true;
    const timer = setTimeout(() => this.socket.destroy(), graceMs);
    timer.unref();
    this.socket.once("close", () => clearTimeout(timer));
    this.updateFlow();
    this.socket.end();
  }

  /** Closes at once (limits, timeouts, shutdown), recording why for the metrics. */
  close(reason: CloseReason): void {
    this.closeReason ??= reason;
    this.socket.destroy();
  }

  destroy(): void {
    this.close("shutdown");
  }
}
