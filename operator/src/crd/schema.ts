/**
 * The ZeroFSVolume OpenAPI v3 schema (structural, with defaults and CEL rules). This module is the
 * single source of truth of the CRD: crd/render.ts turns it into crds/zerofs.io_zerofsvolumes.yaml
 * and the chart's template, and a test fails if either file drifts from it.
 */
import { DEFAULT_MOUNT_OPTIONS } from "../api/constants.ts";
import { DEFAULTS, STORAGE_URL_PATTERN } from "../api/spec.ts";

type Schema = Record<string, unknown>;

const str = (description: string, extra: Schema = {}): Schema => ({ type: "string", description, ...extra });
const bool = (description: string, dflt: boolean): Schema => ({ type: "boolean", description, default: dflt });
const stringMap = (description: string): Schema => ({ type: "object", description, additionalProperties: { type: "string" } });
/** Kubernetes resource.Quantity: int or string, same pattern controller-gen emits. */
const QUANTITY_RE =
  "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$";
const quantity = (description: string, extra: Schema = {}): Schema => ({
  description,
  anyOf: [{ type: "integer" }, { type: "string" }],
  pattern: QUANTITY_RE,
  "x-kubernetes-int-or-string": true,
  ...extra,
});
const immutable = (what: string): Schema => ({
  "x-kubernetes-validations": [{ rule: "self == oldSelf", message: `${what} is immutable` }],
});
const DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
const secretName = (description: string): Schema => str(description, { minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN });
const secretKey = (description: string, dflt: string): Schema =>
  str(description, { default: dflt, minLength: 1, maxLength: 253, pattern: "^[-._a-zA-Z0-9]+$" });
const preserve = (description: string, type: "object" | "array" = "object"): Schema =>
  type === "object"
    ? { type: "object", description, "x-kubernetes-preserve-unknown-fields": true }
    : { type: "array", description, items: { type: "object", "x-kubernetes-preserve-unknown-fields": true } };

const storage: Schema = {
  type: "object",
  description: "Where the encrypted LSM store lives.",
  required: ["url"],
  properties: {
    url: str("s3://bucket/prefix of the store. Immutable: a volume's data lives in one place.", {
      maxLength: 1024,
      pattern: STORAGE_URL_PATTERN,
      ...immutable("spec.storage.url"),
    }),
    endpoint: str("S3 endpoint URL (AWS_ENDPOINT_URL); empty means AWS.", { maxLength: 2048, pattern: "^https?://.+" }),
    region: str("S3 region (AWS_DEFAULT_REGION).", { default: DEFAULTS.region, minLength: 1, maxLength: 64 }),
    allowHttp: bool("Allow a plain http:// endpoint (AWS_ALLOW_HTTP).", DEFAULTS.allowHttp),
    credentialsSecretRef: {
      type: "object",
      description: "Secret in the volume's namespace with the S3 access key; omit to use the pod's ambient credentials.",
      required: ["name"],
      properties: {
        name: secretName("Secret name."),
        accessKeyIdKey: secretKey("Key holding the access key id.", DEFAULTS.accessKeyIdKey),
        secretAccessKeyKey: secretKey("Key holding the secret access key.", DEFAULTS.secretAccessKeyKey),
      },
    },
  },
  "x-kubernetes-validations": [
    {
      rule: "!has(self.endpoint) || !self.endpoint.startsWith('http://') || self.allowHttp",
      message: "spec.storage.endpoint is plain http://: set spec.storage.allowHttp to true to allow it",
      fieldPath: ".allowHttp",
    },
  ],
};

const encryption: Schema = {
  type: "object",
  description: "Encryption password. Updating the Secret rotates the volume's password (see status.passwordRotation).",
  required: ["passwordSecretRef"],
  properties: {
    passwordSecretRef: {
      type: "object",
      description: "Secret in the volume's namespace holding the encryption password.",
      required: ["name"],
      properties: {
        name: secretName("Secret name."),
        key: secretKey("Key holding the password.", DEFAULTS.passwordKey),
      },
    },
  },
};

const cache: Schema = {
  type: "object",
  description: "On-disk cache of the server (a PersistentVolumeClaim). Changing it replaces the cache claim; cached data is only a copy.",
  default: {},
  properties: {
    size: quantity("Size of the cache claim; the server uses 90% of it (SLATEDB_CACHE_SIZE_GB).", { default: DEFAULTS.cacheSize }),
    storageClassName: str("StorageClass of the cache claim; empty means the cluster default.", { maxLength: 253 }),
  },
};

const resourceList: Schema = { type: "object", additionalProperties: quantity("A resource quantity.") };
const server: Schema = {
  type: "object",
  description: "The NFS server Deployment (one replica, strategy Recreate: one writer).",
  default: {},
  properties: {
    image: str("Server image; defaults to the operator's configured image. Others must match the operator's allow-list (chart value volumePolicy.allowedImages).", { minLength: 1, maxLength: 512 }),
    imagePullPolicy: str("Image pull policy.", { enum: ["Always", "IfNotPresent", "Never"] }),
    resources: {
      type: "object",
      description: "Container resources. Default: requests cpu 100m, memory 256Mi; limits memory 2Gi (a memory limit is always set: the larger of 2Gi and requests.memory unless limits.memory is given).",
      properties: { limits: resourceList, requests: resourceList },
    },
    nodeSelector: stringMap("Node selector of the server pod (allowed unless the operator's volumePolicy.allowNodePlacement is false)."),
    tolerations: preserve("Tolerations of the server pod (refused unless the operator's volumePolicy.allowTolerations is true).", "array"),
    affinity: preserve("Affinity of the server pod (allowed unless the operator's volumePolicy.allowNodePlacement is false)."),
    podLabels: stringMap("Extra labels on the server pod."),
    podAnnotations: stringMap("Extra annotations on the server pod."),
    logLevel: str("Server log level (ZEROFS_LOG_LEVEL).", {
      enum: ["trace", "debug", "info", "warn", "error", "fatal"],
      default: DEFAULTS.logLevel,
    }),
    priorityClassName: str("PriorityClass of the server pod; must be in the operator's volumePolicy.allowedPriorityClasses.", { maxLength: 253 }),
  },
};

const nfs: Schema = {
  type: "object",
  description: "NFS export policy (exports(5) defaults: root squash, secure, no export to the world unless asked for).",
  default: {},
  properties: {
    allowedCIDRs: {
      type: "array",
      description:
        "Client networks the server accepts (ZEROFS_ALLOWED_CLIENTS), also the NetworkPolicy's NFS sources. Empty: the operator's default list (chart value volumeDefaults.allowedCIDRs, private address ranges unless changed). Everyone only when given explicitly as [0.0.0.0/0, ::/0].",
      maxItems: 64,
      items: {
        type: "string",
        maxLength: 64,
        "x-kubernetes-validations": [{ rule: "isCIDR(self)", message: "must be a CIDR such as 10.0.0.0/8" }],
      },
    },
    squash: str("none | root | all: map root (uid and gid 0), or everyone, to the anonymous uid/gid (ZEROFS_SQUASH).", {
      enum: ["none", "root", "all"],
      default: DEFAULTS.squash,
    }),
    insecure: bool(
      "Accept requests from source ports >= 1024 (ZEROFS_INSECURE). Kernel clients (the kubelet's mounts) use privileged ports, which kube-proxy's NAT keeps privileged; set this for user-space clients running as non-root, mounts with noresvport, or dataplanes that rewrite source ports into the unprivileged range.",
      DEFAULTS.insecure,
    ),
    anonUID: { type: "integer", format: "int64", minimum: 0, maximum: 4294967295, default: DEFAULTS.anonId, description: "uid squashed callers become." },
    anonGID: { type: "integer", format: "int64", minimum: 0, maximum: 4294967295, default: DEFAULTS.anonId, description: "gid squashed callers become." },
    readOnly: bool("Export read-only (ZEROFS_READ_ONLY).", DEFAULTS.readOnly),
  },
};

const peers = (description: string): Schema => ({ ...preserve(description, "array"), maxItems: 32 });
const networkPolicy: Schema = {
  type: "object",
  description:
    "Extra sources for the volume's NetworkPolicy (created when the operator's networkPolicy.enabled is true). NFS (2049) is always admitted from the allowed CIDRs (the nodes' kubelets mount from the node network); the kubelet's probes come from the pod's own node, which NetworkPolicies always admit.",
  default: {},
  properties: {
    nfsFrom: peers("NetworkPolicyPeers (podSelector, namespaceSelector, ipBlock) also admitted to NFS, e.g. pods running a user-space NFS client."),
    metricsFrom: peers("NetworkPolicyPeers admitted to the metrics port (9090), in addition to the operator's networkPolicy.metricsFrom (e.g. Prometheus)."),
  },
};

const persistentVolume: Schema = {
  type: "object",
  description:
    "An NFS PersistentVolume at the server Service's ClusterIP (the kubelet mounts from the node's network and resolves names with the node's resolver, so a DNS name would fail), and a claim bound to it.",
  default: {},
  properties: {
    create: { ...bool("Create the PersistentVolume. Immutable.", DEFAULTS.pvCreate), ...immutable("spec.persistentVolume.create") },
    mountOptions: {
      type: "array",
      description: "NFS mount options of the PersistentVolume.",
      items: { type: "string", minLength: 1, maxLength: 256 },
      maxItems: 32,
      default: [...DEFAULT_MOUNT_OPTIONS],
    },
    capacity: quantity("Capacity shown on the PersistentVolume and its claim; defaults to spec.capacity, else 1Ti."),
    reclaimPolicy: str("persistentVolumeReclaimPolicy of the PersistentVolume.", { enum: ["Retain", "Delete"], default: DEFAULTS.reclaimPolicy }),
    claim: {
      type: "object",
      description: "A PersistentVolumeClaim bound to the PersistentVolume, for pods to mount. Immutable.",
      default: {},
      properties: {
        create: bool("Create the claim.", DEFAULTS.claimCreate),
        name: str("Claim name; defaults to the volume's name.", { maxLength: 253, pattern: DNS_SUBDOMAIN }),
        namespace: str("Claim namespace; defaults to the volume's namespace. Another namespace is refused unless the operator allows it (chart value volumePolicy.allowCrossNamespaceClaims).", { maxLength: 63, pattern: DNS_SUBDOMAIN }),
      },
      ...immutable("spec.persistentVolume.claim"),
    },
  },
};

const specSchema: Schema = {
  type: "object",
  description: "Desired state of a ZeroFS volume: one NFS server over an encrypted LSM store in S3.",
  required: ["storage", "encryption"],
  properties: {
    storage,
    encryption,
    cache,
    server,
    nfs,
    networkPolicy,
    persistentVolume,
    capacity: quantity("Capacity limit of the filesystem (ZEROFS_CAPACITY_BYTES); writes past it fail with ENOSPC."),
    deletionPolicy: str("What happens to the data when the volume is deleted: Retain keeps it, Delete removes the storage prefix.", {
      enum: ["Retain", "Delete"],
      default: DEFAULTS.deletionPolicy,
    }),
  },
  "x-kubernetes-validations": [
    {
      rule: "self.deletionPolicy != 'Delete' || self.storage.url.matches('^s3://[^/]+/.+')",
      message: "spec.deletionPolicy Delete needs a storage.url with a prefix (s3://bucket/prefix); deleting a whole bucket is refused",
      fieldPath: ".deletionPolicy",
    },
  ],
};

const condition: Schema = {
  type: "object",
  required: ["type", "status", "reason", "message", "lastTransitionTime"],
  properties: {
    type: str("Condition type.", { maxLength: 316 }),
    status: str("True, False or Unknown.", { enum: ["True", "False", "Unknown"] }),
    reason: str("CamelCase reason.", { maxLength: 1024 }),
    message: str("Human-readable details.", { maxLength: 32768 }),
    lastTransitionTime: str("When the status last changed.", { format: "date-time" }),
    observedGeneration: { type: "integer", format: "int64", minimum: 0 },
  },
};

const statusSchema: Schema = {
  type: "object",
  description: "Observed state, written by the operator.",
  properties: {
    observedGeneration: { type: "integer", format: "int64", description: "The spec generation this status describes." },
    phase: str("Pending | Provisioning | Ready | Rotating | Degraded | Deleting.", {
      enum: ["Pending", "Provisioning", "Ready", "Rotating", "Degraded", "Deleting"],
    }),
    message: str("Summary of what the volume waits for or what is wrong."),
    conditions: {
      type: "array",
      description: "Ready, Progressing, Degraded, PasswordRotation.",
      items: condition,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
    },
    server: {
      type: "object",
      description: "Where clients mount the volume: mount -t nfs -o <mountOptions> <clusterIP>:<path>.",
      properties: {
        clusterIP: str("ClusterIP of the server Service."),
        port: { type: "integer", format: "int32" },
        path: str("Export path."),
        serviceName: str("Name of the server Service."),
      },
    },
    mountOptions: { type: "array", items: { type: "string" }, description: "Mount options clients should use." },
    persistentVolumeName: str("Name of the NFS PersistentVolume."),
    persistentVolumeClaim: {
      type: "object",
      description: "The claim bound to the PersistentVolume.",
      properties: { namespace: str("Namespace."), name: str("Name.") },
    },
    claims: {
      type: "array",
      maxItems: 1000,
      description: "Claims provisioned on this volume by a StorageClass in shared mode (zerofs.io/nfs), each a directory with its quota and usage; written by the provisioner, refreshed periodically (at most 1000, sorted by namespace and name).",
      items: {
        type: "object",
        required: ["namespace", "name"],
        properties: {
          namespace: str("Claim namespace."),
          name: str("Claim name."),
          persistentVolume: str("The claim's PersistentVolume."),
          directory: str("The claim's directory under the export."),
          quotaBytes: { type: "integer", format: "int64", description: "Byte limit (the claim's requested storage)." },
          usedBytes: { type: "integer", format: "int64", description: "Bytes used, as last read from the server." },
          usedInodes: { type: "integer", format: "int64", description: "Files and directories, as last read from the server." },
        },
      },
    },
    activePasswordHash: str("Keyed hash (HMAC-SHA256) of the password the data is encrypted with; never the password."),
    passwordRotation: {
      type: "object",
      description: "Progress of the last password rotation.",
      properties: {
        phase: str("Idle | Pending | StoppingServer | Changing | Verifying | Succeeded | Failed."),
        targetHash: str("Keyed hash of the password being rotated to."),
        startedAt: str("When the rotation started.", { format: "date-time" }),
        jobName: str("The Job running the server's password change."),
        message: str("What happened."),
        lastFailedHash: str("Keyed hash of a password whose rotation failed; it is not retried until the Secret changes again."),
      },
    },
    check: {
      type: "object",
      description: "The last `kubectl zerofs check`: a Job mounted the volume's claim and ran a short write/read/verify and metadata workload. Written by the plugin, not the operator.",
      required: ["result", "time"],
      properties: {
        result: str("Passed | Failed.", { enum: ["Passed", "Failed"] }),
        time: str("When the check finished.", { format: "date-time" }),
        jobName: str("The check Job."),
        message: str("What failed, or a summary."),
        bytes: { type: "integer", format: "int64", minimum: 0, description: "Bytes written, read back and verified." },
        files: { type: "integer", format: "int64", minimum: 0, description: "Files created by the metadata workload." },
        writeMiBPerSecond: { type: "number", minimum: 0, description: "Sequential write throughput, fsync included." },
        readMiBPerSecond: { type: "number", minimum: 0, description: "Read-back throughput." },
        metadataOps: { type: "integer", format: "int64", minimum: 0, description: "Metadata operations (create, stat, readdir, rename, unlink)." },
        metadataOpsPerSecond: { type: "number", minimum: 0, description: "Metadata operations per second." },
        seconds: { type: "number", minimum: 0, description: "Duration of the whole workload." },
      },
    },
  },
};

export const volumeSchema: Schema = {
  type: "object",
  description: "ZeroFSVolume: an NFS server over an encrypted LSM store in S3, exported to pods through an NFS PersistentVolume.",
  required: ["spec"],
  properties: {
    apiVersion: { type: "string" },
    kind: { type: "string" },
    metadata: {
      type: "object",
      properties: {
        // Children are named zerofs-<name>[-rotate-xxxxxxxx]: Service names are DNS-1035 labels and
        // Job names label their pods, so both must stay within 63 characters. (At the root, CRD
        // schemas may constrain metadata.name and nothing else of metadata.)
        name: { type: "string", maxLength: 40, pattern: "^[a-z]([-a-z0-9]*[a-z0-9])?$" },
      },
    },
    spec: specSchema,
    status: statusSchema,
  },
};
