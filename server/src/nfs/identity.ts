/**
 * The export's identity policy (exports(5) root_squash / all_squash / no_root_squash): which
 * uid and gids a caller's AUTH_SYS credential stands for once it reaches the file system.
 */
import type { Cred } from "../fs/index.ts";
import { AuthFlavor, type RpcCredentials } from "./rpc.ts";

export interface IdentityPolicy {
  /**
   * root: uid 0 becomes the anonymous uid and gid 0 — primary or supplementary — the anonymous
   * gid (what knfsd's root_squash does); all: everyone becomes the anonymous user with no
   * supplementary groups; none: credentials are taken as sent.
   */
  squash: "none" | "root" | "all";
  anonUid: number;
  anonGid: number;
}

/** exports(5)'s default: root_squash with nobody/nogroup. */
export const DEFAULT_IDENTITY_POLICY: Readonly<IdentityPolicy> = Object.freeze({ squash: "root", anonUid: 65534, anonGid: 65534 });

/** The file-system credential a caller acts as under `policy`. */
export function squashIdentity(c: Pick<RpcCredentials, "flavor" | "uid" | "gid" | "gids">, policy: IdentityPolicy): Cred {
  const { squash, anonUid, anonGid } = policy;
  if (c.flavor === AuthFlavor.AUTH_NONE || squash === "all") return { uid: anonUid, gid: anonGid, gids: [] };
  if (squash === "none") return { uid: c.uid, gid: c.gid, gids: c.gids };
  // Group 0 is as powerful as uid 0 on root-owned files (a 0660 root:root file): squashing only
  // the uid would leave a caller claiming gid 0 with root's group access.
  return {
    uid: c.uid === 0 ? anonUid : c.uid,
    gid: c.gid === 0 ? anonGid : c.gid,
    gids: c.gids.map((g) => (g === 0 ? anonGid : g)),
  };
}
