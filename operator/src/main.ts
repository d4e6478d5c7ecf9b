/**
 * The operator process: configuration from the environment, kubeconfig (in-cluster when
 * KUBECONFIG is unset), leader election, HTTP endpoint, graceful shutdown on SIGTERM/SIGINT.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { OperatorMetrics } from "./controller/metrics.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { startHttpServer } from "./http-server.ts";
import { Operator } from "./operator.ts";

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`zerofs-operator: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = pino({ level: cfg.logLevel, base: { component: "zerofs-operator" } });
  const kc = new KubeConfig();
  if (process.env.KUBECONFIG) kc.loadFromDefault();
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else {
    // Without either, loadFromCluster yields a client with no server URL, and the operator
    // would retry its first request ("Invalid URL") forever instead of saying what is missing.
    process.stderr.write(
      "zerofs-operator: no Kubernetes API server to talk to: KUBECONFIG is not set and this is not a pod " +
        "(KUBERNETES_SERVICE_HOST is not set); set KUBECONFIG to a kubeconfig file, or run the operator in the cluster (the Helm chart)\n",
    );
    process.exit(2);
  }
  const op = new Operator({
    kubeConfig: kc,
    serverImage: cfg.serverImage,
    log,
    metrics: new OperatorMetrics({ defaultMetrics: true }),
    namespace: cfg.watchNamespace,
    workers: cfg.workers,
    deletionPollMs: cfg.deletionPollMs,
    shutdownTimeoutMs: cfg.shutdownTimeoutMs,
    jobBackoffLimit: cfg.jobBackoffLimit,
    network: cfg.network,
    policy: cfg.policy,
    provisioner: cfg.provisioner ? { usageRefreshMs: cfg.usageRefreshMs } : false,
    leaderElection: cfg.leaderElect
      ? {
          namespace: cfg.leaseNamespace,
          name: cfg.leaseName,
          identity: cfg.identity,
          leaseDurationSeconds: cfg.leaseDurationSeconds,
          renewDeadlineMs: cfg.renewDeadlineMs,
          retryPeriodMs: cfg.retryPeriodMs,
        }
      : false,
  });
  const server = await startHttpServer(op, cfg.httpAddress, cfg.httpPort, log);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    const hardStop = setTimeout(() => {
      log.error("shutdown timed out; exiting");
      process.exit(1);
    }, cfg.shutdownTimeoutMs + 5_000);
    hardStop.unref();
    op.stop()
      .then(() => new Promise<void>((r) => server.close(() => r())))
      .then(() => {
        log.info("stopped");
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err: (err as Error).message }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("unhandledRejection", (err) => {
    log.fatal({ err: (err as Error)?.message ?? String(err) }, "unhandled rejection");
    process.exit(1);
  });
  log.info(
    { identity: cfg.identity, leaderElect: cfg.leaderElect, watchNamespace: cfg.watchNamespace ?? "(all)", serverImage: cfg.serverImage, network: cfg.network, policy: cfg.policy },
    "starting",
  );
  await op.start();
}

main().catch((err: unknown) => {
  process.stderr.write(`zerofs-operator: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
