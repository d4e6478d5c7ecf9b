import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { normalizeSpec, parseStorageUrl } from "../src/api/spec.ts";
import { volume } from "./fixtures.ts";

describe("normalizeSpec", () => {
  it("applies the same defaults as the CRD", () => {
    const s = normalizeSpec({ storage: { url: "s3://bucket/p" }, encryption: { passwordSecretRef: { name: "pw" } } }, "ns/v");
    assert.equal(s.storage.region, "us-east-1");
    assert.equal(s.encryption.passwordSecretRef.key, "password");
    assert.equal(s.cache.size, "10Gi");
    assert.equal(s.nfs.squash, "root", "root squash by default (exports(5))");
    assert.equal(s.nfs.insecure, false, "secure (privileged source ports) by default");
    assert.deepEqual(s.nfs.allowedCIDRs, [], "empty: the operator's default list, never everyone");
    assert.equal(s.persistentVolume.create, true);
    assert.deepEqual(s.persistentVolume.mountOptions, ["nfsvers=3", "tcp", "nolock", "port=2049", "mountport=2049"]);
    assert.equal(s.deletionPolicy, "Retain");
    assert.equal(s.server.logLevel, "info");
  });

  it("names the object and every bad field", () => {
    assert.throws(
      () => normalizeSpec({ storage: { url: "http://x" }, encryption: { passwordSecretRef: { name: "" } }, cache: { size: "lots" } }, "apps/data"),
      (e: Error) => /^apps\/data: invalid spec: /.test(e.message) && /spec\.storage\.url/.test(e.message) && /spec\.cache\.size/.test(e.message) && /passwordSecretRef\.name/.test(e.message),
    );
  });

  it("rejects malformed client CIDRs", () => {
    const v = volume({ nfs: { allowedCIDRs: ["10.0.0.0/8", "10.0.0.0/33", "everyone"] } });
    assert.throws(() => normalizeSpec(v.spec, "apps/data"), /spec\.nfs\.allowedCIDRs\.1: not a CIDR.*spec\.nfs\.allowedCIDRs\.2: not a CIDR/);
  });

  it("refuses deletionPolicy Delete on a whole bucket", () => {
    const v = volume({ storage: { url: "s3://bucket" }, deletionPolicy: "Delete" });
    assert.throws(() => normalizeSpec(v.spec, "apps/data"), /deleting a whole bucket is refused/);
  });

  it("splits storage URLs", () => {
    assert.deepEqual(parseStorageUrl("s3://bucket/a/b"), { bucket: "bucket", prefix: "a/b" });
    assert.deepEqual(parseStorageUrl("s3://bucket"), { bucket: "bucket", prefix: "" });
  });
});
