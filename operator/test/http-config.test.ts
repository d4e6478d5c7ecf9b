import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { ConfigError, loadConfig } from "../src/config.ts";
import { startHttpServer } from "../src/http-server.ts";
import { Operator } from "../src/operator.ts";

describe("operator configuration", () => {
  it("defaults and parses the chart's variables", () => {
    const c = loadConfig({ POD_NAMESPACE: "ops", POD_NAME: "op-1", LEADER_ELECT: "false", WORKERS: "4", ZEROFS_SERVER_IMAGE: "zerofs/zerofs:1" });
    assert.equal(c.leaseNamespace, "ops");
    assert.match(c.identity, /^op-1_[a-z0-9]+$/);
    assert.equal(c.leaderElect, false);
    assert.equal(c.workers, 4);
    assert.equal(c.serverImage, "zerofs/zerofs:1");
    assert.equal(c.watchNamespace, undefined);
    assert.equal(c.leaseDurationSeconds, 15);
    assert.equal(c.renewDeadlineMs, 10_000);
  });

  it("names bad variables", () => {
    assert.throws(() => loadConfig({ WORKERS: "many" }), (e: Error) => e instanceof ConfigError && /WORKERS/.test(e.message));
    assert.throws(() => loadConfig({ LEADER_ELECT: "yes" }), /LEADER_ELECT/);
    assert.throws(() => loadConfig({ LEASE_DURATION_SECONDS: "5", RENEW_DEADLINE_SECONDS: "5" }), /RENEW_DEADLINE_SECONDS \(5\) must be less than LEASE_DURATION_SECONDS/);
  });
});

describe("operator HTTP endpoint", () => {
  it("serves /healthz, /readyz and Prometheus /metrics", async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: "c", server: "https://127.0.0.1:1", skipTLSVerify: false }], users: [{ name: "u" }], contexts: [{ name: "c", cluster: "c", user: "u" }], currentContext: "c" });
    const op = new Operator({ kubeConfig: kc, serverImage: "x", log: pino({ level: "silent" }) });
    const server = await startHttpServer(op, "127.0.0.1", 0, pino({ level: "silent" }));
    try {
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/readyz`)).status, 503, "not started: not ready");
      const m = await (await fetch(`${base}/metrics`)).text();
      for (const name of ["zerofs_operator_reconcile_total", "zerofs_operator_reconcile_duration_seconds", "zerofs_operator_workqueue_depth", "zerofs_operator_reconcile_errors_total", "zerofs_operator_leader"]) {
        assert.ok(m.includes(name), name);
      }
      assert.equal((await fetch(`${base}/nope`)).status, 404);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
