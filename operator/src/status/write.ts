/** Writes a volume's status through the status subresource, and only when it changed. */
import { API_VERSION, KIND } from "../api/constants.ts";
import type { ZeroFSVolume, ZeroFSVolumeStatus } from "../api/types.ts";
import type { KubeClient } from "../kube/client.ts";
import { deepEqual } from "../kube/compare.ts";
import type { Informer } from "../kube/informer.ts";

/**
 * Server-side apply of the whole status: fields the operator stops setting are removed, and an
 * apply to the status subresource of a deleted object is a 404, never a re-creation.
 */
export async function writeStatus(client: KubeClient, v: ZeroFSVolume, status: ZeroFSVolumeStatus, cache?: Informer<ZeroFSVolume>): Promise<boolean> {
  const clean = JSON.parse(JSON.stringify(status)) as ZeroFSVolumeStatus; // drops undefined fields
  // status.claims belongs to the provisioner and status.check to `kubectl zerofs check` (their
  // own field managers): this apply leaves them in place, so they are no difference to write.
  const { claims: _claims, check: _check, ...observed } = v.status ?? {};
  if (deepEqual(clean, observed)) return false;
  const updated = await client.apply<ZeroFSVolume>(
    { apiVersion: API_VERSION, kind: KIND, metadata: { name: v.metadata.name, namespace: v.metadata.namespace }, status: clean } as unknown as ZeroFSVolume,
    { subresource: "status" },
  );
  cache?.upsert(updated);
  return true;
}
