/**
 * ONC RPC server over TCP serving several programs on one port (portmap, MOUNT, NFS).
 *
 * Error policy, from the outside in:
 * - framing broken (oversize record) or header unparseable / not a CALL → close the connection
 *   (there is no xid to answer);
 * - rpcvers ≠ 2 → MSG_DENIED RPC_MISMATCH; bad or unsupported credential → MSG_DENIED AUTH_ERROR;
 * - unknown program / version / procedure → PROG_UNAVAIL / PROG_MISMATCH(low, high) / PROC_UNAVAIL;
 * - handler throws XdrError (bad arguments) → GARBAGE_ARGS; RpcAcceptError → its status;
 *   anything else → SYSTEM_ERR, logged with peer, xid and prog/vers/proc.
 * Nothing a peer sends can throw out of this module.
 *
 * Resource limits (hostile or broken peers cost bounded memory and sockets):
 * - a server-wide BufferBudget of request + reply bytes, per-connection limits (RpcConnection);
 * - at most `maxConnections` connections: when full, the connection idle the longest is closed
 *   to make room (like knfsd), or the new one is refused when none is idle;
 * - a sweep closes connections idle for `idleTimeoutMs`, those holding an incomplete record for
 *   `recordTimeoutMs` (slowloris) and those whose queued replies made no progress for
 *   `stallTimeoutMs` (a peer that sends but never reads).
 */
import { createServer, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { pino, type Logger } from "pino";
import { BufferBudget } from "./buffer-budget.ts";
import { RpcConnection, type CloseReason } from "./rpc-connection.ts";
import { DEFAULT_MAX_RECORD_BYTES } from "./record-marking.ts";
import {
  AcceptStat,
  AuthStat,
  authenticate,
  buildAcceptedHeader,
  buildAuthErrorReply,
  buildProgMismatchReply,
  parseCall,
  type AcceptStatCode,
  type OpaqueAuth,
  type RpcCredentials,
} from "./rpc.ts";
import { XdrError, XdrReader } from "./xdr.ts";
import { sourcePortRefused } from "./source-port.ts";

export interface RpcCallContext {
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  creds: RpcCredentials;
  /** The credential exactly as sent (flavor and body bytes), e.g. to key a reply cache. */
  rawCred: OpaqueAuth;
  connectionId: number;
}

/** Encoded procedure results (the part after the accepted-reply header), as chunks. */
export type RpcBody = readonly Buffer[];

/**
 * A procedure. `args` is positioned at the procedure arguments (a view of the record: data
 * read from it is only valid during the call unless copied).
 */
export type RpcProcHandler = (ctx: RpcCallContext, args: XdrReader) => RpcBody | Promise<RpcBody>;

export interface RpcProgramVersion {
  procs: ReadonlyMap<number, RpcProcHandler>;
}

export interface RpcProgram {
  prog: number;
  /** For logs. */
  name: string;
  versions: Readonly<Record<number, RpcProgramVersion>>;
  /** Credential flavors accepted (default: any the server understands); others get AUTH_TOOWEAK. */
  authFlavors?: readonly number[];
  /**
   * Upper estimate of a call's reply bytes, reserved in the buffer budget while it runs (default
   * DEFAULT_REPLY_HINT). `args` is positioned at the arguments; throwing means "use the default".
   */
  replySizeHint?: (vers: number, proc: number, args: XdrReader) => number;
  /** Calls other than NULL need a reserved source port unless the server is `insecure` (source-port.ts). */
  reservedPort?: boolean;
}

/** Reply estimate of calls whose program gives none: enough for any small NFS/MOUNT reply. */
export const DEFAULT_REPLY_HINT = 4096;

export type RefuseReason = "policy" | "limit" | "shutdown";

/** Thrown by a handler to answer with a specific accept_stat instead of SUCCESS. */
export class RpcAcceptError extends Error {
  readonly stat: AcceptStatCode;
  constructor(stat: AcceptStatCode, message: string) {
    super(message);
    this.name = "RpcAcceptError";
    this.stat = stat;
  }
}

export type RpcCallOutcome =
  | "success"
  | "prog_unavail"
  | "prog_mismatch"
  | "proc_unavail"
  | "garbage_args"
  | "system_err"
  | "rpc_mismatch"
  | "auth_error";

export interface RpcCallEvent {
  /** Caller-supplied numbers: bucket unknown programs before using them as metric labels. */
  prog: number;
  vers: number;
  proc: number;
  outcome: RpcCallOutcome;
  durationMs: number;
  remoteAddress: string;
}

/** Metrics taps. They must not throw (exceptions are caught and logged). */
export interface RpcServerHooks {
  onCall?(ev: RpcCallEvent): void;
  onBytes?(direction: "in" | "out", bytes: number): void;
  /** `reason`: a CloseReason for "close", a RefuseReason for "refused". */
  onConnection?(event: "open" | "close" | "refused", remoteAddress: string, reason?: CloseReason | RefuseReason): void;
  /** A connection was closed because of what the peer sent. */
  onProtocolError?(remoteAddress: string, reason: string): void;
}

export interface RpcServerOptions {
  logger?: Logger;
  maxRecordBytes?: number;
  /** Per connection; reading pauses at this many calls in flight. */
  maxInFlightPerConnection?: number;
  /** Per connection; calls wait (and reading pauses) beyond this many bytes of requests in flight. */
  maxInFlightBytesPerConnection?: number;
  /**
   * Per connection; a call starts only while the reply bytes reserved by running calls plus
   * those queued in the socket stay within this (one call always may when none are pending).
   */
  maxPendingWriteBytes?: number;
  /** Server-wide; beyond it the longest-idle connection is closed, or the new one refused. */
  maxConnections?: number;
  /** Server-wide budget of buffered request + reply bytes. */
  maxBufferedBytes?: number;
  /** A connection with nothing running or queued is closed after this long without traffic. */
  idleTimeoutMs?: number;
  /** A connection is closed when one record takes longer than this to arrive. */
  recordTimeoutMs?: number;
  /** A connection is closed when its queued replies make no progress for this long. */
  stallTimeoutMs?: number;
  /** Export policy, checked on connect; false closes the connection immediately. */
  allowClient?: (remoteAddress: string) => boolean;
  /** Accept calls from unreserved source ports to programs that want reserved ones (default false). */
  insecure?: boolean;
  hooks?: RpcServerHooks;
}

/** knfsd's connection cap with its default 8 threads: (threads + 3) × 20. */
export const DEFAULT_MAX_CONNECTIONS = (8 + 3) * 20;
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024;
/** knfsd closes idle TCP connections after about 6 minutes. */
export const DEFAULT_IDLE_TIMEOUT_MS = 360_000;
export const DEFAULT_RECORD_TIMEOUT_MS = 30_000;
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;
const LIMIT_LOG_INTERVAL_MS = 10_000;

const OUTCOME_BY_STAT: Record<AcceptStatCode, RpcCallOutcome> = {
  [AcceptStat.SUCCESS]: "success",
  [AcceptStat.PROG_UNAVAIL]: "prog_unavail",
  [AcceptStat.PROG_MISMATCH]: "prog_mismatch",
  [AcceptStat.PROC_UNAVAIL]: "proc_unavail",
  [AcceptStat.GARBAGE_ARGS]: "garbage_args",
  [AcceptStat.SYSTEM_ERR]: "system_err",
};

interface RegisteredProgram {
  program: RpcProgram;
  low: number;
  high: number;
}

export class RpcServer {
  private readonly log: Logger;
  private readonly opts: Required<Omit<RpcServerOptions, "logger" | "hooks" | "allowClient" | "insecure">>;
  readonly budget: BufferBudget;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly limitLogState = new Map<string, { last: number; suppressed: number }>();
  private readonly allowClient: (remoteAddress: string) => boolean;
  private readonly insecure: boolean;
  /** Connections already told (in the log) that their source port is refused. */
  private readonly portRefusalLogged = new WeakSet<RpcConnection>();
  private readonly hooks: RpcServerHooks;
  private readonly programs = new Map<number, RegisteredProgram>();
  private readonly connections = new Set<RpcConnection>();
  private readonly server: Server;
  private nextConnId = 1;
  private inFlightTotal = 0;
  private closing: Promise<void> | null = null;
  private boundPort = 0;

  constructor(options: RpcServerOptions = {}) {
    this.log = options.logger ?? pino({ enabled: false });
    this.opts = {
      maxRecordBytes: options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
      maxInFlightPerConnection: options.maxInFlightPerConnection ?? 128,
      maxInFlightBytesPerConnection: options.maxInFlightBytesPerConnection ?? 64 * 1024 * 1024,
      maxPendingWriteBytes: options.maxPendingWriteBytes ?? 16 * 1024 * 1024,
      maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      recordTimeoutMs: options.recordTimeoutMs ?? DEFAULT_RECORD_TIMEOUT_MS,
      stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    };
    for (const k of ["maxConnections", "maxBufferedBytes", "idleTimeoutMs", "recordTimeoutMs", "stallTimeoutMs"] as const) {
      if (!(this.opts[k] > 0)) throw new RangeError(`RpcServer option ${k} must be > 0, got ${this.opts[k]}`);
    }
    this.budget = new BufferBudget(this.opts.maxBufferedBytes);
    this.allowClient = options.allowClient ?? (() => true);
    this.insecure = options.insecure ?? false;
    this.hooks = options.hooks ?? {};
    this.server = createServer({ noDelay: true, keepAlive: true }, (socket) => this.onConnection(socket));
    this.server.on("error", (err) => this.log.error({ err }, "RPC listener error"));
  }

  register(program: RpcProgram): void {
    if (this.programs.has(program.prog)) throw new Error(`RPC program ${program.prog} (${program.name}) registered twice`);
    const versions = Object.keys(program.versions).map(Number);
    if (versions.length === 0) throw new Error(`RPC program ${program.prog} (${program.name}) has no versions`);
    this.programs.set(program.prog, { program, low: Math.min(...versions), high: Math.max(...versions) });
  }

  /** Listens (port 0 picks a free one) and resolves with the bound port. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once("error", onError);
      this.server.listen({ port, host }, () => {
        this.server.off("error", onError);
        const addr = this.server.address();
        this.boundPort = typeof addr === "object" && addr !== null ? addr.port : port;
        this.startSweeper();
        this.log.info({ host, port: this.boundPort, programs: [...this.programs.values()].map((p) => p.program.name) }, "RPC server listening");
        resolve(this.boundPort);
      });
    });
  }

  get port(): number {
    return this.boundPort;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get inFlight(): number {
    return this.inFlightTotal;
  }

  private hook<K extends keyof RpcServerHooks>(name: K, ...args: Parameters<NonNullable<RpcServerHooks[K]>>): void {
    const f = this.hooks[name] as ((...a: unknown[]) => void) | undefined;
    if (f === undefined) return;
    try {
      f.apply(this.hooks, args);
    } catch (err) {
      this.log.error({ err, hook: name }, "RPC metrics hook threw");
    }
  }

  /** Server-wide buffered request + reply bytes (metrics). */
  get bufferedBytes(): { request: number; reply: number } {
    return { request: this.budget.bytes("request"), reply: this.budget.bytes("reply") };
  }

  /**
   * Periodically closes connections past their timeouts. One timer for the server instead of
   * several per socket; it runs at a quarter of the shortest timeout so each fires at most 25%
   * late (bounded to 50 ms..5 s).
   */
  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    const shortest = Math.min(this.opts.idleTimeoutMs, this.opts.recordTimeoutMs, this.opts.stallTimeoutMs);
    this.sweeper = setInterval(() => this.sweep(), Math.min(5000, Math.max(50, shortest / 4)));
    this.sweeper.unref();
  }

  private sweep(): void {
    const now = performance.now();
    const { idleTimeoutMs, recordTimeoutMs, stallTimeoutMs } = this.opts;
    for (const c of this.connections) {
      if (c.destroyed) continue;
      if (c.queuedReplyBytes > 0 && now - c.lastWriteProgress > stallTimeoutMs) {
        this.limitedLog(c, "stalled", { queuedBytes: c.queuedReplyBytes, stallTimeoutMs }, "closing connection: the peer has not read its replies");
        c.close("stalled");
      } else if (c.recordClockRunning && c.recordStartedAt !== undefined && now - c.recordStartedAt > recordTimeoutMs) {
        this.limitedLog(c, "record_timeout", { heldBytes: c.heldBytes, recordTimeoutMs }, "closing connection: incomplete RPC record timed out");
        c.close("record_timeout");
      } else if (c.idle && now - c.lastActivity > idleTimeoutMs) {
        c.log.debug({ idleTimeoutMs }, "closing idle connection");
        c.close("idle");
      }
    }
  }

  /**
   * Warns about a limit being enforced at most once per LIMIT_LOG_INTERVAL_MS per kind, with the
   * count of the ones not logged since: a flood of hostile connections must not flood the log
   * too (the metrics count every one).
   */
  private limitedLog(c: RpcConnection, kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = performance.now();
    const state = this.limitLogState.get(kind) ?? { last: -Infinity, suppressed: 0 };
    this.limitLogState.set(kind, state);
    if (now - state.last < LIMIT_LOG_INTERVAL_MS) {
      state.suppressed++;
      return;
    }
    c.log.warn({ ...fields, limit: kind, ...(state.suppressed > 0 ? { notLoggedSinceLast: state.suppressed } : {}) }, msg);
    state.last = now;
    state.suppressed = 0;
  }

  /** Estimated reply bytes of a record's call, from its program (never throws). */
  private replyHint(record: Buffer): number {
    const parsed = parseCall(record);
    if (parsed.kind !== "call") return DEFAULT_REPLY_HINT;
    const { prog, vers, proc } = parsed.header;
    const hint = this.programs.get(prog)?.program.replySizeHint;
    if (hint === undefined) return DEFAULT_REPLY_HINT;
    try {
      const n = hint(vers, proc, new XdrReader(record, parsed.argsOffset));
      return Number.isFinite(n) && n > 0 ? n : DEFAULT_REPLY_HINT;
    } catch {
      return DEFAULT_REPLY_HINT;
    }
  }

  /** At the cap: the connection idle the longest, to be closed for a new one (or none). */
  private evictionCandidate(): RpcConnection | undefined {
    let oldest: RpcConnection | undefined;
    for (const c of this.connections) {
      if (!c.destroyed && c.idle && (oldest === undefined || c.lastActivity < oldest.lastActivity)) oldest = c;
    }
    return oldest;
  }

  private onConnection(socket: Socket): void {
    const conn = new RpcConnection(
      this.nextConnId++,
      socket,
      {
        maxRecordBytes: this.opts.maxRecordBytes,
        maxInFlight: this.opts.maxInFlightPerConnection,
        maxInFlightBytes: this.opts.maxInFlightBytesPerConnection,
        maxPendingWriteBytes: this.opts.maxPendingWriteBytes,
      },
      this.budget,
      (c, record) => this.dispatch(c, record),
      {
        inFlight: (d) => {
          this.inFlightTotal += d;
        },
        bytes: (dir, n) => this.hook("onBytes", dir, n),
        replyHint: (record) => this.replyHint(record),
        protocolError: (c, reason) => this.hook("onProtocolError", c.remoteAddress, reason),
        closed: (c, reason) => {
          if (this.connections.delete(c)) this.hook("onConnection", "close", c.remoteAddress, reason);
        },
      },
      this.log,
    );
    const refuse = (reason: RefuseReason, msg: string): void => {
      if (reason === "limit") this.limitedLog(conn, "limit", { maxConnections: this.opts.maxConnections }, msg);
      else conn.log.info({ reason }, msg);
      this.hook("onConnection", "refused", conn.remoteAddress, reason);
      socket.destroy();
    };
    if (this.closing !== null) return refuse("shutdown", "connection refused: shutting down");
    let allowed = false;
    try {
      allowed = conn.remoteAddress !== "" && this.allowClient(conn.remoteAddress);
    } catch (err) {
      conn.log.error({ err }, "allowClient threw; refusing connection");
    }
    if (!allowed) return refuse("policy", "connection refused by export policy");
    if (this.connections.size >= this.opts.maxConnections) {
      const victim = this.evictionCandidate();
      if (victim === undefined) {
        return refuse("limit", `connection refused: ${this.connections.size} connections open (the limit), none idle`);
      }
      this.limitedLog(victim, "evicted", { maxConnections: this.opts.maxConnections }, "closing the longest-idle connection to make room for a new one");
      // Counted as closed now: the socket's close event comes later and must not free a slot twice.
      this.connections.delete(victim);
      this.hook("onConnection", "close", victim.remoteAddress, "evicted");
      victim.close("evicted");
    }
    this.connections.add(conn);
    this.hook("onConnection", "open", conn.remoteAddress);
    conn.log.debug("connection accepted");
  }

  private async dispatch(conn: RpcConnection, record: Buffer): Promise<readonly Buffer[] | null> {
    const t0 = performance.now();
    const parsed = parseCall(record);
    if (parsed.kind === "invalid") {
      conn.log.debug({ reason: parsed.reason, bytes: record.length }, "closing connection: unparseable RPC message");
      this.hook("onProtocolError", conn.remoteAddress, parsed.reason);
      return null;
    }
    if (parsed.kind === "deny") {
      conn.log.debug({ xid: parsed.xid, reason: parsed.reason }, "RPC_MISMATCH");
      this.hook("onCall", { prog: 0, vers: 0, proc: 0, outcome: "rpc_mismatch", durationMs: performance.now() - t0, remoteAddress: conn.remoteAddress });
      return [parsed.reply];
    }
    const { header } = parsed;
    const { xid, prog, vers, proc } = header;
    const done = (outcome: RpcCallOutcome): void =>
      this.hook("onCall", { prog, vers, proc, outcome, durationMs: performance.now() - t0, remoteAddress: conn.remoteAddress });
    const accepted = (stat: AcceptStatCode): Buffer[] => {
      done(OUTCOME_BY_STAT[stat]);
      return [buildAcceptedHeader(xid, stat)];
    };

    const auth = authenticate(header, conn.remoteAddress, conn.remotePort);
    if (!auth.ok) {
      conn.log.debug({ xid, prog, proc, reason: auth.reason }, "AUTH_ERROR");
      done("auth_error");
      return [buildAuthErrorReply(xid, auth.stat)];
    }
    const reg = this.programs.get(prog);
    if (reg === undefined) return accepted(AcceptStat.PROG_UNAVAIL);
    const version = reg.program.versions[vers];
    if (version === undefined) {
      done("prog_mismatch");
      return [buildProgMismatchReply(xid, reg.low, reg.high)];
    }
    const handler = version.procs.get(proc);
    if (handler === undefined) return accepted(AcceptStat.PROC_UNAVAIL);
    if (reg.program.authFlavors !== undefined && !reg.program.authFlavors.includes(auth.creds.flavor)) {
      done("auth_error");
      return [buildAuthErrorReply(xid, AuthStat.AUTH_TOOWEAK)];
    }
    if (sourcePortRefused(reg.program.reservedPort === true, proc, conn.remotePort, this.insecure)) {
      this.logPortRefusal(conn, reg.program.name);
      done("auth_error");
      return [buildAuthErrorReply(xid, AuthStat.AUTH_TOOWEAK)];
    }

    const ctx: RpcCallContext = { xid, prog, vers, proc, creds: auth.creds, rawCred: header.cred, connectionId: conn.id };
    try {
      const body = await handler(ctx, new XdrReader(record, parsed.argsOffset));
      done("success");
      return [buildAcceptedHeader(xid, AcceptStat.SUCCESS), ...body];
    } catch (err) {
      const where = { xid, prog: reg.program.name, vers, proc };
      if (err instanceof XdrError) {
        conn.log.debug({ ...where, reason: err.message }, "GARBAGE_ARGS");
        return accepted(AcceptStat.GARBAGE_ARGS);
      }
      if (err instanceof RpcAcceptError) {
        conn.log.debug({ ...where, stat: err.stat, reason: err.message }, "call rejected by handler");
        return accepted(err.stat);
      }
      conn.log.error({ ...where, err }, "RPC handler failed; replying SYSTEM_ERR");
      return accepted(AcceptStat.SYSTEM_ERR);
    }
  }

  /** Once per connection: the operator needs to know why a client's calls are refused. */
  private logPortRefusal(conn: RpcConnection, program: string): void {
    if (this.portRefusalLogged.has(conn)) return;
    this.portRefusalLogged.add(conn);
    conn.log.warn({ program, remotePort: conn.remotePort }, "refusing calls from an unreserved source port (>= 1024): the client is not root or is behind NAT; set ZEROFS_INSECURE=true to accept it");
  }

  private async waitIdle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlightTotal > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left);
      });
      // Connections that already closed may still have handlers running: poll those briefly.
      const live = [...this.connections].filter((c) => c.inFlightCount > 0);
      const waits = live.length > 0 ? live.map((c) => c.whenIdle()) : [new Promise<void>((r) => setTimeout(r, 10))];
      await Promise.race([Promise.all(waits), timeout]);
      clearTimeout(timer);
    }
    return true;
  }

  /**
   * Graceful shutdown: stop accepting connections and requests, let in-flight calls finish and
   * their replies flush (up to `timeoutMs`), then close every socket.
   */
  close(timeoutMs = 10_000): Promise<void> {
    this.closing ??= this.doClose(timeoutMs);
    return this.closing;
  }

  private async doClose(timeoutMs: number): Promise<void> {
    const listenerClosed = new Promise<void>((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    for (const c of this.connections) c.stopReading();
    const idle = await this.waitIdle(timeoutMs);
    if (!idle) this.log.warn({ inFlight: this.inFlightTotal, timeoutMs }, "RPC server close: in-flight calls did not finish in time");
    for (const c of this.connections) {
      if (idle) c.end(1000);
      else c.destroy();
    }
    await listenerClosed;
    this.log.info("RPC server closed");
  }
}
