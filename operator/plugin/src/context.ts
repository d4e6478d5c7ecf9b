/**
 * What every subcommand needs: the cluster connection (--kubeconfig, KUBECONFIG, ~/.kube/config or
 * the in-cluster service account, like kubectl), the namespace (-n, else the context's, else the
 * pod's own in-cluster, else "default"), output streams, and the exit codes.
 */
import { readFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient } from "../../src/kube/client.ts";
import { isNotFound, isForbidden, KubeApiError } from "../../src/kube/errors.ts";

/** Exit codes (documented in `kubectl zerofs --help`). */
export const EXIT = {
  OK: 0,
  /** The operation failed: an API error, a failed check, a failed rotation. */
  FAILED: 1,
  /** Bad usage: unknown flag, missing argument, bad value. */
  USAGE: 2,
  /** The volume (or its server pod, its claim) does not exist. */
  NOT_FOUND: 3,
  /** Waited longer than --timeout (the work may still finish). */
  TIMEOUT: 4,
} as const;

/** An error that ends the command with `code` and prints `message` (no stack). */
export class CliError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = "CliError";
    this.code = code;
  }
}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown };
  /** Whether stdout is a terminal (colour and prompts). */
  tty: boolean;
}

export interface Ctx {
  client: KubeClient;
  kc: KubeConfig;
  namespace: string;
  io: Io;
}

/** Field manager of everything the plugin writes (status.check, the Secret's password). */
export const FIELD_MANAGER = "kubectl-zerofs";
const IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

export function connect(o: { kubeconfig?: string; context?: string; namespace?: string }, io: Io): Ctx {
  const kc = new KubeConfig();
  try {
    if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
    else kc.loadFromDefault(); // KUBECONFIG (a list), ~/.kube/config, then in-cluster
    if (o.context) kc.setCurrentContext(o.context);
  } catch (err) {
    throw new CliError(EXIT.USAGE, `cannot load the kubeconfig${o.kubeconfig ? ` ${o.kubeconfig}` : ""}: ${(err as Error).message}`);
  }
  if (o.context && !kc.getContextObject(o.context)) throw new CliError(EXIT.USAGE, `--context ${o.context}: no such context in the kubeconfig`);
  if (!kc.getCurrentCluster()) {
    throw new CliError(EXIT.USAGE, "no cluster to talk to: set KUBECONFIG, pass --kubeconfig, or run inside a pod with a service account");
  }
  let namespace = o.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace;
  if (!namespace) {
    try {
      namespace = readFileSync(IN_CLUSTER_NAMESPACE, "utf8").trim() || undefined;
    } catch {
      // not in a pod
    }
  }
  return { kc, client: new KubeClient(kc, { fieldManager: FIELD_MANAGER }), namespace: namespace ?? "default", io };
}

/** Maps API errors to what a user can act on; others pass through. */
export function explain(err: unknown): CliError | undefined {
  if (err instanceof CliError) return err;
  if (isForbidden(err)) {
    return new CliError(EXIT.FAILED, `${(err as Error).message}\n(your user lacks this permission: ask for a Role that allows it; docs/user-guide.md lists what each subcommand needs)`);
  }
  if (isNotFound(err)) return new CliError(EXIT.NOT_FOUND, (err as Error).message);
  if (err instanceof KubeApiError) return new CliError(EXIT.FAILED, err.message);
  return undefined;
}
