import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PasswordState } from "../src/builders/secret.ts";
import { decideRotation, type JobObservation, type RotationInput } from "../src/rotation/machine.ts";
import { checkPassword, normalizePassword, passwordHash } from "../src/rotation/password.ts";

const key = Buffer.alloc(32, 7);
const h = (p: string) => passwordHash(key, Buffer.from(p));
const absent = (name: string): JobObservation => ({ name, phase: "absent" });
const base = (over: Partial<RotationInput> = {}): RotationInput => ({
  state: { active: Buffer.from("old"), activeHash: h("old"), hmacKey: key },
  user: { password: Buffer.from("old"), hash: h("old") },
  serverStopped: false,
  rotateJob: absent("rot"),
  verifyJob: absent("ver"),
  ...over,
});
const rotating = (over: Partial<PasswordState> = {}): PasswordState => ({
  active: Buffer.from("old"),
  activeHash: h("old"),
  hmacKey: key,
  pending: { password: Buffer.from("new"), hash: h("new"), startedAt: "2026-01-01T00:00:00Z" },
  ...over,
});

describe("decideRotation", () => {
  it("creates the state from the user's password on first sight", () => {
    const d = decideRotation(base({ state: undefined }));
    assert.equal(d.action.kind, "init");
    assert.equal(d.replicas, 1);
  });

  it("does nothing while the passwords match", () => {
    const d = decideRotation(base());
    assert.equal(d.action.kind, "idle");
    assert.equal(d.status.phase, "Idle");
  });

  it("starts when the user's Secret holds another password", () => {
    const d = decideRotation(base({ user: { password: Buffer.from("new"), hash: h("new") } }));
    assert.equal(d.action.kind, "start");
    assert.equal(d.status.targetHash, h("new"));
    assert.equal(d.replicas, 1, "the server keeps running until the state is durable");
  });

  it("stops the server, then runs the rotate Job, then commits on success", () => {
    const user = { password: Buffer.from("new"), hash: h("new") };
    let d = decideRotation(base({ state: rotating(), user }));
    assert.deepEqual([d.action.kind, d.replicas, d.status.phase], ["stop-server", 0, "StoppingServer"]);
    d = decideRotation(base({ state: rotating(), user, serverStopped: true }));
    assert.deepEqual(d.action, { kind: "create-job", job: "rotate" });
    assert.equal(d.replicas, 0);
    d = decideRotation(base({ state: rotating(), user, serverStopped: true, rotateJob: { name: "rot", phase: "running" } }));
    assert.deepEqual([d.action.kind, d.status.phase, d.status.jobName], ["wait", "Changing", "rot"]);
    d = decideRotation(base({ state: rotating(), user, serverStopped: true, rotateJob: { name: "rot", phase: "succeeded" } }));
    assert.equal(d.action.kind, "commit");
    assert.equal(d.replicas, 0, "the server restarts only after the commit is written");
  });

  it("after a failed rotate Job, verifies whether the new password already opens the store", () => {
    const st = rotating();
    const failed: JobObservation = { name: "rot", phase: "failed", message: "exit code 1: wrong password" };
    let d = decideRotation(base({ state: st, serverStopped: true, rotateJob: failed }));
    assert.deepEqual(d.action, { kind: "create-job", job: "verify" });
    assert.equal(d.status.phase, "Verifying");
    d = decideRotation(base({ state: st, serverStopped: true, rotateJob: failed, verifyJob: { name: "ver", phase: "succeeded" } }));
    assert.equal(d.action.kind, "commit", "the change had landed before the failure");
    d = decideRotation(base({ state: st, serverStopped: true, rotateJob: failed, verifyJob: { name: "ver", phase: "failed" } }));
    assert.equal(d.action.kind, "rollback");
    assert.match(d.action.kind === "rollback" ? d.action.message : "", /wrong password/);
    assert.equal(d.status.phase, "Failed");
    assert.equal(d.status.lastFailedHash, h("new"));
  });

  it("resumes after a crash: a vanished rotate Job is verified, not blindly re-run", () => {
    // Server stopped, no Job: create the rotate Job (deterministic name, so a lost create is found again).
    const d = decideRotation(base({ state: rotating(), serverStopped: true }));
    assert.deepEqual(d.action, { kind: "create-job", job: "rotate" });
    // A crash after the Job ran and was deleted is indistinguishable from "never ran", but the
    // rerun then fails on the old password and the verify Job settles it.
  });

  it("does not retry a failed target until the Secret changes again, and reports the last result", () => {
    const st: PasswordState = { active: Buffer.from("old"), activeHash: h("old"), hmacKey: key, failedHash: h("new") };
    const d = decideRotation(base({ state: st, user: { password: Buffer.from("new"), hash: h("new") }, previous: { phase: "Verifying", targetHash: h("new"), message: "m" } }));
    assert.equal(d.action.kind, "idle");
    assert.equal(d.status.phase, "Failed");
    const again = decideRotation(base({ state: st, user: { password: Buffer.from("newer"), hash: h("newer") } }));
    assert.equal(again.action.kind, "start");
  });

  it("reports Succeeded when a commit's status write was lost", () => {
    const st: PasswordState = { active: Buffer.from("new"), activeHash: h("new"), hmacKey: key };
    const d = decideRotation(base({ state: st, user: { password: Buffer.from("new"), hash: h("new") }, previous: { phase: "Committing", targetHash: h("new") } }));
    assert.equal(d.status.phase, "Succeeded");
  });

  it("never initialises without a usable user password", () => {
    const d = decideRotation(base({ state: undefined, user: undefined }));
    assert.equal(d.action.kind, "idle");
  });
});

describe("passwords", () => {
  it("ignores one trailing newline, like the server", () => {
    assert.equal(normalizePassword(Buffer.from("pw\n")).toString(), "pw");
    assert.equal(normalizePassword(Buffer.from("pw\r\n")).toString(), "pw");
    assert.equal(normalizePassword(Buffer.from("pw\n\n")).toString(), "pw\n");
    assert.equal(h("pw"), passwordHash(key, normalizePassword(Buffer.from("pw\n"))));
  });

  it("names the Secret key and the problem", () => {
    const where = 'key "password" of password Secret apps/pw';
    assert.deepEqual(checkPassword(undefined, where), { problem: { reason: "PasswordKeyMissing", message: `${where} does not exist` } });
    const empty = checkPassword(Buffer.from("\n"), where);
    assert.ok("problem" in empty && empty.problem.reason === "PasswordEmpty");
    const bad = checkPassword(Buffer.from([0xff, 0xfe]), where);
    assert.ok("problem" in bad && bad.problem.reason === "PasswordMalformed");
    assert.ok("password" in checkPassword(Buffer.from("correct horse"), where));
  });

  it("hashes are keyed: another key gives another hash", () => {
    assert.notEqual(passwordHash(Buffer.alloc(32, 1), Buffer.from("pw")), passwordHash(Buffer.alloc(32, 2), Buffer.from("pw")));
    assert.match(h("pw"), /^hmac-sha256:[0-9a-f]{32}$/);
  });
});
