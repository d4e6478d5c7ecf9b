/**
 * A real node: the kubelet in the VM registers, becomes Ready, and runs pods from the images
 * `make images` built — the server image's `zerofs --help` runs to completion under the security
 * context the operator gives the server (non-root, RuntimeDefault seccomp, read-only root), and
 * a long-running pod reaches Running with an address from the node's pod network.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { waitFor } from "../k8s/wait.ts";
import { buildImages, type Images } from "./images.ts";
import { NODE_NAME, pauseImage, startNodeCluster, type NodeCluster } from "./node.ts";

let cluster: NodeCluster;
let images: Images;

before(async () => {
  images = await buildImages();
  cluster = await startNodeCluster({ images: [images.server.archive] });
}, { timeout: 60 * 60_000 });

after(async () => {
  await cluster?.stop();
}, { timeout: 5 * 60_000 });

interface PodStatus {
  status?: { phase?: string; podIP?: string; containerStatuses?: { state?: { terminated?: { exitCode: number } } }[] };
}
async function pod(name: string): Promise<PodStatus> {
  return JSON.parse(await cluster.plane.kubectl(["get", "pod", name, "-n", "default", "-o", "json"])) as PodStatus;
}

test("the server image runs `zerofs --help` in a pod on the node", { timeout: 20 * 60_000 }, async () => {
  await cluster.plane.kubectl(["apply", "-f", "-"], JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "zerofs-help", namespace: "default" },
    spec: {
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
      containers: [{
        name: "zerofs",
        image: images.server.name,
        imagePullPolicy: "Never",
        args: ["--help"],
        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
      }],
    },
  }));
  const p = await waitFor("pod zerofs-help to finish", async () => {
    const s = await pod("zerofs-help");
    return s.status?.phase === "Succeeded" || s.status?.phase === "Failed" ? s : undefined;
  }, { timeoutMs: 15 * 60_000, intervalMs: 2000, describe: () => cluster.describe() });
  assert.equal(p.status?.phase, "Succeeded", JSON.stringify(p.status));
  assert.equal(p.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
});

test("a long-running pod reaches Running with a pod-network address", { timeout: 20 * 60_000 }, async () => {
  const pause = await pauseImage();
  await cluster.plane.kubectl(["apply", "-f", "-"], JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "sleeper", namespace: "default" },
    spec: { automountServiceAccountToken: false, containers: [{ name: "pause", image: pause.name, imagePullPolicy: "Never" }] },
  }));
  const p = await waitFor("pod sleeper to run", async () => {
    const s = await pod("sleeper");
    return s.status?.phase === "Running" ? s : undefined;
  }, { timeoutMs: 15 * 60_000, intervalMs: 2000, describe: () => cluster.describe() });
  assert.match(p.status?.podIP ?? "", /^10\.244\.0\.\d+$/);
  assert.equal(await cluster.plane.kubectl(["get", "pod", "sleeper", "-o", "jsonpath={.spec.nodeName}"]), NODE_NAME);
});
