/**
 * A small ONC RPC client for tests: builds CALL messages, sends many in flight over one TCP
 * connection and matches replies by xid (several waiters on one xid are served in order, for
 * retransmission tests).
 */
import { connect, type Socket } from "node:net";
import { RecordDecoder, frameRecord } from "../../../server/src/nfs/record-marking.ts";
import { XdrReader, XdrWriter } from "../../../server/src/nfs/xdr.ts";

export interface OpaqueAuthIn {
  flavor: number;
  body: Buffer;
}

export const AUTH_NONE: OpaqueAuthIn = { flavor: 0, body: Buffer.alloc(0) };

export function authSys(p: { uid: number; gid: number; gids?: number[]; machineName?: string; stamp?: number }): OpaqueAuthIn {
  const w = new XdrWriter();
  w.uint32(p.stamp ?? 1).string(p.machineName ?? "testhost").uint32(p.uid).uint32(p.gid);
  w.array(p.gids ?? [], (x, g) => x.uint32(g));
  return { flavor: 1, body: w.toBuffer() };
}

export interface CallOptions {
  xid?: number;
  cred?: OpaqueAuthIn;
  verf?: OpaqueAuthIn;
  rpcvers?: number;
}

export type RpcReply =
  | { xid: number; kind: "accepted"; stat: number; mismatch?: { low: number; high: number }; body: XdrReader; raw: Buffer }
  | { xid: number; kind: "denied"; rejectStat: number; mismatch?: { low: number; high: number }; authStat?: number; raw: Buffer };

/** Encodes a CALL message body (no record mark). */
export function encodeCall(xid: number, prog: number, vers: number, proc: number, args: Buffer, opts: CallOptions = {}): Buffer {
  const cred = opts.cred ?? authSys({ uid: 1000, gid: 1000 });
  const verf = opts.verf ?? AUTH_NONE;
  const w = new XdrWriter(64 + args.length);
  w.uint32(xid).uint32(0).uint32(opts.rpcvers ?? 2).uint32(prog).uint32(vers).uint32(proc);
  w.uint32(cred.flavor).opaque(cred.body);
  w.uint32(verf.flavor).opaque(verf.body);
  w.raw(args);
  return w.toBuffer();
}

export function parseReply(rec: Buffer): RpcReply {
  const r = new XdrReader(rec);
  const xid = r.uint32();
  const mtype = r.uint32();
  if (mtype !== 1) throw new Error(`xid ${xid}: not a REPLY (${mtype})`);
  const replyStat = r.uint32();
  if (replyStat === 0) {
    r.uint32(); // verifier flavor
    r.opaque(400);
    const stat = r.uint32();
    if (stat === 2) return { xid, kind: "accepted", stat, mismatch: { low: r.uint32(), high: r.uint32() }, body: r, raw: rec };
    return { xid, kind: "accepted", stat, body: r, raw: rec };
  }
  const rejectStat = r.uint32();
  if (rejectStat === 0) return { xid, kind: "denied", rejectStat, mismatch: { low: r.uint32(), high: r.uint32() }, raw: rec };
  return { xid, kind: "denied", rejectStat, authStat: r.uint32(), raw: rec };
}

export function frame(body: Buffer): Buffer {
  return Buffer.concat(frameRecord([body]));
}

export class RpcClient {
  readonly socket: Socket;
  private readonly decoder = new RecordDecoder(64 * 1024 * 1024);
  private readonly pending = new Map<number, { resolve: (r: RpcReply) => void; reject: (e: Error) => void }[]>();
  private xidCounter = Math.floor(Math.random() * 0x7fff_0000);
  /** Resolves when the socket has closed (for whatever reason). */
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      for (const rec of this.decoder.push(chunk)) this.onReply(rec);
    });
    socket.on("error", () => {
      /* surfaced through `closed` and pending rejections */
    });
    this.closed = new Promise((resolve) => {
      socket.on("close", () => {
        this.isClosed = true;
        for (const list of this.pending.values()) for (const p of list) p.reject(new Error("connection closed"));
        this.pending.clear();
        resolve();
      });
    });
  }

  /** `local`: the client's own address and port (e.g. a reserved port, as root). */
  static connect(port: number, host = "127.0.0.1", local: { address?: string; port?: number } = {}): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host, ...(local.address !== undefined ? { localAddress: local.address } : {}), ...(local.port !== undefined ? { localPort: local.port } : {}) }, () => {
        s.off("error", reject);
        resolve(new RpcClient(s));
      });
      s.once("error", reject);
    });
  }

  nextXid(): number {
    this.xidCounter = (this.xidCounter + 1) >>> 0;
    return this.xidCounter;
  }

  private onReply(rec: Buffer): void {
    const reply = parseReply(rec);
    const list = this.pending.get(reply.xid);
    const waiter = list?.shift();
    if (list !== undefined && list.length === 0) this.pending.delete(reply.xid);
    waiter?.resolve(reply);
  }

  /** Waits for the next reply carrying `xid`. */
  expect(xid: number): Promise<RpcReply> {
    return new Promise((resolve, reject) => {
      if (this.isClosed) return reject(new Error("connection closed"));
      const list = this.pending.get(xid) ?? [];
      list.push({ resolve, reject });
      this.pending.set(xid, list);
    });
  }

  call(prog: number, vers: number, proc: number, args: Buffer = Buffer.alloc(0), opts: CallOptions = {}): Promise<RpcReply> {
    const xid = opts.xid ?? this.nextXid();
    const p = this.expect(xid);
    this.socket.write(frame(encodeCall(xid, prog, vers, proc, args, opts)));
    return p;
  }

  /** Sends raw bytes (no framing added). */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  async close(): Promise<void> {
    this.socket.end();
    await this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Connects from a reserved source port (< 1024, root only), trying ports downwards from 1023
 * until one is free (a port still in TIME_WAIT towards the same server is refused).
 */
export async function connectFromReservedPort(port: number, host = "127.0.0.1", address?: string): Promise<RpcClient> {
  let last: unknown;
  for (let local = 1023; local >= 600; local--) {
    try {
      return await RpcClient.connect(port, host, { port: local, ...(address !== undefined ? { address } : {}) });
    } catch (err) {
      last = err;
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" && (err as NodeJS.ErrnoException).code !== "EADDRNOTAVAIL") throw err;
    }
  }
  throw new Error("no free reserved source port in 600..1023", { cause: last });
}

/** Asserts an accepted SUCCESS reply and returns the result reader. */
export function successBody(reply: RpcReply): XdrReader {
  if (reply.kind !== "accepted" || reply.stat !== 0) {
    throw new Error(`expected SUCCESS, got ${JSON.stringify({ ...reply, body: undefined, raw: undefined })}`);
  }
  return reply.body;
}
