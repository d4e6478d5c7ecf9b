/**
 * Object store outages with a real S3 server (versitygw) under NFS write load: frozen with
 * SIGSTOP (connections accepted, nothing answered) and killed (connections refused). The
 * server must report the outage (a "degraded" readiness body and metric, one log line per
 * state change), answer NFS requests within its deadlines (NFS3ERR_JUKEBOX, never a hang),
 * recover by itself, lose nothing it acknowledged, and stop within its shutdown deadline with
 * exit 1 and a message when SIGTERM comes during an outage.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { Nfs3Proc as P, Nfs3Status, StableHow } from "../../src/nfs/nfs3-types.ts";
import { Nfs3Client } from "../../../test/support/nfs/nfs3-client.ts";
import { startVersitygw, type Versitygw } from "../../../test/support/versitygw.ts";
import { startZerofs, type ZerofsProcess } from "../../../test/support/zerofs-process.ts";
import { CHUNK, logLines, metric, readyz, verifyAcked, waitFor, Writer } from "./outage-support.ts";

const STORE_TIMEOUT_S = 1;
const SHUTDOWN_TIMEOUT_S = 4;

describe("object store outages (versitygw frozen and killed under load)", () => {
  let vgw: Versitygw;
  let server: ZerofsProcess | undefined;
  const written: { name: string; seed: number; acked: number[] }[] = [];

  const start = async (extraEnv: Record<string, string> = {}): Promise<ZerofsProcess> =>
    (server = await startZerofs({
      url: `s3://${vgw.bucket}/outage`,
      env: {
        AWS_ENDPOINT_URL: vgw.endpoint,
        AWS_ACCESS_KEY_ID: vgw.accessKeyId,
        AWS_SECRET_ACCESS_KEY: vgw.secretAccessKey,
        AWS_DEFAULT_REGION: vgw.region,
        AWS_ALLOW_HTTP: "true",
        ZEROFS_STORE_TIMEOUT_SECONDS: String(STORE_TIMEOUT_S),
        ZEROFS_SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_TIMEOUT_S),
        ...extraEnv,
      },
    }));

  before(async () => {
    vgw = await startVersitygw();
    await start();
  });
  after(async () => {
    vgw.thaw();
    await server?.kill();
    await vgw.stop();
  });

  /** One outage under load: `begin` breaks the store, `end` mends it. */
  async function outage(name: string, seed: number, begin: () => Promise<void> | void, end: () => Promise<void> | void): Promise<void> {
    const s = server!;
    assert.equal((await readyz(s)).body, "ok\n");
    const w = await Writer.start(s.nfsPort, name, seed);
    await waitFor("writes before the outage", async () => w.count >= 20, 30_000);
    const logFrom = s.output().length;
    w.reset();
    await begin();
    const detectMs = await waitFor("the degraded signal", async () => (await readyz(s)).body.startsWith("degraded"), 20_000);
    const r = await readyz(s);
    assert.equal(r.status, 200, "readiness does not fail for a store outage");
    assert.equal(r.health, 200, "liveness does not fail for a store outage");
    assert.match(r.body, /^degraded: object store s3:\/\/zerofs-test\/outage\/ unavailable since \S+ \(.+\)\n$/);
    assert.match(r.healthBody, /^degraded: /);
    assert.equal(await metric(s, "zerofs_store_degraded"), 1);
    assert.equal(await metric(s, "zerofs_ready"), 1);
    // Cached metadata still answers at once.
    const c = await Nfs3Client.connect(s.nfsPort);
    const root = await c.mount("/");
    const g0 = performance.now();
    await c.ok(P.GETATTR, { object: root });
    assert.ok(performance.now() - g0 < 1_000, "GETATTR of a cached inode answers during the outage");
    c.close();
    // Writes get answers (JUKEBOX) within twice the deadline instead of hanging.
    await waitFor("a JUKEBOX answer to a durable write", async () => w.jukebox >= 2, 20_000);
    const ackedDuring = w.count;
    await sleep(1_000);
    await end();
    const recoverMs = await waitFor("recovery", async () => (await readyz(s)).body === "ok\n", 30_000);
    await waitFor("writes after the outage", async () => w.count >= ackedDuring + 20, 30_000);
    await w.stop();
    assert.deepEqual(w.otherErrors, [], "no write failed other than with JUKEBOX");
    assert.ok(w.maxCallMs < 2 * STORE_TIMEOUT_S * 1000 + 3_000, `longest WRITE call ${Math.round(w.maxCallMs)} ms`);
    assert.equal(await metric(s, "zerofs_store_degraded"), 0);
    assert.ok((await metric(s, "zerofs_store_outages_total")) >= 1);

    const lines = logLines(s, logFrom);
    const loud = lines.filter((l) => l.level >= 40);
    assert.deepEqual(loud.map((l) => l.msg), ["object store unavailable: serving what is cached, writes wait for it (NFS clients are told to retry)"], "one warning for the whole outage");
    assert.equal(loud[0]!.err, undefined, "and no stack trace");
    assert.equal(lines.filter((l) => l.msg === "object store available again").length, 1, "one line when it ends");
    written.push({ name, seed, acked: [...w.acked] });
    await verifyAcked(s.nfsPort, name, seed, w.acked);
    console.log(`${name}: degraded after ${Math.round(detectMs)} ms, healthy ${Math.round(recoverMs)} ms after the store came back, ` +
      `${w.jukebox} JUKEBOX answers, longest WRITE ${Math.round(w.maxCallMs)} ms, ${w.count} chunks acknowledged`);
  }

  it("a frozen store (SIGSTOP): degraded within the deadline, JUKEBOX instead of hangs, recovers, nothing acknowledged lost", async () => {
    await outage("frozen.bin", 1, () => vgw.freeze(), () => vgw.thaw());
    assert.ok((await metric(server!, "zerofs_store_request_timeouts_total")) >= 1, "the stalls are counted");
  });

  it("a killed store (connections refused): the same, and it recovers once the store is restarted", async () => {
    await outage("killed.bin", 2, () => vgw.kill(), () => vgw.restart());
  });

  it("after a restart with an empty cache, a read of an uncached block retries within the deadline instead of failing at once", async () => {
    assert.equal(await server!.stop(), 0, "a stop with a healthy store is clean");
    const s = await start({ ZEROFS_STORE_TIMEOUT_SECONDS: "5" });
    // Every acknowledged chunk survived the outages and the restart.
    for (const f of written) await verifyAcked(s.nfsPort, f.name, f.seed, f.acked);
    const c = await Nfs3Client.connect(s.nfsPort);
    const root = await c.mount("/");
    const fh = (await c.ok(P.LOOKUP, { what: { dir: root, name: Buffer.from("frozen.bin") } })).object;
    await vgw.kill();
    const t0 = performance.now();
    const read = c.call(P.READ, { file: fh, offset: BigInt(5 * CHUNK), count: CHUNK });
    await sleep(300);
    await vgw.restart();
    const r = await read;
    assert.equal(r.status, Nfs3Status.NFS3_OK, `READ during a short outage answered ${r.status}`);
    console.log(`uncached READ across a store restart answered after ${Math.round(performance.now() - t0)} ms`);
    c.close();
  });

  it("SIGTERM during an outage exits 1 within the shutdown deadline, saying what was not flushed", async () => {
    assert.equal(await server!.stop(), 0);
    const s = await start();
    const c = await Nfs3Client.connect(s.nfsPort);
    const root = await c.mount("/");
    const fh = (await c.ok(P.LOOKUP, { what: { dir: root, name: Buffer.from("frozen.bin") } })).object;
    await c.ok(P.WRITE, { file: fh, offset: 0n, count: 5, stable: StableHow.FILE_SYNC, data: Buffer.from("acked") });
    vgw.freeze();
    // Buffered (UNSTABLE) writes that can no longer reach the store.
    for (let i = 0; i < 3; i++) await c.ok(P.WRITE, { file: fh, offset: BigInt(100 + i), count: 1, stable: StableHow.UNSTABLE, data: Buffer.from("u") });
    c.close();
    await waitFor("the degraded signal", async () => (await readyz(s)).body.startsWith("degraded"), 20_000);
    const from = s.output().length;
    const t0 = performance.now();
    const code = await s.stop();
    const ms = performance.now() - t0;
    console.log(`SIGTERM with the store frozen: exit ${code} after ${Math.round(ms)} ms (deadline ${SHUTDOWN_TIMEOUT_S} s)`);
    assert.equal(code, 1);
    assert.ok(ms < SHUTDOWN_TIMEOUT_S * 1000 + 2_500, `exited after ${Math.round(ms)} ms`);
    const fatal = logLines(s, from).find((l) => l.level === 60);
    assert.ok(fatal, s.output().slice(from));
    assert.match(fatal.msg, /shutdown deadline of 4 s passed before the flush finished \(object store unavailable since \S+\): \d+ buffered write batches \(\d+ bytes\) never reached the object store and are lost; none had been acknowledged as durable/);
    assert.ok(Number(fatal.notDurableBatches) >= 1);
    server = undefined;
    vgw.thaw();
    const again = await start();
    const c2 = await Nfs3Client.connect(again.nfsPort);
    const root2 = await c2.mount("/");
    const fh2 = (await c2.ok(P.LOOKUP, { what: { dir: root2, name: Buffer.from("frozen.bin") } })).object;
    assert.equal(Buffer.from((await c2.ok(P.READ, { file: fh2, offset: 0n, count: 5 })).data).toString(), "acked");
    c2.close();
  });
});
