/**
 * Crypto worker threads (crypto/crypto-workers.ts): the same sealed format as the event loop's
 * sealer in both directions, batching, tampering, a dead worker, and the CPU sizing rule.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { createBlockSealer } from "../src/crypto/block-sealer.ts";
import { CryptoWorkers } from "../src/crypto/crypto-workers.ts";
import { blockAad, SealError, type PreparedBlock, type Sealer } from "../src/crypto/sealer.ts";
import { cgroupCpuQuota, defaultCryptoThreads } from "../src/config/cpu.ts";
import { Rng } from "../../test/support/random.ts";
import { runNode } from "../../test/support/run-node.ts";

/** Prepares and seals every frame through `sealer` (the worker path when it has workers), each sealed frame joined. */
async function sealAsyncAll(sealer: Sealer, plains: Buffer[], aads: Uint8Array[]): Promise<{ prepared: PreparedBlock[]; sealed: Buffer[] }> {
  const prepared = await Promise.all(plains.map((p) => sealer.prepare(p)));
  const sealed = await Promise.all(prepared.map((p, i) => p.sealAsync(aads[i]!).then((parts) => Buffer.concat(parts))));
  return { prepared, sealed };
}

test("pooled and inline sealers read each other's frames; many frames in one turn travel as batches", async () => {
  const rng = Rng.fromEnv("crypto workers");
  const key = randomBytes(32);
  const workers = new CryptoWorkers(2);
  try {
    const pooled = createBlockSealer(key, { workers });
    const inline = createBlockSealer(key);
    // Random (incompressible) and text-like (compressed) bodies, 0 to 64 KiB, 300 at once
    // (more than one 8 MiB batch in total).
    const plains = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? Buffer.alloc(rng.int(0, 65536), `line ${i}\n`) : rng.bytes(rng.int(0, 65536))));
    const aads = plains.map((_, i) => blockAad("seg/x", i));
    const { prepared, sealed } = await sealAsyncAll(pooled, plains, aads);
    sealed.forEach((s, i) => assert.equal(s.length, prepared[i]!.sealedLength, `frame ${i}: length known before sealing`));
    const opened = await Promise.all(sealed.map((s, i) => inline.open(s, aads[i]!)));
    opened.forEach((o, i) => assert.ok(o.equals(plains[i]!), `frame ${i} sealed by a worker opens inline`));
    const inlineSealed = await Promise.all(plains.map((p, i) => inline.seal(p, aads[i]!)));
    const reopened = await Promise.all(inlineSealed.map((s, i) => pooled.open(s, aads[i]!)));
    reopened.forEach((o, i) => assert.ok(o.equals(plains[i]!), `frame ${i} sealed inline opens in a worker`));
    // Tampering and a wrong AAD fail with SealError, and only that frame fails.
    const bad = Buffer.from(sealed[1]!);
    bad[bad.length - 1]! ^= 1;
    const results = await Promise.allSettled([pooled.open(bad, aads[1]!), pooled.open(sealed[2]!, aads[3]!), pooled.open(sealed[4]!, aads[4]!)]);
    assert.ok(results[0].status === "rejected" && results[0].reason instanceof SealError);
    assert.ok(results[1].status === "rejected" && results[1].reason instanceof SealError);
    assert.ok(results[2].status === "fulfilled" && results[2].value.equals(plains[4]!));
  } finally {
    await workers.close();
  }
});

test("inputs in shared memory are read in place, outputs come back moved or packed; the bytes are the same as inline", async () => {
  const rng = Rng.fromEnv("crypto workers shared");
  const key = randomBytes(32);
  const workers = new CryptoWorkers(1);
  try {
    const pooled = createBlockSealer(key, { workers });
    const inline = createBlockSealer(key);
    // One shared record holding many frames (as a WRITE's record does), some compressible.
    const record = Buffer.from(new SharedArrayBuffer(40 * 32768));
    for (let i = 0; i < 40; i++) {
      const frame = record.subarray(i * 32768, (i + 1) * 32768);
      if (i % 4 === 0) frame.fill(`text ${i} `);
      else frame.set(rng.bytes(32768));
    }
    const plains = Array.from({ length: 40 }, (_, i) => record.subarray(i * 32768, (i + 1) * 32768));
    const aads = plains.map((_, i) => blockAad("seg/shared", i));
    const { sealed } = await sealAsyncAll(pooled, plains, aads);
    const opened = await Promise.all(sealed.map((s, i) => inline.open(s, aads[i]!)));
    opened.forEach((o, i) => assert.ok(o.equals(plains[i]!), `frame ${i} sealed from shared memory opens inline`));
    // Sealed frames read into shared memory (as ranged reads of segments are) open in the worker.
    const sharedSealed = sealed.map((s) => {
      const b = Buffer.from(new SharedArrayBuffer(s.length + 7), 7);
      s.copy(b);
      return b;
    });
    const reopened = await Promise.all(sharedSealed.map((s, i) => pooled.open(s, aads[i]!)));
    reopened.forEach((o, i) => {
      assert.ok(o.equals(plains[i]!), `frame ${i} opens from shared memory`);
      assert.ok(!(o.buffer instanceof SharedArrayBuffer), "a result is the caller's own memory");
    });
    // The shared inputs are untouched.
    assert.ok(plains[1]!.equals(opened[1]!));
  } finally {
    await workers.close();
  }
});

test("a dead worker fails its jobs and every later one with an error naming it", async () => {
  const workers = new CryptoWorkers(1, new URL("../../test/support/dying-crypto-worker.ts", import.meta.url));
  try {
    const sealer = createBlockSealer(randomBytes(32), { workers });
    const p = await sealer.prepare(randomBytes(1000));
    await assert.rejects(p.sealAsync(Buffer.from("a")), /crypto worker 0 exited with code 3/);
    await assert.rejects(sealer.open(Buffer.alloc(100), Buffer.from("b")), /crypto worker 0 exited with code 3/);
  } finally {
    await workers.close();
  }
});

test("default crypto threads follow the usable CPUs: a cgroup quota lowers them; one CPU means none", () => {
  const dir = mkdtempSync(join(tmpdir(), "zerofs-cpu-"));
  try {
    assert.equal(cgroupCpuQuota(join(dir, "missing")), undefined);
    const v2 = join(dir, "v2");
    mkdirSync(v2);
    writeFileSync(join(v2, "cpu.max"), "max 100000\n");
    assert.equal(cgroupCpuQuota(v2), undefined, "v2 without a quota");
    writeFileSync(join(v2, "cpu.max"), "150000 100000\n");
    assert.equal(cgroupCpuQuota(v2), 1.5);
    const v1 = join(dir, "v1");
    mkdirSync(join(v1, "cpu"), { recursive: true });
    writeFileSync(join(v1, "cpu", "cpu.cfs_quota_us"), "-1\n");
    writeFileSync(join(v1, "cpu", "cpu.cfs_period_us"), "100000\n");
    assert.equal(cgroupCpuQuota(v1), undefined, "v1 without a quota");
    writeFileSync(join(v1, "cpu", "cpu.cfs_quota_us"), "300000\n");
    assert.equal(cgroupCpuQuota(v1), 3);
    assert.equal(defaultCryptoThreads(1), 0, "one CPU: on the event loop");
    assert.equal(defaultCryptoThreads(2), 1);
    assert.equal(defaultCryptoThreads(64), 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("idle workers do not keep the process alive: a process whose second worker never got a batch exits by itself", async () => {
  // Two workers, one seal: the batch goes to one of them, the other never works. Adding the
  // "message" listener after unref() used to ref the idle worker's port again, and such a
  // process (a CLI run, a test's child) never exited.
  const url = new URL("../src/crypto/crypto-workers.ts", import.meta.url).href;
  const code = `
    import { CryptoWorkers } from ${JSON.stringify(url)};
    const w = new CryptoWorkers(2);
    w.register(new Uint8Array(32));
    await w.seal(0, new Uint8Array(100), 0, new Uint8Array(8));
    process.stdout.write("sealed");`;
  const { stdout, stderr, code: exit } = await runNode(["--input-type=module", "-e", code], 20_000);
  assert.equal(exit, 0, `the process exited by itself (stderr: ${stderr})`);
  assert.equal(stdout, "sealed");
});
