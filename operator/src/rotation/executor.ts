/**
 * Performs the step decideRotation() chose. Every write of the operator's password Secret carries
 * the resourceVersion it was decided from, so two operator replicas (a leader change mid-step)
 * can never both advance the machine: the loser gets 409 Conflict and reconciles again.
 */
import type { Logger } from "pino";
import { LABEL_JOB_KIND, LABEL_VOLUME_NAME } from "../api/constants.ts";
import type { NormalizedSpec } from "../api/spec.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import { buildPasswordJob, passwordJobName } from "../builders/jobs.ts";
import { serverSelector, volumeSelector } from "../builders/labels.ts";
import { buildPasswordSecret, type PasswordState } from "../builders/secret.ts";
import type { EventRecorder } from "../controller/events.ts";
import type { OperatorMetrics } from "../controller/metrics.ts";
import type { KubeClient } from "../kube/client.ts";
import { isAlreadyExists } from "../kube/errors.ts";
import type { Informer } from "../kube/informer.ts";
import { R } from "../kube/resources.ts";
import type { Job, Pod, Secret } from "../kube/types.ts";
import type { JobObservation, RotationDecision } from "./machine.ts";
import { newHmacKey, passwordHash } from "./password.ts";

export interface RotationDeps {
  client: KubeClient;
  jobs: Informer<Job>;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
}

/** Observes one password Job from the cache, and on failure the server's message from its pods. */
export async function observeJob(d: RotationDeps, v: ZeroFSVolume, name: string): Promise<JobObservation> {
  const job = d.jobs.get(v.metadata.namespace, name);
  if (!job) return { name, phase: "absent" };
  const conds = job.status?.conditions ?? [];
  const isTrue = (t: string) => conds.some((c) => c.type === t && c.status === "True");
  if (isTrue("Complete")) return { name, phase: "succeeded" };
  if (!isTrue("Failed")) return { name, phase: "running" };
  const failed = conds.find((c) => c.type === "Failed");
  let message = failed?.message ? `${failed.reason ?? "Failed"}: ${failed.message}` : failed?.reason;
  try {
    const pods = await d.client.list<Pod>(R.pods, v.metadata.namespace, { labelSelector: `batch.kubernetes.io/job-name=${name}` });
    const latest = pods.items.sort((a, b) => (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""))[0];
    const term = latest?.status?.containerStatuses?.[0]?.state?.terminated ?? latest?.status?.containerStatuses?.[0]?.lastState?.terminated;
    if (term?.message) message = `exit code ${term.exitCode}: ${term.message.trim().slice(-1000)}`;
    else if (term) message = `exit code ${term.exitCode}${term.reason ? ` (${term.reason})` : ""}`;
  } catch (err) {
    d.log.debug({ err: (err as Error).message }, "could not read the failed Job's pods");
  }
  return { name, phase: "failed", message };
}

export async function serverPodsGone(client: KubeClient, v: ZeroFSVolume): Promise<boolean> {
  const sel = Object.entries(serverSelector(v)).map(([k, val]) => `${k}=${val}`).join(",");
  const pods = await client.list<Pod>(R.pods, v.metadata.namespace, { labelSelector: sel });
  return pods.items.length === 0;
}

export interface ExecuteInput {
  volume: ZeroFSVolume;
  spec: NormalizedSpec | undefined;
  image: string;
  decision: RotationDecision;
  state: PasswordState | undefined;
  stateSecret: Secret | undefined;
  userPassword: Buffer | undefined;
  jobBackoffLimit: number;
  network: { allowedClients: string[]; httpAllowedClients: string[] };
}

/** Returns the password state after the step (re-read on the next reconcile anyway) and whether to come back at once. */
export async function executeRotation(d: RotationDeps, i: ExecuteInput): Promise<{ state: PasswordState | undefined; again: boolean }> {
  const { volume: v, decision, state } = i;
  const a = decision.action;
  const rv = i.stateSecret?.metadata.resourceVersion;
  const key = `${v.metadata.namespace}/${v.metadata.name}`;
  switch (a.kind) {
    case "init": {
      if (!i.userPassword) return { state, again: false };
      const hmacKey = newHmacKey();
      const s: PasswordState = { active: i.userPassword, activeHash: passwordHash(hmacKey, i.userPassword), hmacKey };
      // create, not apply: if the Secret appeared meanwhile (another replica), fail rather than overwrite it.
      try {
        await d.client.create(buildPasswordSecret(v, s));
      } catch (err) {
        if (isAlreadyExists(err)) return { state, again: true };
        throw err;
      }
      d.log.info("created the operator's password Secret");
      return { state: s, again: false };
    }
    case "start": {
      if (!state || !i.userPassword) return { state, again: false };
      const s: PasswordState = {
        ...state,
        pending: { password: i.userPassword, hash: passwordHash(state.hmacKey, i.userPassword), startedAt: new Date().toISOString() },
      };
      delete s.failedHash;
      await d.client.apply(buildPasswordSecret(v, s, rv));
      d.log.info({ target: s.pending?.hash }, "password rotation started");
      await d.events.emit(v, "Normal", "PasswordRotationStarted", "the password Secret changed: stopping the server to change the encryption password");
      return { state: s, again: true };
    }
    case "create-job": {
      if (!state?.pending || !i.spec) return { state, again: false };
      const job = buildPasswordJob(a.job, { volume: v, spec: i.spec, image: i.image, targetHash: state.pending.hash, backoffLimit: i.jobBackoffLimit, network: i.network });
      try {
        const created = await d.client.create(job);
        d.jobs.upsert(created);
        d.log.info({ job: job.metadata.name }, `created password ${a.job} Job`);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      return { state, again: false };
    }
    case "commit": {
      if (!state?.pending) return { state, again: false };
      const s: PasswordState = { active: state.pending.password, activeHash: state.pending.hash, hmacKey: state.hmacKey };
      await d.client.apply(buildPasswordSecret(v, s, rv));
      d.metrics.rotations.inc({ result: "succeeded" });
      d.log.info({ active: s.activeHash }, "password rotation committed");
      await d.events.emit(v, "Normal", "PasswordRotated", "the encryption password was changed; restarting the server with the new password");
      await deletePasswordJobs(d, v);
      return { state: s, again: true };
    }
    case "rollback": {
      if (!state?.pending) return { state, again: false };
      const s: PasswordState = { active: state.active, activeHash: state.activeHash, hmacKey: state.hmacKey, failedHash: state.pending.hash };
      await d.client.apply(buildPasswordSecret(v, s, rv));
      d.metrics.rotations.inc({ result: "failed" });
      d.log.warn({ key, cause: a.message }, "password rotation failed; keeping the previous password");
      await d.events.emit(v, "Warning", "PasswordRotationFailed", `the volume keeps its previous password: ${a.message}`);
      await deletePasswordJobs(d, v);
      return { state: s, again: true };
    }
    case "idle": {
      // Leftover Jobs of a rotation that finished before a crash: remove them.
      if (state && !state.pending && d.jobs.list((j) => isVolumeJob(j, v)).length > 0) await deletePasswordJobs(d, v);
      return { state, again: false };
    }
    case "stop-server":
    case "wait":
      return { state, again: false };
  }
}

function isVolumeJob(j: Job, v: ZeroFSVolume): boolean {
  return j.metadata.namespace === v.metadata.namespace && j.metadata.labels?.[LABEL_JOB_KIND] !== undefined && j.metadata.labels?.[LABEL_VOLUME_NAME] === v.metadata.name;
}

export async function deletePasswordJobs(d: RotationDeps, v: ZeroFSVolume): Promise<void> {
  const jobs = await d.client.list<Job>(R.jobs, v.metadata.namespace, { labelSelector: `${volumeSelector(v)},${LABEL_JOB_KIND}` });
  for (const j of jobs.items) {
    // Background: the Job's pods go with it.
    await d.client.delete(R.jobs, v.metadata.namespace, j.metadata.name ?? "", { propagationPolicy: "Background" });
    d.jobs.forget(v.metadata.namespace, j.metadata.name ?? "");
  }
}

export { passwordJobName };
