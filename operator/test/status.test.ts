import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Condition } from "../src/api/types.ts";
import { serverObservation } from "../src/reconcile/reconciler.ts";
import { computeStatus, MAX_BLOCKERS_SHOWN, type Observations } from "../src/status/compute.ts";
import { mergeConditions } from "../src/status/conditions.ts";

const T0 = "2026-01-01T00:00:00Z";
const T1 = "2026-01-01T00:05:00Z";
const cond = (conds: Condition[] | undefined, type: string) => conds?.find((c) => c.type === type);
const ready: Observations = {
  generation: 4,
  rotation: { phase: "Idle" },
  server: { desiredReplicas: 1, available: true },
  clusterIP: "10.0.0.5",
  serviceName: "zerofs-data",
  persistentVolume: { name: "zerofs-apps-data", phase: "Bound" },
  claim: { namespace: "apps", name: "data", phase: "Bound" },
  mountOptions: ["nfsvers=3"],
  activePasswordHash: "hmac-sha256:x",
};

describe("computeStatus", () => {
  it("Ready when the server is available and the claim bound", () => {
    const s = computeStatus(undefined, ready, T0);
    assert.equal(s.phase, "Ready");
    assert.equal(s.observedGeneration, 4);
    assert.deepEqual(s.server, { clusterIP: "10.0.0.5", port: 2049, path: "/", serviceName: "zerofs-data" });
    assert.equal(cond(s.conditions, "Ready")?.status, "True");
    assert.equal(cond(s.conditions, "Progressing")?.status, "False");
    assert.equal(cond(s.conditions, "Degraded")?.status, "False");
    assert.equal(cond(s.conditions, "PasswordRotation")?.status, "False");
    assert.deepEqual(s.conditions?.map((c) => c.type), ["Ready", "Progressing", "Degraded", "PasswordRotation"]);
    assert.equal(s.persistentVolumeName, "zerofs-apps-data");
    assert.equal(s.activePasswordHash, "hmac-sha256:x");
    assert.ok(!JSON.stringify(s).includes("password\":"), "no password in status");
  });

  it("keeps lastTransitionTime while a condition's status does not change", () => {
    const a = computeStatus(undefined, ready, T0);
    const b = computeStatus(a, ready, T1);
    assert.deepEqual(b, a, "an unchanged world computes an identical status (no write)");
    const c = computeStatus(b, { ...ready, server: { desiredReplicas: 1, available: false, waiting: "0 of 1" } }, T1);
    assert.equal(cond(c.conditions, "Ready")?.lastTransitionTime, T1);
    assert.equal(cond(c.conditions, "Degraded")?.lastTransitionTime, T0);
  });

  it("a missing Secret is Ready=False with its reason, Pending before anything ran", () => {
    const s = computeStatus(undefined, { generation: 1, rotation: { phase: "Idle" }, configProblem: { reason: "PasswordSecretNotFound", message: "password Secret apps/pw not found" } }, T0);
    assert.equal(s.phase, "Pending");
    assert.equal(cond(s.conditions, "Ready")?.reason, "PasswordSecretNotFound");
    assert.equal(cond(s.conditions, "Ready")?.message, "password Secret apps/pw not found");
    assert.equal(cond(s.conditions, "Degraded")?.status, "True");
    const running = computeStatus(undefined, { ...ready, configProblem: { reason: "PasswordSecretNotFound", message: "m" } }, T0);
    assert.equal(running.phase, "Degraded");
    assert.equal(cond(running.conditions, "Ready")?.status, "False");
  });

  it("Provisioning while the Deployment is not available; Degraded when its progress deadline passed", () => {
    const s = computeStatus(undefined, { ...ready, server: { desiredReplicas: 1, available: false, waiting: "0 of 1 available" } }, T0);
    assert.equal(s.phase, "Provisioning");
    assert.equal(cond(s.conditions, "Progressing")?.status, "True");
    const stuck = computeStatus(undefined, { ...ready, server: { desiredReplicas: 1, available: false, stuck: { reason: "ServerProgressDeadlineExceeded", message: "deadline" } } }, T0);
    assert.equal(stuck.phase, "Degraded");
    assert.equal(cond(stuck.conditions, "Degraded")?.reason, "ServerProgressDeadlineExceeded");
  });

  it("waits for the claim to bind", () => {
    const s = computeStatus(undefined, { ...ready, claim: { namespace: "apps", name: "data", phase: "Pending" } }, T0);
    assert.equal(s.phase, "Provisioning");
    assert.equal(cond(s.conditions, "Ready")?.reason, "ClaimNotBound");
  });

  it("Rotating while a password rotation runs; Failed rotation degrades a running volume", () => {
    const s = computeStatus(undefined, { ...ready, rotation: { phase: "Changing", targetHash: "h2", jobName: "j", message: "Job j is changing the password" } }, T0);
    assert.equal(s.phase, "Rotating");
    assert.equal(cond(s.conditions, "PasswordRotation")?.status, "True");
    assert.equal(cond(s.conditions, "PasswordRotation")?.reason, "Changing");
    assert.equal(cond(s.conditions, "Ready")?.status, "False");
    const f = computeStatus(undefined, { ...ready, rotation: { phase: "Failed", message: "wrong password" } }, T0);
    assert.equal(f.phase, "Ready");
    assert.equal(cond(f.conditions, "Ready")?.status, "True");
    assert.equal(cond(f.conditions, "Degraded")?.reason, "PasswordRotationFailed");
    assert.equal(cond(f.conditions, "PasswordRotation")?.reason, "Failed");
  });

  it("Deleting names what blocks the deletion", () => {
    const s = computeStatus(undefined, { ...ready, deleting: { blockers: ["Pod apps/web mounts PersistentVolumeClaim apps/data"], step: "" } }, T0);
    assert.equal(s.phase, "Deleting");
    assert.equal(cond(s.conditions, "Ready")?.reason, "DeletionBlocked");
    assert.match(s.message ?? "", /Pod apps\/web mounts PersistentVolumeClaim apps\/data/);
  });

  it("Deleting names the first blockers and counts the rest (thousands of finished pods stay one short message)", () => {
    const blockers = Array.from({ length: 2000 }, (_, i) => `Pod apps/job-${i} (Succeeded) still references PersistentVolumeClaim apps/data`);
    const s = computeStatus(undefined, { ...ready, deleting: { blockers, step: "" } }, T0);
    const m = cond(s.conditions, "Ready")?.message ?? "";
    assert.match(m, /Pod apps\/job-0 \(Succeeded\)/);
    assert.match(m, new RegExp(`Pod apps/job-${MAX_BLOCKERS_SHOWN - 1} `));
    assert.doesNotMatch(m, new RegExp(`Pod apps/job-${MAX_BLOCKERS_SHOWN} `));
    assert.match(m, new RegExp(`; and ${2000 - MAX_BLOCKERS_SHOWN} more$`));
    assert.ok(m.length < 2000, `${m.length} characters`);
  });

  it("an apply failure degrades with the API's message", () => {
    const s = computeStatus(undefined, { ...ready, applyProblem: { reason: "ApplyFailed", message: "apply Deployment apps/zerofs-data: HTTP 422" } }, T0);
    assert.equal(s.phase, "Degraded");
    assert.equal(cond(s.conditions, "Degraded")?.message, "apply Deployment apps/zerofs-data: HTTP 422");
  });
});

describe("mergeConditions", () => {
  it("keeps foreign conditions", () => {
    const prev: Condition[] = [{ type: "Custom", status: "True", reason: "X", message: "", lastTransitionTime: T0 }];
    const out = mergeConditions(prev, [{ type: "Ready", status: "True", reason: "R", message: "" }], T1, 1);
    assert.deepEqual(out.map((c) => c.type), ["Ready", "Custom"]);
  });
});

describe("serverObservation", () => {
  const dep = (status: Record<string, unknown>, generation = 2) => ({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "zerofs-data", namespace: "apps", generation }, spec: {}, status });
  it("available only when the current generation has an available replica", () => {
    const ok = { observedGeneration: 2, availableReplicas: 1, updatedReplicas: 1, conditions: [{ type: "Available", status: "True" }] };
    assert.equal(serverObservation(dep(ok), 1)?.available, true);
    assert.equal(serverObservation(dep({ ...ok, observedGeneration: 1 }), 1)?.available, false);
    assert.match(serverObservation(dep({ ...ok, observedGeneration: 1 }), 1)?.waiting ?? "", /generation 2/);
    assert.equal(serverObservation(dep(ok), 0)?.available, false, "scaled to zero is not available");
    const stuck = serverObservation(dep({ observedGeneration: 2, conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: "took too long" }] }), 1);
    assert.equal(stuck?.stuck?.reason, "ServerProgressDeadlineExceeded");
  });
});
