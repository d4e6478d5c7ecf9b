/**
 * Apply a child only when it differs from the live object (zero writes when nothing changed), and
 * never onto an object the operator does not own: the apply is forced (the operator is the
 * authority for the fields of its children), so applying onto someone else's object would take it
 * over. The caches only hold objects labelled managed-by=zerofs-operator, so a cache miss is
 * confirmed with a metadata read before anything is created.
 */
import { LABEL_MANAGED_BY, LABEL_VOLUME_NAME, LABEL_VOLUME_NAMESPACE, MANAGED_BY } from "../api/constants.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { KubeClient } from "../kube/client.ts";
import { upToDate, withDigest } from "../kube/compare.ts";
import type { Informer } from "../kube/informer.ts";
import { resourceFor } from "../kube/resources.ts";
import type { KubeObject } from "../kube/types.ts";

export interface Applied<T> {
  obj: T;
  changed: boolean;
  created: boolean;
}

/** An object with the child's name exists and belongs to someone else: reported, never taken over. */
export class NotOwnedError extends Error {
  readonly reason = "ResourceNotOwned";
}

/** Why `live` is not the volume's own object, or undefined when it is. */
export function foreignReason(live: KubeObject, v: ZeroFSVolume, what: string): string | undefined {
  const l = live.metadata.labels ?? {};
  const mine = `ZeroFSVolume ${v.metadata.namespace}/${v.metadata.name}`;
  if (l[LABEL_MANAGED_BY] !== MANAGED_BY) {
    return `${what} already exists and was not made by the operator (no label ${LABEL_MANAGED_BY}=${MANAGED_BY}); ${mine} will not take it over: rename or remove it`;
  }
  if (l[LABEL_VOLUME_NAMESPACE] !== v.metadata.namespace || l[LABEL_VOLUME_NAME] !== v.metadata.name) {
    return `${what} belongs to ZeroFSVolume ${l[LABEL_VOLUME_NAMESPACE] ?? "?"}/${l[LABEL_VOLUME_NAME] ?? "?"}; ${mine} will not take it over`;
  }
  const controller = live.metadata.ownerReferences?.find((o) => o.controller);
  if (controller && controller.uid !== v.metadata.uid) {
    return `${what} is controlled by ${controller.kind} ${controller.name} (uid ${controller.uid}), not by ${mine} (uid ${v.metadata.uid})`;
  }
  return undefined;
}

export async function ensureApplied<T extends KubeObject>(
  client: KubeClient,
  desired: T,
  live: T | undefined,
  cache: Informer<T> | undefined,
  owner: ZeroFSVolume,
): Promise<Applied<T>> {
  const r = resourceFor(desired.apiVersion, desired.kind);
  const ns = desired.metadata.namespace;
  const name = desired.metadata.name ?? "";
  const what = `${desired.kind} ${ns ? `${ns}/` : ""}${name}`;
  const current = live ?? (await client.get<KubeObject>(r, r.namespaced ? ns : undefined, name, { metadataOnly: true }));
  if (current) {
    const why = foreignReason(current, owner, what);
    if (why) throw new NotOwnedError(why);
  }
  const d = withDigest(desired);
  if (live && upToDate(d, live)) return { obj: live, changed: false, created: false };
  const obj = await client.apply(d);
  cache?.upsert(obj);
  return { obj, changed: true, created: current === undefined };
}
