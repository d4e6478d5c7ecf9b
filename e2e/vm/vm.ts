/**
 * Boots the test VM (Debian kernel + busybox initramfs from scripts/tools/vm-image.sh) under
 * qemu TCG and runs one guest script in it, as root in a chroot of the host's root (read-only
 * 9p), with the job folder shared read-write at /run/job. Returns the guest's exit status and
 * console; `runGuest` throws with the guest's console (and the server's complaints) when the
 * script fails or the VM hangs.
 *
 * The guest's script is e2e/vm/guest/<name>.sh, sourced after e2e/vm/guest/lib.sh (helpers:
 * mount_zerofs, step, fail...) with the variables in `env` exported.
 */
import { execFile, spawn } from "node:child_process";
import { chmod, copyFile, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT, type ZerofsServer } from "./zerofs-server.ts";

const GUEST_DIR = join(REPO_ROOT, "e2e/vm/guest");
const RELAY = join(REPO_ROOT, "e2e/vm/guest-relay.ts");
/**
 * The guest's only reachable address (besides itself): each forwarded host loopback port is
 * reachable as this address with the same port number. qemu refuses 10.0.2.2 (its own host
 * address) for a guestfwd, so the server is not 10.0.2.2 from the guest's point of view.
 */
export const GUEST_HOST_ADDRESS = "10.0.2.100";
const VERBOSE = process.env.E2E_VERBOSE === "1";

export interface VmImage {
  dir: string;
  kernel: string;
  initrd: string;
}

let imagePromise: Promise<VmImage> | undefined;
/** Builds (once per machine, cached) or finds the VM image; installs the Debian packages it needs. */
export function vmImage(): Promise<VmImage> {
  imagePromise ??= promisify(execFile)("bash", [join(REPO_ROOT, "scripts/tools/vm-image.sh")], { timeout: 20 * 60_000, maxBuffer: 16 << 20 }).then(
    ({ stdout }) => {
      const dir = stdout.trim().split("\n").at(-1) ?? "";
      return { dir, kernel: join(dir, "vmlinuz"), initrd: join(dir, "initrd.gz") };
    },
    (err: unknown) => {
      imagePromise = undefined;
      const e = err as Error & { stderr?: string };
      throw new Error(`scripts/tools/vm-image.sh failed: ${e.message}\n${e.stderr ?? ""}`, { cause: err });
    },
  );
  return imagePromise;
}

export interface VmRunOptions {
  /** Guest script: e2e/vm/guest/<script>.sh. */
  script: string;
  /** Exported to the guest script (names must be shell identifiers). */
  env?: Record<string, string | number>;
  /** Server whose port the guest mounts (exported as ZEROFS_PORT) and whose log is reported on failure. */
  server?: ZerofsServer;
  /**
   * Further host loopback ports the guest may reach (as GUEST_HOST_ADDRESS:port). Nothing else
   * is: the network is restricted, so no packet from the guest leaves the machine.
   */
  forwardPorts?: number[];
  memMb?: number;
  timeoutMs?: number;
  /** Each console line as it arrives (without the trailing CR/LF). */
  onLine?: (line: string) => void;
  /** Extra files for the job folder (/run/job in the guest). */
  files?: Record<string, string | Buffer>;
  /** Raw disk images attached as virtio disks, in order: /dev/vda, /dev/vdb... (modules: virtio_blk). */
  disks?: string[];
}

export interface VmResult {
  /** The guest script's exit status, or null if the VM died or timed out before reporting it. */
  status: number | null;
  timedOut: boolean;
  /** Set when the server exited on its own while the VM ran (the VM was stopped then). */
  serverDied?: string | undefined;
  console: string;
  jobDir: string;
  durationMs: number;
}

/** A running VM: wait for console lines, signal the guest, wait for the end. */
export interface VmHandle {
  readonly jobDir: string;
  /** Console lines so far (without CR/LF). */
  readonly lines: readonly string[];
  /**
   * Resolves with the first console line (from line `from` on, default 0) matching `re`;
   * rejects if the VM ends first or after `timeoutMs`.
   */
  waitForLine(re: RegExp, opts?: { timeoutMs?: number; from?: number }): Promise<string>;
  /** Creates /run/job/<name> for the guest's `wait_host <name>`. */
  signal(name: string): Promise<void>;
  /** Kills qemu (the result then has status null unless the guest had finished). */
  kill(): void;
  readonly done: Promise<VmResult>;
}

/**
 * Where the guest sees a file of the host: the guest has its own tmpfs /tmp and /run, so the
 * host's are reached through the second view of the host root that its init mounts at /run/host.
 */
export function guestPath(hostPath: string): string {
  return /^\/(tmp|run)(\/|$)/.test(hostPath) ? `/run/host${hostPath}` : hostPath;
}

/**
 * qemu's user network, restricted (restrict=on: the guest reaches neither the host nor the
 * outside world), with one guestfwd per port: a guest connection to GUEST_HOST_ADDRESS:port
 * starts a relay (guest-relay.ts) connected to the host's 127.0.0.1:port. The server sees the
 * relay's unreserved source port, hence the VM servers' ZEROFS_INSECURE.
 */
export function userNetwork(ports: readonly number[]): string {
  // qemu's option syntax doubles commas; glib's shell-style parsing takes single quotes.
  const quote = (a: string): string => {
    if (a.includes("'")) throw new Error(`cannot quote ${a} for a guestfwd command`);
    return `'${a}'`.replaceAll(",", ",,");
  };
  const fwd = [...new Set(ports)].map((p) => {
    if (!Number.isInteger(p) || p <= 0 || p > 65535) throw new Error(`bad port to forward: ${p}`);
    const cmd = [process.execPath, "--no-warnings", RELAY, "127.0.0.1", String(p)].map(quote).join(" ");
    return `,guestfwd=tcp:${GUEST_HOST_ADDRESS}:${p}-cmd:${cmd}`;
  });
  return `user,id=n0,restrict=on${fwd.join("")}`;
}

/** Boots the VM and starts the script; see `runInVm` to just wait for it. */
export async function startVm(opts: VmRunOptions): Promise<VmHandle> {
  const image = await vmImage();
  const jobDir = await mkdtemp(join(tmpdir(), `zerofs-vm-${opts.script}-`));
  // The guest's unprivileged users read their scripts from here.
  await chmod(jobDir, 0o755);
  for (const f of await readdir(GUEST_DIR)) await copyFile(join(GUEST_DIR, f), join(jobDir, f));
  for (const [name, content] of Object.entries(opts.files ?? {})) await writeFile(join(jobDir, name), content);
  const env: Record<string, string | number> = {
    NODE: guestPath(process.execPath),
    REPO: guestPath(REPO_ROOT),
    NFS_SERVER: GUEST_HOST_ADDRESS,
    ...(opts.server ? { ZEROFS_PORT: opts.server.port } : {}),
    ...opts.env,
  };
  const exports = Object.entries(env)
    .map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`bad guest variable name ${k}`);
      return `export ${k}='${String(v).replaceAll("'", `'\\''`)}'\n`;
    })
    .join("");
  await writeFile(join(jobDir, "entry.sh"), `${exports}. /run/job/lib.sh\n. /run/job/${opts.script}.sh\n`);
  await writeFile(join(jobDir, "guest.sh"), "exec /bin/bash /run/job/entry.sh\n");

  const args = [
    "-accel", "tcg,thread=multi", "-cpu", process.env.E2E_QEMU_CPU ?? "max", "-smp", "2", "-m", String(opts.memMb ?? 2048),
    "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
    "-kernel", image.kernel, "-initrd", image.initrd,
    "-append", "console=ttyS0 quiet panic=-1",
    "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
    "-virtfs", `local,path=${jobDir},mount_tag=job,security_model=none`,
    "-netdev", userNetwork([...(opts.server ? [opts.server.port] : []), ...(opts.forwardPorts ?? [])]), "-device", "virtio-net-pci,netdev=n0,romfile=",
    ...(opts.disks ?? []).flatMap((d) => {
      if (d.includes(",")) throw new Error(`disk image path ${d} contains a comma`);
      return ["-drive", `file=${d},format=raw,if=virtio,cache=unsafe`];
    }),
  ];
  const started = Date.now();
  const child = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
  const killOnExit = (): void => {
    child.kill("SIGKILL");
  };
  process.on("exit", killOnExit);
  let consoleText = "";
  let partial = "";
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString("utf8").replaceAll("\r", "");
    consoleText += text;
    partial += text;
    let nl: number;
    while ((nl = partial.indexOf("\n")) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      if (VERBOSE) process.stderr.write(`[vm ${opts.script}] ${line}\n`);
      opts.onLine?.(line);
    }
    for (const w of waiters) w();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, opts.timeoutMs ?? 10 * 60_000);
  // A hard mount waits forever for a server that is gone: stop the VM at once instead.
  let serverDied: string | undefined;
  const unlisten = opts.server?.onUnexpectedExit((why) => {
    serverDied = why;
    child.kill("SIGKILL");
  });
  const done = (async (): Promise<VmResult> => {
    await new Promise<void>((ok) => child.once("exit", () => ok()));
    ended = true;
    for (const w of waiters) w();
    clearTimeout(timer);
    unlisten?.();
    process.removeListener("exit", killOnExit);
    let status: number | null = null;
    const m = /GUEST-EXIT=(\d+)/.exec(consoleText);
    if (m) status = Number(m[1]);
    else {
      const st = await readFile(join(jobDir, "exit-status"), "utf8").catch(() => "");
      if (/^\d+\s*$/.test(st)) status = Number(st);
    }
    return { status, timedOut, serverDied, console: consoleText, jobDir, durationMs: Date.now() - started };
  })();

  return {
    jobDir,
    lines,
    waitForLine(re, { timeoutMs = 5 * 60_000, from = 0 } = {}) {
      return new Promise((ok, fail) => {
        let next = from;
        const check = (): void => {
          for (; next < lines.length; next++) {
            if (re.test(lines[next]!)) {
              finish();
              ok(lines[next]!);
              return;
            }
          }
          if (ended) {
            finish();
            fail(new Error(`the VM ended before printing a line matching ${re}`));
          }
        };
        const t = setTimeout(() => {
          finish();
          fail(new Error(`no console line matching ${re} within ${timeoutMs} ms`));
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(t);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    signal: (name) => writeFile(join(jobDir, name), ""),
    kill: () => child.kill("SIGKILL"),
    done,
  };
}

/** Boots the VM, runs the script, powers off. The job folder is left for the caller (see runGuest). */
export async function runInVm(opts: VmRunOptions): Promise<VmResult> {
  return (await startVm(opts)).done;
}

export class GuestFailure extends Error {}

/**
 * runInVm, and throws (with the guest's console tail, its dmesg as the guest printed it, and
 * the server's warnings) unless the guest script exited 0. The job folder is removed on success
 * and kept on failure (its path is in the message).
 */
export async function runGuest(opts: VmRunOptions): Promise<VmResult> {
  return checkGuest(opts, await runInVm(opts));
}

/** Throws a GuestFailure (see runGuest) unless the run succeeded; removes the job folder if it did. */
export async function checkGuest(opts: VmRunOptions, r: VmResult, extra = ""): Promise<VmResult> {
  if (r.status === 0 && !r.timedOut && r.serverDied === undefined && extra === "") {
    await rm(r.jobDir, { recursive: true, force: true });
    return r;
  }
  await writeFile(join(r.jobDir, "console.log"), r.console);
  const why = extra !== ""
    ? extra
    : r.serverDied !== undefined
    ? `${r.serverDied}; VM stopped`
    : r.timedOut
    ? `timed out after ${Math.round(r.durationMs / 1000)} s`
    : r.status === null
      ? "VM stopped without reporting the guest's exit status"
      : `guest script exited ${r.status}`;
  const lines = r.console.split("\n");
  const tail = lines.slice(-150).join("\n");
  let serverPart = "";
  if (opts.server) {
    const problems = await opts.server.problems();
    const last = (await opts.server.log().catch(() => "")).trimEnd().split("\n").slice(-12);
    serverPart =
      `\n--- server warnings/errors (${problems.length}, last 30; full log ${join(opts.server.dir, "server.log")}) ---\n${problems.slice(-30).join("\n")}` +
      `\n--- server log (last 12 lines) ---\n${last.join("\n")}`;
  }
  throw new GuestFailure(`VM ${opts.script}: ${why} (console: ${join(r.jobDir, "console.log")})\n--- guest console (last 150 lines) ---\n${tail}${serverPart}`);
}

/** Timing lines the guest's `step` helper prints: "STEP <name> <seconds>". */
export function stepTimes(consoleText: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of consoleText.matchAll(/^STEP (\S+) ([0-9.]+)$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}
