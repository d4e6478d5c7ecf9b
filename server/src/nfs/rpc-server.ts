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
 */
import { createServer, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { pino, type Logger } from "pino";
import { RpcConnection } from "./rpc-connection.ts";
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
  /** Calls other than NULL need a reserved source port unless the server is `insecure` (source-port.ts). */
  reservedPort?: boolean;
}

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
  onConnection?(event: "open" | "close" | "refused", remoteAddress: string): void;
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
  /** Per connection; reading pauses while more reply bytes than this wait in the socket. */
  maxPendingWriteBytes?: number;
  maxConnections?: number;
  /** Export policy, checked on connect; false closes the connection immediately. */
  allowClient?: (remoteAddress: string) => boolean;
  /** Accept calls from unreserved source ports to programs that want reserved ones (default false). */
  insecure?: boolean;
  hooks?: RpcServerHooks;
}

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
  private readonly opts: Required<Omit<RpcServerOptions, "logger" | "hooks" | "allowClient" | "maxConnections" | "insecure">>;
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
    };
    this.allowClient = options.allowClient ?? (() => true);
    this.insecure = options.insecure ?? false;
    this.hooks = options.hooks ?? {};
    this.server = createServer({ noDelay: true, keepAlive: true }, (socket) => this.onConnection(socket));
    if (options.maxConnections !== undefined) this.server.maxConnections = options.maxConnections;
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
      (c, record) => this.dispatch(c, record),
      {
        inFlight: (d) => {
          this.inFlightTotal += d;
        },
        bytes: (dir, n) => this.hook("onBytes", dir, n),
        protocolError: (c, reason) => this.hook("onProtocolError", c.remoteAddress, reason),
        closed: (c) => {
          if (this.connections.delete(c)) this.hook("onConnection", "close", c.remoteAddress);
        },
      },
      this.log,
    );
    let allowed = false;
    try {
      allowed = this.closing === null && conn.remoteAddress !== "" && this.allowClient(conn.remoteAddress);
    } catch (err) {
      conn.log.error({ err }, "allowClient threw; refusing connection");
    }
    if (!allowed) {
      conn.log.info("connection refused by export policy");
      this.hook("onConnection", "refused", conn.remoteAddress);
      socket.destroy();
      return;
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

    const ctx: RpcCallContext = { xid, prog, vers, proc, creds: auth.creds, connectionId: conn.id };
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
