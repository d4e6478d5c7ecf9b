/**
 * Starts a throwaway versitygw (S3 server with conditional writes) on a loopback port, serving a
 * fresh temp directory: its POSIX backend keeps metadata in xattrs and leaves lock files behind,
 * so directories are never reused between runs.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { S3Store, type S3StoreOptions } from "../../server/src/store/s3-store.ts";

export interface Versitygw {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dataDir: string;
  stop(): Promise<void>;
  /** SIGSTOP: the port still accepts connections (the kernel's backlog) but nothing answers. */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** kill -9: connections are refused until restart(). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory after kill(). */
  restart(): Promise<void>;
}

const REPO_ROOT = resolve(import.meta.dirname, "../..");
const READY_TIMEOUT_MS = 15_000;
const REGION = "us-east-1";

let binaryPromise: Promise<string> | undefined;
/** Path of the versitygw binary; the script builds it once per machine (minutes) if needed. */
export function versitygwBinary(): Promise<string> {
  binaryPromise ??= promisify(execFile)("bash", [join(REPO_ROOT, "scripts/tools/versitygw.sh")], { timeout: 15 * 60_000 }).then(
    ({ stdout }) => stdout.trim().split("\n").at(-1) ?? "",
    (err: unknown) => {
      binaryPromise = undefined;
      throw new Error(`scripts/tools/versitygw.sh failed: ${(err as Error).message}`, { cause: err });
    },
  );
  return binaryPromise;
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", ok));
  const addr = server.address();
  await new Promise<void>((ok) => server.close(() => ok()));
  if (addr === null || typeof addr === "string") throw new Error("could not pick a free loopback port");
  return addr.port;
}

export async function startVersitygw(): Promise<Versitygw> {
  const bin = await versitygwBinary();
  const dataDir = await mkdtemp(join(tmpdir(), "zerofs-vgw-"));
  const accessKeyId = "zerofs-test-access";
  const secretAccessKey = "zerofs-test-secret-0123456789";
  let lastError: unknown;
  // The port is free when picked but could be taken before versitygw binds it: retry a few times.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeLoopbackPort();
    const endpoint = `http://127.0.0.1:${port}`;
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VGW_") && !k.startsWith("ROOT_")));
    const launch = (): { child: ChildProcess; output: { text(): string } } => {
      const c = spawn(bin, ["--access", accessKeyId, "--secret", secretAccessKey, "--region", REGION, "--port", `127.0.0.1:${port}`, "--quiet", "posix", dataDir], {
        stdio: ["ignore", "pipe", "pipe"],
        env,
      });
      return { child: c, output: captureOutput(c) };
    };
    let { child, output } = launch();
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    try {
      await waitUntilAnswering(child, endpoint, output);
      const bucket = "zerofs-test";
      await createBucket(endpoint, bucket, accessKeyId, secretAccessKey);
      return {
        endpoint,
        bucket,
        region: REGION,
        accessKeyId,
        secretAccessKey,
        dataDir,
        async stop() {
          process.removeListener("exit", killOnExit);
          child.kill("SIGCONT");
          await stopChild(child);
          await rm(dataDir, { recursive: true, force: true });
        },
        freeze() {
          child.kill("SIGSTOP");
        },
        thaw() {
          child.kill("SIGCONT");
        },
        async kill() {
          const exited = new Promise<void>((ok) => child.once("exit", () => ok()));
          child.kill("SIGKILL");
          await exited;
        },
        async restart() {
          ({ child, output } = launch());
          await waitUntilAnswering(child, endpoint, output);
        },
      };
    } catch (err) {
      lastError = err;
      process.removeListener("exit", killOnExit);
      await stopChild(child);
    }
  }
  await rm(dataDir, { recursive: true, force: true });
  throw lastError;
}

/** An S3Store on the gateway with test-friendly retry/timeout settings. */
export function createS3StoreForTest(vgw: Versitygw, prefix: string, overrides: Partial<S3StoreOptions> = {}): S3Store {
  return new S3Store({
    bucket: vgw.bucket,
    prefix,
    endpoint: vgw.endpoint,
    region: vgw.region,
    accessKeyId: vgw.accessKeyId,
    secretAccessKey: vgw.secretAccessKey,
    allowHttp: true,
    maxAttempts: 3,
    connectTimeoutMs: 2_000,
    idleTimeoutMs: 10_000,
    ...overrides,
  });
}

function captureOutput(child: ChildProcess): { text(): string } {
  let buf = "";
  const add = (chunk: Buffer) => {
    buf = (buf + chunk.toString("utf8")).slice(-8192);
  };
  child.stdout?.on("data", add);
  child.stderr?.on("data", add);
  return { text: () => buf };
}

async function waitUntilAnswering(child: ChildProcess, endpoint: string, output: { text(): string }): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`versitygw exited (${child.exitCode ?? child.signalCode}) before answering on ${endpoint}:\n${output.text()}`);
    }
    try {
      // Any HTTP answer (an unauthenticated request gets 403) means it is serving.
      await fetch(endpoint, { signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`versitygw did not answer on ${endpoint} within ${READY_TIMEOUT_MS} ms:\n${output.text()}`);
}

async function createBucket(endpoint: string, bucket: string, accessKeyId: string, secretAccessKey: string): Promise<void> {
  const client = new S3Client({ endpoint, region: REGION, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 2 });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((ok) => child.once("exit", () => ok()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
  await exited;
  clearTimeout(timer);
}
