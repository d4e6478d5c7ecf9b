import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deepEqual, isSubset, upToDate, withDigest } from "../src/kube/compare.ts";
import { parseQuantity, quantityBytes, sameQuantity } from "../src/api/quantity.ts";

describe("isSubset / upToDate", () => {
  it("accepts fields the API server defaulted", () => {
    assert.ok(isSubset({ a: 1, b: { c: [1, { d: 2 }] } }, { a: 1, x: 9, b: { c: [1, { d: 2, e: 3 }], y: 0 } }));
    assert.ok(!isSubset({ a: [1, 2] }, { a: [1, 2, 3] }), "list lengths must match");
    assert.ok(!isSubset({ a: "x" }, { a: "y" }));
    assert.ok(!isSubset({ a: {} }, { a: null }));
  });

  it("compares quantities by value where the API server canonicalises them", () => {
    assert.ok(isSubset({ resources: { requests: { memory: "1024Mi", cpu: "0.5" } } }, { resources: { requests: { memory: "1Gi", cpu: "500m" } } }));
    assert.ok(!isSubset({ env: [{ name: "X", value: "1024Mi" }] }, { env: [{ name: "X", value: "1Gi" }] }), "not for arbitrary strings");
  });

  it("needs the digest of the applied configuration, so removed fields are noticed", () => {
    const want = withDigest({ metadata: { name: "x", annotations: { a: "1" } }, spec: { k: 1 } });
    const live = { metadata: { name: "x", resourceVersion: "5", annotations: { ...want.metadata.annotations, b: "2" } }, spec: { k: 1, d: 0 } };
    assert.ok(upToDate(want, live));
    const fewer = withDigest({ metadata: { name: "x" }, spec: { k: 1 } });
    assert.ok(!upToDate(fewer, live), "annotation a was removed: the digest differs");
    assert.ok(!upToDate(want, undefined));
  });

  it("deepEqual ignores key order and undefined", () => {
    assert.ok(deepEqual({ a: 1, b: [1, { c: 2 }], u: undefined }, { b: [1, { c: 2 }], a: 1 }));
    assert.ok(!deepEqual({ a: 1 }, { a: 1, b: 2 }));
  });
});

describe("quantities", () => {
  it("parses the Kubernetes grammar", () => {
    assert.equal(parseQuantity("10Gi"), 10 * 2 ** 30);
    assert.equal(parseQuantity("500M"), 5e8);
    assert.equal(parseQuantity("1.5e3"), 1500);
    assert.equal(parseQuantity("250m"), 0.25);
    assert.equal(parseQuantity(42), 42);
    assert.equal(quantityBytes("0.5Ki"), 512);
    assert.throws(() => parseQuantity("ten", "spec.cache.size"), /spec\.cache\.size: "ten" is not a Kubernetes quantity/);
    assert.ok(sameQuantity("1Gi", "1073741824"));
    assert.ok(!sameQuantity("1Gi", "1G"));
  });
});

describe("omitempty", () => {
  it("zero values we set read back absent and still count as equal", () => {
    assert.ok(isSubset({ spec: { storageClassName: "", nfs: { readOnly: false }, items: [], m: {} } }, { spec: { nfs: {} } }));
    assert.ok(!isSubset({ spec: { storageClassName: "fast" } }, { spec: {} }));
  });
});
