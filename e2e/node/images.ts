/**
 * The project's container images for the node suite: built by scripts/images.sh (`make images`)
 * with podman on the local Node base image, exported as docker archives for `ctr images import`.
 * Built at most once per test process; podman's layer cache makes a rebuild of an unchanged tree
 * cheap.
 */
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
export const REPO_ROOT = resolve(import.meta.dirname, "../..");

export interface BuiltImage {
  /** Fully qualified reference, e.g. docker.io/zerofs/zerofs:0.1.0. */
  name: string;
  /** docker-archive tarball of the image. */
  archive: string;
}
export interface Images {
  server: BuiltImage;
  operator: BuiltImage;
}

let built: Promise<Images> | undefined;
/** Builds both images (scripts/images.sh); IMAGE_TAG / IMAGES_DIR are passed through. */
export function buildImages(): Promise<Images> {
  built ??= run("bash", [join(REPO_ROOT, "scripts/images.sh")], { cwd: REPO_ROOT, timeout: 30 * 60_000, maxBuffer: 16 << 20 }).then(
    ({ stdout }) => {
      const byName = new Map(stdout.trim().split("\n").map((l) => l.split(" ") as [string, string]));
      const find = (re: RegExp): BuiltImage => {
        const hit = [...byName].find(([n]) => re.test(n));
        if (!hit) throw new Error(`scripts/images.sh did not report an image matching ${re}; it printed:\n${stdout}`);
        return { name: hit[0], archive: hit[1] };
      };
      return { server: find(/\/zerofs:/), operator: find(/\/zerofs-operator:/) };
    },
    (err: unknown) => {
      built = undefined;
      const e = err as Error & { stderr?: string };
      throw new Error(`scripts/images.sh failed: ${e.message}\n${e.stderr ?? ""}`, { cause: err });
    },
  );
  return built;
}

/**
 * Flags that let rootful podman 4.3 run a container on this machine kind (verified, see
 * e2e/node/README.md): crun 1.8 refuses the host's hybrid cgroup layout ("cgroups in hybrid mode
 * not supported"), so Debian's runc runs it; the process lacks CAP_SYS_RESOURCE, so podman's
 * default rlimits (nofile/nproc above the hard limits) fail with EPERM and are set lower; no
 * network (the tests need none).
 */
export const PODMAN_RUN_FLAGS = ["--runtime", "runc", "--network", "none", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"];

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}
/** `podman run --rm` with PODMAN_RUN_FLAGS, extra podman flags and the image's arguments. */
export async function podmanRun(image: string, args: string[], podmanFlags: string[] = []): Promise<RunResult> {
  try {
    const { stdout, stderr } = await run("podman", ["run", "--rm", ...PODMAN_RUN_FLAGS, ...podmanFlags, image, ...args], { timeout: 120_000, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as Error & { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== "number") throw err;
    return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

export async function podmanInspect(image: string, format: string): Promise<string> {
  return (await run("podman", ["image", "inspect", "--format", format, image])).stdout.trim();
}
