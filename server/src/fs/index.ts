/**
 * Public surface of the filesystem layer: what the NFS glue and the server entry point use.
 * Everything else under fs/ is internal.
 */
export { ZeroFs, attrsOf, readdirEntryBytes, wccAttr, LINK_MAX, RTMAX, WTMAX, type ZeroFsOptions } from "./zerofs.ts";
export { FsError, NfsStatus, isFsError, type FsErrorCode } from "./errors.ts";
export { decodeHandle, encodeHandle, HANDLE_BYTES, type DecodedHandle } from "./handles.ts";
export { Access3 } from "./permissions.ts";
export { CHUNK_SIZE, LAYOUT_VERSION } from "./keys.ts";
export { MAX_FILE_SIZE } from "./file-data.ts";
export { NAME_MAX } from "./directory.ts";
export { ClaimDirectories, isClaimName, type ClaimInfo, type ClaimSpec } from "./claims.ts";
export type { QuotaLimits, Usage } from "./quota.ts";
export * from "./types.ts";
