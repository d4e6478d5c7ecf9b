/**
 * A real Kubernetes control plane for integration tests: etcd + kube-apiserver +
 * kube-controller-manager on 127.0.0.1 (scripts/tools/k8s-controlplane.sh), built from the Go
 * module proxy on first use and cached per machine (scripts/tools/k8s-tools.sh; a cold build
 * takes ~10 minutes of 2 cores). No kubelet and no scheduler: tests play the kubelet by patching
 * pod status (see kubelet.ts).
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient } from "../../operator/src/kube/client.ts";

const run = promisify(execFile);
export const REPO_ROOT = resolve(import.meta.dirname, "../..");
const SCRIPT = join(REPO_ROOT, "scripts/tools/k8s-controlplane.sh");
/** Covers a cold build of the binaries on a busy 2-core machine. */
const START_TIMEOUT_MS = 40 * 60_000;

export interface ControlPlane {
  stateDir: string;
  apiServer: string;
  /** Admin (system:masters) kubeconfig file and objects. */
  kubeconfigPath: string;
  adminKubeConfig: KubeConfig;
  admin: KubeClient;
  kubectlBin: string;
  helmBin: string;
  kubectl(args: string[], input?: string): Promise<string>;
  helm(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Apply crds/ before kube-controller-manager starts (its garbage collector then knows the type at once). */
  preApplyCrds?: boolean;
  /** Extra subjectAltNames of the API server's certificate, e.g. "IP:10.0.2.100" (a VM node's view). */
  apiServerSans?: string[];
  /** Extra kube-apiserver flags (a repeated list flag appends, e.g. --authorization-mode=Node). */
  apiServerArgs?: string[];
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    for (const m of line.replace(/^export /, "").matchAll(/([A-Z_]+)=(\S+)/g)) env[m[1]!] = m[2]!;
  }
  return env;
}

export async function startControlPlane(o: StartOptions = {}): Promise<ControlPlane> {
  const stateDir = await mkdtemp(join(tmpdir(), "zerofs-k8s-"));
  const env = {
    ...process.env,
    PRE_KCM_MANIFESTS: o.preApplyCrds ? join(REPO_ROOT, "crds") : "",
    APISERVER_EXTRA_SANS: (o.apiServerSans ?? []).join(","),
    APISERVER_EXTRA_ARGS: [process.env.APISERVER_EXTRA_ARGS ?? "", ...(o.apiServerArgs ?? [])].join(" ").trim(),
  };
  const started = new Promise<void>((ok, fail) => {
    const p = spawn("bash", [SCRIPT, "start", stateDir], { env, stdio: ["ignore", "inherit", "pipe"] });
    let err = "";
    p.stderr.on("data", (c: Buffer) => {
      err += c.toString();
      process.stderr.write(c);
    });
    const t = setTimeout(() => p.kill("SIGTERM"), START_TIMEOUT_MS);
    p.once("exit", (code) => {
      clearTimeout(t);
      if (code === 0) ok();
      else fail(new Error(`k8s-controlplane.sh start failed (exit ${code}); logs in ${stateDir}/logs\n${err.slice(-2000)}`));
    });
  });
  try {
    await started;
  } catch (err) {
    await run("bash", [SCRIPT, "stop", stateDir]).catch(() => undefined); // whatever did start
    throw err;
  }
  // If the test process dies without running its after() hooks, do not leave the plane running.
  const stopOnExit = () => void spawnSync("bash", [SCRIPT, "stop", stateDir], { stdio: "ignore" });
  process.once("exit", stopOnExit);
  const e = parseEnv(await readFile(join(stateDir, "env.sh"), "utf8"));
  const kubeconfigPath = join(stateDir, "admin.kubeconfig");
  const adminKubeConfig = new KubeConfig();
  adminKubeConfig.loadFromFile(kubeconfigPath);
  const kubectlBin = e.KUBECTL ?? "";
  const helmBin = e.HELM_BIN ?? "";
  const helmEnv = {
    ...process.env,
    KUBECONFIG: kubeconfigPath,
    HELM_CONFIG_HOME: join(stateDir, "helm/config"),
    HELM_CACHE_HOME: join(stateDir, "helm/cache"),
    HELM_DATA_HOME: join(stateDir, "helm/data"),
  };
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const p = execFile(kubectlBin, ["--kubeconfig", kubeconfigPath, ...args], { maxBuffer: 64 << 20 });
    if (input !== undefined) p.stdin?.end(input);
    return await new Promise((ok, fail) => {
      let out = "";
      let err = "";
      p.stdout?.on("data", (c: Buffer) => (out += c.toString()));
      p.stderr?.on("data", (c: Buffer) => (err += c.toString()));
      p.once("exit", (code) => (code === 0 ? ok(out) : fail(new Error(`kubectl ${args.join(" ")}: exit ${code}: ${err}`))));
    });
  };
  const helm = async (args: string[]): Promise<string> => {
    try {
      return (await run(helmBin, args, { env: helmEnv, maxBuffer: 64 << 20, cwd: REPO_ROOT })).stdout;
    } catch (err) {
      const x = err as Error & { stderr?: string };
      throw new Error(`helm ${args.join(" ")}: ${x.stderr ?? x.message}`, { cause: err });
    }
  };
  return {
    stateDir,
    apiServer: e.API_SERVER ?? "",
    kubeconfigPath,
    adminKubeConfig,
    admin: new KubeClient(adminKubeConfig, { fieldManager: "e2e-test" }),
    kubectlBin,
    helmBin,
    kubectl,
    helm,
    async stop() {
      process.removeListener("exit", stopOnExit);
      await run("bash", [SCRIPT, "stop", stateDir]);
      if (!process.env.KEEP_K8S_STATE) await rm(stateDir, { recursive: true, force: true });
    },
  };
}
