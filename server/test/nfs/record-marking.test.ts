import assert from "node:assert/strict";
import { test } from "node:test";
import { RecordDecoder, RecordTooLargeError, frameRecord } from "../../src/nfs/record-marking.ts";
import { Rng } from "../../../test/support/random.ts";

function fragment(data: Buffer, last: boolean): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(((last ? 0x8000_0000 : 0) | data.length) >>> 0);
  return Buffer.concat([h, data]);
}

/** Several records, some multi-fragment (including empty fragments). */
function sampleStream(rng: Rng): { stream: Buffer; records: Buffer[] } {
  const records: Buffer[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < 6; i++) {
    const rec = rng.bytes(rng.int(1, 40));
    records.push(rec);
    let off = 0;
    while (off < rec.length) {
      const n = rng.chance(0.2) ? 0 : rng.int(1, rec.length - off);
      const last = off + n === rec.length;
      parts.push(fragment(rec.subarray(off, off + n), last));
      off += n;
    }
  }
  return { stream: Buffer.concat(parts), records };
}

test("record marking: split at every byte boundary (and pairs of boundaries)", () => {
  const rng = Rng.fromEnv("record split");
  const { stream, records } = sampleStream(rng);
  for (let i = 0; i <= stream.length; i++) {
    for (const j of [i, Math.min(stream.length, i + 1), Math.min(stream.length, i + 5), stream.length]) {
      const d = new RecordDecoder(1024);
      const got = [...d.push(stream.subarray(0, i)), ...d.push(stream.subarray(i, j)), ...d.push(stream.subarray(j))];
      assert.deepEqual(got, records, `split at ${i}/${j}`);
      assert.ok(d.idle);
    }
  }
  // One byte at a time.
  const d = new RecordDecoder(1024);
  const got: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) got.push(...d.push(stream.subarray(i, i + 1)));
  assert.deepEqual(got, records);
});

test("record marking: a record inside one chunk is a view, not a copy", () => {
  const data = Buffer.from("hello world!");
  const chunk = fragment(data, true);
  const [rec] = new RecordDecoder().push(chunk);
  assert.ok(rec !== undefined);
  assert.equal(rec.buffer, chunk.buffer);
  assert.equal(rec.byteOffset, chunk.byteOffset + 4);
});

test("record marking: a large record joined from socket chunks lands in shared memory (the crypto workers read it in place)", () => {
  const rng = new Rng(11);
  const body = rng.bytes(200_000);
  const stream = fragment(body, true);
  const d = new RecordDecoder();
  const got: Buffer[] = [];
  for (let at = 0; at < stream.length; at += 65536) got.push(...d.push(stream.subarray(at, at + 65536)));
  assert.equal(got.length, 1);
  assert.ok(got[0]!.equals(body));
  assert.ok(got[0]!.buffer instanceof SharedArrayBuffer);
  // Small joined records stay ordinary memory.
  const small = new RecordDecoder();
  const s = fragment(Buffer.from("0123456789"), true);
  const out = [...small.push(s.subarray(0, 7)), ...small.push(s.subarray(7))];
  assert.ok(out[0]!.equals(Buffer.from("0123456789")));
  assert.ok(!(out[0]!.buffer instanceof SharedArrayBuffer));
});

test("record marking: multi-fragment record joined", () => {
  const d = new RecordDecoder();
  const out = d.push(Buffer.concat([fragment(Buffer.from("ab"), false), fragment(Buffer.from(""), false), fragment(Buffer.from("cd"), true)]));
  assert.deepEqual(out, [Buffer.from("abcd")]);
});

test("record marking: many tiny fragments switch to a bounded growable buffer", () => {
  const rng = new Rng(7);
  const rec = rng.bytes(5000);
  const parts: Buffer[] = [];
  for (let i = 0; i < rec.length; i++) parts.push(fragment(rec.subarray(i, i + 1), i === rec.length - 1));
  const d = new RecordDecoder(8192);
  const got: Buffer[] = [];
  for (const p of parts) got.push(...d.push(p));
  assert.deepEqual(got, [rec]);
});

test("record marking: oversize refused from the header alone", () => {
  for (const hdr of ["ffffffff", "7fffffff", "80400001"]) {
    const d = new RecordDecoder(4 * 1024 * 1024);
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(() => d.push(Buffer.from(hdr, "hex")), RecordTooLargeError);
    assert.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024, "nothing allocated from the declared length");
  }
  // Across fragments: the total counts.
  const d = new RecordDecoder(100);
  d.push(fragment(Buffer.alloc(60), false));
  assert.throws(() => d.push(Buffer.from("80000029", "hex")), /at least 101 bytes/);
  // Exactly the maximum is fine.
  assert.equal(new RecordDecoder(100).push(fragment(Buffer.alloc(100), true)).length, 1);
});

test("record marking: declared length does not allocate before the bytes arrive", () => {
  const d = new RecordDecoder(4 * 1024 * 1024);
  d.push(Buffer.from("80400000", "hex")); // 4 MiB declared
  d.push(Buffer.alloc(10));
  assert.equal(d.bufferedBytes, 10);
});

test("record marking: frameRecord sets the last-fragment bit and length", () => {
  const framed = frameRecord([Buffer.from("abc"), Buffer.from("defg")]);
  assert.equal(framed[0]?.toString("hex"), "80000007");
  const joined = Buffer.concat(framed);
  assert.deepEqual(new RecordDecoder().push(joined), [Buffer.from("abcdefg")]);
});

/** Whether a chunk's memory was released (its ArrayBuffer detached). */
function freed(b: Buffer): boolean {
  return (b.buffer as ArrayBuffer).detached;
}

/** `stream` cut into chunks that each own their ArrayBuffer, as a socket's reads do. */
function ownedChunks(stream: Buffer, sizes: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < stream.length; ) {
    const n = Math.min(sizes(), stream.length - at);
    const c = Buffer.from(new ArrayBuffer(n));
    c.set(stream.subarray(at, at + n));
    out.push(c);
    at += n;
  }
  return out;
}

test("record marking: consumed chunks are freed once copied, never while a record views them", () => {
  const rng = Rng.fromEnv("record consume");
  for (let round = 0; round < 200; round++) {
    const records: Buffer[] = [];
    const parts: Buffer[] = [];
    for (let i = 0, n = rng.int(1, 12); i < n; i++) {
      const rec = rng.bytes(rng.chance(0.3) ? rng.int(20_000, 200_000) : rng.int(1, 300));
      records.push(rec);
      // Some records in several fragments.
      const cut = rng.chance(0.2) ? rng.int(0, rec.length) : 0;
      if (cut > 0) parts.push(fragment(rec.subarray(0, cut), false));
      parts.push(fragment(rec.subarray(cut), true));
    }
    const stream = Buffer.concat(parts);
    const chunks = ownedChunks(stream, () => (rng.chance(0.5) ? 65536 : rng.int(1, 70_000)));
    const d = new RecordDecoder(1024 * 1024, { consumeChunks: true });
    const got: Buffer[] = [];
    for (const c of chunks) got.push(...d.push(c));
    // A record viewing a freed chunk would read as empty here.
    assert.equal(got.length, records.length, `round ${round}`);
    got.forEach((r, i) => assert.ok(r.equals(records[i]!), `round ${round}: record ${i} (${records[i]!.length} bytes)`));
    const viewed = new Set(got.map((r) => r.buffer));
    for (const c of chunks) {
      if (viewed.has(c.buffer)) assert.ok(!freed(c), "a chunk a record views is kept");
      else assert.ok(freed(c), `round ${round}: a chunk whose bytes were copied is freed`);
    }
  }
});

test("record marking: a chunk holding the start of a record is freed when that record completes", () => {
  const body = new Rng(5).bytes(150_000);
  const [a, b, c] = ownedChunks(fragment(body, true), () => 65536);
  const d = new RecordDecoder(1024 * 1024, { consumeChunks: true });
  assert.deepEqual(d.push(a!), []);
  assert.deepEqual(d.push(b!), []);
  assert.ok(!freed(a!) && !freed(b!), "their bytes are still only viewed");
  const [rec] = d.push(c!);
  assert.ok(rec!.equals(body));
  assert.ok(freed(a!) && freed(b!) && freed(c!));
  // Without consumeChunks the caller's chunks are left alone.
  const [x, y] = ownedChunks(fragment(body, true), () => 100_000);
  const keep = new RecordDecoder(1024 * 1024);
  assert.ok(keep.push(x!).length === 0 && keep.push(y!)[0]!.equals(body));
  assert.ok(!freed(x!) && !freed(y!));
});
