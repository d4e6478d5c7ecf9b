/**
 * A one-node Kubernetes cluster for end-to-end tests: the test control plane on the host
 * (e2e/k8s/controlplane.ts, plus kube-scheduler) and a real node in the qemu VM
 * (e2e/vm/guest/node.sh: containerd, runc, kubelet, kube-proxy, CNI bridge), built by
 * scripts/tools/node-tools.sh. The VM's network is restricted: the node reaches the API server
 * as GUEST_HOST_ADDRESS:<API port> (a guestfwd relay to the host's 127.0.0.1) and nothing else.
 * See e2e/node/README.md for what each piece needs and what was verified.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { startControlPlane, type ControlPlane, REPO_ROOT } from "../k8s/controlplane.ts";
import { waitFor } from "../k8s/wait.ts";
import { GUEST_HOST_ADDRESS, guestPath, startVm, type VmHandle } from "../vm/vm.ts";

const run = promisify(execFile);
export const NODE_NAME = "zerofs-node";
export const POD_CIDR = "10.244.0.0/24";
const CLUSTER_CIDR = "10.244.0.0/16";
const NODE_IP = "10.0.2.15";

export interface NodeTools {
  kubenode: string;
  containerd: string;
  runc: string;
  cni: string;
}

let toolsPromise: Promise<NodeTools> | undefined;
/** Builds (once per machine) or finds the node's binaries. */
export function nodeTools(): Promise<NodeTools> {
  toolsPromise ??= run("bash", [join(REPO_ROOT, "scripts/tools/node-tools.sh")], { timeout: 60 * 60_000, maxBuffer: 16 << 20 }).then(({ stdout }) => {
    const m = Object.fromEntries(stdout.trim().split("\n").map((l) => l.split("=") as [string, string]));
    for (const k of ["kubenode", "containerd", "runc", "cni"]) if (!m[k]) throw new Error(`node-tools.sh did not report ${k}: ${stdout}`);
    return m as unknown as NodeTools;
  });
  return toolsPromise;
}

export async function pauseImage(): Promise<{ name: string; archive: string }> {
  const { stdout } = await run("bash", [join(REPO_ROOT, "scripts/tools/pause-image.sh")], { timeout: 10 * 60_000 });
  const [name, archive] = stdout.trim().split(" ");
  if (!name || !archive) throw new Error(`pause-image.sh printed ${stdout}`);
  return { name, archive };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok));
  const a = s.address();
  await new Promise<void>((ok) => s.close(() => ok()));
  if (a === null || typeof a === "string") throw new Error("no port");
  return a.port;
}

/** A client certificate signed by the plane's CA: returns PEM cert and key. */
async function clientCert(pki: string, dir: string, name: string, subject: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const crt = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n");
  await run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", subject]);
  await run("openssl", ["x509", "-req", "-in", csr, "-CA", join(pki, "ca.crt"), "-CAkey", join(pki, "ca.key"), "-CAcreateserial", "-days", "30", "-out", crt, "-extfile", ext]);
  return { cert: await readFile(crt, "utf8"), key: await readFile(key, "utf8") };
}

function kubeconfig(server: string, ca: string, user: string, c: { cert: string; key: string }): string {
  const b64 = (s: string): string => Buffer.from(s).toString("base64");
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "local", cluster: { server, "certificate-authority-data": b64(ca) } }],
    users: [{ name: user, user: { "client-certificate-data": b64(c.cert), "client-key-data": b64(c.key) } }],
    contexts: [{ name: "local", context: { cluster: "local", user } }],
    "current-context": "local",
  });
}

/**
 * Imports the images into a containerd root on the host (a containerd without its CRI plugins,
 * on a private socket): ~5 s per image natively, against ~180 s for `ctr images import` of the
 * 250 MB server image inside the TCG guest. The root becomes an ext4 disk image (mkfs.ext4 -d)
 * that the guest mounts as its containerd root: copying the same 530 MB over 9p took longer than
 * the import itself.
 */
async function seedContainerd(tools: NodeTools, archives: string[], dir: string, tags: [string, string][] = []): Promise<void> {
  const state = join(dir, "state");
  const sock = join(state, "containerd.sock");
  await mkdir(state, { recursive: true });
  const cfg = join(dir, "config.toml");
  await writeFile(cfg, `version = 3
root = ${JSON.stringify(join(dir, "root"))}
state = ${JSON.stringify(state)}
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.podsandbox.controller.v1.podsandbox"]
[grpc]
  address = ${JSON.stringify(sock)}
`);
  let log = "";
  const d = spawn(join(tools.containerd, "containerd"), ["--config", cfg], { stdio: ["ignore", "ignore", "pipe"] });
  d.stderr?.on("data", (c: Buffer) => {
    log = (log + c.toString()).slice(-10_000);
  });
  const exited = new Promise<void>((ok) => d.once("exit", () => ok()));
  try {
    const ctr = join(tools.containerd, "ctr");
    await waitFor("the seeding containerd's socket", () => run(ctr, ["-a", sock, "version"]).then(() => true), { timeoutMs: 60_000, intervalMs: 200 });
    for (const a of archives) await run(ctr, ["-a", sock, "-n", "k8s.io", "images", "import", a], { timeout: 10 * 60_000 });
    for (const [from, to] of tags) await run(ctr, ["-a", sock, "-n", "k8s.io", "images", "tag", from, to], { timeout: 60_000 });
  } catch (err) {
    throw new Error(`seeding containerd failed: ${(err as Error).message}
${log}`, { cause: err });
  } finally {
    d.kill("SIGTERM");
    await exited;
  }
  // Room for the containers' writable layers and the pods' logs on top of the images (sparse).
  await run("bash", [join(REPO_ROOT, "scripts/tools/ensure-apt.sh"), "mkfs.ext4", "e2fsprogs"]);
  await run("mkfs.ext4", ["-q", "-F", "-L", "containerd", "-d", join(dir, "root"), join(dir, "disk.img"), "3G"]);
}

export interface NodeCluster {
  plane: ControlPlane;
  vm: VmHandle;
  apiPort: number;
  /** A daemon's log in the guest (containerd, kubelet, kube-proxy), read through the job folder; pods' logs are in <jobDir>/pod-logs. */
  guestLog(name: string): Promise<string>;
  /** A pod's container logs (all containers, all restarts), from the node's pod log folder. */
  podLog(namespace: string, pod: string): Promise<string>;
  /** The last lines of every log, for failure messages. */
  describe(): Promise<string>;
  stop(): Promise<void>;
}

export interface NodeClusterOptions {
  /** Docker archives imported into the node's containerd (besides the pause image). */
  images?: string[];
  /** Extra names for imported images ([existing, new]), e.g. a second operator tag for an upgrade. */
  imageTags?: [string, string][];
  /** Further host loopback ports the node may reach (e.g. an S3 server), as GUEST_HOST_ADDRESS:port. */
  forwardPorts?: number[];
  preApplyCrds?: boolean;
  memMb?: number;
}

export async function startNodeCluster(o: NodeClusterOptions = {}): Promise<NodeCluster> {
  const [tools, pause] = await Promise.all([nodeTools(), pauseImage()]);
  const plane = await startControlPlane({
    preApplyCrds: o.preApplyCrds ?? false,
    apiServerSans: [`IP:${GUEST_HOST_ADDRESS}`],
    // The kubelet authenticates as system:node:<name>: the Node authorizer grants what it needs.
    apiServerArgs: ["--authorization-mode=Node", "--enable-admission-plugins=NodeRestriction"],
  });
  let scheduler: ChildProcess | undefined;
  let vm: VmHandle | undefined;
  try {
    const apiPort = Number(new URL(plane.apiServer).port);
    const pki = join(plane.stateDir, "pki");
    const ca = await readFile(join(pki, "ca.crt"), "utf8");
    const certDir = join(plane.stateDir, "node-pki");
    await mkdir(certDir, { recursive: true });
    const guestServer = `https://${GUEST_HOST_ADDRESS}:${apiPort}`;
    const [kubeletCert, proxyCert, schedCert] = await Promise.all([
      clientCert(pki, certDir, "kubelet", `/O=system:nodes/CN=system:node:${NODE_NAME}`),
      clientCert(pki, certDir, "kube-proxy", "/CN=system:kube-proxy"),
      clientCert(pki, certDir, "scheduler", "/CN=system:kube-scheduler"),
    ]);

    // kube-scheduler on the host, next to the plane (the test plane has none).
    const schedKc = join(plane.stateDir, "scheduler.kubeconfig");
    await writeFile(schedKc, kubeconfig(plane.apiServer, ca, "scheduler", schedCert));
    const tools2 = tools;
    scheduler = spawn(join(tools2.kubenode, "kube-scheduler"), [
      `--kubeconfig=${schedKc}`, `--authentication-kubeconfig=${schedKc}`, `--authorization-kubeconfig=${schedKc}`,
      "--bind-address=127.0.0.1", `--secure-port=${await freePort()}`, "--leader-elect=false", "-v=1",
    ], { stdio: ["ignore", "ignore", "pipe"] });
    let schedLog = "";
    scheduler.stderr?.on("data", (c: Buffer) => {
      schedLog = (schedLog + c.toString()).slice(-20_000);
    });

    // The API server's own endpoints: with --endpoint-reconciler-type=none nobody publishes them,
    // and pods (the operator) reach the API through the "kubernetes" Service's ClusterIP, which
    // kube-proxy sends to where the node reaches the API server.
    await plane.kubectl(["apply", "--server-side", "--field-manager=e2e-test", "-f", "-"], JSON.stringify({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "kubernetes-vm", namespace: "default", labels: { "kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "e2e-test" } },
      addressType: "IPv4",
      endpoints: [{ addresses: [GUEST_HOST_ADDRESS], conditions: { ready: true } }],
      ports: [{ name: "https", port: apiPort, protocol: "TCP" }],
    }));

    const files: Record<string, string> = {
      "ca.crt": ca,
      "kubelet.kubeconfig": kubeconfig(guestServer, ca, `system:node:${NODE_NAME}`, kubeletCert),
      "kube-proxy.kubeconfig": kubeconfig(guestServer, ca, "system:kube-proxy", proxyCert),
      modules: NODE_MODULES.join("\n"),
      "containerd.toml": containerdConfig(tools, pause.name),
      "10-bridge.conflist": JSON.stringify(cniConfig()),
      "kubelet.yaml": JSON.stringify(kubeletConfig()),
      "kube-proxy.yaml": JSON.stringify(kubeProxyConfig()),
    };
    const seed = join(plane.stateDir, "containerd-seed");
    await seedContainerd(tools, [pause.archive, ...(o.images ?? [])], seed, o.imageTags);
    vm = await startVm({
      disks: [join(seed, "disk.img")],
      script: "node",
      forwardPorts: [apiPort, ...(o.forwardPorts ?? [])],
      memMb: o.memMb ?? 4096,
      timeoutMs: 2 * 60 * 60_000,
      files,
      env: {
        NODE_NAME,
        KUBENODE_BIN: guestPath(tools.kubenode),
        CONTAINERD_BIN: guestPath(tools.containerd),
        RUNC_BIN: guestPath(tools.runc),
        CNI_BIN: guestPath(tools.cni),
      },
    });
    const theVm = vm;
    const guestLog = (name: string): Promise<string> => readFile(join(theVm.jobDir, "logs", `${name}.log`), "utf8").catch(() => "(no log)");
    const tail = (t: string, n: number): string => t.trimEnd().split("\n").slice(-n).join("\n");
    const describe = async (): Promise<string> => {
      const parts = [`--- guest console (last 40 lines) ---\n${theVm.lines.slice(-40).join("\n")}`];
      for (const n of ["containerd", "kubelet", "kube-proxy"]) parts.push(`--- ${n} (last 40 lines) ---\n${tail(await guestLog(n), 40)}`);
      parts.push(`--- kube-scheduler (last 10 lines) ---\n${tail(schedLog, 10)}`);
      return parts.join("\n");
    };
    await theVm.waitForLine(/^NODE-STARTED$/, { timeoutMs: 20 * 60_000 }).catch(async (err: unknown) => {
      throw new Error(`the node did not start: ${(err as Error).message}\n${await describe()}`);
    });
    await waitFor("the node to be Ready", async () => {
      const n = await plane.kubectl(["get", "node", NODE_NAME, "-o", "json"]).catch(() => "");
      if (!n) return false;
      const node = JSON.parse(n) as { status?: { conditions?: { type: string; status: string }[] } };
      return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
    }, { timeoutMs: 10 * 60_000, intervalMs: 2000, describe });
    const sched = scheduler;
    return {
      plane,
      vm: theVm,
      apiPort,
      guestLog,
      describe,
      async podLog(namespace, pod) {
        const root = join(theVm.jobDir, "pod-logs");
        const dir = (await readdir(root).catch(() => [] as string[])).find((d) => d.startsWith(`${namespace}_${pod}_`));
        if (!dir) return "(no log)";
        const out: string[] = [];
        for (const c of await readdir(join(root, dir))) {
          for (const f of (await readdir(join(root, dir, c))).sort()) out.push(await readFile(join(root, dir, c, f), "utf8"));
        }
        return out.join("");
      },
      async stop() {
        await theVm.signal("stop");
        const t = setTimeout(() => theVm.kill(), 60_000);
        await theVm.done;
        clearTimeout(t);
        sched.kill("SIGTERM");
        await plane.stop();
        // The job folder holds the daemons' logs: kept when asked to (KEEP_K8S_STATE).
        if (!process.env.KEEP_K8S_STATE) await rm(theVm.jobDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    vm?.kill();
    scheduler?.kill("SIGTERM");
    await plane.stop().catch(() => undefined);
    throw err;
  }
}

/** Kernel modules the node needs, loaded by the VM's init (the initramfs has them). */
const NODE_MODULES = [
  "crc32c_generic", "virtio_blk", "ext4", "overlay", "bridge", "br_netfilter", "veth",
  "nf_conntrack", "nf_nat", "nf_tables", "nft_compat", "nft_chain_nat", "nft_ct", "nft_masq", "nft_reject_inet", "nf_conntrack_netlink",
  "ip_tables", "iptable_nat", "iptable_filter", "iptable_mangle", "ip6_tables", "ip6table_nat", "ip6table_filter", "ip6table_mangle",
  "xt_conntrack", "xt_comment", "xt_mark", "xt_MASQUERADE", "xt_addrtype", "xt_statistic", "xt_multiport", "xt_nat", "xt_tcpudp", "xt_physdev", "ipt_REJECT",
];

function containerdConfig(t: NodeTools, sandboxImage: string): string {
  const q = (s: string): string => JSON.stringify(guestPath(s));
  return `version = 3
root = "/tmp/node/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = ${JSON.stringify(sandboxImage)}
[plugins.'io.containerd.cri.v1.runtime']
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = ${q(join(t.runc, "runc"))}
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [${q(t.cni)}]
    conf_dir = "/tmp/node/cni/net.d"
`;
}

function cniConfig(): unknown {
  return {
    cniVersion: "1.0.0",
    name: "zerofs-node",
    plugins: [
      {
        type: "bridge", bridge: "cni0", isGateway: true, ipMasq: true, hairpinMode: true,
        ipam: { type: "host-local", ranges: [[{ subnet: POD_CIDR }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: "/tmp/node/cni/ipam" },
      },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
}

function kubeletConfig(): unknown {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    cgroupDriver: "cgroupfs",
    containerRuntimeEndpoint: "unix:///run/containerd/containerd.sock",
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: "/run/job/ca.crt" } },
    authorization: { mode: "AlwaysAllow" },
    failSwapOn: false,
    // In the job folder: the host reads the containers' logs (kubectl logs would need the API
    // server to reach the kubelet, which the restricted network does not allow).
    podLogsDir: "/run/job/pod-logs",
    resolvConf: "",
    podCIDR: POD_CIDR,
    // Everything lives in the guest's tmpfs: evict only when memory is really short.
    evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    maxPods: 30,
    nodeStatusReportFrequency: "10s",
  };
}

function kubeProxyConfig(): unknown {
  return {
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    mode: "iptables",
    clientConnection: { kubeconfig: "/run/job/kube-proxy.kubeconfig" },
    hostnameOverride: NODE_NAME,
    clusterCIDR: CLUSTER_CIDR,
    bindAddress: NODE_IP,
    metricsBindAddress: "127.0.0.1:10249",
    healthzBindAddress: "127.0.0.1:10256",
    // Leave the kernel's conntrack table sizes alone.
    conntrack: { maxPerCore: 0, min: 0 },
  };
}
