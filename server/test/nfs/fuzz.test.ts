/**
 * Wire fuzz: ≥ 100,000 random and mutated RPC messages over real loopback TCP against a server
 * with a stub NFS handler. Every message whose header the server can answer must get exactly
 * one reply; messages that break the header or the framing must only cost their connection.
 * Afterwards the server must still serve a fresh connection, with no leaked connections,
 * in-flight calls or unbounded memory. Seeded: ZEROFS_TEST_SEED replays a run.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { test } from "node:test";
import { DuplicateRequestCache } from "../../src/nfs/drc.ts";
import { MOUNT_PROGRAM, MountProc } from "../../src/nfs/mount.ts";
import { createNfsServer } from "../../src/nfs/nfs-server.ts";
import { NFS_PROGRAM, Nfs3Proc as P, Nfs3Status } from "../../src/nfs/nfs3-types.ts";
import { PMAP_PROGRAM, PmapProc } from "../../src/nfs/portmap.ts";
import { RecordDecoder } from "../../src/nfs/record-marking.ts";
import { parseCall } from "../../src/nfs/rpc.ts";
import { XdrWriter } from "../../src/nfs/xdr.ts";
import { Rng } from "../../../test/support/random.ts";
import { encodeArgs, decodeResult, type ArgsByProc, type ProcNum } from "../../../test/support/nfs/nfs3-client-codec.ts";
import { ARGS } from "./nfs3-samples.ts";
import { AUTH_NONE, RpcClient, authSys, encodeCall, successBody, type OpaqueAuthIn } from "../../../test/support/nfs/rpc-client.ts";
import { ROOT_FH, stubHandler } from "./stub-handler.ts";

const TOTAL_MESSAGES = 100_000;
const WORKERS = 4;
const HOST = "127.0.0.1";
const MAX_RECORD = 1 << 20; // smaller than the default so oversize cases are cheap to build

interface Template {
  prog: number;
  vers: number;
  proc: number;
  args: Buffer;
}

function templates(): Template[] {
  const out: Template[] = [{ prog: NFS_PROGRAM, vers: 3, proc: P.NULL, args: Buffer.alloc(0) }];
  for (const [k, list] of Object.entries(ARGS)) {
    const proc = Number(k) as ProcNum;
    for (const a of list as ArgsByProc[typeof proc][]) out.push({ prog: NFS_PROGRAM, vers: 3, proc, args: encodeArgs(proc, a) });
  }
  const path = new XdrWriter().string("/").toBuffer();
  const mapping = new XdrWriter().uint32(NFS_PROGRAM).uint32(3).uint32(6).uint32(0).toBuffer();
  out.push(
    { prog: MOUNT_PROGRAM, vers: 3, proc: MountProc.MNT, args: path },
    { prog: MOUNT_PROGRAM, vers: 3, proc: MountProc.UMNT, args: path },
    { prog: MOUNT_PROGRAM, vers: 3, proc: MountProc.EXPORT, args: Buffer.alloc(0) },
    { prog: MOUNT_PROGRAM, vers: 3, proc: MountProc.DUMP, args: Buffer.alloc(0) },
    { prog: PMAP_PROGRAM, vers: 2, proc: PmapProc.GETPORT, args: mapping },
    { prog: PMAP_PROGRAM, vers: 2, proc: PmapProc.DUMP, args: Buffer.alloc(0) },
  );
  return out;
}

/** Values written over 4-byte fields: huge lengths and small off-by-some ones. */
const HUGE = [0xffff_ffff, 0x7fff_ffff, 0x8000_0000, 0x0010_0000, 0x401, 0x41, 17, 3];

function randomCred(rng: Rng): OpaqueAuthIn {
  if (rng.chance(0.2)) return AUTH_NONE;
  const gids = Array.from({ length: rng.int(0, 16) }, () => rng.int(0, 70000));
  return authSys({ uid: rng.int(0, 70000), gid: rng.int(0, 70000), gids, machineName: "h".repeat(rng.int(0, 40)) });
}

/** A CALL body: a valid call (1 in 20) or a mutated / random one. */
function message(rng: Rng, tpls: Template[], xid: number): { body: Buffer; fuzzed: boolean } {
  if (rng.chance(0.05)) return { body: validCall(rng, tpls, xid), fuzzed: false };
  return { body: fuzzedMessage(rng, tpls, xid), fuzzed: true };
}

function validCall(rng: Rng, tpls: Template[], xid: number): Buffer {
  const t = tpls[rng.int(0, tpls.length - 1)] as Template;
  return encodeCall(xid, t.prog, t.vers, t.proc, t.args, { cred: randomCred(rng) });
}

function fuzzedMessage(rng: Rng, tpls: Template[], xid: number): Buffer {
  const msg = Buffer.from(validCall(rng, tpls, xid));
  const kind = rng.int(1, 9);
  switch (kind) {
    case 1:
    case 2: {
      // bit flips, biased past the xid so more of them stay answerable
      for (let i = rng.int(1, 6); i > 0; i--) {
        const bit = rng.int(32, msg.length * 8 - 1);
        msg[bit >> 3] = (msg[bit >> 3] as number) ^ (1 << (bit & 7));
      }
      return msg;
    }
    case 3:
      return msg.subarray(0, rng.int(0, msg.length)); // truncation
    case 4:
    case 5: {
      // a length (or any) field set to a huge or off-by-some value
      const words = msg.length >> 2;
      for (let i = rng.int(1, 2); i > 0; i--) {
        const at = rng.int(1, words - 1) * 4;
        const v = rng.chance(0.7) ? (HUGE[rng.int(0, HUGE.length - 1)] as number) : (msg.readUInt32BE(at) + rng.int(-8, 8)) >>> 0;
        msg.writeUInt32BE(v, at);
      }
      return msg;
    }
    case 6: {
      // header fields: rpcvers / prog / vers / proc / cred flavor
      const field = [8, 12, 16, 20, 24][rng.int(0, 4)] as number;
      msg.writeUInt32BE(rng.chance(0.5) ? rng.int(0, 30) : rng.int(0, 0xffff_ffff), field);
      return msg;
    }
    case 7: {
      // splice: insert or delete a few bytes
      const at = rng.int(28, msg.length);
      return rng.chance(0.5) ? Buffer.concat([msg.subarray(0, at), rng.bytes(rng.int(1, 9)), msg.subarray(at)]) : Buffer.concat([msg.subarray(0, at), msg.subarray(Math.min(msg.length, at + rng.int(1, 9)))]);
    }
    case 8:
      // garbage after a plausible header prefix
      return Buffer.concat([msg.subarray(0, rng.int(0, 48)), rng.bytes(rng.int(0, 120))]);
    default: {
      // random garbage, half of it behind a CALL / rpcvers 2 prefix so it gets past the first checks
      const g = rng.bytes(rng.int(0, 200));
      if (g.length >= 12 && rng.chance(0.5)) {
        g.writeUInt32BE(0, 4);
        g.writeUInt32BE(2, 8);
      }
      return g;
    }
  }
}

/** Frames a body as 1..3 fragments (occasionally with empty non-last fragments). */
function frameRandom(rng: Rng, body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  const pieces = rng.chance(0.8) ? 1 : rng.int(2, 3);
  for (let i = 0; i < pieces; i++) {
    const last = i === pieces - 1;
    const end = last ? body.length : rng.int(off, body.length);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(((last ? 0x8000_0000 : 0) | (end - off)) >>> 0);
    parts.push(h, body.subarray(off, end));
    off = end;
  }
  return Buffer.concat(parts);
}

/** Bytes that break the framing or the header: the server must drop the connection. */
function killer(rng: Rng, tpls: Template[]): Buffer {
  switch (rng.int(0, 4)) {
    case 0: {
      const h = Buffer.alloc(4);
      h.writeUInt32BE((rng.int(MAX_RECORD + 1, 0x7fff_ffff) | (rng.chance(0.5) ? 0x8000_0000 : 0)) >>> 0);
      return h; // oversize fragment header
    }
    case 1: {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(rng.int(0, 0xffff_ffff));
      return Buffer.concat([h, rng.bytes(rng.int(0, 64))]); // random header (maybe truncated record)
    }
    case 2:
      return rng.bytes(rng.int(1, 64)); // raw garbage
    case 3:
      return Buffer.from("80000000", "hex"); // empty record
    default: {
      // a message with an unanswerable header (or not a CALL)
      for (;;) {
        const m = fuzzedMessage(rng, tpls, rng.int(0, 0xffff_ffff));
        if (parseCall(m).kind === "invalid") return frameRandom(rng, m);
      }
    }
  }
}

interface BatchResult {
  /** Mutated or random messages sent (valid ones not counted). */
  fuzzed: number;
  answerable: number;
  replies: number;
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: HOST }, () => resolve(s));
    s.once("error", reject);
  });
}

async function runBatch(rng: Rng, tpls: Template[], port: number, size: number): Promise<BatchResult> {
  const socket = await openSocket(port);
  socket.on("error", () => {});
  const decoder = new RecordDecoder(1 << 22);
  const pendingXids = new Set<number>();
  let replies = 0;
  let onReply: (() => void) | null = null;
  socket.on("data", (chunk: Buffer) => {
    for (const rec of decoder.push(chunk)) {
      replies++;
      pendingXids.delete(rec.readUInt32BE(0));
      onReply?.();
    }
  });
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));

  const frames: Buffer[] = [];
  let answerable = 0;
  let fuzzed = 0;
  for (let i = 0; i < size; i++) {
    const m = message(rng, tpls, rng.int(0, 0xffff_ffff));
    if (parseCall(m.body).kind === "invalid") continue; // would end the connection: see killer()
    answerable++;
    if (m.fuzzed) fuzzed++;
    frames.push(frameRandom(rng, m.body));
  }
  // Send in random-size pieces so records straddle TCP writes.
  const all = Buffer.concat(frames);
  for (let off = 0; off < all.length; ) {
    const n = rng.chance(0.5) ? all.length - off : rng.int(1, Math.min(4096, all.length - off));
    socket.write(all.subarray(off, off + n));
    off += n;
  }
  // Every answerable message gets exactly one reply.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${replies}/${answerable} replies (seed ${rng.seed})`)), 10_000);
    onReply = () => {
      if (replies >= answerable) {
        clearTimeout(timer);
        resolve();
      }
    };
    onReply();
  });
  if (rng.chance(0.8)) {
    socket.write(killer(rng, tpls));
    fuzzed++;
  }
  socket.end();
  const timeout = new Promise<string>((resolve) => setTimeout(() => resolve("timeout"), 5_000).unref());
  assert.notEqual(await Promise.race([closed.then(() => "closed"), timeout]), "timeout", "server did not close the connection");
  assert.equal(replies, answerable, "no extra replies");
  return { fuzzed, answerable, replies };
}

test("fuzz: ≥100k random/mutated messages over TCP; the server survives and keeps serving", async () => {
  const rng = Rng.fromEnv("nfs wire fuzz");
  const drc = new DuplicateRequestCache({ maxEntries: 2048 });
  const outcomes: Record<string, number> = {};
  const count = (k: string): void => void (outcomes[k] = (outcomes[k] ?? 0) + 1);
  const server = createNfsServer({
    hooks: { onCall: (ev) => count(ev.outcome), onProtocolError: () => count("connection_closed") },
    handler: stubHandler(),
    mount: { exportPath: "/", rootHandle: () => ROOT_FH },
    drc,
    maxRecordBytes: MAX_RECORD,
    // The fuzzer connects from unreserved ports; `secure` would turn most calls into AUTH_TOOWEAK.
    insecure: true,
  });
  await server.listen(0, HOST);
  const tpls = templates();
  const t0 = Date.now();
  let fuzzed = 0;
  let answered = 0;
  let batches = 0;
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  try {
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      const wr = new Rng((rng.seed + w * 0x9e37_79b9) >>> 0);
      // A fixed quota per worker keeps each worker's message stream replayable from the seed.
      for (let mine = 0; mine < TOTAL_MESSAGES / WORKERS; ) {
        const r = await runBatch(wr, tpls, server.port, wr.int(1, 250));
        mine += r.fuzzed;
        fuzzed += r.fuzzed;
        answered += r.replies;
        batches++;
      }
    });
    await Promise.all(workers);
  } finally {
    clearInterval(sampler);
  }
  const secs = (Date.now() - t0) / 1000;
  console.log(`# fuzz: ${fuzzed} mutated/random messages (${answered} replies) in ${batches} connections, ${secs.toFixed(1)} s, peak rss ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
  console.log(`# fuzz outcomes: ${JSON.stringify(outcomes)}`);
  assert.ok(fuzzed >= TOTAL_MESSAGES);

  // Still serving: a valid GETATTR on a fresh connection.
  const c = await RpcClient.connect(server.port, HOST);
  const res = decodeResult(P.GETATTR, successBody(await c.call(NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH }))));
  assert.equal(res.status, Nfs3Status.NFS3_OK);
  await c.close();

  // Nothing leaked, memory bounded.
  for (let i = 0; i < 100 && server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(server.connectionCount, 0);
  assert.equal(server.inFlight, 0);
  assert.equal(drc.inProgress, 0);
  assert.ok(drc.size <= 2048);
  assert.ok(peakRss < 1024 * 2 ** 20, `peak rss ${peakRss}`);
  await server.close();
  assert.ok(secs < 60, `fuzz took ${secs} s`);
});
