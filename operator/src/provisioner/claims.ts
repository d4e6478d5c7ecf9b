/**
 * The StorageClass provisioner's pure parts: what a class's parameters mean, the names derived
 * from a claim, and the PersistentVolume and ZeroFSVolume built for it. Pure, so each rule is
 * unit-tested; provisioner.ts does the I/O.
 */
import { parse as parseYaml } from "yaml";
import { API_VERSION, DEFAULT_MOUNT_OPTIONS, GROUP, KIND, LABEL_MANAGED_BY, MANAGED_BY } from "../api/constants.ts";
import { parseQuantity, quantityBytes } from "../api/quantity.ts";
import { STORAGE_URL_PATTERN } from "../api/spec.ts";
import type { ZeroFSVolume, ZeroFSVolumeSpec } from "../api/types.ts";
import type { KubeObject, PersistentVolume, PersistentVolumeClaim } from "../kube/types.ts";

/** The provisioner name StorageClasses name. */
export const PROVISIONER_NAME = `${GROUP}/nfs`;
export const ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by";
export const ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner";
export const ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner";
export const ANN_STORAGE_RESIZER = "volume.kubernetes.io/storage-resizer";
/** On provisioned PVs: how the claim was provisioned (shared/dedicated), where its data lives. */
export const ANN_MODE = `${GROUP}/provisioning-mode`;
export const ANN_SHARED_VOLUME = `${GROUP}/shared-volume`;
export const ANN_DIRECTORY = `${GROUP}/directory`;
export const ANN_DEDICATED_VOLUME = `${GROUP}/dedicated-volume`;
/** On claims and their PVs: usage read from the server (bytes and inodes), refreshed periodically. */
export const ANN_USED_BYTES = `${GROUP}/used-bytes`;
export const ANN_USED_INODES = `${GROUP}/used-inodes`;
/** On PVs the provisioner made (the operator's PV cache watches managed-by). */
export const LABEL_PROVISIONED = `${GROUP}/provisioned`;
/** On dedicated ZeroFSVolumes: the claim they serve. */
export const LABEL_CLAIM_NAMESPACE = `${GROUP}/claim-namespace`;
/** An annotation: claim names may be longer than a label value's 63 characters. */
export const ANN_CLAIM_NAME = `${GROUP}/claim-name`;
export const LABEL_CLAIM_UID = `${GROUP}/claim-uid`;

export interface StorageClass extends KubeObject {
  provisioner: string;
  parameters?: Record<string, string>;
  reclaimPolicy?: "Delete" | "Retain";
  mountOptions?: string[];
  allowVolumeExpansion?: boolean;
  volumeBindingMode?: string;
}

export type ClassParams =
  | { mode: "shared"; volume: { namespace: string | undefined; name: string }; owner: { uid?: number; gid?: number; mode?: number } }
  | { mode: "dedicated"; template: Partial<ZeroFSVolumeSpec>; baseUrl: string; passwordSecret?: string };

export class ParameterError extends Error {}

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const KNOWN = { shared: ["mode", "volume", "namespace", "directoryUID", "directoryGID", "directoryMode"], dedicated: ["mode", "template", "passwordSecret"] } as const;

function intParam(p: Record<string, string>, key: string, max: number, radix = 10): number | undefined {
  const s = p[key];
  if (s === undefined) return undefined;
  const n = radix === 8 ? Number.parseInt(s, 8) : Number(s);
  if (!/^[0-9]+$/.test(s) || !Number.isInteger(n) || n < 0 || n > max) throw new ParameterError(`parameter ${key}: "${s}" is not an integer in 0..${radix === 8 ? max.toString(8) : max}${radix === 8 ? " (octal)" : ""}`);
  return n;
}

/** Reads a class's parameters; throws ParameterError naming the parameter and what was expected. */
export function parseClassParams(sc: StorageClass): ClassParams {
  const p = sc.parameters ?? {};
  const mode = p.mode ?? "shared";
  if (mode !== "shared" && mode !== "dedicated") throw new ParameterError(`parameter mode: "${mode}" is not shared or dedicated`);
  const unknown = Object.keys(p).filter((k) => !(KNOWN[mode] as readonly string[]).includes(k));
  if (unknown.length) throw new ParameterError(`unknown parameter${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} for mode ${mode} (known: ${KNOWN[mode].join(", ")})`);
  if (mode === "shared") {
    const name = p.volume;
    if (!name || !NAME_RE.test(name)) throw new ParameterError(`parameter volume: the name of a ZeroFSVolume is required in mode shared${name ? ` ("${name}" is not a valid name)` : ""}`);
    if (p.namespace !== undefined && !NAME_RE.test(p.namespace)) throw new ParameterError(`parameter namespace: "${p.namespace}" is not a namespace name`);
    return {
      mode,
      volume: { namespace: p.namespace, name },
      owner: { uid: intParam(p, "directoryUID", 2 ** 32 - 1), gid: intParam(p, "directoryGID", 2 ** 32 - 1), mode: intParam(p, "directoryMode", 0o7777, 8) },
    };
  }
  let template: unknown;
  try {
    template = parseYaml(p.template ?? "", { maxAliasCount: 10 });
  } catch (err) {
    throw new ParameterError(`parameter template: not YAML: ${(err as Error).message}`);
  }
  if (typeof template !== "object" || template === null || Array.isArray(template)) throw new ParameterError("parameter template: a ZeroFSVolume spec (YAML object) is required in mode dedicated");
  const t = template as Partial<ZeroFSVolumeSpec>;
  const baseUrl = t.storage?.url;
  if (typeof baseUrl !== "string" || !new RegExp(STORAGE_URL_PATTERN).test(baseUrl)) throw new ParameterError(`parameter template: storage.url must be s3://bucket[/prefix] (each claim gets a prefix below it)`);
  if (p.passwordSecret !== undefined && !NAME_RE.test(p.passwordSecret)) throw new ParameterError(`parameter passwordSecret: "${p.passwordSecret}" is not a Secret name`);
  return { mode, template: t, baseUrl: baseUrl.replace(/\/+$/, ""), passwordSecret: p.passwordSecret };
}

type Claim = Pick<PersistentVolumeClaim, "metadata" | "spec">;

/** external-provisioner's convention: deterministic, so a restarted provisioner finds its PV. */
export const pvNameFor = (c: Claim): string => `pvc-${c.metadata.uid ?? ""}`;

/**
 * The claim's directory on a shared volume: namespace, name and uid (unique forever, readable by a
 * human looking at the export). "_" cannot occur in either name, so the parts never run together;
 * at most 200 characters (the server's limit for one component), the name part cut if needed.
 */
export function claimDirectoryName(c: Claim): string {
  const ns = c.metadata.namespace ?? "";
  const uid = c.metadata.uid ?? "";
  const room = 200 - ns.length - uid.length - 2;
  return `${ns}_${(c.metadata.name ?? "").slice(0, Math.max(0, room))}_${uid}`;
}

/** A dedicated claim's ZeroFSVolume (same name as its PV, in the claim's namespace: at most 40 characters). */
export const dedicatedVolumeName = (c: Claim): string => pvNameFor(c);
export const dedicatedPasswordSecretName = (c: Claim): string => `${pvNameFor(c)}-encryption`;
/** The claim's prefix under the class's storage URL. */
export const dedicatedStorageUrl = (base: string, c: Claim): string => `${base}/${c.metadata.namespace ?? ""}/${c.metadata.name ?? ""}-${c.metadata.uid ?? ""}`;

/** The claim's requested size; throws ParameterError when missing or bad. */
export function requestedStorage(c: Claim): { quantity: string; bytes: number } {
  const q = c.spec.resources?.requests?.storage;
  if (q === undefined) throw new ParameterError("the claim requests no storage (spec.resources.requests.storage)");
  try {
    parseQuantity(q);
  } catch (err) {
    throw new ParameterError((err as Error).message);
  }
  return { quantity: q, bytes: quantityBytes(q) };
}

/** True when the claim is meant for this provisioner (the controller-manager's annotation, or its beta spelling). */
export function claimWantsUs(c: Claim): boolean {
  const a = c.metadata.annotations ?? {};
  return a[ANN_STORAGE_PROVISIONER] === PROVISIONER_NAME || a[ANN_BETA_STORAGE_PROVISIONER] === PROVISIONER_NAME;
}

export interface PvInput {
  claim: Claim;
  sc: StorageClass;
  server: string;
  path: string;
  /** The volume's mount options (status.mountOptions), unless the class names its own. */
  volumeMountOptions?: string[];
  annotations: Record<string, string>;
}

/** The NFS PV for a claim: pre-bound (claimRef with uid) so no other claim can take it. */
export function buildProvisionedPv(i: PvInput): PersistentVolume {
  const c = i.claim;
  const accessModes = (c.spec.accessModes as string[] | undefined) ?? ["ReadWriteMany"];
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: {
      name: pvNameFor(c),
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_PROVISIONED]: "true" },
      annotations: { [ANN_PROVISIONED_BY]: PROVISIONER_NAME, ...i.annotations },
    },
    spec: {
      capacity: { storage: requestedStorage(c).quantity },
      accessModes,
      volumeMode: "Filesystem",
      persistentVolumeReclaimPolicy: i.sc.reclaimPolicy ?? "Delete",
      storageClassName: i.sc.metadata.name,
      mountOptions: i.sc.mountOptions ?? i.volumeMountOptions ?? DEFAULT_MOUNT_OPTIONS,
      nfs: { server: i.server, path: i.path },
      claimRef: { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: c.metadata.namespace, name: c.metadata.name, uid: c.metadata.uid },
    },
  };
}

/**
 * A dedicated claim's ZeroFSVolume: the class's template, with the claim's own prefix, password
 * Secret and capacity; no PV of its own (the provisioner makes the claim's); deletionPolicy from
 * the class's reclaimPolicy (Delete removes the prefix's data with the volume). Not owned by the
 * claim: with Retain it must outlive it.
 */
export function buildDedicatedVolume(c: Claim, sc: StorageClass, p: Extract<ClassParams, { mode: "dedicated" }>): ZeroFSVolume {
  const t = p.template;
  const spec: ZeroFSVolumeSpec = {
    ...t,
    storage: { ...t.storage, url: dedicatedStorageUrl(p.baseUrl, c) },
    encryption: { passwordSecretRef: { name: p.passwordSecret ?? dedicatedPasswordSecretName(c), key: "password" } },
    persistentVolume: { ...t.persistentVolume, create: false },
    capacity: requestedStorage(c).quantity,
    deletionPolicy: (sc.reclaimPolicy ?? "Delete") === "Delete" ? "Delete" : "Retain",
  };
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: dedicatedVolumeName(c),
      namespace: c.metadata.namespace ?? "",
      uid: "",
      labels: { [LABEL_CLAIM_NAMESPACE]: c.metadata.namespace ?? "", [LABEL_CLAIM_UID]: c.metadata.uid ?? "" },
      annotations: { [ANN_PROVISIONED_BY]: PROVISIONER_NAME, [ANN_CLAIM_NAME]: c.metadata.name ?? "" },
    },
    spec,
  };
}
