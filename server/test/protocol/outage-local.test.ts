/**
 * Outages of a local-directory volume under NFS write load: the directory made unwritable
 * (then writable again) and the directory deleted. The server reports the outage (a
 * "degraded" readiness body and metric, one warning), answers NFS3ERR_JUKEBOX instead of
 * hanging, recovers when the directory is writable again without losing an acknowledged write,
 * and a SIGTERM while the volume is broken exits 1 within the shutdown deadline with a message.
 *
 * Root ignores permission bits: when the tests run as root, the folders are made immutable
 * (chattr +i, which binds root too) or, where the file system cannot do that, the server runs
 * as nobody and the folders are chmod 0555.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { startZerofs, type ZerofsProcess } from "../../../test/support/zerofs-process.ts";
import { logLines, metric, readyz, verifyAcked, waitFor, Writer } from "./outage-support.ts";

const SHUTDOWN_TIMEOUT_S = 3;
const isRoot = process.getuid?.() === 0;
/** How folders are made unwritable for the server (see the file comment). */
let mode: "chmod" | "chattr" | "nobody" = "chmod";
let user: { uid: number; gid: number } | undefined;
/** Folders currently immutable: after() must release them or they could not be removed. */
const immutable = new Set<string>();

async function chattr(flag: "+i" | "-i", dirs: string[]): Promise<void> {
  await promisify(execFile)("chattr", [flag, ...dirs]);
  for (const d of dirs) {
    if (flag === "+i") immutable.add(d);
    else immutable.delete(d);
  }
}

async function pickMode(dir: string): Promise<void> {
  if (!isRoot) return;
  const probe = join(dir, "probe");
  await mkdir(probe);
  try {
    await chattr("+i", [probe]);
    const blocked = await writeFile(join(probe, "x"), "x").then(() => false, () => true);
    await chattr("-i", [probe]);
    if (blocked) {
      mode = "chattr";
      return;
    }
  } catch {
    // chattr missing or not supported here.
  }
  mode = "nobody";
  user = { uid: 65534, gid: 65534 };
}

async function setWritable(dirs: string[], writable: boolean): Promise<void> {
  if (mode === "chattr") await chattr(writable ? "-i" : "+i", dirs);
  else for (const d of dirs) await chmod(d, writable ? 0o755 : 0o555);
}

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
    await pickMode(dir);
    console.log(`making folders unwritable with: ${mode}`);
  });
  after(async () => {
    for (const s of servers) if (s.proc.exitCode === null && s.proc.signalCode === null) await s.kill();
    if (immutable.size > 0) await chattr("-i", [...immutable]);
    await rm(dir, { recursive: true, force: true });
  });

  it("an unwritable directory: degraded, JUKEBOX, recovers when writable again, nothing acknowledged lost; SIGTERM while unwritable exits 1 in time", async () => {
    const vol = await newVolume("unwritable");
    const s = await start(vol);
    const w = await Writer.start(s.nfsPort, "data.bin", 7);
    await waitFor("writes before the outage", async () => w.count >= 20, 30_000);
    const from = s.output().length;
    const dirs = await volumeDirs(vol);
    await setWritable(dirs, false);
    const detectMs = await waitFor("the degraded signal", async () => (await readyz(s)).body.startsWith("degraded"), 20_000);
    const r = await readyz(s);
    assert.equal(r.status, 200);
    assert.match(r.body, /^degraded: object store file:\/\/\S+ unavailable since \S+ \(.*(EACCES|EPERM).*\)\n$/i);
    assert.equal(await metric(s, "zerofs_store_degraded"), 1);
    await waitFor("a JUKEBOX answer", async () => w.jukebox >= 2, 20_000);
    const ackedDuring = w.count;
    await setWritable(dirs, true);
    const recoverMs = await waitFor("recovery", async () => (await readyz(s)).body === "ok\n", 30_000);
    await waitFor("writes after the outage", async () => w.count >= ackedDuring + 20, 30_000);
    await w.stop();
    assert.deepEqual(w.otherErrors, []);
    const lines = logLines(s, from);
    assert.deepEqual(lines.filter((l) => l.level >= 40).map((l) => l.msg), ["object store unavailable: serving what is cached, writes wait for it (NFS clients are told to retry)"]);
    assert.equal(lines.filter((l) => l.msg === "object store available again").length, 1);
    await verifyAcked(s.nfsPort, "data.bin", 7, w.acked);
    console.log(`unwritable volume: degraded after ${Math.round(detectMs)} ms, healthy ${Math.round(recoverMs)} ms after it was writable again, longest WRITE ${Math.round(w.maxCallMs)} ms`);

    // Unwritable again, with a write buffered: the stop gives up at its deadline.
    const w2 = await Writer.start(s.nfsPort, "more.bin", 8);
    await waitFor("writes", async () => w2.count >= 5, 30_000);
    const dirs2 = await volumeDirs(vol);
    await setWritable(dirs2, false);
    await waitFor("the degraded signal", async () => (await readyz(s)).body.startsWith("degraded"), 20_000);
    const t0 = performance.now();
    const code = await s.stop();
    const ms = performance.now() - t0;
    await w2.stop();
    console.log(`SIGTERM with the volume unwritable: exit ${code} after ${Math.round(ms)} ms (deadline ${SHUTDOWN_TIMEOUT_S} s)`);
    assert.equal(code, 1);
    assert.ok(ms < SHUTDOWN_TIMEOUT_S * 1000 + 2_500, `exited after ${Math.round(ms)} ms`);
    assert.match(s.output(), /shutdown deadline of 3 s passed before the flush finished \(object store unavailable since/);
    await setWritable(dirs2, true);
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
