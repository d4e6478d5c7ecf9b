import assert from "node:assert/strict";
import { test } from "node:test";
import { readBody } from "../src/store/s3-store.ts";
import { Rng } from "../../test/support/random.ts";

/** A body as the HTTP client hands it on: the first chunk shares its read with the headers. */
function chunked(data: Buffer, rng: Rng): Uint8Array[] {
  const headers = Buffer.from(new ArrayBuffer(300 + 65536));
  const first = Math.min(rng.int(1, 65536), data.length);
  headers.set(data.subarray(0, first), 300);
  const out: Uint8Array[] = [headers.subarray(300, 300 + first)];
  for (let at = first; at < data.length; ) {
    const n = Math.min(rng.int(1, 65536), data.length - at);
    const c = new Uint8Array(new ArrayBuffer(n));
    c.set(data.subarray(at, at + n));
    out.push(c);
    at += n;
  }
  return out;
}

async function* iterate(chunks: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const c of chunks) yield c;
}

test("readBody: the body is copied whole; chunks that are reads of their own are freed, the one sharing the headers' read is not", async () => {
  const rng = Rng.fromEnv("s3 body");
  for (let round = 0; round < 20; round++) {
    const data = rng.bytes(rng.int(1, 600_000));
    const chunks = chunked(data, rng);
    const body = await readBody(iterate(chunks), data.length, "seg/x");
    assert.ok(body.equals(data), `round ${round}: ${data.length} bytes`);
    assert.ok(!(chunks[0]!.buffer as ArrayBuffer).detached, "the headers' read is left alone");
    for (const c of chunks.slice(1)) assert.ok((c.buffer as ArrayBuffer).detached, `round ${round}: a copied read is freed`);
  }
});

test("readBody: a body longer or shorter than its Content-Length is an error", async () => {
  const data = Buffer.alloc(100, 7);
  await assert.rejects(readBody(iterate([Uint8Array.from(data)]), 99, "k"), /longer than its Content-Length/);
  await assert.rejects(readBody(iterate([Uint8Array.from(data)]), 101, "k"), /ended after 100 of 101/);
  assert.equal((await readBody(iterate([]), 0, "k")).length, 0);
});
