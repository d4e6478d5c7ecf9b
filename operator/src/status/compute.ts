/**
 * From what a reconcile observed to the volume's status: phase, message and the Ready,
 * Progressing, Degraded and PasswordRotation conditions. Pure, so every rule is unit-tested.
 */
import { NFS_PORT } from "../api/constants.ts";
import type { Phase, PasswordRotationStatus, ZeroFSVolumeStatus } from "../api/types.ts";
import { COND_DEGRADED, COND_PASSWORD_ROTATION, COND_PROGRESSING, COND_READY, mergeConditions, type ConditionInput } from "./conditions.ts";

export interface Problem {
  reason: string;
  message: string;
}

export interface Observations {
  generation: number;
  /** Set once deletion started; `blockers` name what still uses the volume. */
  deleting?: { blockers: string[]; step: string };
  /** The spec or a referenced Secret is unusable: nothing can progress until the user fixes it. */
  configProblem?: Problem;
  /** An API write failed (e.g. a child rejected by admission). */
  applyProblem?: Problem;
  server?: {
    desiredReplicas: number;
    available: boolean;
    /** Deployment condition Progressing=False/ProgressDeadlineExceeded. */
    stuck?: Problem;
    /** What the Deployment/Pods say while not available. */
    waiting?: string;
  };
  clusterIP?: string;
  serviceName?: string;
  persistentVolume?: { name: string; phase?: string };
  claim?: { namespace: string; name: string; phase?: string };
  mountOptions?: string[];
  activePasswordHash?: string;
  rotation: PasswordRotationStatus;
}

const ROTATION_DONE = new Set(["Idle", "Succeeded", "Failed"]);

export function rotationInProgress(r: PasswordRotationStatus): boolean {
  return !ROTATION_DONE.has(r.phase);
}

export function computeStatus(prev: ZeroFSVolumeStatus | undefined, o: Observations, now: string): ZeroFSVolumeStatus {
  let phase: Phase;
  let message: string;
  const ready: ConditionInput = { type: COND_READY, status: "False", reason: "", message: "" };
  const progressing: ConditionInput = { type: COND_PROGRESSING, status: "False", reason: "Reconciled", message: "all resources are up to date" };
  const degraded: ConditionInput = { type: COND_DEGRADED, status: "False", reason: "AsExpected", message: "" };
  const rotating = rotationInProgress(o.rotation);
  const rotation: ConditionInput = rotating
    ? { type: COND_PASSWORD_ROTATION, status: "True", reason: o.rotation.phase, message: o.rotation.message ?? "" }
    : {
        type: COND_PASSWORD_ROTATION,
        status: "False",
        reason: o.rotation.phase === "Idle" ? "NoRotation" : o.rotation.phase,
        message: o.rotation.message ?? "",
      };

  if (o.deleting) {
    phase = "Deleting";
    const blocked = o.deleting.blockers.length > 0;
    message = blocked ? `deletion waits for: ${listBlockers(o.deleting.blockers)}` : `deleting: ${o.deleting.step}`;
    Object.assign(ready, { reason: blocked ? "DeletionBlocked" : "Deleting", message });
    Object.assign(progressing, { status: "True", reason: blocked ? "DeletionBlocked" : "Deleting", message });
  } else if (o.configProblem) {
    phase = o.server ? "Degraded" : "Pending";
    message = o.configProblem.message;
    Object.assign(ready, o.configProblem);
    Object.assign(degraded, { status: "True", ...o.configProblem });
    Object.assign(progressing, { reason: "WaitingForUser", message: "nothing can progress until the problem in Ready is fixed" });
  } else if (rotating) {
    phase = "Rotating";
    message = `password rotation: ${o.rotation.message ?? o.rotation.phase}`;
    Object.assign(ready, { reason: "PasswordRotationInProgress", message: "the server is stopped while the encryption password changes" });
    Object.assign(progressing, { status: "True", reason: "PasswordRotationInProgress", message });
  } else if (!o.server || !o.server.available || !o.clusterIP) {
    const waiting = !o.clusterIP ? "waiting for the Service's ClusterIP" : (o.server?.waiting ?? "waiting for the server Deployment to become available");
    phase = o.server?.stuck ? "Degraded" : "Provisioning";
    message = o.server?.stuck?.message ?? waiting;
    Object.assign(ready, { reason: o.server?.stuck ? o.server.stuck.reason : "ServerNotAvailable", message });
    Object.assign(progressing, { status: "True", reason: "ServerStarting", message: waiting });
    if (o.server?.stuck) Object.assign(degraded, { status: "True", ...o.server.stuck });
  } else if (o.persistentVolume && o.claim && o.claim.phase !== "Bound") {
    phase = "Provisioning";
    message = `waiting for PersistentVolumeClaim ${o.claim.namespace}/${o.claim.name} to bind to ${o.persistentVolume.name} (claim phase ${o.claim.phase ?? "unknown"})`;
    Object.assign(ready, { reason: "ClaimNotBound", message });
    Object.assign(progressing, { status: "True", reason: "ClaimBinding", message });
  } else {
    phase = "Ready";
    message = `serving NFS at ${o.clusterIP}:${NFS_PORT}`;
    Object.assign(ready, { status: "True", reason: "ServerAvailable", message });
  }

  if (o.applyProblem && !o.deleting) {
    Object.assign(degraded, { status: "True", ...o.applyProblem });
    if (phase === "Ready" || phase === "Provisioning") phase = "Degraded";
    message = o.applyProblem.message;
  } else if (!o.deleting && !o.configProblem && o.rotation.phase === "Failed" && degraded.status === "False") {
    // The server keeps running with the old password: usable, but not what the user asked for.
    Object.assign(degraded, { status: "True", reason: "PasswordRotationFailed", message: o.rotation.message ?? "password rotation failed" });
  }

  const status: ZeroFSVolumeStatus = {
    observedGeneration: o.generation,
    phase,
    message,
    conditions: mergeConditions(prev?.conditions, [ready, progressing, degraded, rotation], now, o.generation),
    passwordRotation: o.rotation,
  };
  if (o.clusterIP) status.server = { clusterIP: o.clusterIP, port: NFS_PORT, path: "/", serviceName: o.serviceName };
  else if (prev?.server) status.server = prev.server; // keep the last known address (the Service is re-created with it)
  if (o.mountOptions) status.mountOptions = o.mountOptions;
  if (o.persistentVolume) status.persistentVolumeName = o.persistentVolume.name;
  if (o.claim) status.persistentVolumeClaim = { namespace: o.claim.namespace, name: o.claim.name };
  if (o.activePasswordHash) status.activePasswordHash = o.activePasswordHash;
  return status;
}

/**
 * The first blockers and a count of the rest: a claim used by a Job's thousands of finished pods
 * must not make the condition (and the Event that repeats it) grow without bound.
 */
export const MAX_BLOCKERS_SHOWN = 10;
function listBlockers(blockers: readonly string[]): string {
  const shown = blockers.slice(0, MAX_BLOCKERS_SHOWN).join("; ");
  const more = blockers.length - MAX_BLOCKERS_SHOWN;
  return more > 0 ? `${shown}; and ${more} more` : shown;
}
