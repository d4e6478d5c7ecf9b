/** Labels and owner references common to every object the operator creates. */
import {
  API_VERSION,
  APP_NAME,
  KIND,
  LABEL_COMPONENT,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  LABEL_PART_OF,
  LABEL_VOLUME_NAME,
  LABEL_VOLUME_NAMESPACE,
  MANAGED_BY,
} from "../api/constants.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { OwnerReference } from "../kube/types.ts";

export type Component = "server" | "cache" | "password" | "nfs-volume" | "nfs-claim" | "password-rotation" | "admin-token" | "provisioned-volume";

type Vol = Pick<ZeroFSVolume, "metadata">;

export function commonLabels(v: Vol, component: Component): Record<string, string> {
  return {
    [LABEL_NAME]: APP_NAME,
    [LABEL_INSTANCE]: v.metadata.name,
    [LABEL_COMPONENT]: component,
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_PART_OF]: APP_NAME,
    [LABEL_VOLUME_NAME]: v.metadata.name,
    [LABEL_VOLUME_NAMESPACE]: v.metadata.namespace,
  };
}

/** The server pods' selector: stable forever (a Deployment's selector is immutable). */
export function serverSelector(v: Vol): Record<string, string> {
  return { [LABEL_NAME]: APP_NAME, [LABEL_INSTANCE]: v.metadata.name, [LABEL_COMPONENT]: "server" };
}

/** Label selector matching everything the operator made for one volume. */
export function volumeSelector(v: Vol): string {
  return `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_VOLUME_NAMESPACE}=${v.metadata.namespace},${LABEL_VOLUME_NAME}=${v.metadata.name}`;
}

/**
 * Controller owner reference: garbage collection removes namespaced children with the volume.
 * Only valid for objects in the volume's namespace (cluster-scoped objects and other namespaces
 * cannot point at a namespaced owner; those are cleaned up by the finalizer instead).
 */
export function ownerReference(v: ZeroFSVolume): OwnerReference {
  return { apiVersion: API_VERSION, kind: KIND, name: v.metadata.name, uid: v.metadata.uid, controller: true, blockOwnerDeletion: true };
}
