/**
 * Work proportional to stored data, never to a size a client claims (issue 15, critical): a
 * 2^52-byte sparse file truncated and removed over the wire, with kill -9 restarts in the middle,
 * while a second client's GETATTR latency stays low. Before the fix the server deleted every
 * possible chunk index (2^36 deletes): SETATTR never answered, the other client timed out, and
 * every restart resumed the same work before serving.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CreateMode, Nfs3Proc as P, StableHow } from "../../src/nfs/nfs3-types.ts";
import { Nfs3Client, sattr } from "../../../test/support/nfs/nfs3-client.ts";
import { Rng } from "../../../test/support/random.ts";
import { startZerofs, type ZerofsProcess } from "../../../test/support/zerofs-process.ts";

const HUGE = 2n ** 52n;
/**
 * Latency bounds for the bystander client: the 100 ms for 90% of the calls, and no call
 * over 500 ms, which a CI machine running other suites at the same time can still meet (a
 * single 25 ms burst of CPU work stretches to 100 ms on an oversubscribed 2-core machine).
 * Before the fix, SETATTR never answered and the other client's calls timed out.
 */
const P90_GETATTR_MS = 100;
const MAX_GETATTR_MS = 500;

/**
 * A second client that GETATTRs the root in a loop and records the slowest answer. A fresh
 * server's first calls are slow for reasons of their own (JIT, first reads): those are made
 * before the measurement starts.
 */
interface Seen {
  max: number;
  p90: number;
  calls: number;
}

async function bystander(c: Nfs3Client, root: Buffer): Promise<{ stop(): Promise<Seen> }> {
  for (let i = 0; i < 20; i++) await c.ok(P.GETATTR, { object: root });
  let running = true;
  const times: number[] = [];
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      await c.ok(P.GETATTR, { object: root });
      times.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const sorted = [...times].sort((a, b) => a - b);
      return { max: sorted[sorted.length - 1] ?? 0, p90: sorted[Math.floor(sorted.length * 0.9)] ?? 0, calls: times.length };
    },
  };
}

async function createFile(c: Nfs3Client, root: Buffer, name: string): Promise<Buffer> {
  return (await c.ok(P.CREATE, { where: { dir: root, name: Buffer.from(name) }, how: { mode: CreateMode.GUARDED, attributes: sattr() } })).obj!;
}

/** Writes one byte at each offset (16 in flight), then makes the file 2^52 bytes long. */
async function fillSparse(c: Nfs3Client, fh: Buffer, offsets: bigint[]): Promise<void> {
  for (let i = 0; i < offsets.length; i += 16) {
    await Promise.all(offsets.slice(i, i + 16).map((offset) => c.ok(P.WRITE, { file: fh, offset, count: 1, stable: StableHow.UNSTABLE, data: Buffer.from([7]) })));
  }
  await c.ok(P.SETATTR, { object: fh, newAttributes: sattr({ size: HUGE }) });
  await c.ok(P.COMMIT, { file: fh, offset: 0n, count: 0 });
}

function checkLatency(seen: Seen, when: string): void {
  assert.ok(seen.p90 < P90_GETATTR_MS && seen.max < MAX_GETATTR_MS, `bystander GETATTR ${when}: p90 ${seen.p90.toFixed(1)} ms, max ${seen.max.toFixed(1)} ms over ${seen.calls} calls`);
}

describe("a 2^52-byte sparse file", () => {
  let dir: string;
  let server: ZerofsProcess | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-huge-"));
  });
  after(async () => {
    await server?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (): Promise<{ a: Nfs3Client; b: Nfs3Client; root: Buffer; startMs: number }> => {
    const t0 = performance.now();
    server = await startZerofs({ url: join(dir, "vol"), cacheDir: join(dir, "cache") });
    const startMs = performance.now() - t0;
    const a = await Nfs3Client.connect(server.nfsPort);
    const b = await Nfs3Client.connect(server.nfsPort);
    const root = await a.mount("/");
    return { a, b, root, startMs };
  };

  it("is truncated and removed in time proportional to its stored chunks, with kill -9 in the middle", { timeout: 180_000 }, async () => {
    const rng = Rng.fromEnv("huge sparse file");
    let { a, b, root } = await start();

    // 1. Truncate to 0 and remove while the bystander measures.
    let fh = await createFile(a, root, "huge");
    await fillSparse(a, fh, [0n, 2n ** 40n, HUGE - 1n]);
    let probe = await bystander(b, root);
    let t0 = performance.now();
    await a.ok(P.SETATTR, { object: fh, newAttributes: sattr({ size: 0n }) });
    const truncMs = performance.now() - t0;
    t0 = performance.now();
    await a.ok(P.REMOVE, { object: { dir: root, name: Buffer.from("huge") } });
    const removeMs = performance.now() - t0;
    let seen = await probe.stop();
    console.log(`# truncate 2^52 → 0: ${truncMs.toFixed(1)} ms; remove: ${removeMs.toFixed(1)} ms; bystander GETATTR p90 ${seen.p90.toFixed(1)} ms, max ${seen.max.toFixed(1)} ms over ${seen.calls} calls`);
    checkLatency(seen, "during truncation and removal");

    // 2. Many stored chunks (so deletion takes several batches), kill -9 at a random point of the
    //    truncation, restart: serving starts at once and no stale byte reappears.
    fh = await createFile(a, root, "huge2");
    const offsets = Array.from({ length: 3000 }, (_, i) => BigInt(i) * 2n ** 38n + BigInt(rng.int(0, 1000)));
    await fillSparse(a, fh, offsets);
    const truncating = a.call(P.SETATTR, { object: fh, newAttributes: sattr({ size: 1n }) }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, rng.int(0, 300)));
    await server!.kill();
    await truncating;
    a.close();
    b.close();
    const second = await start();
    ({ a, b, root } = second);
    probe = await bystander(b, root);
    fh = (await a.ok(P.LOOKUP, { what: { dir: root, name: Buffer.from("huge2") } })).object;
    const size = (await a.ok(P.GETATTR, { object: fh })).objAttributes.size;
    console.log(`# after kill -9 during the truncation the size is ${size === 1n ? "the new one (its deletion had finished or resumed in the background)" : "the old one"}`);
    assert.ok(size === 1n || size === HUGE, `size after the crash is the old or the new one, got ${size}`);
    // Make it huge again (waits for any resumed truncation) and read where the data was.
    await a.ok(P.SETATTR, { object: fh, newAttributes: sattr({ size: 1n }) });
    await a.ok(P.SETATTR, { object: fh, newAttributes: sattr({ size: HUGE }) });
    for (const offset of [offsets[1]!, offsets[1500]!, offsets[2999]!]) {
      const r = await a.ok(P.READ, { file: fh, offset, count: 1 });
      assert.deepEqual([...r.data], [0], `byte at ${offset} reads as zero after truncation`);
    }
    // 3. Remove it, kill -9 right away, restart: the reclamation resumes in the background.
    await a.ok(P.REMOVE, { object: { dir: root, name: Buffer.from("huge2") } });
    seen = await probe.stop();
    checkLatency(seen, "after the restart");
    await server!.kill();
    a.close();
    b.close();
    const third = await start();
    ({ a, b, root } = third);
    probe = await bystander(b, root);
    await createFile(a, root, "after");
    seen = await probe.stop();
    console.log(`# restarts after kill -9: ${second.startMs.toFixed(0)} ms and ${third.startMs.toFixed(0)} ms to serving; bystander max ${seen.max.toFixed(1)} ms`);
    checkLatency(seen, "during resumed reclamation");
    a.close();
    b.close();
    assert.equal(await server!.stop(), 0);
    server = undefined;
  });
});
