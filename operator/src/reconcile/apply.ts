/** Apply a child only when it differs from the live object (zero writes when nothing changed). */
import type { KubeClient } from "../kube/client.ts";
import { upToDate, withDigest } from "../kube/compare.ts";
import type { Informer } from "../kube/informer.ts";
import type { KubeObject } from "../kube/types.ts";

export interface Applied<T> {
  obj: T;
  changed: boolean;
  created: boolean;
}

export async function ensureApplied<T extends KubeObject>(client: KubeClient, desired: T, live: T | undefined, cache?: Informer<T>): Promise<Applied<T>> {
  const d = withDigest(desired);
  if (live && upToDate(d, live)) return { obj: live, changed: false, created: false };
  const obj = await client.apply(d);
  cache?.upsert(obj);
  return { obj, changed: true, created: live === undefined };
}
