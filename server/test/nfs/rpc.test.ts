import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  AcceptStat,
  AuthFlavor,
  AuthStat,
  NOBODY_ID,
  RejectStat,
  authenticate,
  buildAcceptedHeader,
  buildAuthErrorReply,
  buildProgMismatchReply,
  buildRpcMismatchReply,
  parseAuthSys,
  parseCall,
} from "../../src/nfs/rpc.ts";
import { RpcAcceptError, RpcServer, type RpcCallContext, type RpcProcHandler } from "../../src/nfs/rpc-server.ts";
import { XdrWriter } from "../../src/nfs/xdr.ts";
import { AUTH_NONE, RpcClient, authSys, encodeCall, frame, parseReply, successBody } from "../../../test/support/nfs/rpc-client.ts";

test("parseCall: a well-formed CALL with AUTH_SYS", () => {
  const cred = authSys({ uid: 501, gid: 20, gids: [12, 61, 79], machineName: "mac", stamp: 99 });
  const msg = encodeCall(0xdeadbeef, 100003, 3, 1, Buffer.from("00000004aabbccdd", "hex"), { cred });
  const p = parseCall(msg);
  assert.equal(p.kind, "call");
  assert.ok(p.kind === "call");
  assert.deepEqual({ ...p.header, cred: undefined, verf: undefined }, { xid: 0xdeadbeef, prog: 100003, vers: 3, proc: 1, cred: undefined, verf: undefined });
  assert.equal(msg.length - p.argsOffset, 8);
  assert.deepEqual(parseAuthSys(p.header.cred.body), { stamp: 99, machineName: "mac", uid: 501, gid: 20, gids: [12, 61, 79] });
  const a = authenticate(p.header, "127.0.0.1", 800);
  assert.ok(a.ok);
  assert.deepEqual(a.creds, { flavor: AuthFlavor.AUTH_SYS, uid: 501, gid: 20, gids: [12, 61, 79], machineName: "mac", remoteAddress: "127.0.0.1", remotePort: 800 });
});

test("parseCall: rpcvers != 2 is denied with RPC_MISMATCH(2, 2)", () => {
  const p = parseCall(encodeCall(7, 100003, 3, 0, Buffer.alloc(0), { rpcvers: 3 }));
  assert.equal(p.kind, "deny");
  assert.ok(p.kind === "deny");
  const r = parseReply(p.reply);
  assert.deepEqual({ ...r, raw: undefined }, { xid: 7, kind: "denied", rejectStat: RejectStat.RPC_MISMATCH, mismatch: { low: 2, high: 2 }, raw: undefined });
});

test("parseCall: unanswerable messages are invalid", () => {
  assert.equal(parseCall(Buffer.alloc(0)).kind, "invalid");
  assert.equal(parseCall(Buffer.from("0000000100", "hex")).kind, "invalid");
  // A REPLY sent to the server.
  assert.equal(parseCall(buildAcceptedHeader(5, AcceptStat.SUCCESS)).kind, "invalid");
  // Truncated in the credential.
  const full = encodeCall(9, 1, 1, 1, Buffer.alloc(0));
  for (let n = 0; n < full.length; n++) assert.equal(parseCall(full.subarray(0, n)).kind, "invalid", `len ${n}`);
  assert.equal(parseCall(full).kind, "call");
  // Credential body over 400 bytes.
  assert.equal(parseCall(encodeCall(9, 1, 1, 1, Buffer.alloc(0), { cred: { flavor: 1, body: Buffer.alloc(404) } })).kind, "invalid");
});

test("authenticate: AUTH_NONE → nobody; bad AUTH_SYS / unknown flavors → AUTH_ERROR codes", () => {
  const hdr = (cred: { flavor: number; body: Buffer }) => {
    const p = parseCall(encodeCall(1, 1, 1, 1, Buffer.alloc(0), { cred }));
    assert.ok(p.kind === "call");
    return p.header;
  };
  const none = authenticate(hdr(AUTH_NONE), "::1", 1);
  assert.ok(none.ok);
  assert.equal(none.creds.uid, NOBODY_ID);
  assert.equal(none.creds.gid, NOBODY_ID);
  const tooManyGids = authSys({ uid: 1, gid: 1, gids: Array.from({ length: 17 }, (_, i) => i) });
  const bad = authenticate(hdr(tooManyGids), "::1", 1);
  assert.deepEqual(bad.ok ? null : bad.stat, AuthStat.AUTH_BADCRED);
  const trailing = { flavor: 1, body: Buffer.concat([authSys({ uid: 1, gid: 1 }).body, Buffer.alloc(4)]) };
  assert.equal((authenticate(hdr(trailing), "::1", 1) as { stat: number }).stat, AuthStat.AUTH_BADCRED);
  const longName = new XdrWriter().uint32(0).string("x".repeat(256)).uint32(0).uint32(0).uint32(0).toBuffer();
  assert.equal((authenticate(hdr({ flavor: 1, body: longName }), "::1", 1) as { stat: number }).stat, AuthStat.AUTH_BADCRED);
  assert.equal((authenticate(hdr({ flavor: AuthFlavor.AUTH_SHORT, body: Buffer.alloc(8) }), "::1", 1) as { stat: number }).stat, AuthStat.AUTH_REJECTEDCRED);
  assert.equal((authenticate(hdr({ flavor: AuthFlavor.RPCSEC_GSS, body: Buffer.alloc(8) }), "::1", 1) as { stat: number }).stat, AuthStat.AUTH_BADCRED);
});

test("reply builders: wire layout", () => {
  assert.equal(buildAcceptedHeader(1, AcceptStat.SUCCESS).toString("hex"), "00000001" + "00000001" + "00000000" + "0000000000000000" + "00000000");
  assert.equal(buildProgMismatchReply(2, 3, 4).toString("hex"), "00000002000000010000000000000000000000000000000200000003" + "00000004");
  assert.equal(buildRpcMismatchReply(3).toString("hex"), "00000003" + "00000001" + "00000001" + "00000000" + "00000002" + "00000002");
  assert.equal(buildAuthErrorReply(4, AuthStat.AUTH_TOOWEAK).toString("hex"), "00000004" + "00000001" + "00000001" + "00000001" + "00000005");
});

// ---------------------------------------------------------------- over loopback TCP

const PROG = 400_100;
let server: RpcServer;
let client: RpcClient;
const seen: RpcCallContext[] = [];

before(async () => {
  const echo: RpcProcHandler = (ctx, args) => {
    seen.push(ctx);
    const n = args.uint32("n");
    const s = args.string(16, "s");
    return new XdrWriter().uint32(n + 1).string(s.toUpperCase()).chunks();
  };
  server = new RpcServer();
  server.register({
    prog: PROG,
    name: "test",
    versions: {
      2: { procs: new Map([[1, echo]]) },
      4: {
        procs: new Map<number, RpcProcHandler>([
          [1, echo],
          [2, () => { throw new Error("boom"); }],
          [3, () => { throw new RpcAcceptError(AcceptStat.PROC_UNAVAIL, "not today"); }],
        ]),
      },
    },
  });
  server.register({ prog: PROG + 1, name: "strict", versions: { 1: { procs: new Map([[0, () => []]]) } }, authFlavors: [AuthFlavor.AUTH_SYS] });
  await server.listen(0, "127.0.0.1");
  client = await RpcClient.connect(server.port);
});

after(async () => {
  await client.close();
  await server.close();
});

const echoArgs = (n: number, s: string): Buffer => new XdrWriter().uint32(n).string(s).toBuffer();

test("server: SUCCESS with results, and credentials reach the handler", async () => {
  const r = await client.call(PROG, 4, 1, echoArgs(41, "abc"), { cred: authSys({ uid: 7, gid: 8, gids: [9] }) });
  const body = successBody(r);
  assert.equal(body.uint32(), 42);
  assert.equal(body.string(16), "ABC");
  const ctx = seen.at(-1);
  assert.equal(ctx?.creds.uid, 7);
  assert.deepEqual(ctx?.creds.gids, [9]);
  assert.equal(ctx?.creds.remoteAddress, "127.0.0.1");
});

test("server: accept/deny cases", async () => {
  const accepted = async (p: Promise<Awaited<ReturnType<RpcClient["call"]>>>) => {
    const r = await p;
    assert.equal(r.kind, "accepted");
    return r;
  };
  assert.equal((await accepted(client.call(999_999, 1, 0))).stat, AcceptStat.PROG_UNAVAIL);
  const mm = await accepted(client.call(PROG, 3, 1, echoArgs(1, "x")));
  assert.equal(mm.stat, AcceptStat.PROG_MISMATCH);
  assert.deepEqual(mm.mismatch, { low: 2, high: 4 });
  assert.equal((await accepted(client.call(PROG, 4, 77))).stat, AcceptStat.PROC_UNAVAIL);
  assert.equal((await accepted(client.call(PROG, 4, 1, echoArgs(1, "x").subarray(0, 6)))).stat, AcceptStat.GARBAGE_ARGS);
  assert.equal((await accepted(client.call(PROG, 4, 1, echoArgs(1, "this string is too long")))).stat, AcceptStat.GARBAGE_ARGS);
  assert.equal((await accepted(client.call(PROG, 4, 2))).stat, AcceptStat.SYSTEM_ERR);
  assert.equal((await accepted(client.call(PROG, 4, 3))).stat, AcceptStat.PROC_UNAVAIL);

  const rv = await client.call(PROG, 4, 1, echoArgs(1, "x"), { rpcvers: 1 });
  assert.deepEqual(rv.kind === "denied" && [rv.rejectStat, rv.mismatch], [RejectStat.RPC_MISMATCH, { low: 2, high: 2 }]);
  const badFlavor = await client.call(PROG, 4, 1, echoArgs(1, "x"), { cred: { flavor: 390_003, body: Buffer.alloc(4) } });
  assert.deepEqual(badFlavor.kind === "denied" && [badFlavor.rejectStat, badFlavor.authStat], [RejectStat.AUTH_ERROR, AuthStat.AUTH_BADCRED]);
  const tooWeak = await client.call(PROG + 1, 1, 0, Buffer.alloc(0), { cred: AUTH_NONE });
  assert.deepEqual(tooWeak.kind === "denied" && [tooWeak.rejectStat, tooWeak.authStat], [RejectStat.AUTH_ERROR, AuthStat.AUTH_TOOWEAK]);
  // The connection survived all of that.
  assert.equal(successBody(await client.call(PROG, 2, 1, echoArgs(1, "ok"))).uint32(), 2);
});

test("server: an unparseable header closes the connection, the server keeps serving", async () => {
  const c = await RpcClient.connect(server.port);
  c.sendRaw(frame(Buffer.from("0000000100000001", "hex"))); // a REPLY, not a CALL
  await c.closed;
  const c2 = await RpcClient.connect(server.port);
  c2.sendRaw(Buffer.from("ffffffff", "hex")); // oversize fragment header
  await c2.closed;
  assert.equal(successBody(await client.call(PROG, 4, 1, echoArgs(1, "still"))).uint32(), 2);
});
