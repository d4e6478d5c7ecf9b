/**
 * MOUNT version 3 (RFC 1813 appendix I, program 100005). One export; the handlers only map
 * between the wire and a tiny interface, the file system supplies the root handle.
 *
 * Mount paths below the export are directory names, which are secret at rest (encrypted in the
 * volume): they are logged at debug level only, and DUMP shows a client only its own mounts.
 */
import type { Logger } from "pino";
import { AuthFlavor } from "./rpc.ts";
import type { RpcBody, RpcCallContext, RpcProcHandler, RpcProgram } from "./rpc-server.ts";
import { XdrWriter, type XdrReader } from "./xdr.ts";

export const MOUNT_PROGRAM = 100005;
export const MOUNT_VERSION = 3;
export const MountProc = { NULL: 0, MNT: 1, DUMP: 2, UMNT: 3, UMNTALL: 4, EXPORT: 5 } as const;
export const MountStat = {
  MNT3_OK: 0,
  MNT3ERR_PERM: 1,
  MNT3ERR_NOENT: 2,
  MNT3ERR_IO: 5,
  MNT3ERR_ACCES: 13,
  MNT3ERR_NOTDIR: 20,
  MNT3ERR_INVAL: 22,
  MNT3ERR_NAMETOOLONG: 63,
  MNT3ERR_NOTSUPP: 10004,
  MNT3ERR_SERVERFAULT: 10006,
} as const;

export const MNTPATHLEN = 1024;
export const MNTNAMLEN = 255;
export const FHSIZE3 = 64;
/** Paths up to this length decode (longer ones are GARBAGE_ARGS); 1025..4096 get NAMETOOLONG. */
const MNT_PATH_DECODE_MAX = 4096;

/** What the MOUNT handlers need from the file system. */
export interface MountExport {
  exportPath: string;
  rootHandle(): Buffer | Promise<Buffer>;
  /**
   * Handle of a directory below the export (`mount host:/export/a/b`), or undefined when the
   * path does not name a directory. Without it only the export itself can be mounted.
   */
  subdirHandle?(components: readonly string[]): Promise<Buffer | undefined>;
}

export interface MountOptions {
  /** Shown by EXPORT as the export's groups: the allowed client networks (CIDRs). */
  groups?: readonly string[];
  /** Bound on remembered (client, path) pairs reported by DUMP. */
  maxMountEntries?: number;
  logger?: Logger;
}

/** "/a//b/" → "/a/b"; "" → "/". Mount paths compare after this. */
export function normalizeMountPath(p: string): string {
  const parts = p.split("/").filter((s) => s.length > 0);
  return "/" + parts.join("/");
}

const EMPTY: RpcBody = [];

/** name<MNTNAMLEN>: truncated by bytes, not characters. */
function mountName(s: string): Buffer {
  return Buffer.from(s, "utf8").subarray(0, MNTNAMLEN);
}

export function mountProgram(exp: MountExport, opts: MountOptions = {}): RpcProgram {
  const exportPath = normalizeMountPath(exp.exportPath);
  const groups = opts.groups ?? [];
  const maxEntries = opts.maxMountEntries ?? 1024;
  /** key "host\0path" → entry; insertion order gives oldest-first eviction. */
  const mounts = new Map<string, { host: string; path: string }>();

  /** The mount path as a log field, only when debug logging is on (names are secret at rest). */
  const secretPath = (path: string): { path?: string } => (opts.logger?.isLevelEnabled("debug") === true ? { path } : {});

  const readPath = (args: XdrReader): Buffer => args.opaque(MNT_PATH_DECODE_MAX, "dirpath");

  const mnt = async (ctx: RpcCallContext, args: XdrReader): Promise<RpcBody> => {
    const raw = readPath(args);
    const w = new XdrWriter(128);
    if (raw.length > MNTPATHLEN) return w.uint32(MountStat.MNT3ERR_NAMETOOLONG).chunks();
    const path = normalizeMountPath(raw.toString("utf8"));
    const below = exportPath === "/" ? path.slice(1) : path.startsWith(`${exportPath}/`) ? path.slice(exportPath.length + 1) : undefined;
    if (path !== exportPath && (below === undefined || !exp.subdirHandle)) {
      opts.logger?.info({ peer: ctx.creds.remoteAddress, ...secretPath(path) }, "MOUNT: unknown export path");
      return w.uint32(MountStat.MNT3ERR_NOENT).chunks();
    }
    let fh: Buffer;
    try {
      if (path === exportPath) fh = await exp.rootHandle();
      else {
        const sub = await exp.subdirHandle!(below!.split("/"));
        if (!sub) {
          opts.logger?.info({ peer: ctx.creds.remoteAddress, ...secretPath(path) }, "MOUNT: no such directory below the export");
          return w.uint32(MountStat.MNT3ERR_NOENT).chunks();
        }
        fh = sub;
      }
    } catch (err) {
      opts.logger?.error({ err, peer: ctx.creds.remoteAddress, xid: ctx.xid }, "MOUNT: root handle unavailable");
      return w.uint32(MountStat.MNT3ERR_SERVERFAULT).chunks();
    }
    const key = `${ctx.creds.remoteAddress}\0${path}`;
    // One log line per client mount, not per MNT call: clients repeat MNT for the same path
    // (the kernel at every mount(8) retry, automounters, several mounts of one export).
    const known = mounts.delete(key);
    mounts.set(key, { host: ctx.creds.remoteAddress, path });
    while (mounts.size > maxEntries) {
      const oldest = mounts.keys().next();
      if (oldest.done === true) break;
      mounts.delete(oldest.value);
    }
    const fields = { peer: ctx.creds.remoteAddress, subdirectory: path !== exportPath, ...secretPath(path) };
    if (known) opts.logger?.debug(fields, "MOUNT: mounted again (already in the mount list)");
    else opts.logger?.info({ mounts: mounts.size, ...fields }, "MOUNT: mounted");
    // fhandle3 then auth_flavors<>: AUTH_SYS first, since clients take the first they support.
    w.uint32(MountStat.MNT3_OK).opaque(fh, FHSIZE3);
    return w.array([AuthFlavor.AUTH_SYS, AuthFlavor.AUTH_NONE], (x, f) => x.uint32(f)).chunks();
  };

  const dump = (ctx: RpcCallContext): RpcBody => {
    // mountlist: (TRUE, hostname, directory)* FALSE. Only the caller's own entries: other
    // clients' subdirectory paths would reveal names that are encrypted at rest.
    const w = new XdrWriter(256);
    for (const m of mounts.values()) if (m.host === ctx.creds.remoteAddress) w.bool(true).string(mountName(m.host)).string(m.path);
    return w.bool(false).chunks();
  };

  const unmounted = (host: string, path: string): void => {
    opts.logger?.info({ mounts: mounts.size, peer: host, subdirectory: path !== exportPath, ...secretPath(path) }, "MOUNT: unmounted");
  };

  const umnt = (ctx: RpcCallContext, args: XdrReader): RpcBody => {
    const raw = readPath(args);
    const path = normalizeMountPath(raw.toString("utf8"));
    // Only a mount we knew of is logged: a repeated UMNT (or one for a never-mounted path) is not news.
    if (mounts.delete(`${ctx.creds.remoteAddress}\0${path}`)) unmounted(ctx.creds.remoteAddress, path);
    return EMPTY;
  };

  const umntall = (ctx: RpcCallContext): RpcBody => {
    for (const [k, m] of mounts) {
      if (m.host !== ctx.creds.remoteAddress) continue;
      mounts.delete(k);
      unmounted(m.host, m.path);
    }
    return EMPTY;
  };

  const exportList = (): RpcBody => {
    // exports: (TRUE, dirpath, groups, ...)* FALSE, with groups: (TRUE, name)* FALSE
    const w = new XdrWriter(128);
    w.bool(true).string(exportPath);
    for (const g of groups) w.bool(true).string(mountName(g));
    w.bool(false);
    return w.bool(false).chunks();
  };

  const procs = new Map<number, RpcProcHandler>([
    [MountProc.NULL, () => EMPTY],
    [MountProc.MNT, mnt],
    [MountProc.DUMP, dump],
    [MountProc.UMNT, umnt],
    [MountProc.UMNTALL, umntall],
    [MountProc.EXPORT, exportList],
  ]);
  return { prog: MOUNT_PROGRAM, name: "mount", versions: { [MOUNT_VERSION]: { procs } }, reservedPort: true };
}
