/**
 * Outages of a local-directory volume under NFS write load: the directory made unwritable
 * (then writable again) and the directory deleted. The server reports the outage (a
 * "degraded" readiness body and metric, one warning), answers NFS3ERR_JUKEBOX instead of
 * hanging, recovers when the directory is writable again without losing an acknowledged write,
 * and a SIGTERM while the volume is broken exits 1 within the shutdown deadline with a message.
 *
 * Root ignores permission bits, so when the tests run as root the server runs as nobody.
 */
import assert from "node:assert/strict";
import { chmod, chown, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { startZerofs, type ZerofsProcess } from "../../../test/support/zerofs-process.ts";
import { logLines, metric, readyz, verifyAcked, waitFor, Writer } from "./outage-support.ts";

const SHUTDOWN_TIMEOUT_S = 3;
const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;

/** The volume root and its folders (not the objects): what chmod must cover to stop writes. */
async function volumeDirs(vol: string): Promise<string[]> {
  const out = [vol];
  for (const e of await readdir(vol, { withFileTypes: true })) if (e.isDirectory()) out.push(join(vol, e.name));
  return out;
}

describe("local volume outages (directory unwritable, directory deleted) under load", () => {
  let dir: string;
  const servers: ZerofsProcess[] = [];

  const start = async (vol: string): Promise<ZerofsProcess> => {
    const s = await startZerofs({
      url: vol,
      env: { ZEROFS_STORE_TIMEOUT_SECONDS: "1", ZEROFS_SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_TIMEOUT_S) },
      ...(user ? { user } : {}),
    });
    servers.push(s);
    return s;
  };
  const newVolume = async (name: string): Promise<string> => {
    const vol = join(dir, name);
    await mkdir(vol);
    if (user) await chown(vol, user.uid, user.gid);
    return vol;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-outage-"));
    await chmod(dir, 0o755);
  });
  after(async () => {
    for (const s of servers) if (s.proc.exitCode === null && s.proc.signalCode === null) await s.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it("an unwritable directory: degraded, JUKEBOX, recovers when writable again, nothing acknowledged lost; SIGTERM while unwritable exits 1 in time", async () => {
    const vol = await newVolume("unwritable");
    const s = await start(vol);
    const w = await Writer.start(s.nfsPort, "data.bin", 7);
    await waitFor("writes before the outage", async () => w.count >= 20, 30_000);
    const from = s.output().length;
    const dirs = await volumeDirs(vol);
    for (const d of dirs) await chmod(d, 0o555);
    const detectMs = await waitFor("the degraded signal", async () => (await readyz(s)).body.startsWith("degraded"), 20_000);
    const r = await readyz(s);
    assert.equal(r.status, 200);
    assert.match(r.body, /^degraded: object store file:\/\/\S+ unavailable since \S+ \(.*(EACCES|permission denied).*\)\n$/i);
    assert.equal(await metric(s, "zerofs_store_degraded"), 1);
    await waitFor("a JUKEBOX answer", async () => w.jukebox >= 2, 20_000);
    const ackedDuring = w.count;
    for (const d of dirs) await chmod(d, 0o755);
    const recoverMs = await waitFor("recovery", async () => (await readyz(s)).body === "ok\n", 30_000);
    await waitFor("writes after the outage", async () => w.count >= ackedDuring + 20, 30_000);
    await w.stop();
    assert.deepEqual(w.otherErrors, []);
    const lines = logLines(s, from);
    assert.deepEqual(lines.filter((l) => l.level >= 40).map((l) => l.msg), ["object store unavailable: serving what is cached, writes wait for it (NFS clients are told to retry)"]);
    assert.equal(lines.filter((l) => l.msg === "object store available again").length, 1);
    await verifyAcked(s.nfsPort, "data.bin", 7, w.acked);
    console.log(`unwritable volume: degraded after ${Math.round(detectMs)} ms, healthy ${Math.round(recoverMs)} ms after chmod back, longest WRITE ${Math.round(w.maxCallMs)} ms`);

    // Unwritable again, with a write buffered: the stop gives up at its deadline.
    const w2 = await Writer.start(s.nfsPort, "more.bin", 8);
    await waitFor("writes", async () => w2.count >= 5, 30_000);
    for (const d of await volumeDirs(vol)) await chmod(d, 0o555);
    await waitFor("the degraded signal", async () => (await readyz(s)).body.startsWith("degraded"), 20_000);
    const t0 = performance.now();
    const code = await s.stop();
    const ms = performance.now() - t0;
    await w2.stop();
    console.log(`SIGTERM with the volume unwritable: exit ${code} after ${Math.round(ms)} ms (deadline ${SHUTDOWN_TIMEOUT_S} s)`);
    assert.equal(code, 1);
    assert.ok(ms < SHUTDOWN_TIMEOUT_S * 1000 + 2_500, `exited after ${Math.round(ms)} ms`);
    assert.match(s.output(), /shutdown deadline of 3 s passed before the flush finished \(object store unavailable since/);
    for (const d of await volumeDirs(vol)) await chmod(d, 0o755);
    const again = await start(vol);
    await verifyAcked(again.nfsPort, "data.bin", 7, w.acked);
    await verifyAcked(again.nfsPort, "more.bin", 8, w2.acked);
    assert.equal(await again.stop(), 0);
  });

  it("a deleted directory: degraded with one warning, JUKEBOX instead of hangs, SIGTERM exits 1 within the deadline", async () => {
    const vol = await newVolume("deleted");
    const s = await start(vol);
    const w = await Writer.start(s.nfsPort, "data.bin", 9);
    await waitFor("writes before the outage", async () => w.count >= 20, 30_000);
    const from = s.output().length;
    // The server may be creating a temp file in it meanwhile (ENOTEMPTY): rm retries.
    await rm(vol, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
    await waitFor("the degraded signal", async () => (await readyz(s)).body.startsWith("degraded"), 20_000);
    assert.equal((await readyz(s)).status, 200);
    await waitFor("a JUKEBOX answer", async () => w.jukebox >= 2, 20_000);
    await sleep(1_000);
    assert.deepEqual(w.otherErrors, []);
    const t0 = performance.now();
    const stopping = s.stop();
    await sleep(500);
    const during = await readyz(s);
    assert.equal(during.status, 503, "not ready while stopping");
    assert.equal(during.body, "stopping\n");
    assert.equal(during.health, 200, "still alive while it flushes");
    const code = await stopping;
    const ms = performance.now() - t0;
    await w.stop();
    console.log(`SIGTERM with the volume deleted: exit ${code} after ${Math.round(ms)} ms (deadline ${SHUTDOWN_TIMEOUT_S} s)`);
    assert.equal(code, 1);
    assert.ok(ms < SHUTDOWN_TIMEOUT_S * 1000 + 2_500, `exited after ${Math.round(ms)} ms`);
    const lines = logLines(s, from);
    const loud = lines.filter((l) => l.level >= 40 && l.level < 60);
    assert.deepEqual(loud.map((l) => l.msg), ["object store unavailable: serving what is cached, writes wait for it (NFS clients are told to retry)"], "one warning, no retry traces");
    const fatal = lines.find((l) => l.level === 60);
    assert.match(fatal?.msg ?? "", /never reached the object store and are lost; none had been acknowledged as durable/);
  });
});
