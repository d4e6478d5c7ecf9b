/**
 * Password-change Jobs: the server image run with ZEROFS_NEW_PASSWORD_FILE, which re-wraps the
 * data key under the new password and exits 0 (non-zero with a message on a wrong old password).
 *  - rotate: old = active password, new = target.
 *  - verify: old = new = target. Succeeds only if the target already opens the store; used after
 *    a failed or lost rotate Job to learn whether the change had in fact been applied.
 * Both run only while the server is scaled to zero, so the store never has two writers.
 */
import { LABEL_JOB_KIND, SECRET_KEY_ACTIVE, SECRET_KEY_PENDING } from "../api/constants.ts";
import type { NormalizedSpec } from "../api/spec.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { Job } from "../kube/types.ts";
import { commonLabels, ownerReference } from "./labels.ts";
import { rotationJobName, verifyJobName } from "./names.ts";
import {
  ACTIVE_PASSWORD_FILE,
  PENDING_PASSWORD_FILE,
  containerSecurityContext,
  passwordVolume,
  podSecurityContext,
  scheduling,
  serverEnv,
  serverResources,
  serverVolumeMounts,
} from "./server-pod.ts";

export type PasswordJobKind = "rotate" | "verify";

export interface PasswordJobInput {
  volume: ZeroFSVolume;
  spec: NormalizedSpec;
  image: string;
  targetHash: string;
  /** Retries of the Job's pod (transient store errors); default 2. */
  backoffLimit?: number;
  /** Same client lists as the server (the Job does not serve, but the configuration must be valid). */
  network: { allowedClients: string[]; httpAllowedClients: string[] };
}

export function passwordJobName(kind: PasswordJobKind, v: Pick<ZeroFSVolume, "metadata">, targetHash: string): string {
  return kind === "rotate" ? rotationJobName(v, targetHash) : verifyJobName(v, targetHash);
}

export function buildPasswordJob(kind: PasswordJobKind, i: PasswordJobInput): Job {
  const { volume: v, spec } = i;
  const labels = { ...commonLabels(v, "password-rotation"), [LABEL_JOB_KIND]: kind };
  const oldFile = kind === "rotate" ? ACTIVE_PASSWORD_FILE : PENDING_PASSWORD_FILE;
  const container: Record<string, unknown> = {
    name: "zerofs",
    image: i.image,
    command: ["zerofs"],
    args: [spec.storage.url],
    // The change only touches the key object; a small scratch cache is enough.
    env: serverEnv(spec, { passwordFile: oldFile, newPasswordFile: PENDING_PASSWORD_FILE, cacheSizeGb: "1", ...i.network }),
    resources: serverResources(spec),
    securityContext: containerSecurityContext(),
    // The server's error ("wrong password", "store unreachable") becomes the termination message,
    // which the operator copies into the PasswordRotation condition.
    terminationMessagePolicy: "FallbackToLogsOnError",
    volumeMounts: serverVolumeMounts(),
  };
  if (spec.server.imagePullPolicy) container.imagePullPolicy = spec.server.imagePullPolicy;
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: passwordJobName(kind, v, i.targetHash), namespace: v.metadata.namespace, labels, ownerReferences: [ownerReference(v)] },
    spec: {
      // A retry is safe: the change is atomic (old or new password opens the store), and a retry
      // after a change that did land fails on the old password, which the verify Job then sorts out.
      backoffLimit: i.backoffLimit ?? 2,
      activeDeadlineSeconds: 900,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurityContext(),
          containers: [container],
          volumes: [
            passwordVolume(v, [SECRET_KEY_ACTIVE, SECRET_KEY_PENDING]),
            { name: "cache", emptyDir: { sizeLimit: "2Gi" } },
            { name: "tmp", emptyDir: {} },
          ],
          ...scheduling(spec),
        },
      },
    },
  };
}
