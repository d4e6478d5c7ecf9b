/** The API resources the operator uses: where they live in the REST API. */
import { API_VERSION, KIND, PLURAL } from "../api/constants.ts";

export interface ResourceType {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

const rt = (apiVersion: string, kind: string, plural: string, namespaced = true): ResourceType => ({ apiVersion, kind, plural, namespaced });

export const R = {
  volumes: rt(API_VERSION, KIND, PLURAL),
  deployments: rt("apps/v1", "Deployment", "deployments"),
  services: rt("v1", "Service", "services"),
  pvcs: rt("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
  pvs: rt("v1", "PersistentVolume", "persistentvolumes", false),
  secrets: rt("v1", "Secret", "secrets"),
  pods: rt("v1", "Pod", "pods"),
  jobs: rt("batch/v1", "Job", "jobs"),
  events: rt("v1", "Event", "events"),
  networkPolicies: rt("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
  leases: rt("coordination.k8s.io/v1", "Lease", "leases"),
  namespaces: rt("v1", "Namespace", "namespaces", false),
  serviceAccounts: rt("v1", "ServiceAccount", "serviceaccounts"),
  replicaSets: rt("apps/v1", "ReplicaSet", "replicasets"),
  storageClasses: rt("storage.k8s.io/v1", "StorageClass", "storageclasses", false),
  crds: rt("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", false),
} as const;

const byKind = new Map<string, ResourceType>(Object.values(R).map((r) => [`${r.apiVersion}/${r.kind}`, r]));

export function resourceFor(apiVersion: string | undefined, kind: string | undefined): ResourceType {
  const r = byKind.get(`${apiVersion ?? ""}/${kind ?? ""}`);
  if (!r) throw new Error(`no REST mapping for ${apiVersion ?? "?"} ${kind ?? "?"}`);
  return r;
}

/** REST path of a collection or an object (and optionally a subresource). */
export function resourcePath(r: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  const base = r.apiVersion.includes("/") ? `/apis/${r.apiVersion}` : `/api/${r.apiVersion}`;
  let p = base;
  if (r.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${r.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}
