/**
 * How many CPUs this process may really use, for sizing the crypto worker threads
 * (ZEROFS_CRYPTO_THREADS). os.availableParallelism() counts the CPUs the process may be
 * scheduled on, but a pod with `resources.limits.cpu: 1` on a 16-core node is throttled to one
 * CPU's worth of time by its cgroup quota: threads beyond that only add copying and messages.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";

/**
 * The cgroup CPU quota in CPUs (e.g. 1.5), or undefined when there is none (or no cgroup file
 * is readable). cgroup v2: `<root>/cpu.max` = "<quota|max> <period>"; v1:
 * `<root>/cpu/cpu.cfs_quota_us` (-1 = none) and `cpu.cfs_period_us`.
 */
export function cgroupCpuQuota(root = "/sys/fs/cgroup"): number | undefined {
  const read = (file: string): string | undefined => {
    try {
      return readFileSync(join(root, file), "utf8").trim();
    } catch {
      return undefined;
    }
  };
  const v2 = read("cpu.max");
  if (v2 !== undefined) {
    const [quota, period] = v2.split(/\s+/);
    if (quota === "max") return undefined;
    const q = Number(quota);
    const p = Number(period ?? "100000");
    return q > 0 && p > 0 ? q / p : undefined;
  }
  const q = Number(read("cpu/cpu.cfs_quota_us"));
  const p = Number(read("cpu/cpu.cfs_period_us"));
  return Number.isFinite(q) && q > 0 && Number.isFinite(p) && p > 0 ? q / p : undefined;
}

/** CPUs usable: the schedulable ones, lowered by a cgroup quota (at least 1). */
export function usableCpus(root?: string): number {
  const quota = cgroupCpuQuota(root);
  const cpus = availableParallelism();
  return Math.max(1, quota === undefined ? cpus : Math.min(cpus, Math.floor(quota)));
}

/**
 * Default crypto worker threads: the CPUs left beside the event loop's, at most 4 (each moves
 * ~1 GB/s of frames); none with a single usable CPU, where a worker could only take turns with
 * the event loop.
 */
export function defaultCryptoThreads(cpus = usableCpus()): number {
  return Math.max(0, Math.min(4, cpus - 1));
}
