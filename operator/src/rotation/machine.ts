/**
 * The password rotation state machine, as a pure decision: given what exists now, what is the next
 * step? The reconciler performs that one step and comes back, so a crash (or an operator restart)
 * at any point simply resumes from the durable state. That state is:
 *  - the operator's password Secret (builders/secret.ts): `active` is always a password that opens
 *    the store; `pending` is set for the whole rotation; both change in single writes;
 *  - the Jobs, whose names derive from the target hash, so a lost step re-finds its Job.
 *
 * Steps:  Idle --user Secret changed--> Pending (write pending) --> StoppingServer (replicas 0,
 *         wait for no server pod) --> Changing (rotate Job: old -> new)
 *           rotate Job succeeded ------------------------------------------> commit
 *           rotate Job failed (or lost) --> Verifying (verify Job: new -> new)
 *               verify succeeded (the change had landed) -----------------> commit
 *               verify failed (the old password is still the one) --------> roll back
 *  commit:    active = pending, pending removed (one write); server back to 1 replica with the
 *             new password; Jobs deleted.
 *  roll back: pending removed, the target's hash remembered as failed (one write); server back
 *             with the old password; not retried until the user's Secret changes again.
 * Never locked out: the server only ever runs with `active`, and `active` only changes after a Job
 * proved that the new password opens the store.
 */
import type { PasswordRotationStatus } from "../api/types.ts";
import type { PasswordState } from "../builders/secret.ts";

export type JobPhase = "absent" | "running" | "succeeded" | "failed";

export interface JobObservation {
  name: string;
  phase: JobPhase;
  /** The server's error from the failed pod's termination message, or the Job's condition. */
  message?: string;
}

export interface RotationInput {
  /** The operator's Secret, parsed; undefined when it does not exist yet. */
  state: PasswordState | undefined;
  /** The user's current password and its hash under state's key; undefined when the user's Secret is unusable. */
  user?: { password: Buffer; hash: string };
  /** No server pod exists (the Deployment is at 0 and its pods are gone). */
  serverStopped: boolean;
  rotateJob: JobObservation;
  verifyJob: JobObservation;
  /** Last status, to carry the last result (Succeeded/Failed) across idle reconciles. */
  previous?: PasswordRotationStatus;
}

export type RotationAction =
  | { kind: "init" }
  | { kind: "idle" }
  | { kind: "start" }
  | { kind: "stop-server" }
  | { kind: "create-job"; job: "rotate" | "verify" }
  | { kind: "wait" }
  | { kind: "commit" }
  | { kind: "rollback"; message: string };

export interface RotationDecision {
  action: RotationAction;
  status: PasswordRotationStatus;
  /** Replicas the server Deployment must have now. */
  replicas: 0 | 1;
}

export function decideRotation(i: RotationInput): RotationDecision {
  const s = i.state;
  if (!s) {
    return { action: i.user ? { kind: "init" } : { kind: "idle" }, status: { phase: "Idle" }, replicas: 1 };
  }
  if (!s.pending) {
    const prev = i.previous;
    let status: PasswordRotationStatus = { phase: "Idle" };
    if (prev && (prev.phase === "Succeeded" || prev.phase === "Failed")) status = prev;
    else if (prev?.targetHash && prev.targetHash === s.activeHash) {
      // A rotation finished (its status write may have been lost in a crash): report it.
      status = { phase: "Succeeded", targetHash: prev.targetHash, startedAt: prev.startedAt, message: "the password was changed; the server runs with the new password" };
    } else if (prev?.targetHash && prev.targetHash === s.failedHash) {
      status = { phase: "Failed", targetHash: prev.targetHash, startedAt: prev.startedAt, lastFailedHash: s.failedHash, message: prev.message ?? "password rotation failed" };
    }
    if (i.user && i.user.hash !== s.activeHash && i.user.hash !== s.failedHash) {
      return {
        action: { kind: "start" },
        status: { phase: "Pending", targetHash: i.user.hash, message: "the password Secret changed; starting a rotation" },
        replicas: 1,
      };
    }
    return { action: { kind: "idle" }, status, replicas: 1 };
  }

  const p = s.pending;
  const base = { targetHash: p.hash, startedAt: p.startedAt || undefined };
  if (!i.serverStopped && i.rotateJob.phase === "absent" && i.verifyJob.phase === "absent") {
    return {
      action: { kind: "stop-server" },
      status: { ...base, phase: "StoppingServer", message: "stopping the server: the password change needs the store without a writer" },
      replicas: 0,
    };
  }
  const r = i.rotateJob;
  const v = i.verifyJob;
  if (r.phase === "succeeded" || v.phase === "succeeded") return { action: { kind: "commit" }, status: { ...base, phase: "Committing", message: "password changed; restarting the server with the new password" }, replicas: 0 };
  if (r.phase === "running") return { action: { kind: "wait" }, status: { ...base, phase: "Changing", jobName: r.name, message: `Job ${r.name} is changing the password` }, replicas: 0 };
  if (v.phase === "running") return { action: { kind: "wait" }, status: { ...base, phase: "Verifying", jobName: v.name, message: `Job ${v.name} checks whether the new password opens the store` }, replicas: 0 };
  if (r.phase === "absent" && v.phase === "absent") {
    return { action: { kind: "create-job", job: "rotate" }, status: { ...base, phase: "Changing", jobName: r.name, message: `starting Job ${r.name} to change the password` }, replicas: 0 };
  }
  if (v.phase === "absent") {
    // The rotate Job failed (or vanished after starting): learn whether the change landed anyway.
    const why = r.phase === "failed" ? `Job ${r.name} failed${r.message ? `: ${r.message}` : ""}` : `Job ${r.name} disappeared`;
    return { action: { kind: "create-job", job: "verify" }, status: { ...base, phase: "Verifying", jobName: v.name, message: `${why}; checking whether the new password opens the store` }, replicas: 0 };
  }
  // Verify failed: the new password does not open the store, so the old one still does.
  const cause = r.message ?? v.message ?? "the password change failed";
  return {
    action: { kind: "rollback", message: cause },
    status: { ...base, phase: "Failed", lastFailedHash: p.hash, message: `password rotation failed, the volume keeps its previous password: ${cause}` },
    replicas: 0,
  };
}
