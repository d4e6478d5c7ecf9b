/**
 * ONC RPC version 2 messages (RFC 5531): parsing CALL headers and credentials, building
 * accepted / denied replies. Only what a server needs; no client side here.
 */
import { XdrError, XdrReader, XdrWriter } from "./xdr.ts";

export const RPC_VERSION = 2;

export const MsgType = { CALL: 0, REPLY: 1 } as const;
export const ReplyStat = { MSG_ACCEPTED: 0, MSG_DENIED: 1 } as const;
export const AcceptStat = {
  SUCCESS: 0,
  PROG_UNAVAIL: 1,
  PROG_MISMATCH: 2,
  PROC_UNAVAIL: 3,
  GARBAGE_ARGS: 4,
  SYSTEM_ERR: 5,
} as const;
export type AcceptStatCode = (typeof AcceptStat)[keyof typeof AcceptStat];
export const RejectStat = { RPC_MISMATCH: 0, AUTH_ERROR: 1 } as const;
export const AuthStat = {
  AUTH_OK: 0,
  AUTH_BADCRED: 1,
  AUTH_REJECTEDCRED: 2,
  AUTH_BADVERF: 3,
  AUTH_REJECTEDVERF: 4,
  AUTH_TOOWEAK: 5,
  AUTH_INVALIDRESP: 6,
  AUTH_FAILED: 7,
} as const;
export type AuthStatCode = (typeof AuthStat)[keyof typeof AuthStat];
export const AuthFlavor = { AUTH_NONE: 0, AUTH_SYS: 1, AUTH_SHORT: 2, AUTH_DH: 3, RPCSEC_GSS: 6 } as const;

/** RFC 5531: opaque_auth bodies are at most 400 bytes. */
export const MAX_AUTH_BYTES = 400;
export const MAX_MACHINE_NAME = 255;
export const MAX_AUTH_SYS_GIDS = 16;
/** Identity given to AUTH_NONE callers, so that "no credentials" can never read as uid 0. */
export const NOBODY_ID = 65534;

export interface OpaqueAuth {
  flavor: number;
  body: Buffer;
}

export interface RpcCallHeader {
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  cred: OpaqueAuth;
  verf: OpaqueAuth;
}

export interface AuthSysParams {
  stamp: number;
  machineName: string;
  uid: number;
  gid: number;
  gids: number[];
}

/** The caller's identity as handlers see it. */
export interface RpcCredentials {
  flavor: number;
  uid: number;
  gid: number;
  /** Supplementary groups (AUTH_SYS, at most 16). */
  gids: readonly number[];
  /** AUTH_SYS machinename ("" for AUTH_NONE); informational only, never trust it. */
  machineName: string;
  /** Peer IP (IPv4-mapped IPv6 addresses are reported as plain IPv4). */
  remoteAddress: string;
  remotePort: number;
}

export type ParsedCall =
  /** A well-formed CALL header; the procedure arguments start at `argsOffset` in the record. */
  | { kind: "call"; header: RpcCallHeader; argsOffset: number }
  /** The header is valid enough to answer with a denial (RPC_MISMATCH). */
  | { kind: "deny"; xid: number; reply: Buffer; reason: string }
  /** Not an answerable CALL: the connection should be closed. */
  | { kind: "invalid"; reason: string };

function readOpaqueAuth(r: XdrReader, what: string): OpaqueAuth {
  const flavor = r.uint32(`${what} flavor`);
  const body = r.opaque(MAX_AUTH_BYTES, `${what} body`);
  return { flavor, body };
}

/** Parses the fixed part of a CALL message. Never throws. */
export function parseCall(record: Buffer): ParsedCall {
  const r = new XdrReader(record);
  let xid: number;
  try {
    xid = r.uint32("xid");
    const mtype = r.uint32("msg_type");
    if (mtype !== MsgType.CALL) return { kind: "invalid", reason: `xid ${xid}: msg_type ${mtype} is not CALL` };
    const rpcvers = r.uint32("rpcvers");
    if (rpcvers !== RPC_VERSION) {
      return {
        kind: "deny",
        xid,
        reply: buildRpcMismatchReply(xid),
        reason: `rpcvers ${rpcvers} unsupported`,
      };
    }
    const prog = r.uint32("prog");
    const vers = r.uint32("vers");
    const proc = r.uint32("proc");
    const cred = readOpaqueAuth(r, "cred");
    const verf = readOpaqueAuth(r, "verf");
    return { kind: "call", header: { xid, prog, vers, proc, cred, verf }, argsOffset: r.pos };
  } catch (e) {
    if (e instanceof XdrError) return { kind: "invalid", reason: `malformed RPC header: ${e.message}` };
    throw e;
  }
}

/** Decodes an AUTH_SYS credential body; throws XdrError when malformed. */
export function parseAuthSys(body: Buffer): AuthSysParams {
  const r = new XdrReader(body);
  const stamp = r.uint32("stamp");
  const machineName = r.string(MAX_MACHINE_NAME, "machinename");
  const uid = r.uint32("uid");
  const gid = r.uint32("gid");
  const gids = r.array(MAX_AUTH_SYS_GIDS, (x) => x.uint32("gid"), "gids");
  r.expectEnd("authsys_parms");
  return { stamp, machineName, uid, gid, gids };
}

export type AuthResult =
  | { ok: true; creds: RpcCredentials }
  | { ok: false; stat: AuthStatCode; reason: string };

/**
 * Turns the call's credential into handler credentials. AUTH_NONE maps to nobody; AUTH_SYS is
 * parsed strictly; AUTH_SHORT gets REJECTEDCRED (we never hand out short handles, and that code
 * makes clients fall back to full AUTH_SYS); every other flavor is BADCRED.
 */
export function authenticate(header: RpcCallHeader, remoteAddress: string, remotePort: number): AuthResult {
  const { cred } = header;
  switch (cred.flavor) {
    case AuthFlavor.AUTH_NONE:
      return {
        ok: true,
        creds: { flavor: AuthFlavor.AUTH_NONE, uid: NOBODY_ID, gid: NOBODY_ID, gids: [], machineName: "", remoteAddress, remotePort },
      };
    case AuthFlavor.AUTH_SYS: {
      let p: AuthSysParams;
      try {
        p = parseAuthSys(cred.body);
      } catch (e) {
        if (e instanceof XdrError) return { ok: false, stat: AuthStat.AUTH_BADCRED, reason: `bad AUTH_SYS credential: ${e.message}` };
        throw e;
      }
      return {
        ok: true,
        creds: { flavor: AuthFlavor.AUTH_SYS, uid: p.uid, gid: p.gid, gids: p.gids, machineName: p.machineName, remoteAddress, remotePort },
      };
    }
    case AuthFlavor.AUTH_SHORT:
      return { ok: false, stat: AuthStat.AUTH_REJECTEDCRED, reason: "AUTH_SHORT handles are not issued" };
    default:
      return { ok: false, stat: AuthStat.AUTH_BADCRED, reason: `unsupported auth flavor ${cred.flavor}` };
  }
}

function replyPrefix(w: XdrWriter, xid: number, stat: number): void {
  w.uint32(xid).uint32(MsgType.REPLY).uint32(stat);
}

/**
 * Header of an accepted reply: xid, REPLY, MSG_ACCEPTED, a null verifier, accept_stat. For
 * SUCCESS the procedure results follow; for PROG_MISMATCH use buildProgMismatchReply.
 */
export function buildAcceptedHeader(xid: number, stat: AcceptStatCode): Buffer {
  const w = new XdrWriter(24);
  replyPrefix(w, xid, ReplyStat.MSG_ACCEPTED);
  w.uint32(AuthFlavor.AUTH_NONE).uint32(0);
  w.uint32(stat);
  return w.toBuffer();
}

export function buildProgMismatchReply(xid: number, low: number, high: number): Buffer {
  const w = new XdrWriter(32);
  replyPrefix(w, xid, ReplyStat.MSG_ACCEPTED);
  w.uint32(AuthFlavor.AUTH_NONE).uint32(0);
  w.uint32(AcceptStat.PROG_MISMATCH).uint32(low).uint32(high);
  return w.toBuffer();
}

export function buildRpcMismatchReply(xid: number, low = RPC_VERSION, high = RPC_VERSION): Buffer {
  const w = new XdrWriter(24);
  replyPrefix(w, xid, ReplyStat.MSG_DENIED);
  w.uint32(RejectStat.RPC_MISMATCH).uint32(low).uint32(high);
  return w.toBuffer();
}

export function buildAuthErrorReply(xid: number, stat: AuthStatCode): Buffer {
  const w = new XdrWriter(20);
  replyPrefix(w, xid, ReplyStat.MSG_DENIED);
  w.uint32(RejectStat.AUTH_ERROR).uint32(stat);
  return w.toBuffer();
}
