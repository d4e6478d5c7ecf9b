/**
 * Reading the Secrets a volume references. A missing Secret or key is a Problem for the status
 * (Ready=False with a reason naming the Secret and key), never an exception: the reconcile waits
 * for the Secret watch to bring the fix.
 */
import { createHash } from "node:crypto";
import type { NormalizedSpec } from "../api/spec.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { KubeClient } from "../kube/client.ts";
import { R } from "../kube/resources.ts";
import type { Secret } from "../kube/types.ts";
import { checkPassword } from "../rotation/password.ts";
import type { Problem } from "../status/compute.ts";

export interface UserSecrets {
  password?: Buffer;
  passwordProblem?: Problem;
  /** Digest of the S3 keys (restarts the server when they change). */
  credentialsDigest?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  credentialsProblem?: Problem;
}

function secretValue(s: Secret, key: string): Buffer | undefined {
  const b64 = s.data?.[key];
  if (b64 !== undefined) return Buffer.from(b64, "base64");
  const plain = s.stringData?.[key];
  return plain === undefined ? undefined : Buffer.from(plain, "utf8");
}

export async function readUserSecrets(client: KubeClient, v: ZeroFSVolume, spec: NormalizedSpec): Promise<UserSecrets> {
  const ns = v.metadata.namespace;
  const out: UserSecrets = {};
  const ref = spec.encryption.passwordSecretRef;
  const pwSecret = await client.get<Secret>(R.secrets, ns, ref.name);
  if (!pwSecret) {
    out.passwordProblem = { reason: "PasswordSecretNotFound", message: `password Secret ${ns}/${ref.name} (spec.encryption.passwordSecretRef) not found` };
  } else {
    const r = checkPassword(secretValue(pwSecret, ref.key), `key "${ref.key}" of password Secret ${ns}/${ref.name}`);
    if ("problem" in r) out.passwordProblem = r.problem;
    else out.password = r.password;
  }
  const c = spec.storage.credentialsSecretRef;
  if (c) {
    const s = await client.get<Secret>(R.secrets, ns, c.name);
    if (!s) {
      out.credentialsProblem = { reason: "CredentialsSecretNotFound", message: `S3 credentials Secret ${ns}/${c.name} (spec.storage.credentialsSecretRef) not found` };
    } else {
      const id = secretValue(s, c.accessKeyIdKey);
      const key = secretValue(s, c.secretAccessKeyKey);
      const missing = [id?.length ? undefined : c.accessKeyIdKey, key?.length ? undefined : c.secretAccessKeyKey].filter((k) => k !== undefined);
      if (missing.length > 0 || !id || !key) {
        out.credentialsProblem = {
          reason: "CredentialsKeyMissing",
          message: `S3 credentials Secret ${ns}/${c.name} has no non-empty key ${missing.map((k) => `"${k}"`).join(" or ")}`,
        };
      } else {
        out.credentials = { accessKeyId: id.toString("utf8"), secretAccessKey: key.toString("utf8") };
        out.credentialsDigest = createHash("sha256").update(id).update("\0").update(key).digest("hex").slice(0, 16);
      }
    }
  }
  return out;
}
