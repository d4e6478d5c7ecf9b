import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DuplicateRequestCache } from "../../src/nfs/drc.ts";
import { MOUNT_PROGRAM, MountProc, MountStat } from "../../src/nfs/mount.ts";
import { createNfsServer } from "../../src/nfs/nfs-server.ts";
import { CreateMode, NFS_PROGRAM, Nfs3Proc as P, Nfs3Status, TimeHow, type CreateArgs, type Nfs3Handler } from "../../src/nfs/nfs3-types.ts";
import { IPPROTO_TCP, IPPROTO_UDP, PMAP_PROGRAM, PmapProc } from "../../src/nfs/portmap.ts";
import { AcceptStat, AuthStat, RejectStat } from "../../src/nfs/rpc.ts";
import type { RpcCallEvent, RpcServer } from "../../src/nfs/rpc-server.ts";
import { XdrWriter } from "../../src/nfs/xdr.ts";
import { decodeResult, encodeArgs } from "../../../test/support/nfs/nfs3-client-codec.ts";
import { AUTH_NONE, RpcClient, authSys, connectFromReservedPort, encodeCall, frame, successBody } from "../../../test/support/nfs/rpc-client.ts";
import { ROOT_FH, fattr, stubHandler } from "./stub-handler.ts";

const HOST = "127.0.0.1";

interface Harness {
  server: RpcServer;
  drc: DuplicateRequestCache;
  calls: RpcCallEvent[];
  bytes: { in: number; out: number };
  refused: number;
}

interface Extra {
  allowClient?: (a: string) => boolean;
  /** Default true here: these tests' client uses unreserved source ports (see the `secure` tests). */
  insecure?: boolean;
  maxInFlightPerConnection?: number;
  maxInFlightBytesPerConnection?: number;
  maxPendingWriteBytes?: number;
}

async function startServer(handler: Nfs3Handler, extra: Extra = {}): Promise<Harness> {
  const drc = new DuplicateRequestCache({ ttlMs: 60_000 });
  const h: Harness = { server: undefined as unknown as RpcServer, drc, calls: [], bytes: { in: 0, out: 0 }, refused: 0 };
  h.server = createNfsServer({
    handler,
    mount: { exportPath: "/", rootHandle: () => ROOT_FH },
    mountOptions: { groups: ["10.0.0.0/8", "*.example"] },
    drc,
    insecure: true,
    ...extra,
    hooks: {
      onCall: (ev) => h.calls.push(ev),
      onBytes: (dir, n) => (h.bytes[dir] += n),
      onConnection: (ev) => {
        if (ev === "refused") h.refused++;
      },
    },
  });
  await h.server.listen(0, HOST);
  return h;
}

const mapping = (prog: number, vers: number, prot: number) => new XdrWriter().uint32(prog).uint32(vers).uint32(prot).uint32(0).toBuffer();
const path = (p: string) => new XdrWriter().string(p).toBuffer();

let main: Harness;
let client: RpcClient;
let createCalls = 0;
let releaseCreate: (() => void) | null = null;
let createGate: Promise<void> | null = null;

before(async () => {
  main = await startServer(
    stubHandler({
      // GETATTR on a handle starting with "slow" waits, to force out-of-order replies.
      getattr: async (_c, a) => {
        const ms = a.object.toString().startsWith("slow") ? Number(a.object.toString().slice(4)) : 0;
        if (ms > 0) await sleep(ms);
        return { status: Nfs3Status.NFS3_OK, objAttributes: fattr(BigInt(a.object.length)) };
      },
      create: async (_c, a) => {
        createCalls++;
        if (createGate !== null) await createGate;
        return { status: Nfs3Status.NFS3_OK, obj: Buffer.concat([Buffer.from("fh-"), a.where.name]), objAttributes: fattr(BigInt(createCalls)), dirWcc: {} };
      },
    }),
  );
  client = await RpcClient.connect(main.server.port, HOST);
});

after(async () => {
  await client.close();
  await main.server.close();
});

test("portmap: GETPORT answers our own port for NFS v3 and MOUNT v3 over TCP, 0 otherwise; DUMP lists them", async () => {
  const port = main.server.port;
  const getport = async (prog: number, vers: number, prot: number) =>
    successBody(await client.call(PMAP_PROGRAM, 2, PmapProc.GETPORT, mapping(prog, vers, prot), { cred: AUTH_NONE })).uint32();
  assert.equal(await getport(NFS_PROGRAM, 3, IPPROTO_TCP), port);
  assert.equal(await getport(MOUNT_PROGRAM, 3, IPPROTO_TCP), port);
  assert.equal(await getport(NFS_PROGRAM, 3, IPPROTO_UDP), 0);
  assert.equal(await getport(NFS_PROGRAM, 4, IPPROTO_TCP), 0);
  assert.equal(await getport(100021, 4, IPPROTO_TCP), 0); // NLM: not served
  successBody(await client.call(PMAP_PROGRAM, 2, PmapProc.NULL));
  const dump = successBody(await client.call(PMAP_PROGRAM, 2, PmapProc.DUMP));
  const list: number[][] = [];
  while (dump.bool()) list.push([dump.uint32(), dump.uint32(), dump.uint32(), dump.uint32()]);
  assert.deepEqual(list.sort(), [[NFS_PROGRAM, 3, 6, port], [MOUNT_PROGRAM, 3, 6, port], [PMAP_PROGRAM, 2, 6, port]].sort());
  // SET is refused.
  assert.equal(successBody(await client.call(PMAP_PROGRAM, 2, PmapProc.SET, mapping(1, 1, 6))).bool(), false);
  const v3 = await client.call(PMAP_PROGRAM, 3, 3);
  assert.deepEqual(v3.kind === "accepted" && [v3.stat, v3.mismatch], [AcceptStat.PROG_MISMATCH, { low: 2, high: 2 }]);
});

test("mount: NULL, MNT, unknown path, EXPORT, DUMP, UMNT, UMNTALL", async () => {
  successBody(await client.call(MOUNT_PROGRAM, 3, MountProc.NULL));
  for (const p of ["/", "", "//"]) {
    const r = successBody(await client.call(MOUNT_PROGRAM, 3, MountProc.MNT, path(p), { cred: AUTH_NONE }));
    assert.equal(r.uint32(), MountStat.MNT3_OK);
    assert.deepEqual(r.opaque(64), ROOT_FH);
    assert.deepEqual(r.array(10, (x) => x.uint32()), [1, 0]); // AUTH_SYS, AUTH_NONE
    r.expectEnd();
  }
  const bad = successBody(await client.call(MOUNT_PROGRAM, 3, MountProc.MNT, path("/nope")));
  assert.equal(bad.uint32(), MountStat.MNT3ERR_NOENT);
  const longPath = successBody(await client.call(MOUNT_PROGRAM, 3, MountProc.MNT, path("/" + "a".repeat(1100))));
  assert.equal(longPath.uint32(), MountStat.MNT3ERR_NAMETOOLONG);

  const ex = successBody(await client.call(MOUNT_PROGRAM, 3, MountProc.EXPORT));
  const exports: { dir: string; groups: string[] }[] = [];
  while (ex.bool()) {
    const dir = ex.string(1024);
    const groups: string[] = [];
    while (ex.bool()) groups.push(ex.string(255));
    exports.push({ dir, groups });
  }
  assert.deepEqual(exports, [{ dir: "/", groups: ["10.0.0.0/8", "*.example"] }]);

  const dump = async () => {
    const d = successBody(await client.call(MOUNT_PROGRAM, 3, MountProc.DUMP));
    const out: string[] = [];
    while (d.bool()) out.push(`${d.string(255)} ${d.string(1024)}`);
    return out;
  };
  assert.deepEqual(await dump(), [`${HOST} /`]);
  successBody(await client.call(MOUNT_PROGRAM, 3, MountProc.UMNT, path("/")));
  assert.deepEqual(await dump(), []);
  successBody(await client.call(MOUNT_PROGRAM, 3, MountProc.MNT, path("/")));
  successBody(await client.call(MOUNT_PROGRAM, 3, MountProc.UMNTALL));
  assert.deepEqual(await dump(), []);
  const garbage = await client.call(MOUNT_PROGRAM, 3, MountProc.MNT, Buffer.from("0000ffff", "hex"));
  assert.equal(garbage.kind === "accepted" && garbage.stat, AcceptStat.GARBAGE_ARGS);
});

test("nfs: NULL and GETATTR, unknown procedure, truncated arguments", async () => {
  successBody(await client.call(NFS_PROGRAM, 3, P.NULL));
  const r = await client.call(NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH }));
  assert.deepEqual(decodeResult(P.GETATTR, successBody(r)), { status: Nfs3Status.NFS3_OK, objAttributes: fattr(BigInt(ROOT_FH.length)) });
  const unknown = await client.call(NFS_PROGRAM, 3, 22);
  assert.equal(unknown.kind === "accepted" && unknown.stat, AcceptStat.PROC_UNAVAIL);
  const truncated = await client.call(NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH }).subarray(0, 10));
  assert.equal(truncated.kind === "accepted" && truncated.stat, AcceptStat.GARBAGE_ARGS);
  const v2 = await client.call(NFS_PROGRAM, 2, P.NULL);
  assert.deepEqual(v2.kind === "accepted" && v2.mismatch, { low: 3, high: 3 });
});

test("nfs: pipelined calls complete out of order and are matched by xid", async () => {
  const order: number[] = [];
  const delays = [200, 0, 120, 0, 60, 0, 0, 30, 0, 0];
  const pending = delays.map((ms, i) =>
    client.call(NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: Buffer.from(ms > 0 ? `slow${ms}` : `fast${i}`) })).then((r) => {
      order.push(i);
      return r;
    }),
  );
  const replies = await Promise.all(pending);
  replies.forEach((r, i) => {
    const res = decodeResult(P.GETATTR, successBody(r));
    assert.equal(res.status === Nfs3Status.NFS3_OK && res.objAttributes.fileid, BigInt(delays[i] !== 0 ? `slow${delays[i]}`.length : `fast${i}`.length));
  });
  assert.deepEqual(order.slice(-4), [7, 4, 2, 0], `completion order ${order.join(",")}`);
  assert.ok(order.indexOf(1) < order.indexOf(0));
});

test("nfs: a large READ (1 MiB) and WRITE (1 MiB, many chunks) cross the wire intact", async () => {
  const data = Buffer.alloc(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  let written: Buffer | null = null;
  const h = await startServer(
    stubHandler({
      read: async () => ({ status: Nfs3Status.NFS3_OK, eof: false, data }),
      write: async (_c, a) => {
        written = Buffer.from(a.data);
        return { status: Nfs3Status.NFS3_OK, fileWcc: {}, count: a.count, committed: 2, verf: Buffer.alloc(8) };
      },
    }),
  );
  const c = await RpcClient.connect(h.server.port, HOST);
  try {
    const rd = decodeResult(P.READ, successBody(await c.call(NFS_PROGRAM, 3, P.READ, encodeArgs(P.READ, { file: ROOT_FH, offset: 0n, count: 1 << 20 }))));
    assert.ok(rd.status === Nfs3Status.NFS3_OK && rd.data.equals(data));
    const wr = decodeResult(P.WRITE, successBody(await c.call(NFS_PROGRAM, 3, P.WRITE, encodeArgs(P.WRITE, { file: ROOT_FH, offset: 0n, count: data.length, stable: 0, data }))));
    assert.equal(wr.status === Nfs3Status.NFS3_OK && wr.count, data.length);
    assert.ok(written !== null && data.equals(written));
  } finally {
    await c.close();
    await h.server.close();
  }
});

const createArgs = (name: string): CreateArgs => ({
  where: { dir: ROOT_FH, name: Buffer.from(name) },
  how: { mode: CreateMode.GUARDED, attributes: { mode: 0o644, atime: { how: TimeHow.DONT_CHANGE }, mtime: { how: TimeHow.SET_TO_SERVER_TIME } } },
});

test("drc: a retransmitted CREATE runs once and gets the same reply bytes, in progress or completed", async () => {
  createCalls = 0;
  createGate = new Promise((r) => (releaseCreate = r));
  const xid = client.nextXid();
  const args = encodeArgs(P.CREATE, createArgs("a.txt"));
  const first = client.call(NFS_PROGRAM, 3, P.CREATE, args, { xid });
  const second = client.call(NFS_PROGRAM, 3, P.CREATE, args, { xid }); // while the first is in progress
  await sleep(30);
  assert.equal(createCalls, 1);
  releaseCreate?.();
  createGate = null;
  const [r1, r2] = await Promise.all([first, second]);
  assert.deepEqual(r1.raw, r2.raw);
  assert.equal(main.drc.stats.joined, 1);

  // After completion, from the same address and port: replayed from the cache.
  const r3 = await client.call(NFS_PROGRAM, 3, P.CREATE, args, { xid });
  assert.deepEqual(r3.raw, r1.raw);
  assert.equal(createCalls, 1);
  assert.equal(main.drc.stats.hits, 1);
  // From another port (another process on the same host): not this caller's reply to replay.
  const other = await RpcClient.connect(main.server.port, HOST);
  await other.call(NFS_PROGRAM, 3, P.CREATE, args, { xid });
  await other.close();
  assert.equal(createCalls, 2);
  assert.equal(main.drc.stats.hits, 1);

  // Same xid, different arguments: not a retransmission.
  const r4 = await client.call(NFS_PROGRAM, 3, P.CREATE, encodeArgs(P.CREATE, createArgs("b.txt")), { xid });
  assert.equal(createCalls, 3);
  const res4 = decodeResult(P.CREATE, successBody(r4));
  assert.deepEqual(res4.status === Nfs3Status.NFS3_OK && res4.obj, Buffer.from("fh-b.txt"));
  // Idempotent procedures bypass the cache.
  const misses = main.drc.stats.misses;
  await client.call(NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH }), { xid });
  assert.equal(main.drc.stats.misses, misses);
});

test("drc: another credential replaying a caller's xid and arguments runs as itself, not from that caller's cache", async () => {
  let runs = 0;
  const h = await startServer(
    stubHandler({
      create: async (c) => {
        runs++;
        // Only uid 1000 may create here.
        if (c.uid !== 1000) return { status: Nfs3Status.NFS3ERR_ACCES, dirWcc: {} };
        return { status: Nfs3Status.NFS3_OK, obj: Buffer.from("fh-new"), objAttributes: fattr(7n), dirWcc: {} };
      },
    }),
  );
  const c = await RpcClient.connect(h.server.port, HOST);
  try {
    const xid = c.nextXid();
    const args = encodeArgs(P.CREATE, createArgs("x.txt"));
    const denied = decodeResult(P.CREATE, successBody(await c.call(NFS_PROGRAM, 3, P.CREATE, args, { xid, cred: authSys({ uid: 2000, gid: 2000 }) })));
    assert.equal(denied.status, Nfs3Status.NFS3ERR_ACCES);
    // Same connection (same address and port), same xid and arguments, another uid.
    const own = decodeResult(P.CREATE, successBody(await c.call(NFS_PROGRAM, 3, P.CREATE, args, { xid, cred: authSys({ uid: 1000, gid: 1000 }) })));
    assert.equal(own.status, Nfs3Status.NFS3_OK, "uid 1000 must not get uid 2000's cached ACCES");
    assert.equal(runs, 2);
    assert.equal(h.drc.stats.hits, 0);
    // The real retransmission (same credential bytes) is still answered from the cache.
    const again = decodeResult(P.CREATE, successBody(await c.call(NFS_PROGRAM, 3, P.CREATE, args, { xid, cred: authSys({ uid: 1000, gid: 1000 }) })));
    assert.equal(again.status, Nfs3Status.NFS3_OK);
    assert.equal(runs, 2);
    assert.equal(h.drc.stats.hits, 1);
  } finally {
    await c.close();
    await h.server.close();
  }
});

test("protocol errors: calls received before an unparseable record in the same segment are answered, then the connection closes", async () => {
  const h = await startServer(stubHandler({ getattr: async () => (await sleep(30), { status: Nfs3Status.NFS3_OK, objAttributes: fattr(3n) }) }));
  try {
    for (const bad of [
      // A REPLY where a CALL must be: no xid to answer.
      frame(Buffer.from("0000000100000001", "hex")),
      // A record header declaring more than the record limit.
      Buffer.from("ffffffff", "hex"),
    ]) {
      const c = await RpcClient.connect(h.server.port, HOST);
      const xids = Array.from({ length: 5 }, () => c.nextXid());
      const waits = xids.map((xid) => c.expect(xid).then(
        (r) => r,
        () => null,
      ));
      const calls = xids.map((xid) => frame(encodeCall(xid, NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH }))));
      c.sendRaw(Buffer.concat([...calls, bad])); // one write: one TCP segment on loopback
      const replies = await Promise.all(waits);
      assert.equal(replies.filter((r) => r !== null).length, 5, `answered ${replies.filter((r) => r !== null).length}/5 before the close`);
      await c.closed; // and the server did close the connection
    }
  } finally {
    await h.server.close();
  }
});

test("allowClient: a refused client is disconnected at once", async () => {
  const h = await startServer(stubHandler(), { allowClient: (addr) => addr !== HOST });
  try {
    const c = await RpcClient.connect(h.server.port, HOST);
    const reply = c.call(NFS_PROGRAM, 3, P.NULL).catch((e: Error) => e);
    await c.closed;
    assert.ok((await reply) instanceof Error);
    assert.equal(h.refused, 1);
    assert.equal(h.calls.length, 0);
  } finally {
    await h.server.close();
  }
});

test("limits: in-flight calls per connection are capped, the rest wait", async () => {
  let running = 0;
  let peak = 0;
  const h = await startServer(
    stubHandler({
      getattr: async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(5);
        running--;
        return { status: Nfs3Status.NFS3_OK, objAttributes: fattr(1n) };
      },
    }),
    { maxInFlightPerConnection: 3 },
  );
  const c = await RpcClient.connect(h.server.port, HOST);
  try {
    // Many calls in a single write, so one chunk completes many records.
    const xids = Array.from({ length: 40 }, () => c.nextXid());
    const waits = xids.map((xid) => c.expect(xid));
    c.sendRaw(Buffer.concat(xids.map((xid) => frame(encodeCall(xid, NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH }))))));
    const replies = await Promise.all(waits);
    assert.equal(replies.length, 40);
    assert.equal(peak, 3);
  } finally {
    await c.close();
    await h.server.close();
  }
});

test("limits: in-flight request bytes per connection are capped", async () => {
  let running = 0;
  let peak = 0;
  const h = await startServer(
    stubHandler({
      write: async (_c, a) => {
        running++;
        peak = Math.max(peak, running);
        await sleep(5);
        running--;
        return { status: Nfs3Status.NFS3_OK, fileWcc: {}, count: a.count, committed: 2, verf: Buffer.alloc(8) };
      },
    }),
    { maxInFlightBytesPerConnection: 2500 },
  );
  const c = await RpcClient.connect(h.server.port, HOST);
  try {
    const args = encodeArgs(P.WRITE, { file: ROOT_FH, offset: 0n, count: 1000, stable: 0, data: Buffer.alloc(1000) });
    const xids = Array.from({ length: 20 }, () => c.nextXid());
    const waits = xids.map((xid) => c.expect(xid));
    c.sendRaw(Buffer.concat(xids.map((xid) => frame(encodeCall(xid, NFS_PROGRAM, 3, P.WRITE, args)))));
    await Promise.all(waits);
    assert.equal(peak, 2); // ~1.1 KB records: two fit in 2500 bytes, three don't
  } finally {
    await c.close();
    await h.server.close();
  }
});

test("limits: a client that does not read its replies stops being read", async () => {
  let calls = 0;
  const reply = Buffer.alloc(64 * 1024, 1);
  const h = await startServer(
    stubHandler({
      read: async () => {
        calls++;
        return { status: Nfs3Status.NFS3_OK, eof: false, data: reply };
      },
    }),
    { maxPendingWriteBytes: 256 * 1024 },
  );
  const c = await RpcClient.connect(h.server.port, HOST);
  try {
    c.socket.pause(); // stop reading replies
    const total = 1000; // 64 MB of replies: far more than socket buffers hold
    const xids = Array.from({ length: total }, () => c.nextXid());
    const waits = xids.map((xid) => c.expect(xid));
    const args = encodeArgs(P.READ, { file: ROOT_FH, offset: 0n, count: reply.length });
    c.sendRaw(Buffer.concat(xids.map((xid) => frame(encodeCall(xid, NFS_PROGRAM, 3, P.READ, args)))));
    await sleep(300);
    assert.ok(calls < total / 2, `${calls} calls ran while the client was not reading`);
    c.socket.resume();
    await Promise.all(waits);
    assert.equal(calls, total);
  } finally {
    c.destroy(); // not close(): if an assertion failed the client may still be paused
    await h.server.close();
  }
});

test("limits: reply bytes count from the moment a call starts (READ reserves its count), not only once queued", async () => {
  let calls = 0;
  const reply = Buffer.alloc(1024 * 1024, 1);
  const h = await startServer(
    stubHandler({
      read: async () => {
        calls++;
        await sleep(20); // all 128 would be in flight before the first reply is queued
        return { status: Nfs3Status.NFS3_OK, eof: false, data: reply };
      },
    }),
    { maxPendingWriteBytes: 4 * 1024 * 1024 },
  );
  const c = await RpcClient.connect(h.server.port, HOST);
  try {
    c.socket.pause(); // never read
    const args = encodeArgs(P.READ, { file: ROOT_FH, offset: 0n, count: reply.length });
    c.sendRaw(Buffer.concat(Array.from({ length: 128 }, () => frame(encodeCall(c.nextXid(), NFS_PROGRAM, 3, P.READ, args)))));
    await sleep(1000);
    // 4 MiB pending plus what loopback socket buffers absorb (a few MiB); unbounded, all 128 run.
    assert.ok(calls <= 32, `${calls} READs of 1 MiB ran for a client that reads nothing`);
    assert.ok(h.server.bufferedBytes.reply <= 5 * 1024 * 1024 + 4096, `${h.server.bufferedBytes.reply} reply bytes buffered`);
    // Everything is released once the connection is gone and its calls have finished.
    c.destroy();
    await h.server.close();
    for (let i = 0; i < 50 && h.server.bufferedBytes.reply + h.server.bufferedBytes.request > 0; i++) await sleep(10); // socket close events
    assert.deepEqual(h.server.bufferedBytes, { request: 0, reply: 0 });
  } finally {
    c.destroy();
    await h.server.close();
  }
});

test("metrics hooks: calls by prog/proc/outcome and bytes in/out", async () => {
  const h = await startServer(stubHandler());
  const c = await RpcClient.connect(h.server.port, HOST);
  await c.call(NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH }));
  await c.call(NFS_PROGRAM, 3, P.GETATTR, Buffer.alloc(2));
  await c.call(NFS_PROGRAM, 9, 0);
  await c.close();
  await h.server.close();
  assert.deepEqual(
    h.calls.map((e) => [e.prog, e.vers, e.proc, e.outcome]),
    [
      [NFS_PROGRAM, 3, P.GETATTR, "success"],
      [NFS_PROGRAM, 3, P.GETATTR, "garbage_args"],
      [NFS_PROGRAM, 9, 0, "prog_mismatch"],
    ],
  );
  assert.ok(h.bytes.in > 100 && h.bytes.out > 100);
});

test("graceful close waits for in-flight calls, then refuses new connections", async () => {
  let finished = false;
  const h = await startServer(
    stubHandler({
      getattr: async () => {
        await sleep(150);
        finished = true;
        return { status: Nfs3Status.NFS3_OK, objAttributes: fattr(1n) };
      },
    }),
  );
  const c = await RpcClient.connect(h.server.port, HOST);
  const reply = c.call(NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH }));
  await sleep(20);
  const t0 = Date.now();
  const closing = h.server.close(5_000);
  // The slow call still gets its reply.
  const r = await reply;
  assert.equal(decodeResult(P.GETATTR, successBody(r)).status, Nfs3Status.NFS3_OK);
  assert.ok(finished);
  await c.closed; // the server closes the connection after flushing
  await closing;
  assert.ok(Date.now() - t0 >= 100);
  await assert.rejects(
    new Promise((resolve, reject) => {
      const s = connect({ port: h.server.port, host: HOST }, () => resolve(s));
      s.once("error", reject);
    }),
  );
});

test("graceful close gives up after its timeout", async () => {
  const h = await startServer(stubHandler({ getattr: () => new Promise(() => {}) }));
  const c = await RpcClient.connect(h.server.port, HOST);
  const reply = c.call(NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH })).catch((e: Error) => e);
  await sleep(20);
  const t0 = Date.now();
  await h.server.close(100);
  assert.ok(Date.now() - t0 < 2000);
  assert.ok((await reply) instanceof Error);
});

test("secure by default: MOUNT and NFS calls from an unreserved source port get AUTH_TOOWEAK, NULL and PORTMAP are answered", async () => {
  const h = await startServer(stubHandler(), { insecure: false });
  const c = await RpcClient.connect(h.server.port, HOST);
  try {
    assert.ok(c.socket.localPort! >= 1024, "an ordinary client port");
    const tooWeak = (r: Awaited<ReturnType<RpcClient["call"]>>, what: string): void =>
      assert.deepEqual(r.kind === "denied" ? [r.rejectStat, r.authStat] : r.kind, [RejectStat.AUTH_ERROR, AuthStat.AUTH_TOOWEAK], what);
    const root = authSys({ uid: 0, gid: 0 });
    tooWeak(await c.call(MOUNT_PROGRAM, 3, MountProc.MNT, path("/"), { cred: root }), "MNT");
    tooWeak(await c.call(MOUNT_PROGRAM, 3, MountProc.DUMP), "DUMP");
    tooWeak(await c.call(NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH }), { cred: root }), "GETATTR");
    tooWeak(await c.call(NFS_PROGRAM, 3, P.CREATE, encodeArgs(P.CREATE, createArgs("x")), { cred: root }), "CREATE");
    successBody(await c.call(NFS_PROGRAM, 3, P.NULL));
    successBody(await c.call(MOUNT_PROGRAM, 3, MountProc.NULL));
    successBody(await c.call(PMAP_PROGRAM, 2, PmapProc.GETPORT, mapping(NFS_PROGRAM, 3, IPPROTO_TCP)));
    assert.equal(h.calls.filter((e) => e.outcome === "auth_error").length, 4);
  } finally {
    c.destroy();
    await h.server.close();
  }
});

test("secure by default: a reserved source port (< 1024) is served", async () => {
  const h = await startServer(stubHandler(), { insecure: false });
  const c = await connectFromReservedPort(h.server.port, HOST);
  try {
    assert.ok(c.socket.localPort! < 1024, `bound to reserved port ${c.socket.localPort}`);
    const m = successBody(await c.call(MOUNT_PROGRAM, 3, MountProc.MNT, path("/"), { cred: authSys({ uid: 0, gid: 0 }) }));
    assert.equal(m.uint32(), MountStat.MNT3_OK);
    const r = await c.call(NFS_PROGRAM, 3, P.GETATTR, encodeArgs(P.GETATTR, { object: ROOT_FH }), { cred: authSys({ uid: 0, gid: 0 }) });
    assert.equal(decodeResult(P.GETATTR, successBody(r)).status, Nfs3Status.NFS3_OK);
  } finally {
    c.destroy();
    await h.server.close();
  }
});

test("mount: DUMP shows a client only its own mounts (other clients' paths are secret names)", async () => {
  const h = await startServer(stubHandler());
  const other = await RpcClient.connect(h.server.port, HOST, { address: "127.0.0.2" });
  const me = await RpcClient.connect(h.server.port, HOST);
  try {
    assert.equal(successBody(await other.call(MOUNT_PROGRAM, 3, MountProc.MNT, path("/"))).uint32(), MountStat.MNT3_OK);
    assert.equal(successBody(await me.call(MOUNT_PROGRAM, 3, MountProc.MNT, path("/"))).uint32(), MountStat.MNT3_OK);
    const dump = async (c: RpcClient): Promise<string[]> => {
      const d = successBody(await c.call(MOUNT_PROGRAM, 3, MountProc.DUMP));
      const out: string[] = [];
      while (d.bool()) out.push(`${d.string(255)} ${d.string(1024)}`);
      return out;
    };
    assert.deepEqual(await dump(me), [`${HOST} /`]);
    assert.deepEqual(await dump(other), ["127.0.0.2 /"]);
  } finally {
    other.destroy();
    me.destroy();
    await h.server.close();
  }
});
