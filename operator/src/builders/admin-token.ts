/**
 * The per-volume admin token: a random bearer token the operator creates, mounts into the server
 * pod (ZEROFS_ADMIN_TOKEN_FILE enables the server's /v1/ admin API) and presents when it
 * creates, sizes and removes claim directories (shared provisioning mode). Owned by the volume:
 * garbage collection removes it with the volume.
 */
import { randomBytes } from "node:crypto";
import type { ZeroFSVolume } from "../api/types.ts";
import type { Secret } from "../kube/types.ts";
import { commonLabels, ownerReference } from "./labels.ts";

type Vol = Pick<ZeroFSVolume, "metadata">;

export const ADMIN_TOKEN_KEY = "token";
export const ADMIN_TOKEN_DIR = "/var/run/zerofs/admin";
export const ADMIN_TOKEN_FILE = `${ADMIN_TOKEN_DIR}/${ADMIN_TOKEN_KEY}`;

export const adminTokenSecretName = (v: Vol): string => `zerofs-${v.metadata.name}-admin`;

export function buildAdminTokenSecret(v: ZeroFSVolume, token = randomBytes(32).toString("hex")): Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: adminTokenSecretName(v), namespace: v.metadata.namespace, labels: commonLabels(v, "admin-token"), ownerReferences: [ownerReference(v)] },
    type: "Opaque",
    data: { [ADMIN_TOKEN_KEY]: Buffer.from(token).toString("base64") },
  };
}

/** The token inside the Secret, or undefined when the Secret lacks it. */
export function readAdminToken(s: Secret): string | undefined {
  const b64 = s.data?.[ADMIN_TOKEN_KEY];
  const t = b64 === undefined ? "" : Buffer.from(b64, "base64").toString("utf8").trim();
  return t === "" ? undefined : t;
}

/** Mounted read-only, mode 0400 (readable through the pod's fsGroup, like the password file). */
export function adminTokenVolume(v: Vol): Record<string, unknown> {
  return { name: "admin-token", secret: { secretName: adminTokenSecretName(v), defaultMode: 0o400, items: [{ key: ADMIN_TOKEN_KEY, path: ADMIN_TOKEN_KEY }] } };
}
