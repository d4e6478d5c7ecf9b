import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { commonLabels, ownerReference } from "../src/builders/labels.ts";
import { buildService } from "../src/builders/service.ts";
import type { KubeClient } from "../src/kube/client.ts";
import type { KubeObject, Service } from "../src/kube/types.ts";
import { NotOwnedError, ensureApplied, foreignReason } from "../src/reconcile/apply.ts";
import { volume } from "./fixtures.ts";

const v = volume();
const meta = (m: KubeObject["metadata"]): KubeObject => ({ metadata: m });

/** A client that answers metadata reads with `existing` and records applies. */
function fakeClient(existing: KubeObject | undefined): { client: KubeClient; applied: KubeObject[] } {
  const applied: KubeObject[] = [];
  const client = {
    get: async () => existing,
    apply: async (o: KubeObject) => {
      applied.push(o);
      return o;
    },
  } as unknown as KubeClient;
  return { client, applied };
}

describe("ownership before apply", () => {
  it("recognises the volume's own objects", () => {
    assert.equal(foreignReason(meta({ labels: commonLabels(v, "server"), ownerReferences: [ownerReference(v)] }), v, "Service apps/zerofs-data"), undefined);
    assert.equal(foreignReason(meta({ labels: commonLabels(v, "nfs-volume") }), v, "PersistentVolume x"), undefined, "cluster-scoped: labels only");
  });

  it("names why an object is someone else's", () => {
    assert.match(foreignReason(meta({ labels: { app: "theirs" } }), v, "Service apps/zerofs-data") ?? "", /Service apps\/zerofs-data already exists and was not made by the operator/);
    const other = volume({}, "other", "apps");
    assert.match(foreignReason(meta({ labels: commonLabels(other, "nfs-claim") }), v, "PersistentVolumeClaim apps/data") ?? "", /belongs to ZeroFSVolume apps\/other/);
    const stolen = meta({ labels: commonLabels(v, "server"), ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "x", uid: "u-2", controller: true }] });
    assert.match(foreignReason(stolen, v, "Deployment apps/zerofs-data") ?? "", /controlled by ReplicaSet x \(uid u-2\)/);
  });

  it("never applies onto a foreign object, even on a cache miss", async () => {
    const { client, applied } = fakeClient(meta({ name: "zerofs-data", namespace: "apps", labels: { app: "theirs" } }));
    await assert.rejects(ensureApplied<Service>(client, buildService(v), undefined, undefined, v), (e: unknown) => e instanceof NotOwnedError && e.reason === "ResourceNotOwned");
    assert.deepEqual(applied, [], "no apply was sent");
  });

  it("creates when nothing is there, and updates its own object", async () => {
    const none = fakeClient(undefined);
    const r = await ensureApplied<Service>(none.client, buildService(v), undefined, undefined, v);
    assert.equal(r.created, true);
    assert.equal(none.applied.length, 1);
    const mine = fakeClient(undefined);
    const live = { ...buildService(v), spec: { ...buildService(v).spec, ports: [] } } as Service;
    const r2 = await ensureApplied<Service>(mine.client, buildService(v), live, undefined, v);
    assert.equal(r2.created, false);
    assert.equal(mine.applied.length, 1);
  });
});
