/**
 * The load client of `npm run bench:wire`: bench/wire/nfsload.c, a small C program on Debian's
 * libnfs (raw async API), built once per machine into ~/.cache/zerofs-tools keyed by a hash of
 * its source, and the Debian packages the benchmark needs.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const REPO_ROOT = resolve(import.meta.dirname, "../..");
const SOURCE = join(import.meta.dirname, "nfsload.c");
const exec = promisify(execFile);

/** Commands or files, and the Debian package that brings each (installed only when missing). */
const DEBIAN_PACKAGES: [string, string][] = [
  ["gcc", "gcc"],
  ["/usr/include/nfsc/libnfs-raw.h", "libnfs-dev"],
  ["rpcbind", "rpcbind"],
  ["ganesha.nfsd", "nfs-ganesha"],
  ["/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so", "nfs-ganesha-vfs"],
  ["unshare", "util-linux"],
  ["ip", "iproute2"],
];

export async function ensureDebianPackages(): Promise<void> {
  const args = DEBIAN_PACKAGES.flat();
  await exec("bash", [join(REPO_ROOT, "scripts/tools/ensure-apt.sh"), ...args], { timeout: 15 * 60_000 }).catch((err: Error & { stderr?: string }) => {
    throw new Error(`installing the benchmark's Debian packages failed: ${err.message}\n${err.stderr ?? ""}`, { cause: err });
  });
}

/** Path of the nfsload binary, compiling it if this source has not been built on this machine. */
export async function buildClient(): Promise<string> {
  const src = await readFile(SOURCE);
  const hash = createHash("sha256").update(src).digest("hex").slice(0, 16);
  const cache = process.env.ZEROFS_TOOL_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "zerofs-tools");
  const dir = join(cache, `nfsload-${hash}`);
  const bin = join(dir, "nfsload");
  if (existsSync(bin)) return bin;
  await mkdir(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  try {
    await exec("gcc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", tmp, SOURCE, "-lnfs"]);
    await rename(tmp, bin);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new Error(`compiling ${SOURCE} failed (needs gcc and Debian's libnfs-dev): ${(err as Error & { stderr?: string }).stderr ?? (err as Error).message}`, { cause: err });
  }
  return bin;
}

/** What nfsload prints for one workload. */
export interface LoadResult {
  workload: string;
  ops: number;
  bytes: number;
  seconds: number;
  inflight: number;
  calls: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Time of the final COMMIT (write workloads), else -1. */
  commitMs: number;
  clientCpuS: number;
}

export interface Target {
  nfsPort: number;
  mountPort: number;
  exportPath: string;
}

export async function runLoad(bin: string, t: Target, workload: string, params: Record<string, string | number>): Promise<LoadResult> {
  const args = ["127.0.0.1", String(t.nfsPort), String(t.mountPort), t.exportPath, workload, ...Object.entries(params).map(([k, v]) => `${k}=${v}`)];
  try {
    const { stdout } = await exec(bin, args, { timeout: 30 * 60_000, maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as LoadResult;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`nfsload ${workload} against port ${t.nfsPort} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** Writes back and drops the page cache of every file below dir (posix_fadvise DONTNEED). */
export async function evict(bin: string, dir: string): Promise<void> {
  await exec(bin, ["evict", dir], { timeout: 10 * 60_000 });
}
