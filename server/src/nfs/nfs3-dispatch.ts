/**
 * NFS program 100003 version 3 for the RPC server: decode arguments (XdrError → GARBAGE_ARGS),
 * call the Nfs3Handler, encode the result. Non-idempotent procedures go through the duplicate
 * request cache.
 */
import { DuplicateRequestCache } from "./drc.ts";
import * as codec from "./nfs3-codec.ts";
import { NFS_PROGRAM, NFS_V3, Nfs3Proc, type Nfs3Credentials, type Nfs3Handler } from "./nfs3-types.ts";
import { AuthFlavor } from "./rpc.ts";
import { DEFAULT_REPLY_HINT, type RpcBody, type RpcCallContext, type RpcProcHandler, type RpcProgram } from "./rpc-server.ts";
import { XdrWriter, type XdrReader } from "./xdr.ts";

export interface Nfs3ProgramOptions {
  /** Duplicate request cache; default a new one, null disables it. */
  drc?: DuplicateRequestCache | null;
  /** Accepted credential flavors; default AUTH_SYS and AUTH_NONE (mapped to nobody). */
  authFlavors?: readonly number[];
}

interface ProcSpec<A, R> {
  decode: (r: XdrReader) => A;
  invoke: (c: Nfs3Credentials, a: A) => Promise<R>;
  encode: (w: XdrWriter, r: R, a: A) => void;
  /** Whether duplicates must be answered from the cache rather than re-executed. */
  nonIdempotent: boolean | ((a: A) => boolean);
  /**
   * Bytes to allocate for the reply up front, when it can be large and is encoded in place
   * (directory listings): one buffer instead of a chain of doubling ones, each its own
   * socket write. Replies grow past it if need be.
   */
  replyBytes?: (a: A) => number;
}

/** Initial reply buffer (most replies are a status and a fattr3 or two). */
const SMALL_REPLY_BYTES = 512;
/** Largest buffer allocated up front for a reply (the largest READDIR page the server makes). */
const MAX_REPLY_PREALLOC = 64 * 1024;

const P = Nfs3Proc;
const EMPTY: RpcBody = [];

/** Procedures that go through the duplicate request cache (SETATTR only when guarded). */
export const NON_IDEMPOTENT_PROCS: ReadonlySet<number> = new Set([
  P.SETATTR,
  P.CREATE,
  P.MKDIR,
  P.SYMLINK,
  P.MKNOD,
  P.REMOVE,
  P.RMDIR,
  P.RENAME,
  P.LINK,
]);

/** Largest data payload a reply carries (rtmax, and the READDIR(PLUS) clamp): 1 MiB. */
const MAX_REPLY_PAYLOAD = 1024 * 1024;
/** Room for status, attributes and the other fixed fields around a payload. */
const REPLY_FIXED_BYTES = 512;

/**
 * The reply bytes a call may need, reserved in the server's buffer budget while it runs: READ
 * and READDIR(PLUS) carry up to their requested count (clamped as the handler clamps it),
 * everything else is small.
 */
function replySizeHint(_vers: number, proc: number, args: XdrReader): number {
  let payload = 0;
  if (proc === P.READ) payload = codec.decodeReadArgs(args).count;
  else if (proc === P.READDIR) payload = codec.decodeReaddirArgs(args).count;
  else if (proc === P.READDIRPLUS) payload = codec.decodeReaddirplusArgs(args).maxcount;
  else return DEFAULT_REPLY_HINT;
  return Math.min(payload, MAX_REPLY_PAYLOAD) + REPLY_FIXED_BYTES;
}

export function nfs3Program(handler: Nfs3Handler, opts: Nfs3ProgramOptions = {}): RpcProgram {
  const drc = opts.drc === undefined ? new DuplicateRequestCache() : opts.drc;

  const proc = <A, R>(num: number, s: ProcSpec<A, R>): [number, RpcProcHandler] => [
    num,
    async (ctx: RpcCallContext, args: XdrReader): Promise<RpcBody> => {
      const argsBytes = args.buf.subarray(args.pos, args.end);
      const a = s.decode(args); // XdrError → GARBAGE_ARGS, before any caching
      const run = async (): Promise<RpcBody> => {
        const res = await s.invoke(ctx.creds, a);
        const w = new XdrWriter(s.replyBytes ? Math.max(SMALL_REPLY_BYTES, Math.min(s.replyBytes(a), MAX_REPLY_PREALLOC)) : SMALL_REPLY_BYTES);
        s.encode(w, res, a);
        return w.chunks();
      };
      const cacheable = typeof s.nonIdempotent === "function" ? s.nonIdempotent(a) : s.nonIdempotent;
      if (drc === null || !cacheable) return run();
      const caller = { remoteAddress: ctx.creds.remoteAddress, remotePort: ctx.creds.remotePort, credFlavor: ctx.rawCred.flavor, credBody: ctx.rawCred.body };
      return drc.execute(DuplicateRequestCache.key(caller, ctx.xid, num, argsBytes), run);
    },
  ];
  const h = handler;
  const procs = new Map<number, RpcProcHandler>([
    [P.NULL, () => EMPTY],
    proc(P.GETATTR, { decode: codec.decodeGetattrArgs, invoke: (c, a) => h.getattr(c, a), encode: codec.encodeGetattrResult, nonIdempotent: false }),
    // A guarded SETATTR is a compare-and-set: replaying it after success would report NOT_SYNC.
    proc(P.SETATTR, { decode: codec.decodeSetattrArgs, invoke: (c, a) => h.setattr(c, a), encode: codec.encodeSetattrResult, nonIdempotent: (a) => a.guard !== undefined }),
    proc(P.LOOKUP, { decode: codec.decodeLookupArgs, invoke: (c, a) => h.lookup(c, a), encode: codec.encodeLookupResult, nonIdempotent: false }),
    proc(P.ACCESS, { decode: codec.decodeAccessArgs, invoke: (c, a) => h.access(c, a), encode: codec.encodeAccessResult, nonIdempotent: false }),
    proc(P.READLINK, { decode: codec.decodeReadlinkArgs, invoke: (c, a) => h.readlink(c, a), encode: codec.encodeReadlinkResult, nonIdempotent: false }),
    proc(P.READ, { decode: codec.decodeReadArgs, invoke: (c, a) => h.read(c, a), encode: codec.encodeReadResult, nonIdempotent: false }),
    proc(P.WRITE, { decode: codec.decodeWriteArgs, invoke: (c, a) => h.write(c, a), encode: codec.encodeWriteResult, nonIdempotent: false }),
    proc(P.CREATE, { decode: codec.decodeCreateArgs, invoke: (c, a) => h.create(c, a), encode: codec.encodeCreateResult, nonIdempotent: true }),
    proc(P.MKDIR, { decode: codec.decodeMkdirArgs, invoke: (c, a) => h.mkdir(c, a), encode: codec.encodeCreateResult, nonIdempotent: true }),
    proc(P.SYMLINK, { decode: codec.decodeSymlinkArgs, invoke: (c, a) => h.symlink(c, a), encode: codec.encodeCreateResult, nonIdempotent: true }),
    proc(P.MKNOD, { decode: codec.decodeMknodArgs, invoke: (c, a) => h.mknod(c, a), encode: codec.encodeCreateResult, nonIdempotent: true }),
    proc(P.REMOVE, { decode: codec.decodeRemoveArgs, invoke: (c, a) => h.remove(c, a), encode: codec.encodeRemoveResult, nonIdempotent: true }),
    proc(P.RMDIR, { decode: codec.decodeRmdirArgs, invoke: (c, a) => h.rmdir(c, a), encode: codec.encodeRemoveResult, nonIdempotent: true }),
    proc(P.RENAME, { decode: codec.decodeRenameArgs, invoke: (c, a) => h.rename(c, a), encode: codec.encodeRenameResult, nonIdempotent: true }),
    proc(P.LINK, { decode: codec.decodeLinkArgs, invoke: (c, a) => h.link(c, a), encode: codec.encodeLinkResult, nonIdempotent: true }),
    proc(P.READDIR, { decode: codec.decodeReaddirArgs, invoke: (c, a) => h.readdir(c, a), encode: codec.encodeReaddirResult, nonIdempotent: false, replyBytes: (a) => a.count }),
    proc(P.READDIRPLUS, { decode: codec.decodeReaddirplusArgs, invoke: (c, a) => h.readdirplus(c, a), encode: codec.encodeReaddirplusResult, nonIdempotent: false, replyBytes: (a) => a.maxcount }),
    proc(P.FSSTAT, { decode: codec.decodeFsstatArgs, invoke: (c, a) => h.fsstat(c, a), encode: codec.encodeFsstatResult, nonIdempotent: false }),
    proc(P.FSINFO, { decode: codec.decodeFsinfoArgs, invoke: (c, a) => h.fsinfo(c, a), encode: codec.encodeFsinfoResult, nonIdempotent: false }),
    proc(P.PATHCONF, { decode: codec.decodePathconfArgs, invoke: (c, a) => h.pathconf(c, a), encode: codec.encodePathconfResult, nonIdempotent: false }),
    proc(P.COMMIT, { decode: codec.decodeCommitArgs, invoke: (c, a) => h.commit(c, a), encode: codec.encodeCommitResult, nonIdempotent: false }),
  ]);

  return {
    prog: NFS_PROGRAM,
    name: "nfs",
    versions: { [NFS_V3]: { procs } },
    authFlavors: opts.authFlavors ?? [AuthFlavor.AUTH_SYS, AuthFlavor.AUTH_NONE],
    replySizeHint,
    reservedPort: true,
  };
}
