/**
 * Convenience assembly: one RPC server on one port serving portmap v2, MOUNT v3 and NFS v3.
 * Clients can then mount with `-o port=P,mountport=P` (and skip the system portmapper), or ask
 * our portmap stub on P.
 */
import type { DuplicateRequestCache } from "./drc.ts";
import { mountProgram, type MountExport, type MountOptions } from "./mount.ts";
import { nfs3Program } from "./nfs3-dispatch.ts";
import type { Nfs3Handler } from "./nfs3-types.ts";
import { portmapProgram } from "./portmap.ts";
import { RpcServer, type RpcServerOptions } from "./rpc-server.ts";

export interface NfsServerOptions extends RpcServerOptions {
  handler: Nfs3Handler;
  mount: MountExport;
  mountOptions?: MountOptions;
  /** Duplicate request cache; default a new one, null disables it. */
  drc?: DuplicateRequestCache | null;
  /** Accepted NFS credential flavors (default AUTH_SYS and AUTH_NONE). */
  nfsAuthFlavors?: readonly number[];
}

export function createNfsServer(opts: NfsServerOptions): RpcServer {
  const server = new RpcServer(opts);
  server.register(portmapProgram({ port: () => server.port }));
  server.register(mountProgram(opts.mount, { logger: opts.logger, ...opts.mountOptions }));
  server.register(
    nfs3Program(opts.handler, {
      ...(opts.drc !== undefined ? { drc: opts.drc } : {}),
      ...(opts.nfsAuthFlavors !== undefined ? { authFlavors: opts.nfsAuthFlavors } : {}),
    }),
  );
  return server;
}
