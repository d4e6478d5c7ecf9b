/**
 * A promise-based NFSv3 client for tests and benchmarks (our own wire code on the client side:
 * the independent client is libnfs, used by the protocol tests).
 */
import { Nfs3Status, Nfs3Proc } from "../../../server/src/nfs/nfs3-types.ts";
import { XdrReader, XdrWriter } from "../../../server/src/nfs/xdr.ts";
import { decodeResult, encodeArgs, type ArgsByProc, type ProcNum, type ResultsByProc } from "./nfs3-client-codec.ts";
import { authSys, RpcClient, type OpaqueAuthIn } from "./rpc-client.ts";

const NFS = 100003;
const MOUNT = 100005;

type OkOf<R> = Extract<R, { status: 0 }>;

export class NfsStatusError extends Error {
  readonly status: number;
  constructor(proc: string, status: number) {
    const name = Object.entries(Nfs3Status).find(([, v]) => v === status)?.[0] ?? String(status);
    super(`${proc} failed with ${name}`);
    this.name = "NfsStatusError";
    this.status = status;
  }
}

const PROC_NAMES = Object.fromEntries(Object.entries(Nfs3Proc).map(([k, v]) => [v, k])) as Record<number, string>;

export class Nfs3Client {
  readonly rpc: RpcClient;
  cred: OpaqueAuthIn;

  private constructor(rpc: RpcClient, cred: OpaqueAuthIn) {
    this.rpc = rpc;
    this.cred = cred;
  }

  static async connect(port: number, identity: { uid: number; gid: number; gids?: number[] } = { uid: 0, gid: 0 }, host = "127.0.0.1"): Promise<Nfs3Client> {
    return new Nfs3Client(await RpcClient.connect(port, host), authSys(identity));
  }

  /** A client on an existing RPC connection (e.g. one from a reserved source port). */
  static over(rpc: RpcClient, identity: { uid: number; gid: number; gids?: number[] } = { uid: 0, gid: 0 }): Nfs3Client {
    return new Nfs3Client(rpc, authSys(identity));
  }

  /** MOUNT MNT: the root file handle of `path`. */
  async mount(path = "/"): Promise<Buffer> {
    const w = new XdrWriter();
    w.string(path);
    const reply = await this.rpc.call(MOUNT, 3, 1, w.toBuffer(), { cred: this.cred });
    if (reply.kind !== "accepted" || reply.stat !== 0) throw new Error(`MNT ${path}: RPC not accepted`);
    const r: XdrReader = reply.body;
    const status = r.uint32();
    if (status !== 0) throw new Error(`MNT ${path}: mountstat3 ${status}`);
    return Buffer.from(r.opaque(64));
  }

  /** Any procedure; the result as decoded (check `status` yourself). */
  async call<K extends ProcNum>(proc: K, args: ArgsByProc[K]): Promise<ResultsByProc[K]> {
    const reply = await this.rpc.call(NFS, 3, proc, encodeArgs(proc, args), { cred: this.cred });
    if (reply.kind !== "accepted" || reply.stat !== 0) {
      throw new Error(`${PROC_NAMES[proc]}: RPC ${reply.kind === "accepted" ? `accept_stat ${reply.stat}` : `denied ${reply.rejectStat}`}`);
    }
    return decodeResult(proc, reply.body);
  }

  /** A procedure that must succeed: throws NfsStatusError otherwise. */
  async ok<K extends ProcNum>(proc: K, args: ArgsByProc[K]): Promise<OkOf<ResultsByProc[K]>> {
    // Widened on purpose: narrowing the union of all 21 result types is too complex for tsc.
    const r: { status: number } = await this.call(proc, args);
    if (r.status !== Nfs3Status.NFS3_OK) throw new NfsStatusError(PROC_NAMES[proc] ?? String(proc), r.status);
    return r as OkOf<ResultsByProc[K]>;
  }

  close(): void {
    this.rpc.socket.destroy();
  }
}

/** sattr3 that changes nothing except what is given. */
export function sattr(s: { mode?: number; uid?: number; gid?: number; size?: bigint } = {}): ArgsByProc[typeof Nfs3Proc.SETATTR]["newAttributes"] {
  return { ...s, atime: { how: 0 }, mtime: { how: 0 } };
}
