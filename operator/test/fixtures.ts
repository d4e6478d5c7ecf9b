/** Shared test fixtures for the operator's unit tests. */
import { normalizeSpec, type NormalizedSpec } from "../src/api/spec.ts";
import type { ZeroFSVolume, ZeroFSVolumeSpec } from "../src/api/types.ts";

export function volume(spec: Partial<ZeroFSVolumeSpec> = {}, name = "data", namespace = "apps"): ZeroFSVolume {
  return {
    apiVersion: "zerofs.io/v1alpha1",
    kind: "ZeroFSVolume",
    metadata: { name, namespace, uid: "11111111-2222-3333-4444-555555555555", generation: 3, resourceVersion: "42" },
    spec: {
      storage: { url: "s3://bucket/volumes/data", endpoint: "https://s3.example.com", credentialsSecretRef: { name: "s3" } },
      encryption: { passwordSecretRef: { name: "pw" } },
      ...spec,
    },
  };
}

export function normalized(v: ZeroFSVolume): NormalizedSpec {
  return normalizeSpec(v.spec, `${v.metadata.namespace}/${v.metadata.name}`);
}
