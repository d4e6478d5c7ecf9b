/**
 * Playing the kubelet: there is none in the test control plane, so pods stay Pending. These
 * helpers patch pod status the way a kubelet would, and the real ReplicaSet, Deployment and Job
 * controllers (kube-controller-manager) react to it.
 */
import { R } from "../../operator/src/kube/resources.ts";
import type { KubeClient } from "../../operator/src/kube/client.ts";
import type { Pod } from "../../operator/src/kube/types.ts";

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

export async function podsMatching(c: KubeClient, namespace: string, labelSelector: string): Promise<Pod[]> {
  return (await c.list<Pod>(R.pods, namespace, { labelSelector })).items.filter((p) => !p.metadata.deletionTimestamp);
}

/** Marks a pod Running and Ready. */
export async function markPodReady(c: KubeClient, p: Pod): Promise<void> {
  const t = now();
  const containers = ((p.spec.containers ?? []) as { name: string; image: string }[]).map((ct) => ({
    name: ct.name,
    image: ct.image,
    imageID: "",
    ready: true,
    started: true,
    restartCount: 0,
    state: { running: { startedAt: t } },
  }));
  await c.patch(R.pods, p.metadata.namespace, p.metadata.name ?? "", {
    status: {
      phase: "Running",
      startTime: t,
      conditions: [
        { type: "PodScheduled", status: "True", lastTransitionTime: t },
        { type: "Initialized", status: "True", lastTransitionTime: t },
        { type: "ContainersReady", status: "True", lastTransitionTime: t },
        { type: "Ready", status: "True", lastTransitionTime: t },
      ],
      containerStatuses: containers,
    },
  }, { subresource: "status" });
}

/** Ends a pod as a finished container would: Succeeded (exit 0) or Failed with a termination message. */
export async function finishPod(c: KubeClient, p: Pod, exitCode: number, message = ""): Promise<void> {
  const t = now();
  const containers = ((p.spec.containers ?? []) as { name: string; image: string }[]).map((ct) => ({
    name: ct.name,
    image: ct.image,
    imageID: "",
    ready: false,
    started: false,
    restartCount: 0,
    state: { terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", message: message || undefined, startedAt: t, finishedAt: t } },
  }));
  await c.patch(R.pods, p.metadata.namespace, p.metadata.name ?? "", {
    status: {
      phase: exitCode === 0 ? "Succeeded" : "Failed",
      startTime: t,
      conditions: [
        { type: "PodScheduled", status: "True", lastTransitionTime: t },
        { type: "Ready", status: "False", lastTransitionTime: t, reason: "PodCompleted" },
      ],
      containerStatuses: containers,
    },
  }, { subresource: "status" });
}
