/**
 * Names shared by the CRD, the builders and the controller. One place, so a label or an
 * annotation can never be spelled two ways.
 */
export const GROUP = "zerofs.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "ZeroFSVolume";
export const PLURAL = "zerofsvolumes";
export const SINGULAR = "zerofsvolume";
export const SHORT_NAMES = ["zfsv", "zerofs"];
export const CRD_NAME = `${PLURAL}.${GROUP}`;

/** Field manager for every server-side apply and patch the operator makes. */
export const FIELD_MANAGER = "zerofs-operator";
export const FINALIZER = `${GROUP}/finalizer`;

export const LABEL_NAME = "app.kubernetes.io/name";
export const LABEL_INSTANCE = "app.kubernetes.io/instance";
export const LABEL_COMPONENT = "app.kubernetes.io/component";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const LABEL_PART_OF = "app.kubernetes.io/part-of";
/** Identify the owning volume on objects that cannot carry an owner reference (PV, claims in other namespaces). */
export const LABEL_VOLUME_NAME = `${GROUP}/volume`;
export const LABEL_VOLUME_NAMESPACE = `${GROUP}/volume-namespace`;
export const MANAGED_BY = "zerofs-operator";
export const APP_NAME = "zerofs";

/** Pod template annotation: the active password's hash, so a rotation restarts the server. */
export const ANN_PASSWORD_HASH = `${GROUP}/password-hash`;
/** Pod template annotation: a digest of the S3 credentials, so a credentials update restarts the server. */
export const ANN_CREDENTIALS_DIGEST = `${GROUP}/credentials-digest`;
/** On the operator's password Secret: the state of the rotation machine (see rotation/). */
export const ANN_ACTIVE_HASH = `${GROUP}/active-password-hash`;
export const ANN_PENDING_HASH = `${GROUP}/pending-password-hash`;
export const ANN_FAILED_HASH = `${GROUP}/failed-password-hash`;
export const ANN_ROTATION_STARTED = `${GROUP}/rotation-started-at`;
/** On rotation Jobs: which step of the rotation the Job is. */
export const LABEL_JOB_KIND = `${GROUP}/job`;

export const NFS_PORT = 2049;
export const HTTP_PORT = 9090;
/** Non-root uid/gid of the server container (the images' "nonroot" user). */
export const SERVER_UID = 65532;

/** Keys inside the operator-owned password Secret. */
export const SECRET_KEY_ACTIVE = "password";
export const SECRET_KEY_PENDING = "new-password";
export const SECRET_KEY_HMAC = "hash-key";

export const DEFAULT_MOUNT_OPTIONS = ["nfsvers=3", "tcp", "nolock", "port=2049", "mountport=2049"];
