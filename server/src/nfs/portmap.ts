/**
 * PORTMAP version 2 (RFC 1833, program 100000), as a stub: everything ZeroFS serves lives on the
 * one RPC port, so GETPORT answers that port for the programs registered here over TCP and 0
 * for anything else. SET/UNSET always refuse (nobody else may register with us); CALLIT is not
 * offered (PROC_UNAVAIL): it is an amplification vector and no NFS client needs it.
 */
import type { RpcBody, RpcProcHandler, RpcProgram } from "./rpc-server.ts";
import { XdrWriter, type XdrReader } from "./xdr.ts";

export const PMAP_PROGRAM = 100000;
export const PMAP_VERSION = 2;
export const PmapProc = { NULL: 0, SET: 1, UNSET: 2, GETPORT: 3, DUMP: 4, CALLIT: 5 } as const;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export interface PortMapping {
  prog: number;
  vers: number;
  prot: number;
  port: number;
}

export interface PortmapOptions {
  /** The server's own port (known once it listens). */
  port: () => number;
  /** Programs answered with that port over TCP. Default: NFS v3, MOUNT v3 and portmap v2. */
  programs?: readonly { prog: number; vers: number }[];
}

export const DEFAULT_PORTMAP_PROGRAMS: readonly { prog: number; vers: number }[] = [
  { prog: PMAP_PROGRAM, vers: PMAP_VERSION },
  { prog: 100005, vers: 3 },
  { prog: 100003, vers: 3 },
];

function readMapping(r: XdrReader): PortMapping {
  return { prog: r.uint32("prog"), vers: r.uint32("vers"), prot: r.uint32("prot"), port: r.uint32("port") };
}

const EMPTY: RpcBody = [];

export function portmapProgram(opts: PortmapOptions): RpcProgram {
  const programs = opts.programs ?? DEFAULT_PORTMAP_PROGRAMS;
  const mappings = (): PortMapping[] => programs.map((p) => ({ prog: p.prog, vers: p.vers, prot: IPPROTO_TCP, port: opts.port() }));
  const boolReply = (v: boolean): RpcBody => new XdrWriter(4).bool(v).chunks();

  const procs = new Map<number, RpcProcHandler>([
    [PmapProc.NULL, () => EMPTY],
    [
      PmapProc.SET,
      (_ctx, args) => {
        readMapping(args);
        return boolReply(false);
      },
    ],
    [
      PmapProc.UNSET,
      (_ctx, args) => {
        readMapping(args);
        return boolReply(false);
      },
    ],
    [
      PmapProc.GETPORT,
      (_ctx, args) => {
        const q = readMapping(args);
        const hit = q.prot === IPPROTO_TCP && programs.some((p) => p.prog === q.prog && p.vers === q.vers);
        return new XdrWriter(4).uint32(hit ? opts.port() : 0).chunks();
      },
    ],
    [
      PmapProc.DUMP,
      () => {
        // pmaplist is an XDR linked list: (TRUE, mapping)* FALSE.
        const w = new XdrWriter(256);
        for (const m of mappings()) w.bool(true).uint32(m.prog).uint32(m.vers).uint32(m.prot).uint32(m.port);
        return w.bool(false).chunks();
      },
    ],
  ]);
  return { prog: PMAP_PROGRAM, name: "portmap", versions: { [PMAP_VERSION]: { procs } } };
}
