/**
 * One TCP connection of the RPC server: record decoding, pipelined dispatch, reply writing and
 * flow control. Requests are dispatched as soon as their record completes and replies are
 * written as they finish (clients match them by xid), so one slow call never blocks others.
 *
 * Flow control: at most `maxInFlight` calls (and `maxInFlightBytes` of request records) run at
 * once per connection; records beyond that (one chunk can complete many small records) wait in
 * a backlog, in order. Reading pauses while the connection is at its limits, the backlog is
 * non-empty, or too many reply bytes are queued in the socket (a client that sends but never
 * reads cannot make us buffer without bound). Reading resumes when all of these drain.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { frameRecord, RecordDecoder } from "./record-marking.ts";

/** What the server does with one record: the reply body to send, or null to close the connection. */
export type RecordDispatcher = (conn: RpcConnection, record: Buffer) => Promise<readonly Buffer[] | null>;

export interface ConnectionLimits {
  maxRecordBytes: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  maxPendingWriteBytes: number;
}

export interface ConnectionEvents {
  /** A call started (true) or finished (false): the server tracks the total for close(). */
  inFlight(delta: 1 | -1): void;
  bytes(direction: "in" | "out", n: number): void;
  /** The connection is being closed because of bad framing. */
  protocolError(conn: RpcConnection, reason: string): void;
  closed(conn: RpcConnection): void;
}

/** Reports IPv4-mapped IPv6 peers (dual-stack listeners) as plain IPv4, for export policies. */
export function normalizeAddress(addr: string | undefined): string {
  if (addr === undefined) return "";
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m?.[1] ?? addr;
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
  private inFlight = 0;
  private inFlightBytes = 0;
  /** Complete records waiting for an in-flight slot (bounded: reading is paused meanwhile). */
  private backlog: Buffer[] = [];
  private paused = false;
  /** Set by stopReading(): records still arriving are ignored. */
  private stopped = false;
  /** Set by end(): incoming bytes are read and discarded so the peer's FIN is seen. */
  private draining = false;
  private idleWaiters: (() => void)[] = [];

  constructor(id: number, socket: Socket, limits: ConnectionLimits, dispatch: RecordDispatcher, events: ConnectionEvents, log: Logger) {
    this.id = id;
    this.socket = socket;
    this.remoteAddress = normalizeAddress(socket.remoteAddress);
    this.remotePort = socket.remotePort ?? 0;
    this.limits = limits;
    this.dispatch = dispatch;
    this.events = events;
    this.log = log.child({ conn: id, peer: `${this.remoteAddress}:${this.remotePort}` });
    this.decoder = new RecordDecoder(limits.maxRecordBytes);

    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.pump());
    socket.on("error", (err) => this.log.debug({ err }, "socket error"));
    socket.on("close", () => {
      this.backlog = [];
      this.events.closed(this);
      this.wakeIdle();
    });
  }

  get inFlightCount(): number {
    return this.inFlight;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  private onData(chunk: Buffer): void {
    this.events.bytes("in", chunk.length);
    if (this.stopped) return;
    let records: Buffer[];
    try {
      records = this.decoder.push(chunk);
    } catch (err) {
      // Record-level corruption (oversize): there is no xid to answer, the stream is lost.
      const reason = err instanceof Error ? err.message : String(err);
      this.log.warn({ reason }, "closing connection: bad record framing");
      this.events.protocolError(this, reason);
      this.socket.destroy();
      return;
    }
    for (const rec of records) this.backlog.push(rec);
    this.pump();
  }

  private writeBlocked(): boolean {
    return this.socket.writableLength > this.limits.maxPendingWriteBytes;
  }

  private canStart(rec: Buffer): boolean {
    if (this.inFlight >= this.limits.maxInFlight || this.writeBlocked()) return false;
    // One call always runs, whatever its size (records are already capped).
    return this.inFlight === 0 || this.inFlightBytes + rec.length <= this.limits.maxInFlightBytes;
  }

  /** Starts backlogged calls while limits allow, then adjusts reading. */
  private pump(): void {
    while (!this.stopped && !this.socket.destroyed && this.backlog[0] !== undefined && this.canStart(this.backlog[0])) {
      this.start(this.backlog.shift() as Buffer);
    }
    this.updateFlow();
  }

  private start(record: Buffer): void {
    this.inFlight++;
    this.inFlightBytes += record.length;
    this.events.inFlight(1);
    this.dispatch(this, record)
      .then(
        (reply) => {
          if (reply === null) this.socket.destroy();
          else this.write(reply);
        },
        (err: unknown) => {
          // The dispatcher answers handler failures itself; reaching here is a server bug.
          this.log.error({ err }, "dispatch failed; closing connection");
          this.socket.destroy();
        },
      )
      .finally(() => {
        this.inFlight--;
        this.inFlightBytes -= record.length;
        this.events.inFlight(-1);
        this.pump();
        if (this.inFlight === 0) this.wakeIdle();
      })
      .catch((err: unknown) => this.log.error({ err }, "connection bookkeeping failed"));
  }

  private write(body: readonly Buffer[]): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const framed = frameRecord(body);
    let n = 0;
    // cork/uncork turns the pieces into one writev: the payload is not joined in user space.
    this.socket.cork();
    for (const b of framed) {
      n += b.length;
      this.socket.write(b);
    }
    this.socket.uncork();
    this.events.bytes("out", n);
  }

  private updateFlow(): void {
    if (this.socket.destroyed) return;
    const mustPause =
      !this.draining &&
      (this.stopped ||
        this.inFlight >= this.limits.maxInFlight ||
        this.inFlightBytes >= this.limits.maxInFlightBytes ||
        this.backlog.length > 0 ||
        this.writeBlocked());
    if (mustPause && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!mustPause && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Stops taking new requests: calls already running continue, backlogged ones are dropped. */
  stopReading(): void {
    this.stopped = true;
    this.backlog = [];
    this.updateFlow();
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
    if (this.socket.destroyed) return;
    this.stopped = true;
    this.draining = true;
    const timer = setTimeout(() => this.socket.destroy(), graceMs);
    timer.unref();
    this.socket.once("close", () => clearTimeout(timer));
    this.updateFlow();
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
