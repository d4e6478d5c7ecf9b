/**
 * Options of a ZeroFs (fs/zerofs.ts) and the defaults the engine resolves them to.
 */
import type { Logger } from "pino";
import type { TimeSource } from "./clock.ts";
import type { ChunkDeletionProgress } from "./reclaimer.ts";
import type { SegmentGcOptions } from "./segment-gc.ts";

export interface ZeroFsOptions {
  /** Refuse (ENOSPC) to grow the apparent size of all files past this many bytes. */
  capacityBytes?: number;
  /** Every change fails with EROFS. */
  readOnly?: boolean;
  logger?: Logger;
  /** Decoded inodes kept in memory. */
  inodeCacheEntries?: number;
  /** Files with more chunks than this are deleted by the background reclaimer. */
  inlineDeleteChunks?: number;
  /** Chunk keys per background deletion batch. */
  reclaimBatchKeys?: number;
  /** Run the background reclaimer (tests turn it off to look at tombstones). */
  reclaimer?: boolean;
  /**
   * Layout of the data of new regular files: 2 (segments, the default) or 1 (64 KiB chunks in
   * the LSM). Only tests set 1, to keep exercising the code that v1 volumes' files still use.
   */
  dataLayout?: 1 | 2;
  /** Sequential read-ahead into the extent cache (fs/read-ahead.ts; default true). */
  readAhead?: boolean;
  /** Run the segment GC (default true; tests turn it off or drive passes themselves). */
  segmentGc?: boolean;
  /** Segment GC settings (fs/segment-gc.ts). */
  segmentGcOptions?: Partial<SegmentGcOptions>;
  /** Test hook after each background deletion batch. */
  afterReclaimBatch?: (p: ChunkDeletionProgress) => void | Promise<void>;
  /** Wait for durability before metadata operations return (default true). */
  syncMetadata?: boolean;
  /** Inode ids reserved per high-water write. */
  inoRangeSize?: number;
  /** Wall clock in ms (tests). */
  clock?: TimeSource;
  /** Owner and mode of the root directory of a new volume. */
  rootAttrs?: { uid?: number; gid?: number; mode?: number };
}

export interface ResolvedOptions {
  capacityBytes: number | undefined;
  readOnly: boolean;
  inlineDeleteChunks: number;
  reclaimBatchKeys: number;
  syncMetadata: boolean;
  dataLayout: 1 | 2;
}

/** The settings the engine's operations read, with their defaults applied. */
export function resolveOptions(options: ZeroFsOptions): ResolvedOptions {
  return {
    capacityBytes: options.capacityBytes,
    readOnly: options.readOnly ?? false,
    inlineDeleteChunks: options.inlineDeleteChunks ?? 16,
    reclaimBatchKeys: options.reclaimBatchKeys ?? 256,
    syncMetadata: options.syncMetadata ?? true,
    dataLayout: options.dataLayout ?? 2,
  };
}
