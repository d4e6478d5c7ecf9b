/**
 * `kubectl zerofs`: the command line. kubectl runs any `kubectl-zerofs` on PATH as
 * `kubectl zerofs ...`; the bundled single file (operator/plugin/build.ts) is that executable.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { SERVER_UID } from "../../src/api/constants.ts";
import { check } from "./check.ts";
import { CliError, connect, EXIT, explain, type Io } from "./context.ts";
import { logs } from "./logs.ts";
import { rotate } from "./rotate.ts";
import { listVolumes, renderReport, volumeReport } from "./status.ts";

export const VERSION = "0.1.0";

const GLOBAL_HELP = `Global options:
  -n, --namespace NS    namespace of the volume (default: the kubeconfig context's, else "default")
      --kubeconfig FILE kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the pod's
                        service account when run inside a cluster)
      --context NAME    kubeconfig context to use
  -h, --help            this help`;

const EXIT_HELP = `Exit codes:
  0  success
  1  the operation failed (API error or missing permission, failed check, failed rotation)
  2  bad usage (unknown flag, missing argument, bad value, no kubeconfig)
  3  not found (the volume, its server pod or its claim)
  4  timed out waiting (the work may still finish)`;

export const HELP: Record<string, string> = {
  main: `kubectl zerofs: operate ZeroFS volumes (ZeroFSVolume resources)

Usage: kubectl zerofs <command> [options]

Commands:
  status [volume]   phase, conditions, server pod, key fingerprint and last rotation, last check,
                    and store and cache figures from the server's /metrics; without a name, a
                    table of the namespace's volumes
  rotate <volume>   change the volume's encryption password (guided update of its Secret)
  check <volume>    run a Job that mounts the volume and writes, reads, verifies and does
                    metadata operations; records the figures in the volume's status.check
  logs <volume>     the server pod's log (-f to follow)
  version           the plugin's version

Run kubectl zerofs <command> --help for a command's options.

${GLOBAL_HELP}

${EXIT_HELP}
`,
  status: `Usage: kubectl zerofs status [volume] [options]

Without a volume: one line per ZeroFSVolume of the namespace (-A: of all namespaces).
With one: its phase and conditions, server pod, mount command, password fingerprint (a keyed
hash: equal fingerprints mean the same password) and last rotation, last check, and figures
from the server's /metrics read through the API server's pod proxy
(pods/<server pod>:9090/proxy/metrics; needs get on pods/proxy, and the server must admit the
API server's address: the operator's metrics network settings).

Options:
  -A, --all-namespaces  list the volumes of every namespace
  -o, --output FORMAT   text (default) or json
      --no-metrics      do not read the server's /metrics

${GLOBAL_HELP}

${EXIT_HELP}
`,
  rotate: `Usage: kubectl zerofs rotate <volume> [options]

Changes the volume's encryption password: writes the new password into the Secret named by
spec.encryption.passwordSecretRef; the operator then stops the server, re-wraps the data key
under the new password with a Job (no data is re-encrypted) and restarts the server. NFS clients
pause meanwhile and carry on afterwards.

The new password is read from the terminal (asked twice, not echoed), from stdin when it is a
pipe, or from --password-file; never from the command line, which other users can see in ps.
One trailing newline is ignored, as the server does.

Options:
      --password-file FILE  read the new password from FILE ("-": stdin)
  -y, --yes                 do not ask for confirmation (required when the password is not
                            typed at a terminal)
      --no-wait             return once the Secret is updated, without following the rotation
      --timeout SECONDS     how long to follow the rotation (default 600)

${GLOBAL_HELP}

${EXIT_HELP}
`,
  check: `Usage: kubectl zerofs check <volume> [options]

Creates a Job in the namespace of the volume's PersistentVolumeClaim that mounts the claim and,
in a directory .zerofs-check-<id> it removes afterwards, writes --size-mb of random data with
an fsync, reads it back and compares SHA-256 digests, then creates, stats, lists, renames,
reads and removes --files small files. The figures go into the volume's status.check and are
printed. The Job is deleted when the check passed and kept when it failed.

Options:
      --size-mb N           MiB to write and verify (default 64, at most 4096)
      --files N             files of the metadata workload (default 200, at most 100000)
      --timeout SECONDS     deadline of the Job (default 300)
      --image IMAGE         image with node to run the workload (default: the volume's server image)
      --dir PATH            directory inside the volume to work in (default: its root); it must be
                            writable by --run-as-user (the volume squashes root by default)
      --run-as-user UID     uid of the check (default ${SERVER_UID})
      --run-as-group GID    gid of the check (default ${SERVER_UID})
      --keep                keep the Job even when the check passed
  -o, --output FORMAT       text (default) or json

Needs: create/get/delete jobs and list pods in the claim's namespace, patch
zerofsvolumes/status in the volume's.

${GLOBAL_HELP}

${EXIT_HELP}
`,
  logs: `Usage: kubectl zerofs logs <volume> [options]

Prints the log of the volume's server pod (container zerofs): JSON lines, one per event.

Options:
  -f, --follow          keep streaming new lines
      --tail N          only the last N lines
  -p, --previous        the previous (crashed) container's log
      --timestamps      prefix each line with the kubelet's time stamp

${GLOBAL_HELP}

${EXIT_HELP}
`,
};

const GLOBAL_OPTIONS = {
  namespace: { type: "string", short: "n" },
  kubeconfig: { type: "string" },
  context: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

const COMMAND_OPTIONS = {
  status: { "all-namespaces": { type: "boolean", short: "A" }, output: { type: "string", short: "o" }, "no-metrics": { type: "boolean" } },
  rotate: { "password-file": { type: "string" }, yes: { type: "boolean", short: "y" }, "no-wait": { type: "boolean" }, timeout: { type: "string" } },
  check: {
    "size-mb": { type: "string" },
    files: { type: "string" },
    timeout: { type: "string" },
    image: { type: "string" },
    dir: { type: "string" },
    "run-as-user": { type: "string" },
    "run-as-group": { type: "string" },
    keep: { type: "boolean" },
    output: { type: "string", short: "o" },
  },
  logs: { follow: { type: "boolean", short: "f" }, tail: { type: "string" }, previous: { type: "boolean", short: "p" }, timestamps: { type: "boolean" } },
  version: {},
} as const satisfies Record<string, ParseArgsConfig["options"]>;

type Command = keyof typeof COMMAND_OPTIONS;

function int(v: string | undefined, flag: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new CliError(EXIT.USAGE, `--${flag}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

function output(v: string | undefined): boolean {
  if (v === undefined || v === "text") return false;
  if (v === "json") return true;
  throw new CliError(EXIT.USAGE, `--output: expected text or json, got ${JSON.stringify(v)}`);
}

/** Runs the command line; returns the exit code (errors are printed on stderr). */
export async function main(argv: string[], io: Io, signal?: AbortSignal): Promise<number> {
  try {
    return await run(argv, io, signal);
  } catch (err) {
    const e = explain(err);
    if (e) {
      io.err(`kubectl zerofs: ${e.message}\n`);
      return e.code;
    }
    io.err(`kubectl zerofs: ${(err as Error).message ?? String(err)}\n`);
    return EXIT.FAILED;
  }
}

async function run(argv: string[], io: Io, signal?: AbortSignal): Promise<number> {
  const first = argv.findIndex((a) => !a.startsWith("-"));
  const command = first >= 0 ? argv[first]! : undefined;
  if (command === undefined || command === "help") {
    const wantsHelp = argv.includes("-h") || argv.includes("--help") || command === "help";
    (wantsHelp ? io.out : io.err)(HELP.main!);
    return wantsHelp ? EXIT.OK : EXIT.USAGE;
  }
  if (!(command in COMMAND_OPTIONS)) throw new CliError(EXIT.USAGE, `unknown command ${JSON.stringify(command)}; kubectl zerofs --help lists them`);
  const cmd = command as Command;
  const rest = [...argv.slice(0, first), ...argv.slice(first + 1)];
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...COMMAND_OPTIONS[cmd] }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError(EXIT.USAGE, `${(err as Error).message}\nRun kubectl zerofs ${cmd} --help for its options.`);
  }
  const f = parsed.values as Record<string, string | boolean | undefined>;
  const str = (k: string) => f[k] as string | undefined;
  if (f.help) {
    io.out(HELP[cmd] ?? HELP.main!);
    return EXIT.OK;
  }
  if (cmd === "version") {
    io.out(`kubectl-zerofs ${VERSION}\n`);
    return EXIT.OK;
  }
  const pos = parsed.positionals;
  const maxPos = 1;
  if (pos.length > maxPos) throw new CliError(EXIT.USAGE, `unexpected argument ${JSON.stringify(pos[maxPos])}; kubectl zerofs ${cmd} --help`);
  const volume = pos[0];
  if (cmd !== "status" && !volume) throw new CliError(EXIT.USAGE, `kubectl zerofs ${cmd} needs a volume name; kubectl zerofs ${cmd} --help`);
  // Every flag is validated before the cluster is touched.
  const json = output(str("output"));
  const connectNow = () => connect({ kubeconfig: str("kubeconfig"), context: str("context"), namespace: str("namespace") }, io);
  switch (cmd) {
    case "status": {
      if (volume && f["all-namespaces"]) throw new CliError(EXIT.USAGE, "-A lists volumes; with a volume name use -n");
      const ctx = connectNow();
      if (!volume) {
        const l = await listVolumes(ctx, f["all-namespaces"] === true);
        io.out(json ? JSON.stringify(l.rows, null, 2) + "\n" : l.text);
        return EXIT.OK;
      }
      const r = await volumeReport(ctx, volume, { metrics: f["no-metrics"] !== true });
      io.out(json ? JSON.stringify(r, null, 2) + "\n" : renderReport(r));
      return EXIT.OK;
    }
    case "rotate": {
      const o = {
        passwordFile: str("password-file"),
        yes: f.yes === true,
        wait: f["no-wait"] !== true,
        timeoutSeconds: int(str("timeout"), "timeout", 600, 1, 86_400),
      };
      return await rotate(connectNow(), volume!, o);
    }
    case "check": {
      const o = {
        sizeMb: int(str("size-mb"), "size-mb", 64, 1, 4096),
        files: int(str("files"), "files", 200, 1, 100_000),
        timeoutSeconds: int(str("timeout"), "timeout", 300, 10, 86_400),
        image: str("image"),
        dir: str("dir") ?? "",
        runAsUser: int(str("run-as-user"), "run-as-user", SERVER_UID, 0, 2 ** 31 - 1),
        runAsGroup: int(str("run-as-group"), "run-as-group", SERVER_UID, 0, 2 ** 31 - 1),
        keep: f.keep === true,
        json,
      };
      if (o.dir.split("/").includes("..")) throw new CliError(EXIT.USAGE, `--dir ${o.dir}: must stay inside the volume (no ..)`);
      return await check(connectNow(), volume!, o);
    }
    case "logs": {
      const o = { follow: f.follow === true, tail: str("tail") === undefined ? undefined : int(str("tail"), "tail", 0, 0, 1e9), previous: f.previous === true, timestamps: f.timestamps === true };
      return await logs(connectNow(), volume!, o, signal);
    }
  }
}
