/**
 * The `zerofs` command: `zerofs <path | s3://bucket/prefix>` serves the volume over NFSv3.
 * With ZEROFS_NEW_PASSWORD (or its file) it re-wraps the data key under the new password and
 * exits instead. See `zerofs --help` and README.md for the configuration.
 *
 * Exit codes: 0 clean stop or password changed; 1 runtime failure (wrong password, store
 * unreachable, fenced, no volume with ZEROFS_NO_CREATE, or a stop whose flush did not finish
 * within ZEROFS_SHUTDOWN_TIMEOUT_SECONDS); 2 bad configuration.
 */
import { ConfigError, HelpRequested, helpText, readConfig, type Config } from "./config/config.ts";
import { changePassword, VolumeNotFoundError, WrongPasswordError } from "./crypto/keyring.ts";
import { createLogger } from "./observability/logger.ts";
import { Progress } from "./observability/progress.ts";
import { openStore } from "./store/index.ts";
import { ShutdownIncompleteError, startServer, storeOptions, type RunningServer } from "./server.ts";

let config: Config;
try {
  config = readConfig(process.argv.slice(2), process.env);
} catch (err) {
  if (err instanceof HelpRequested) {
    process.stdout.write(`${helpText()}\n`);
    process.exit(0);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`zerofs: ${err.message}\nRun zerofs --help for the settings.\n`);
    process.exit(2);
  }
  throw err;
}

const log = createLogger(config.logLevel, config.logFormat);
for (const w of config.warnings) log.warn(w.details, w.message);

async function rotatePassword(cfg: Config, newPassword: string): Promise<void> {
  const store = await openStore(cfg.url, storeOptions(cfg));
  // Two Argon2id derivations (old and new password) and one conditional PUT: seconds, so a
  // person at the terminal sees that it is working.
  const progress = new Progress(log, { task: "password-change", label: "password change", unit: "steps", total: 1, fields: { url: cfg.url } });
  log.info({ url: cfg.url, task: "password-change", progress: "started" }, "changing the password: unwrapping the data key with the old password, re-wrapping it with the new one");
  try {
    const r = await changePassword(store, cfg.password, newPassword);
    progress.add();
    progress.finish({ changed: r.changed, keyId: r.keyId });
    log.info({ url: cfg.url, changed: r.changed, keyId: r.keyId }, r.changed ? "password changed; the old password no longer opens this volume" : "the volume already uses the new password");
  } catch (err) {
    progress.fail(err);
    throw err;
  } finally {
    await store.close();
  }
}

async function run(): Promise<void> {
  if (config.newPassword !== undefined) {
    await rotatePassword(config, config.newPassword);
    return;
  }
  const server: RunningServer = await startServer(config, log);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.fatal({ signal }, "second signal: exiting without waiting for the flush");
      process.exit(1);
    }
    stopping = true;
    const deadlineMs = config.shutdownTimeoutMs;
    log.info({ signal, deadlineSeconds: deadlineMs / 1000 }, "stopping: finishing in-flight requests and flushing");
    // Backstop: whatever hangs, the process ends soon after its deadline (Kubernetes would
    // SIGKILL it anyway, without the message saying why).
    setTimeout(() => {
      log.fatal({ deadlineSeconds: deadlineMs / 1000 }, "shutdown still not finished 2 s after its deadline: exiting");
      process.exit(1);
    }, deadlineMs + 2000).unref();
    server.close({ deadlineMs }).then(
      () => process.exit(0),
      (err: unknown) => {
        if (err instanceof ShutdownIncompleteError) log.fatal({ ...err.unflushed, store: config.url }, err.message);
        else log.fatal({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

run().catch((err: unknown) => {
  if (err instanceof WrongPasswordError || err instanceof VolumeNotFoundError) log.fatal({ url: config.url }, err.message);
  else log.fatal({ err, url: config.url }, "zerofs failed");
  process.exit(1);
});
