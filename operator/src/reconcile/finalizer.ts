/**
 * Adding and removing the finalizer with JSON patches guarded by `test` operations. Not with
 * server-side apply: an apply to an object that was deleted meanwhile would create it again.
 */
import { FINALIZER } from "../api/constants.ts";
import type { ZeroFSVolume } from "../api/types.ts";
import type { KubeClient } from "../kube/client.ts";
import { isNotFound } from "../kube/errors.ts";
import { R } from "../kube/resources.ts";

export const hasFinalizer = (v: ZeroFSVolume): boolean => (v.metadata.finalizers ?? []).includes(FINALIZER);

export async function addFinalizer(client: KubeClient, v: ZeroFSVolume): Promise<ZeroFSVolume> {
  const fins = v.metadata.finalizers;
  const ops = fins
    ? [
        { op: "test", path: "/metadata/finalizers", value: fins },
        { op: "add", path: "/metadata/finalizers/-", value: FINALIZER },
      ]
    : [
        { op: "test", path: "/metadata/uid", value: v.metadata.uid },
        { op: "add", path: "/metadata/finalizers", value: [FINALIZER] },
      ];
  return await client.patch<ZeroFSVolume>(R.volumes, v.metadata.namespace, v.metadata.name, ops, { type: "json" });
}

export async function removeFinalizer(client: KubeClient, v: ZeroFSVolume): Promise<void> {
  const fins = v.metadata.finalizers ?? [];
  const i = fins.indexOf(FINALIZER);
  if (i < 0) return;
  try {
    await client.patch(R.volumes, v.metadata.namespace, v.metadata.name, [
      { op: "test", path: `/metadata/finalizers/${i}`, value: FINALIZER },
      { op: "remove", path: `/metadata/finalizers/${i}` },
    ], { type: "json" });
  } catch (err) {
    if (!isNotFound(err)) throw err; // already gone: a previous attempt's removal went through
  }
}
