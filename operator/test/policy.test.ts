import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_POLICY, checkPolicy, matchesPattern, type VolumePolicy } from "../src/api/policy.ts";
import { ConfigError, loadConfig } from "../src/config.ts";
import { normalized, volume } from "./fixtures.ts";

const DEFAULT_IMAGE = "zerofs/zerofs:0.1.0";
const check = (spec: Parameters<typeof volume>[0], p: Partial<VolumePolicy> = {}) => checkPolicy(normalized(volume(spec)), "apps", DEFAULT_IMAGE, { ...DEFAULT_POLICY, ...p });

describe("volume policy", () => {
  it("allows a plain volume and the operator's own image", () => {
    assert.equal(check({}), undefined);
    assert.equal(check({ server: { image: DEFAULT_IMAGE } }), undefined);
    assert.equal(check({ persistentVolume: { claim: { namespace: "apps", name: "x" } } }), undefined, "the volume's own namespace, spelled out");
    assert.equal(check({ server: { nodeSelector: { disk: "ssd" } } }), undefined, "node placement is allowed by default");
  });

  it("refuses a claim in another namespace unless allowed", () => {
    const p = check({ persistentVolume: { claim: { namespace: "web", name: "shared" } } });
    assert.equal(p?.reason, "ClaimNamespaceNotAllowed");
    assert.match(p?.message ?? "", /claim\.namespace web is not the volume's namespace apps.*allowCrossNamespaceClaims/);
    assert.equal(check({ persistentVolume: { claim: { namespace: "web" } } }, { allowCrossNamespaceClaims: true }), undefined);
    assert.equal(check({ persistentVolume: { claim: { namespace: "web", create: false } } }), undefined, "no claim is made: nothing to refuse");
  });

  it("refuses images outside the allow-list, with the list in the message", () => {
    const p = check({ server: { image: "evil/miner:latest" } });
    assert.equal(p?.reason, "ImageNotAllowed");
    assert.match(p?.message ?? "", /evil\/miner:latest is not allowed: the operator runs zerofs\/zerofs:0.1.0 .*allowedImages/);
    const allow = { allowedImages: ["registry.example.com/zerofs/*", "zerofs/zerofs:0.2.0"] };
    assert.equal(check({ server: { image: "registry.example.com/zerofs/server:1" } }, allow), undefined);
    assert.equal(check({ server: { image: "zerofs/zerofs:0.2.0" } }, allow), undefined);
    assert.equal(check({ server: { image: "registry.example.com/other/x:1" } }, allow)?.reason, "ImageNotAllowed");
    assert.equal(check({ server: { image: "zerofs/zerofs:0.2.0-evil" } }, allow)?.reason, "ImageNotAllowed", "exact entries are exact");
  });

  it("refuses tolerations, priority classes and (when restricted) node placement", () => {
    assert.equal(check({ server: { tolerations: [{ operator: "Exists" }] } })?.reason, "SchedulingNotAllowed");
    assert.equal(check({ server: { tolerations: [{ operator: "Exists" }] } }, { allowTolerations: true }), undefined);
    assert.match(check({ server: { priorityClassName: "system-cluster-critical" } })?.message ?? "", /priorityClassName system-cluster-critical is not allowed/);
    assert.equal(check({ server: { priorityClassName: "batch-high" } }, { allowedPriorityClasses: ["batch-*"] }), undefined);
    assert.equal(check({ server: { affinity: {} } }, { allowNodePlacement: false })?.reason, "SchedulingNotAllowed");
  });

  it("matches patterns exactly or by a trailing *", () => {
    assert.equal(matchesPattern("a/b:1", ["*"]), true);
    assert.equal(matchesPattern("a/b:1", ["a/*"]), true);
    assert.equal(matchesPattern("a/b:1", ["a/b"]), false);
    assert.equal(matchesPattern("a/b:1", []), false);
  });
});

describe("operator configuration: safe defaults and policy", () => {
  it("defaults to private client networks, a NetworkPolicy, and the narrow policy", () => {
    const c = loadConfig({});
    assert.deepEqual(c.network.allowedCIDRs, ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"]);
    assert.deepEqual(c.network.httpAllowedCIDRs, c.network.allowedCIDRs);
    assert.equal(c.network.networkPolicy, true);
    assert.deepEqual(c.network.metricsFrom, []);
    assert.deepEqual(c.policy, DEFAULT_POLICY);
  });

  it("parses the chart's variables", () => {
    const c = loadConfig({
      DEFAULT_ALLOWED_CIDRS: "10.0.0.0/16, fd00::/8",
      HTTP_ALLOWED_CIDRS: "10.0.0.0/16",
      NETWORK_POLICY: "false",
      METRICS_FROM: '[{"namespaceSelector":{"matchLabels":{"name":"monitoring"}}}]',
      ALLOW_CROSS_NAMESPACE_CLAIMS: "true",
      ALLOWED_SERVER_IMAGES: "a/*,b:1",
      ALLOW_TOLERATIONS: "true",
      ALLOW_NODE_PLACEMENT: "false",
      ALLOWED_PRIORITY_CLASSES: "x",
    });
    assert.deepEqual(c.network.allowedCIDRs, ["10.0.0.0/16", "fd00::/8"]);
    assert.equal(c.network.networkPolicy, false);
    assert.deepEqual(c.network.metricsFrom, [{ namespaceSelector: { matchLabels: { name: "monitoring" } } }]);
    assert.deepEqual(c.policy, { allowCrossNamespaceClaims: true, allowedImages: ["a/*", "b:1"], allowTolerations: true, allowNodePlacement: false, allowedPriorityClasses: ["x"] });
  });

  it("rejects bad values by name", () => {
    assert.throws(() => loadConfig({ DEFAULT_ALLOWED_CIDRS: "" }), (e: Error) => e instanceof ConfigError && /DEFAULT_ALLOWED_CIDRS/.test(e.message));
    assert.throws(() => loadConfig({ DEFAULT_ALLOWED_CIDRS: "10.0.0.0/33" }), /DEFAULT_ALLOWED_CIDRS: expected a non-empty comma-separated list of CIDRs/);
    assert.throws(() => loadConfig({ HTTP_ALLOWED_CIDRS: "everyone" }), /HTTP_ALLOWED_CIDRS/);
    assert.throws(() => loadConfig({ METRICS_FROM: "{}" }), /METRICS_FROM: expected a JSON array/);
    assert.throws(() => loadConfig({ WATCH_NAMESPACE: "apps", ALLOW_CROSS_NAMESPACE_CLAIMS: "true" }), /ALLOW_CROSS_NAMESPACE_CLAIMS needs an operator that watches all namespaces/);
  });
});
