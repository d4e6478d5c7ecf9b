/**
 * `kubectl zerofs check <volume>`: runs a Job that mounts the volume's PersistentVolumeClaim
 * and runs a short write/read/verify and metadata workload (check-workload.ts), waits for it,
 * records the figures in the volume's status.check and prints them.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { API_VERSION, APP_NAME, KIND, LABEL_COMPONENT, LABEL_NAME, LABEL_VOLUME_NAME, LABEL_VOLUME_NAMESPACE } from "../../src/api/constants.ts";
import type { VolumeCheckStatus, ZeroFSVolume } from "../../src/api/types.ts";
import { R } from "../../src/kube/resources.ts";
import type { Deployment, Job, Pod } from "../../src/kube/types.ts";
import { CHECK_WORKLOAD } from "./check-workload.ts";
import { CliError, EXIT, type Ctx } from "./context.ts";
import { getVolume } from "./volume.ts";

export interface CheckOptions {
  sizeMb: number;
  files: number;
  timeoutSeconds: number;
  image?: string;
  runAsUser: number;
  runAsGroup: number;
  /** Directory inside the volume (relative to its root) to work in. */
  dir: string;
  keep: boolean;
  json: boolean;
  pollMs?: number;
}

export const CHECK_COMPONENT = "check";
const MOUNT = "/data";

interface TerminatedState {
  exitCode: number;
  reason?: string;
  message?: string;
}
interface PodStatus {
  phase?: string;
  reason?: string;
  message?: string;
  containerStatuses?: { name: string; state?: { terminated?: TerminatedState; waiting?: { reason?: string; message?: string } } }[];
}

export function checkJob(v: ZeroFSVolume, claim: { namespace: string; name: string }, image: string, o: CheckOptions, id: string): Job {
  const labels = {
    [LABEL_NAME]: APP_NAME,
    [LABEL_COMPONENT]: CHECK_COMPONENT,
    [LABEL_VOLUME_NAME]: v.metadata.name,
    [LABEL_VOLUME_NAMESPACE]: v.metadata.namespace,
  };
  const dir = o.dir.replace(/^\/+/, "");
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: `zerofs-${v.metadata.name}-check-${id}`, namespace: claim.namespace, labels },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: o.timeoutSeconds,
      // Kept a while for `kubectl logs job/...` after a failure; the plugin deletes it on success.
      ttlSecondsAfterFinished: 3600,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          securityContext: { runAsNonRoot: true, runAsUser: o.runAsUser, runAsGroup: o.runAsGroup, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: "check",
              image,
              command: ["node", "-e", CHECK_WORKLOAD],
              env: [
                { name: "CHECK_DIR", value: dir ? `${MOUNT}/${dir}` : MOUNT },
                { name: "CHECK_SIZE_MB", value: String(o.sizeMb) },
                { name: "CHECK_FILES", value: String(o.files) },
                { name: "CHECK_ID", value: id },
              ],
              volumeMounts: [{ name: "data", mountPath: MOUNT }],
              terminationMessagePolicy: "File",
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
              resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "256Mi" } },
            },
          ],
          volumes: [{ name: "data", persistentVolumeClaim: { claimName: claim.name } }],
        },
      },
    },
  };
}

/** Parses the workload's JSON line; anything else is reported as a failure with what was there. */
export function parseCheckResult(message: string | undefined, fallback: string): Omit<VolumeCheckStatus, "time" | "jobName"> {
  if (message) {
    try {
      const r = JSON.parse(message) as Record<string, unknown>;
      if (r.result === "Passed" || r.result === "Failed") {
        const num = (k: string) => (typeof r[k] === "number" && Number.isFinite(r[k]) && r[k] >= 0 ? r[k] : undefined);
        const out: Omit<VolumeCheckStatus, "time" | "jobName"> = { result: r.result };
        if (typeof r.message === "string") out.message = r.message.slice(0, 1000);
        for (const k of ["bytes", "files", "writeMiBPerSecond", "readMiBPerSecond", "metadataOps", "metadataOpsPerSecond", "seconds"] as const) {
          const x = num(k);
          if (x !== undefined) out[k] = k === "bytes" || k === "files" || k === "metadataOps" ? Math.round(x) : x;
        }
        return out;
      }
    } catch {
      // not the workload's output: fall through
    }
  }
  return { result: "Failed", message: (message ? `${fallback}: ${message}` : fallback).slice(0, 1000) };
}

async function image(ctx: Ctx, v: ZeroFSVolume, o: CheckOptions): Promise<string> {
  if (o.image) return o.image;
  const d = await ctx.client.get<Deployment>(R.deployments, v.metadata.namespace, `zerofs-${v.metadata.name}`);
  const containers = (d?.spec as { template?: { spec?: { containers?: { image?: string }[] } } } | undefined)?.template?.spec?.containers;
  const img = containers?.[0]?.image;
  if (!img) throw new CliError(EXIT.NOT_FOUND, `cannot find the server image of ${v.metadata.namespace}/${v.metadata.name} (no Deployment zerofs-${v.metadata.name}): pass --image`);
  return img;
}

export async function check(ctx: Ctx, name: string, o: CheckOptions): Promise<number> {
  const { io } = ctx;
  const v = await getVolume(ctx, name);
  const claim = v.status?.persistentVolumeClaim;
  if (!claim) {
    throw new CliError(
      EXIT.NOT_FOUND,
      `volume ${v.metadata.namespace}/${name} has no PersistentVolumeClaim yet (phase ${v.status?.phase ?? "Unknown"}; spec.persistentVolume.create and .claim.create make one): there is nothing for a check Job to mount`,
    );
  }
  const img = await image(ctx, v, o);
  const id = randomBytes(3).toString("hex");
  const job = checkJob(v, claim, img, o, id);
  const jobName = job.metadata.name ?? "";
  const where = `${claim.namespace}/${jobName}`;
  await ctx.client.create(job);
  io.err(`Started Job ${where}: ${o.sizeMb} MiB write/read/verify and ${o.files} files through claim ${claim.namespace}/${claim.name}.\n`);
  const deadline = Date.now() + (o.timeoutSeconds + 30) * 1000;
  let said = "";
  let outcome: Omit<VolumeCheckStatus, "time" | "jobName"> | undefined;
  while (Date.now() < deadline) {
    const j = await ctx.client.get<Job>(R.jobs, claim.namespace, jobName);
    if (!j) throw new CliError(EXIT.FAILED, `Job ${where} disappeared while it ran`);
    const cond = (t: string) => j.status?.conditions?.find((c) => c.type === t && c.status === "True");
    const pod = (await ctx.client.list<Pod>(R.pods, claim.namespace, { labelSelector: `batch.kubernetes.io/job-name=${jobName}` })).items[0];
    const ps = (pod?.status ?? {}) as PodStatus;
    const cs = ps.containerStatuses?.find((c) => c.name === "check");
    const done = cond("Complete") ?? cond("SuccessCriteriaMet");
    const failed = cond("Failed") ?? cond("FailureTarget");
    if (done || failed) {
      const term = cs?.state?.terminated;
      outcome = parseCheckResult(term?.message, failed ? `Job failed: ${failed.reason ?? ""} ${failed.message ?? ""}`.trim() : "the check pod left no result");
      if (done && outcome.result !== "Passed" && !term?.message) outcome = { result: "Failed", message: "the check pod succeeded but left no result" };
      break;
    }
    const waiting = cs?.state?.waiting;
    const now = pod ? `pod ${pod.metadata.name ?? ""} ${ps.phase ?? "Pending"}${waiting?.reason ? `: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ""}` : ""}` : "no pod yet";
    if (now !== said) {
      io.err(`  ${now}\n`);
      said = now;
    }
    await sleep(o.pollMs ?? 1000);
  }
  if (!outcome) {
    io.err(`Job ${where} did not finish within ${o.timeoutSeconds} s; it is left in place (kubectl describe job -n ${claim.namespace} ${jobName}).\n`);
    return EXIT.TIMEOUT;
  }
  const status: VolumeCheckStatus = { ...outcome, time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"), jobName };
  await ctx.client.apply<ZeroFSVolume>(
    { apiVersion: API_VERSION, kind: KIND, metadata: { name: v.metadata.name, namespace: v.metadata.namespace }, status: { check: status } } as unknown as ZeroFSVolume,
    { subresource: "status" },
  );
  if (status.result === "Passed" && !o.keep) await ctx.client.delete(R.jobs, claim.namespace, jobName, { propagationPolicy: "Background" });
  if (o.json) io.out(JSON.stringify(status, null, 2) + "\n");
  else if (status.result === "Passed") {
    io.out(
      [
        `Check of ${v.metadata.namespace}/${name} passed:`,
        `  wrote, read back and verified ${(status.bytes ?? 0) / (1 << 20)} MiB: write ${status.writeMiBPerSecond} MiB/s (fsync included), read ${status.readMiBPerSecond} MiB/s`,
        `  metadata: ${status.metadataOps} operations on ${status.files} files, ${status.metadataOpsPerSecond} ops/s`,
        `  ${status.seconds} s in all; recorded in the volume's status.check`,
        "",
      ].join("\n"),
    );
  } else io.out(`Check of ${v.metadata.namespace}/${name} FAILED: ${status.message ?? "no message"}\n  Job ${where} is kept for inspection (kubectl logs -n ${claim.namespace} job/${jobName}).\n`);
  return status.result === "Passed" ? EXIT.OK : EXIT.FAILED;
}
