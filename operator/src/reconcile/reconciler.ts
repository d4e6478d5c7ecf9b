/**
 * One reconcile of one ZeroFSVolume: level-triggered (it looks at everything, not at what
 * changed) and idempotent (a second run over an unchanged world writes nothing).
 *
 *   finalizer -> spec -> policy -> referenced Secrets -> password state + rotation step ->
 *   Service -> NetworkPolicy -> cache claim -> Deployment -> PersistentVolume + claim ->
 *   status (+ Events on transitions)
 *
 * Problems of the user's making (invalid spec, missing Secret) end in the status with a reason;
 * API failures are thrown so the work queue retries with backoff.
 */
import { LABEL_COMPONENT } from "../api/constants.ts";
import { checkPolicy, effectiveAllowedCIDRs } from "../api/policy.ts";
import { InvalidSpecError, normalizeSpec, type NormalizedSpec } from "../api/spec.ts";
import type { ZeroFSVolume, ZeroFSVolumeStatus } from "../api/types.ts";
import { ADMIN_TOKEN_KEY, adminTokenSecretName, buildAdminTokenSecret, readAdminToken } from "../builders/admin-token.ts";
import { buildDeployment } from "../builders/deployment.ts";
import { volumeSelector } from "../builders/labels.ts";
import { cacheClaimName, consumerClaim, passwordSecretName, persistentVolumeName, rotationJobName, serverName, verifyJobName } from "../builders/names.ts";
import { parsePasswordSecret, type PasswordState } from "../builders/secret.ts";
import { buildNetworkPolicy } from "../builders/network-policy.ts";
import { buildService } from "../builders/service.ts";
import { buildCacheClaim, buildConsumerClaim, buildPersistentVolume } from "../builders/storage.ts";
import { KubeApiError, isAlreadyExists, isInvalid, isNotFound } from "../kube/errors.ts";
import { R } from "../kube/resources.ts";
import type { Deployment, PersistentVolumeClaim, Secret } from "../kube/types.ts";
import { executeRotation, observeJob, serverPodsGone, type RotationDeps } from "../rotation/executor.ts";
import { decideRotation, type JobObservation } from "../rotation/machine.ts";
import { passwordHash } from "../rotation/password.ts";
import { computeStatus, rotationInProgress, type Observations, type Problem } from "../status/compute.ts";
import { COND_READY, findCondition } from "../status/conditions.ts";
import { writeStatus } from "../status/write.ts";
import { NotOwnedError, ensureApplied, foreignReason } from "./apply.ts";
import type { ReconcileDeps, ReconcileResult } from "./context.ts";
import { reconcileDeletion } from "./deletion.ts";
import { addFinalizer, hasFinalizer } from "./finalizer.ts";
import { readUserSecrets } from "./secrets.ts";

export class Reconciler {
  private readonly d: ReconcileDeps;

  constructor(deps: ReconcileDeps) {
    this.d = deps;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [ns = "", name = ""] = key.split("/");
    let v = this.d.caches.volumes.get(ns, name);
    if (!v) return {}; // deleted: owner references and the finalizer already took care of the children
    if (v.metadata.deletionTimestamp) return await reconcileDeletion({ ...this.d, log: this.d.log.child({ volume: key }) }, v);
    if (!hasFinalizer(v)) {
      try {
        v = await addFinalizer(this.d.client, v);
      } catch (err) {
        if (isNotFound(err)) return {}; // deleted since the cache saw it
        throw err;
      }
      this.d.caches.volumes.upsert(v);
    }
    try {
      const spec = normalizeSpec(v.spec, key);
      return await this.reconcileVolume(v, spec, key);
    } catch (err) {
      if (!(err instanceof InvalidSpecError)) throw err;
      const rotation = v.status?.passwordRotation ?? { phase: "Idle" };
      const st = computeStatus(v.status, { generation: v.metadata.generation ?? 0, configProblem: { reason: "InvalidSpec", message: err.message }, rotation }, now());
      await this.finish(v, st);
      return { phase: st.phase };
    }
  }

  private rotationDeps(key: string): RotationDeps {
    return { client: this.d.client, jobs: this.d.caches.jobs, events: this.d.events, metrics: this.d.metrics, log: this.d.log.child({ volume: key }) };
  }

  private async reconcileVolume(v: ZeroFSVolume, spec: NormalizedSpec, key: string): Promise<ReconcileResult> {
    const ns = v.metadata.namespace;
    const log = this.d.log.child({ volume: key });
    const image = spec.server.image ?? this.d.config.serverImage;
    const refused = checkPolicy(spec, ns, this.d.config.serverImage, this.d.config.policy);
    if (refused) {
      // Nothing is applied: a running server keeps its previous (allowed) settings.
      log.warn({ reason: refused.reason }, refused.message);
      const st = computeStatus(v.status, { generation: v.metadata.generation ?? 0, configProblem: refused, rotation: v.status?.passwordRotation ?? { phase: "Idle" } }, now());
      await this.finish(v, st);
      return { phase: st.phase };
    }
    const allowedClients = effectiveAllowedCIDRs(spec, this.d.config.network);
    const network = { allowedClients, httpAllowedClients: this.d.config.network.httpAllowedCIDRs };
    const secrets = await readUserSecrets(this.d.client, v, spec);

    // --- password state and rotation -------------------------------------------------------
    const stateSecret = await this.d.client.get<Secret>(R.secrets, ns, passwordSecretName(v));
    const foreignSecret = stateSecret && foreignReason(stateSecret, v, `Secret ${ns}/${passwordSecretName(v)}`);
    if (foreignSecret) {
      // Someone else's Secret under the name of the operator's password copy: never adopt (or
      // mount) it. Reported as a spec-level problem: nothing else can proceed without the copy.
      await this.d.events.emit(v, "Warning", "ResourceNotOwned", foreignSecret);
      const st = computeStatus(v.status, { generation: v.metadata.generation ?? 0, configProblem: { reason: "ResourceNotOwned", message: foreignSecret }, rotation: v.status?.passwordRotation ?? { phase: "Idle" } }, now());
      await this.finish(v, st);
      return { phase: st.phase };
    }
    let state: PasswordState | undefined = stateSecret ? parsePasswordSecret(stateSecret) : undefined;
    if (stateSecret && !state) {
      // Someone edited or replaced the operator's Secret. Overwriting it could lose the only copy
      // of the password the store opens with, so stop here and say so.
      const problem = { reason: "PasswordStateCorrupt", message: `Secret ${ns}/${passwordSecretName(v)} (the operator's copy of the active password) lacks its data or annotations; restore it, or delete it to start over from ${ns}/${spec.encryption.passwordSecretRef.name}` };
      const st = computeStatus(v.status, { generation: v.metadata.generation ?? 0, configProblem: problem, rotation: v.status?.passwordRotation ?? { phase: "Idle" } }, now());
      await this.finish(v, st);
      return { phase: st.phase };
    }
    const rd = this.rotationDeps(key);
    let rotateJob: JobObservation = { name: "", phase: "absent" };
    let verifyJob: JobObservation = { name: "", phase: "absent" };
    let serverStopped = true;
    if (state?.pending) {
      rotateJob = await observeJob(rd, v, rotationJobName(v, state.pending.hash));
      verifyJob = await observeJob(rd, v, verifyJobName(v, state.pending.hash));
      serverStopped = await serverPodsGone(this.d.client, v);
    }
    const user = secrets.password ? { password: secrets.password, hash: state ? passwordHash(state.hmacKey, secrets.password) : "" } : undefined;
    const decision = decideRotation({ state, user, serverStopped, rotateJob, verifyJob, previous: v.status?.passwordRotation });
    const executed = await executeRotation(rd, { volume: v, spec, image, decision, state, stateSecret, userPassword: secrets.password, jobBackoffLimit: this.d.config.jobBackoffLimit, network });
    state = executed.state;
    const requeue: number[] = [];
    if (executed.again) requeue.push(0);
    if (rotationInProgress(decision.status)) requeue.push(this.d.config.rotationPollMs);

    const obs: Observations = {
      generation: v.metadata.generation ?? 0,
      rotation: decision.status,
      configProblem: secrets.passwordProblem ?? secrets.credentialsProblem,
      activePasswordHash: state?.activeHash,
    };
    if (!state) {
      // Nothing can run without a password: wait for the Secret (its watch brings us back).
      const st = computeStatus(v.status, obs, now());
      await this.finish(v, st);
      return { phase: st.phase, requeueAfterMs: min(requeue) };
    }

    // --- children ----------------------------------------------------------------------------
    const problems: Problem[] = [];
    const attempt = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof KubeApiError && (err.status === 409 || err.status >= 500 || err.status === 0)) throw err; // transient: retry with backoff
        if (err instanceof NotOwnedError) {
          log.warn({ err: err.message }, `${what} not applied: the object belongs to someone else`);
          await this.d.events.emit(v, "Warning", err.reason, err.message);
          problems.push({ reason: err.reason, message: err.message });
          return;
        }
        log.warn({ err: (err as Error).message }, `${what} failed`);
        problems.push({ reason: "ApplyFailed", message: (err as Error).message });
      }
    };

    let clusterIP: string | undefined;
    await attempt("Service", async () => {
      const live = this.d.caches.services.get(ns, serverName(v));
      let desired = buildService(v, live ? undefined : v.status?.server?.clusterIP);
      let r;
      try {
        r = await ensureApplied(this.d.client, desired, live, this.d.caches.services, v);
      } catch (err) {
        // The recorded ClusterIP was taken by another Service: accept a new one (the PV will say so).
        if (!live && desired.spec.clusterIP && isInvalid(err)) {
          desired = buildService(v);
          r = await ensureApplied(this.d.client, desired, undefined, this.d.caches.services, v);
        } else throw err;
      }
      if (r.created) await this.d.events.emit(v, "Normal", "ServiceCreated", `created Service ${ns}/${serverName(v)}`);
      const ip = r.obj.spec.clusterIP;
      if (ip && ip !== "None") clusterIP = ip;
    });

    if (this.d.config.network.networkPolicy) {
      await attempt("NetworkPolicy", async () => {
        const desired = buildNetworkPolicy(v, spec, { allowedClients, metricsFrom: this.d.config.network.metricsFrom, adminFrom: this.d.config.network.adminFrom });
        await ensureApplied(this.d.client, desired, this.d.caches.networkPolicies.get(ns, serverName(v)), this.d.caches.networkPolicies, v);
      });
    }

    // Before the Deployment: the server pod mounts it.
    await attempt("admin token Secret", async () => {
      const name = adminTokenSecretName(v);
      const live = await this.d.client.get<Secret>(R.secrets, ns, name);
      if (live) {
        const foreign = foreignReason(live, v, `Secret ${ns}/${name}`);
        if (foreign) throw new NotOwnedError(foreign);
        if (!readAdminToken(live)) throw new Error(`Secret ${ns}/${name} (the admin API token) has no key ${ADMIN_TOKEN_KEY}; delete it and the operator makes a new one`);
        return;
      }
      try {
        await this.d.client.create(buildAdminTokenSecret(v));
      } catch (err) {
        if (!isAlreadyExists(err)) throw err; // made concurrently: checked on the next reconcile
      }
    });

    const cacheName = cacheClaimName(v, spec);
    await attempt("cache PersistentVolumeClaim", async () => {
      await ensureApplied(this.d.client, buildCacheClaim(v, spec), this.d.caches.pvcs.get(ns, cacheName), this.d.caches.pvcs, v);
    });

    let deployment: Deployment | undefined;
    await attempt("Deployment", async () => {
      const desired = buildDeployment({
        volume: v,
        spec,
        image,
        cacheClaimName: cacheName,
        replicas: decision.replicas,
        passwordHash: state.activeHash,
        credentialsDigest: secrets.credentialsDigest,
        network,
      });
      const r = await ensureApplied(this.d.client, desired, this.d.caches.deployments.get(ns, serverName(v)), this.d.caches.deployments, v);
      deployment = r.obj;
      if (r.created) await this.d.events.emit(v, "Normal", "ServerCreated", `created Deployment ${ns}/${serverName(v)} (image ${image})`);
    });

    // Cache claims of an earlier cache setting: the Deployment no longer uses them.
    await attempt("old cache claims", async () => {
      for (const c of this.d.caches.pvcs.list((p) => p.metadata.namespace === ns && p.metadata.labels?.[LABEL_COMPONENT] === "cache" && p.metadata.labels?.["zerofs.io/volume"] === v.metadata.name)) {
        if (c.metadata.name !== cacheName && !c.metadata.deletionTimestamp) {
          await this.d.client.delete(R.pvcs, ns, c.metadata.name ?? "");
          log.info({ claim: c.metadata.name }, "deleted the previous cache claim");
        }
      }
    });

    let pvObs: Observations["persistentVolume"];
    let claimObs: Observations["claim"];
    if (spec.persistentVolume.create && clusterIP) {
      const pvName = persistentVolumeName(v);
      const ip = clusterIP;
      // The PV is pre-bound (claimRef) to the consumers' claim by name: if someone else's claim
      // already has that name, the PV would hand them the volume. Check the claim first and
      // provision neither while the name is taken.
      const c = spec.persistentVolume.claim.create ? consumerClaim(v, spec) : undefined;
      let claimLive: PersistentVolumeClaim | undefined;
      let claimFree = true;
      if (c) {
        await attempt("PersistentVolumeClaim", async () => {
          claimFree = false;
          claimLive = this.d.caches.pvcs.get(c.namespace, c.name) ?? (await this.d.client.get<PersistentVolumeClaim>(R.pvcs, c.namespace, c.name));
          const foreign = claimLive && foreignReason(claimLive, v, `PersistentVolumeClaim ${c.namespace}/${c.name}`);
          if (foreign) throw new NotOwnedError(foreign);
          if (claimLive?.spec.volumeName && claimLive.spec.volumeName !== pvName) {
            throw new Error(`PersistentVolumeClaim ${c.namespace}/${c.name} already exists and is bound to ${claimLive.spec.volumeName}, not ${pvName}; choose another spec.persistentVolume.claim.name`);
          }
          claimFree = true;
        });
      }
      if (claimFree) {
        await attempt("PersistentVolume", async () => {
          const live = this.d.caches.pvs.get(undefined, pvName);
          if (live?.spec.nfs && live.spec.nfs.server !== ip) {
            throw new Error(
              `PersistentVolume ${pvName} points at ${live.spec.nfs.server} but Service ${ns}/${serverName(v)} now has ClusterIP ${ip}; a PV's NFS server cannot change: delete the PV (and its claim) once no pod uses it and the operator recreates it`,
            );
          }
          const r = await ensureApplied(this.d.client, buildPersistentVolume(v, spec, ip), live, this.d.caches.pvs, v);
          if (r.created) await this.d.events.emit(v, "Normal", "PersistentVolumeCreated", `created PersistentVolume ${pvName} for ${ip}:/`);
          pvObs = { name: pvName, phase: r.obj.status?.phase };
        });
      }
      if (c && claimFree) {
        await attempt("PersistentVolumeClaim", async () => {
          const r = await ensureApplied(this.d.client, buildConsumerClaim(v, spec, claimLive?.spec.resources?.requests?.storage), claimLive, this.d.caches.pvcs, v);
          claimObs = { namespace: c.namespace, name: c.name, phase: r.obj.status?.phase };
        });
      }
    }

    // --- status ------------------------------------------------------------------------------
    obs.clusterIP = clusterIP;
    obs.serviceName = serverName(v);
    obs.persistentVolume = pvObs;
    obs.claim = claimObs;
    obs.mountOptions = spec.persistentVolume.mountOptions;
    obs.applyProblem = problems[0] && { reason: problems[0].reason, message: problems.map((p) => p.message).join("; ") };
    obs.server = deployment ? serverObservation(deployment, decision.replicas) : undefined;
    const st = computeStatus(v.status, obs, now());
    await this.finish(v, st);
    if (!obs.server?.available && decision.replicas === 1) requeue.push(30_000); // Deployment events normally come first; this is a safety net
    if (obs.claim && obs.claim.phase !== "Bound") requeue.push(2_000);
    return { phase: st.phase, requeueAfterMs: min(requeue) };
  }

  /** Writes status and emits Events for transitions of Ready and of the problem reason. */
  private async finish(v: ZeroFSVolume, st: ZeroFSVolumeStatus): Promise<void> {
    const before = findCondition(v.status?.conditions, COND_READY);
    const after = findCondition(st.conditions, COND_READY);
    await writeStatus(this.d.client, v, st, this.d.caches.volumes);
    if (!after || (before?.status === after.status && before.reason === after.reason)) return;
    if (after.status === "True") await this.d.events.emit(v, "Normal", "Ready", after.message);
    else if (st.phase === "Pending" || st.phase === "Degraded") await this.d.events.emit(v, "Warning", after.reason, after.message);
  }
}

export function serverObservation(dep: Deployment, desiredReplicas: number): Observations["server"] {
  const s = dep.status ?? {};
  const gen = dep.metadata.generation ?? 0;
  const current = (s.observedGeneration ?? 0) >= gen;
  const conds = s.conditions ?? [];
  const progressing = conds.find((c) => c.type === "Progressing");
  const availableCond = conds.find((c) => c.type === "Available");
  const available = desiredReplicas > 0 && current && (s.availableReplicas ?? 0) >= 1 && (s.updatedReplicas ?? 0) >= 1 && availableCond?.status === "True";
  const out: NonNullable<Observations["server"]> = { desiredReplicas, available };
  if (progressing?.status === "False" && progressing.reason === "ProgressDeadlineExceeded") {
    out.stuck = { reason: "ServerProgressDeadlineExceeded", message: `Deployment ${dep.metadata.namespace}/${dep.metadata.name}: ${progressing.message ?? "progress deadline exceeded"}` };
  }
  if (!available) {
    out.waiting = !current
      ? `waiting for Deployment ${dep.metadata.namespace}/${dep.metadata.name} to roll out generation ${gen}`
      : `Deployment ${dep.metadata.namespace}/${dep.metadata.name}: ${s.availableReplicas ?? 0} of ${desiredReplicas} server replicas available${availableCond?.message ? ` (${availableCond.message})` : ""}`;
  }
  return out;
}

const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
const min = (xs: number[]): number | undefined => (xs.length ? Math.min(...xs) : undefined);

export { volumeSelector };
