/**
 * The in-memory cache budget (ZEROFS_MEMORY_CACHE_MB): one number for the engine's two
 * plaintext caches, SST blocks (metadata: inodes, directory entries, piece lists, indexes) and
 * extents (file data, layout v2). Without a setting it follows the container's memory limit,
 * so that a pod given more memory caches more and a small pod is not OOM-killed by a cache
 * sized for a big machine.
 */
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";

const MiB = 1024 * 1024;

/** Share of the container's memory limit the caches get by default. */
export const MEMORY_CACHE_LIMIT_SHARE = 0.25;
/**
 * Without a container limit: the same share of the machine's memory, but at most this. The
 * machine is then the server's own, as its page cache is a kernel server's (25% is also what
 * databases take by default); the cap keeps a big shared host from losing a large slice to it.
 */
export const MEMORY_CACHE_FALLBACK_BYTES = 4096 * MiB;
/** The smallest budget, however small the limit: below it every lookup would miss. */
export const MEMORY_CACHE_MIN_BYTES = 16 * MiB;
/**
 * Share of the budget for SST blocks; file data (extents) gets the rest. Metadata is a small
 * fraction of the data it describes (a 32 KiB block's piece list is ~40 bytes), so the larger
 * part goes to file data; a quarter still holds the metadata of millions of files.
 */
export const BLOCK_CACHE_SHARE = 0.25;

/** cgroup v1 reports "no limit" as a huge page-rounded number; anything this large is none. */
const UNLIMITED_THRESHOLD = 2 ** 60;

/**
 * The memory limit of the cgroup this process runs in, in bytes, or undefined when there is
 * none (or no cgroup file is readable). cgroup v2: `<root>/memory.max` ("max" = none); v1:
 * `<root>/memory/memory.limit_in_bytes`. Containers see their own cgroup at the root.
 */
export function containerMemoryLimit(root = "/sys/fs/cgroup"): number | undefined {
  for (const file of [join(root, "memory.max"), join(root, "memory", "memory.limit_in_bytes")]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8").trim();
    } catch {
      continue;
    }
    if (text === "max") return undefined;
    if (!/^\d+$/.test(text)) continue;
    const n = Number(text);
    return n > 0 && n < UNLIMITED_THRESHOLD ? n : undefined;
  }
  return undefined;
}

export interface MemoryCacheBudget {
  totalBytes: number;
  blockCacheBytes: number;
  extentCacheBytes: number;
  /** Where the total came from, for the start-up log. */
  source: "setting" | "container limit" | "default";
  containerLimitBytes: number | undefined;
  /** Set when the configured budget leaves the process little of its container's memory. */
  warning?: string;
}

/**
 * The budget: the setting when given, else 25% of the container limit, else 25% of the machine's
 * memory up to 4 GiB; then split between the block and extent caches.
 */
export function memoryCacheBudget(settingBytes: number | undefined, containerLimitBytes: number | undefined, machineBytes = totalmem()): MemoryCacheBudget {
  let totalBytes: number;
  let source: MemoryCacheBudget["source"];
  let warning: string | undefined;
  if (settingBytes !== undefined) {
    totalBytes = settingBytes;
    source = "setting";
    if (containerLimitBytes !== undefined && settingBytes > containerLimitBytes / 2) {
      warning =
        `ZEROFS_MEMORY_CACHE_MB (${Math.round(settingBytes / MiB)} MiB) is more than half of the container's memory limit ` +
        `(${Math.round(containerLimitBytes / MiB)} MiB): memtables, segment uploads and NFS buffers need room too, the process may be OOM-killed`;
    }
  } else if (containerLimitBytes !== undefined) {
    totalBytes = Math.max(MEMORY_CACHE_MIN_BYTES, Math.floor(containerLimitBytes * MEMORY_CACHE_LIMIT_SHARE));
    source = "container limit";
  } else {
    totalBytes = Math.max(MEMORY_CACHE_MIN_BYTES, Math.min(MEMORY_CACHE_FALLBACK_BYTES, Math.floor(machineBytes * MEMORY_CACHE_LIMIT_SHARE)));
    source = "default";
  }
  const blockCacheBytes = Math.max(1, Math.floor(totalBytes * BLOCK_CACHE_SHARE));
  return {
    totalBytes,
    blockCacheBytes,
    extentCacheBytes: Math.max(1, totalBytes - blockCacheBytes),
    source,
    containerLimitBytes,
    ...(warning !== undefined ? { warning } : {}),
  };
}
