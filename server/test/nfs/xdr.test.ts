import assert from "node:assert/strict";
import { test } from "node:test";
import { XDR_ZERO_COPY_THRESHOLD, XdrError, XdrReader, XdrWriter, xdrOpaqueSize } from "../../src/nfs/xdr.ts";
import { Rng } from "../../../test/support/random.ts";

test("xdr: known encodings (RFC 4506 layout)", () => {
  const w = new XdrWriter(4);
  w.uint32(1).int32(-2).uint64(0x0102030405060708n).int64(-1n).bool(true).opaque(Buffer.from("abcde")).string("hi").opaqueFixed(Buffer.from([9, 9, 9]));
  assert.equal(
    w.toBuffer().toString("hex"),
    [
      "00000001",
      "fffffffe",
      "0102030405060708",
      "ffffffffffffffff",
      "00000001",
      "00000005" + "6162636465" + "000000",
      "00000002" + "6869" + "0000",
      "090909" + "00",
    ].join(""),
  );
});

test("xdr: round trip of every primitive", () => {
  const rng = Rng.fromEnv("xdr round trip");
  for (let i = 0; i < 200; i++) {
    const u = rng.int(0, 0xffff_ffff);
    const s = rng.int(-0x8000_0000, 0x7fff_ffff);
    const big = (BigInt(rng.int(0, 0xffff_ffff)) << 32n) | BigInt(rng.int(0, 0xffff_ffff));
    const hyper = big - (1n << 63n);
    const data = rng.bytes(rng.int(0, 9000)); // crosses the zero-copy threshold sometimes
    const fixed = rng.bytes(rng.int(0, 7));
    const arr = Array.from({ length: rng.int(0, 5) }, () => rng.int(0, 1000));
    const opt = rng.chance(0.5) ? rng.int(0, 99) : undefined;
    const w = new XdrWriter(rng.int(1, 64));
    w.uint32(u).int32(s).uint64(big).int64(hyper).bool(i % 2 === 0).opaque(data).opaqueFixed(fixed);
    w.array(arr, (x, v) => x.uint32(v)).optional(opt, (x, v) => x.uint32(v)).string("héllo");
    const buf = w.toBuffer();
    assert.equal(buf.length, w.length);
    assert.equal(buf.length % 4, 0);
    const r = new XdrReader(buf);
    assert.equal(r.uint32(), u);
    assert.equal(r.int32(), s);
    assert.equal(r.uint64(), big);
    assert.equal(r.int64(), hyper);
    assert.equal(r.bool(), i % 2 === 0);
    assert.deepEqual(r.opaque(1 << 20), data);
    assert.deepEqual(r.opaqueFixed(fixed.length), fixed);
    assert.deepEqual(r.array(10, (x) => x.uint32()), arr);
    assert.equal(r.optional((x) => x.uint32()), opt);
    assert.equal(r.string(100), "héllo");
    r.expectEnd();
  }
});

test("xdr: reader bounds checks throw XdrError, never read past the window", () => {
  const buf = Buffer.from("00000001000000ff", "hex");
  const window = new XdrReader(buf, 0, 4);
  window.uint32();
  assert.throws(() => window.uint32(), XdrError);
  assert.throws(() => new XdrReader(Buffer.alloc(7)).uint64(), XdrError);
  assert.throws(() => new XdrReader(Buffer.from("00000002", "hex")).bool(), /neither 0 nor 1/);
  // Length beyond max, and length beyond the remaining bytes (huge value: no allocation).
  assert.throws(() => new XdrReader(Buffer.from("0000000500000000", "hex")).opaque(4), /exceeds maximum 4/);
  assert.throws(() => new XdrReader(Buffer.from("ffffffff", "hex")).opaque(0xffff_ffff), /exceeds the 0 bytes left/);
  assert.throws(() => new XdrReader(Buffer.from("0000000561626364", "hex")).opaque(100), XdrError); // padding missing
  assert.throws(() => new XdrReader(Buffer.from("000000", "hex")).opaqueFixed(3), XdrError); // needs 4 with pad
  // Array count: over max, and over what the remaining bytes could hold.
  assert.throws(() => new XdrReader(Buffer.from("00000011", "hex")).array(16, (r) => r.uint32()), /exceeds maximum 16/);
  assert.throws(() => new XdrReader(Buffer.from("7fffffff00000000", "hex")).array(0xffff_ffff, (r) => r.uint32()), /cannot fit/);
  assert.throws(() => new XdrReader(Buffer.from("0000000100000000", "hex")).expectEnd(), /trailing/);
  const e = (() => {
    try {
      new XdrReader(Buffer.from("00000001", "hex"), 0).uint64("offset");
    } catch (err) {
      return err;
    }
    return null;
  })();
  assert.ok(e instanceof XdrError);
  assert.match(e.message, /offset/);
  assert.equal(e.offset, 0);
});

test("xdr: opaque returns a view (zero copy)", () => {
  const buf = Buffer.from("0000000361626300", "hex");
  const v = new XdrReader(buf).opaque(10);
  buf[4] = 0x7a;
  assert.equal(v.toString(), "zbc");
});

test("xdr: writer attaches large payloads by reference, no copy", () => {
  const big = Buffer.alloc(1024 * 1024, 1);
  const w = new XdrWriter();
  w.uint32(7).opaque(big).uint32(8);
  const chunks = w.chunks();
  assert.ok(chunks.includes(big), "the 1 MiB payload is its own chunk");
  assert.equal(chunks.reduce((n, c) => n + c.length, 0), 4 + xdrOpaqueSize(big.length) + 4);
  // Small payloads are copied into the scratch buffer.
  const small = Buffer.alloc(XDR_ZERO_COPY_THRESHOLD - 1, 2);
  const w2 = new XdrWriter();
  w2.opaque(small);
  assert.ok(!w2.chunks().includes(small));
});

test("xdr: writer rejects out-of-range values", () => {
  const w = new XdrWriter();
  assert.throws(() => w.uint32(-1), RangeError);
  assert.throws(() => w.uint32(2 ** 32), RangeError);
  assert.throws(() => w.uint32(1.5), RangeError);
  assert.throws(() => w.int32(2 ** 31), RangeError);
  assert.throws(() => w.uint64(-1n), RangeError);
  assert.throws(() => w.uint64(1n << 64n), RangeError);
  assert.throws(() => w.opaque(Buffer.alloc(65), 64), RangeError);
  assert.throws(() => w.opaqueFixed(Buffer.alloc(7), 8), RangeError);
});

test("xdr: uint64 words stay right when large values alternate (the writer remembers the last one split)", () => {
  const a = 0xfedc_ba98_7654_3210n;
  const b = 0x0123_4567_89ab_cdefn;
  const w = new XdrWriter(8);
  for (const v of [a, b, a, a, 5, b, 2 ** 40, a]) w.uint64(v);
  const r = new XdrReader(w.toBuffer());
  for (const v of [a, b, a, a, 5n, b, 2n ** 40n, a]) assert.equal(r.uint64(), v);
});
