/**
 * The operator-owned password Secret: the password the store is encrypted with right now (what
 * the server mounts), the key of the password hashes, and during a rotation the target password.
 * It is the rotation machine's durable state (see rotation/machine.ts): every step is one write
 * of this object, with its resourceVersion as a precondition.
 */
import {
  ANN_ACTIVE_HASH,
  ANN_FAILED_HASH,
  ANN_PENDING_HASH,
  ANN_ROTATION_STARTED,
  SECRET_KEY_ACTIVE,
  SECRET_KEY_HMAC,
  SECRET_KEY_PENDING,
} from "../api/constants.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { Secret } from "../kube/types.ts";
import { commonLabels, ownerReference } from "./labels.ts";
import { passwordSecretName } from "./names.ts";

export interface PasswordState {
  /** Password the store opens with now. */
  active: Buffer;
  activeHash: string;
  /** Key of the HMAC that turns passwords into the hashes shown in status. */
  hmacKey: Buffer;
  /** Target of a rotation in progress. */
  pending?: { password: Buffer; hash: string; startedAt: string };
  /** Hash of the last password whose rotation failed (not retried until the user's Secret changes). */
  failedHash?: string;
}

export function buildPasswordSecret(v: ZeroFSVolume, s: PasswordState, resourceVersion?: string): Secret {
  const annotations: Record<string, string> = { [ANN_ACTIVE_HASH]: s.activeHash };
  const data: Record<string, string> = {
    [SECRET_KEY_ACTIVE]: s.active.toString("base64"),
    [SECRET_KEY_HMAC]: s.hmacKey.toString("base64"),
  };
  if (s.pending) {
    data[SECRET_KEY_PENDING] = s.pending.password.toString("base64");
    annotations[ANN_PENDING_HASH] = s.pending.hash;
    annotations[ANN_ROTATION_STARTED] = s.pending.startedAt;
  }
  if (s.failedHash) annotations[ANN_FAILED_HASH] = s.failedHash;
  const metadata: Secret["metadata"] = {
    name: passwordSecretName(v),
    namespace: v.metadata.namespace,
    labels: commonLabels(v, "password"),
    annotations,
    ownerReferences: [ownerReference(v)],
  };
  if (resourceVersion) metadata.resourceVersion = resourceVersion;
  return { apiVersion: "v1", kind: "Secret", metadata, type: "Opaque", data };
}

/** Reads PasswordState back; undefined when the Secret lacks what the operator writes. */
export function parsePasswordSecret(s: Secret): PasswordState | undefined {
  const d = s.data ?? {};
  const a = s.metadata.annotations ?? {};
  const active = d[SECRET_KEY_ACTIVE];
  const key = d[SECRET_KEY_HMAC];
  const activeHash = a[ANN_ACTIVE_HASH];
  if (active === undefined || key === undefined || !activeHash) return undefined;
  const st: PasswordState = { active: Buffer.from(active, "base64"), activeHash, hmacKey: Buffer.from(key, "base64") };
  const pending = d[SECRET_KEY_PENDING];
  const pendingHash = a[ANN_PENDING_HASH];
  if (pending !== undefined && pendingHash) {
    st.pending = { password: Buffer.from(pending, "base64"), hash: pendingHash, startedAt: a[ANN_ROTATION_STARTED] ?? "" };
  }
  if (a[ANN_FAILED_HASH]) st.failedHash = a[ANN_FAILED_HASH];
  return st;
}
