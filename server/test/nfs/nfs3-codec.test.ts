import assert from "node:assert/strict";
import { test } from "node:test";
import * as codec from "../../src/nfs/nfs3-codec.ts";
import { Nfs3Proc as P, Nfs3Status, type Entryplus3, type ReaddirplusResult, type ReaddirResult } from "../../src/nfs/nfs3-types.ts";
import { XdrError, XdrReader, XdrWriter } from "../../src/nfs/xdr.ts";
import { decodeResult, encodeArgs, type ArgsByProc, type ProcNum, type ResultsByProc } from "../../../test/support/nfs/nfs3-client-codec.ts";
import { ARGS, FH2, RESULTS } from "./nfs3-samples.ts";
import { COOKIE_VERF, fattr } from "./stub-handler.ts";

const decoders: { [K in ProcNum]: (r: XdrReader) => ArgsByProc[K] } = {
  [P.GETATTR]: codec.decodeGetattrArgs,
  [P.SETATTR]: codec.decodeSetattrArgs,
  [P.LOOKUP]: codec.decodeLookupArgs,
  [P.ACCESS]: codec.decodeAccessArgs,
  [P.READLINK]: codec.decodeReadlinkArgs,
  [P.READ]: codec.decodeReadArgs,
  [P.WRITE]: codec.decodeWriteArgs,
  [P.CREATE]: codec.decodeCreateArgs,
  [P.MKDIR]: codec.decodeMkdirArgs,
  [P.SYMLINK]: codec.decodeSymlinkArgs,
  [P.MKNOD]: codec.decodeMknodArgs,
  [P.REMOVE]: codec.decodeRemoveArgs,
  [P.RMDIR]: codec.decodeRmdirArgs,
  [P.RENAME]: codec.decodeRenameArgs,
  [P.LINK]: codec.decodeLinkArgs,
  [P.READDIR]: codec.decodeReaddirArgs,
  [P.READDIRPLUS]: codec.decodeReaddirplusArgs,
  [P.FSSTAT]: codec.decodeFsstatArgs,
  [P.FSINFO]: codec.decodeFsinfoArgs,
  [P.PATHCONF]: codec.decodePathconfArgs,
  [P.COMMIT]: codec.decodeCommitArgs,
};

const BIG_LIMITS = { count: 1 << 20, dircount: 1 << 20, maxcount: 1 << 20 };
const encoders: { [K in ProcNum]: (w: XdrWriter, r: ResultsByProc[K]) => void } = {
  [P.GETATTR]: codec.encodeGetattrResult,
  [P.SETATTR]: codec.encodeSetattrResult,
  [P.LOOKUP]: codec.encodeLookupResult,
  [P.ACCESS]: codec.encodeAccessResult,
  [P.READLINK]: codec.encodeReadlinkResult,
  [P.READ]: codec.encodeReadResult,
  [P.WRITE]: codec.encodeWriteResult,
  [P.CREATE]: codec.encodeCreateResult,
  [P.MKDIR]: codec.encodeCreateResult,
  [P.SYMLINK]: codec.encodeCreateResult,
  [P.MKNOD]: codec.encodeCreateResult,
  [P.REMOVE]: codec.encodeRemoveResult,
  [P.RMDIR]: codec.encodeRemoveResult,
  [P.RENAME]: codec.encodeRenameResult,
  [P.LINK]: codec.encodeLinkResult,
  [P.READDIR]: (w, r) => codec.encodeReaddirResult(w, r, BIG_LIMITS),
  [P.READDIRPLUS]: (w, r) => codec.encodeReaddirplusResult(w, r, BIG_LIMITS),
  [P.FSSTAT]: codec.encodeFsstatResult,
  [P.FSINFO]: codec.encodeFsinfoResult,
  [P.PATHCONF]: codec.encodePathconfResult,
  [P.COMMIT]: codec.encodeCommitResult,
};

const E = Nfs3Status;
const procs = Object.keys(ARGS).map(Number) as ProcNum[];

test("codec: every procedure is covered", () => {
  assert.equal(procs.length, 21); // + NULL, which has no arguments or results
});

test("codec: arguments round trip (client encoder → server decoder)", () => {
  for (const proc of procs) {
    for (const args of ARGS[proc] as ArgsByProc[typeof proc][]) {
      const buf = encodeArgs(proc, args);
      const r = new XdrReader(buf);
      const decoded = (decoders[proc] as (r: XdrReader) => unknown)(r);
      r.expectEnd();
      assert.deepEqual(decoded, args, `proc ${proc}`);
    }
  }
});

test("codec: every truncation of valid arguments is an XdrError", () => {
  for (const proc of procs) {
    for (const args of ARGS[proc] as ArgsByProc[typeof proc][]) {
      const buf = encodeArgs(proc, args);
      for (let n = 0; n < buf.length; n++) {
        assert.throws(() => (decoders[proc] as (r: XdrReader) => unknown)(new XdrReader(buf, 0, n)), XdrError, `proc ${proc} len ${n}`);
      }
    }
  }
});

test("codec: results round trip (server encoder → client decoder)", () => {
  for (const proc of procs) {
    for (const res of RESULTS[proc] as ResultsByProc[typeof proc][]) {
      const w = new XdrWriter();
      (encoders[proc] as (w: XdrWriter, r: unknown) => void)(w, res);
      assert.deepEqual(decodeResult(proc, w.toBuffer()), res, `proc ${proc} status ${res.status}`);
    }
  }
});

test("codec: invalid discriminants and WRITE count mismatch are rejected", () => {
  const bad = (hex: string, dec: (r: XdrReader) => unknown) => assert.throws(() => dec(new XdrReader(Buffer.from(hex, "hex"))), XdrError);
  const fh = "00000004" + "61626364";
  const name = "00000001" + "61000000";
  const noSet = "00000000".repeat(4);
  bad(fh + name + "00000003", codec.decodeCreateArgs); // createmode3 3
  bad(fh + noSet + "00000003" + "00000000" + "00000000", codec.decodeSetattrArgs); // time_how 3
  bad(fh + noSet + "00000000" + "00000000" + "00000002", codec.decodeSetattrArgs); // guard bool 2
  bad(fh + name + "00000000", codec.decodeMknodArgs); // ftype3 0
  bad(fh + "0000000000000000" + "00000001" + "00000003" + "00000001" + "61000000", codec.decodeWriteArgs); // stable 3
  bad(fh + "0000000000000000" + "00000002" + "00000000" + "00000001" + "61000000", codec.decodeWriteArgs); // count 2, 1 byte
  bad("00000041" + "00".repeat(68), codec.decodeGetattrArgs); // 65-byte handle
  bad(fh + "00000401" + "00".repeat(1028), codec.decodeLookupArgs); // name over the decode bound
});

test("codec: long names decode (the fs answers NAMETOOLONG)", () => {
  const a = { what: { dir: FH2, name: Buffer.alloc(300, 0x61) } };
  assert.deepEqual(codec.decodeLookupArgs(new XdrReader(encodeArgs(P.LOOKUP, a))), a);
});

test("codec: WRITE data is a view of the record", () => {
  const buf = encodeArgs(P.WRITE, { file: FH2, offset: 0n, count: 3, stable: 0, data: Buffer.from("xyz") });
  const a = codec.decodeWriteArgs(new XdrReader(buf));
  assert.equal(a.data.buffer, buf.buffer);
});

// ---------------------------------------------------------------- directory byte limits

function names(n: number, len: (i: number) => number): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.alloc(len(i), 0x61 + (i % 26)));
}

test("codec: READDIR honours count exactly and reports eof only if all fit", () => {
  const entries = names(50, (i) => 1 + (i % 9)).map((name, i) => ({ fileid: BigInt(i + 10), name, cookie: BigInt(i + 1) }));
  const res: ReaddirResult = { status: E.NFS3_OK, dirAttributes: fattr(2n), cookieverf: COOKIE_VERF, entries, eof: true };
  const full = codec.readdirFixedSize(res.dirAttributes) + entries.reduce((n, e) => n + codec.readdirEntrySize(e.name.length), 0);
  for (let count = 0; count <= full + 8; count++) {
    const w = new XdrWriter();
    codec.encodeReaddirResult(w, res, { count });
    const buf = w.toBuffer();
    const out = decodeResult(P.READDIR, buf);
    if (out.status !== E.NFS3_OK) {
      assert.equal(out.status, E.NFS3ERR_TOOSMALL);
      assert.ok(count < codec.readdirFixedSize(res.dirAttributes) + codec.readdirEntrySize(entries[0]?.name.length ?? 0));
      continue;
    }
    assert.ok(buf.length <= count, `reply ${buf.length} > count ${count}`);
    const n = out.entries.length;
    assert.deepEqual(out.entries, entries.slice(0, n));
    if (n < entries.length) {
      const next = entries[n];
      assert.ok(next !== undefined && buf.length + codec.readdirEntrySize(next.name.length) > count, "stopped only when the next entry would not fit");
    }
    assert.equal(out.eof, n === entries.length);
  }
  // Handler says not eof: never eof even when all fit.
  const w = new XdrWriter();
  codec.encodeReaddirResult(w, { ...res, eof: false }, { count: 1 << 20 });
  assert.equal(decodeResult(P.READDIR, w.toBuffer()).status === E.NFS3_OK && (decodeResult(P.READDIR, w.toBuffer()) as { eof: boolean }).eof, false);
});

test("codec: READDIRPLUS honours maxcount and dircount", () => {
  const entries: Entryplus3[] = names(40, (i) => 1 + ((i * 7) % 30)).map((name, i) => {
    const e: Entryplus3 = { fileid: BigInt(i + 100), name, cookie: BigInt(i + 1) };
    if (i % 3 !== 0) e.nameAttributes = fattr(BigInt(i + 100));
    if (i % 4 !== 0) e.nameHandle = Buffer.alloc(1 + (i % 64), i);
    return e;
  });
  const res: ReaddirplusResult = { status: E.NFS3_OK, cookieverf: COOKIE_VERF, entries, eof: true };
  const fixed = codec.readdirFixedSize(undefined);
  const maxFull = fixed + entries.reduce((n, e) => n + codec.readdirplusEntrySize(e), 0);
  const dirFull = entries.reduce((n, e) => n + codec.readdirEntrySize(e.name.length), 0);
  const check = (dircount: number, maxcount: number): void => {
    const w = new XdrWriter();
    codec.encodeReaddirplusResult(w, res, { dircount, maxcount });
    const buf = w.toBuffer();
    const out = decodeResult(P.READDIRPLUS, buf);
    if (out.status !== E.NFS3_OK) {
      assert.equal(out.status, E.NFS3ERR_TOOSMALL);
      return;
    }
    const n = out.entries.length;
    assert.deepEqual(out.entries, entries.slice(0, n));
    const dirUsed = out.entries.reduce((s, e) => s + codec.readdirEntrySize(e.name.length), 0);
    assert.ok(buf.length <= maxcount, `reply ${buf.length} > maxcount ${maxcount}`);
    if (dircount !== 0) assert.ok(dirUsed <= dircount, `dir info ${dirUsed} > dircount ${dircount}`);
    if (n < entries.length) {
      const next = entries[n] as Entryplus3;
      const overMax = buf.length + codec.readdirplusEntrySize(next) > maxcount;
      const overDir = dircount !== 0 && dirUsed + codec.readdirEntrySize(next.name.length) > dircount;
      assert.ok(overMax || overDir, `stopped early at ${n}`);
    }
    assert.equal(out.eof, n === entries.length);
  };
  for (let maxcount = 0; maxcount <= maxFull + 4; maxcount += 7) check(0, maxcount);
  for (let dircount = 1; dircount <= dirFull + 4; dircount += 3) check(dircount, 1 << 20);
  for (let i = 0; i < 300; i++) check((i * 37) % (dirFull + 1), (i * 101) % (maxFull + 1));
});
