import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createBlockSealer, SEAL_OVERHEAD, SEAL_VERSION } from "../src/crypto/block-sealer.ts";
import { blockAad, SealError } from "../src/crypto/sealer.ts";

const key = randomBytes(32);
const sealer = createBlockSealer(key);
const aad = blockAad("sst/00000042.sst", 65536);

test("round trips compressible, incompressible and empty blocks", async () => {
  const compressible = Buffer.from("hello zerofs ".repeat(5000));
  const incompressible = randomBytes(64 * 1024);
  for (const plain of [compressible, incompressible, Buffer.alloc(0), Buffer.from("x"), new Uint8Array(100)]) {
    const sealed = await sealer.seal(plain, aad);
    assert.equal(sealed[0], SEAL_VERSION);
    const opened = await sealer.open(sealed, aad);
    assert.ok(opened.equals(plain), `round trip failed for ${plain.length} bytes`);
  }
  const c = await sealer.seal(compressible, aad);
  assert.equal(c[1], 1, "compressible block is flagged zstd");
  assert.ok(c.length < compressible.length / 10);
  const i = await sealer.seal(incompressible, aad);
  assert.equal(i[1], 0, "incompressible block is stored raw");
  assert.equal(i.length, incompressible.length + SEAL_OVERHEAD);
  assert.equal((await sealer.seal(Buffer.alloc(0), aad)).length, SEAL_OVERHEAD);
});

test("opens subarrays of larger buffers", async () => {
  const plain = Buffer.from("abc".repeat(1000));
  const sealed = await sealer.seal(plain, aad);
  const framed = Buffer.concat([Buffer.from("junk"), sealed, Buffer.from("more")]);
  const view = framed.subarray(4, 4 + sealed.length);
  assert.ok((await sealer.open(view, aad)).equals(plain));
});

test("a block does not open under another object's or offset's AAD, or another key", async () => {
  const sealed = await sealer.seal(Buffer.from("block contents ".repeat(100)), aad);
  await assert.rejects(sealer.open(sealed, blockAad("sst/00000043.sst", 65536)), SealError);
  await assert.rejects(sealer.open(sealed, blockAad("sst/00000042.sst", 0)), SealError);
  await assert.rejects(createBlockSealer(randomBytes(32)).open(sealed, aad), SealError);
});

test("flipping the compression flag or any byte fails authentication", async () => {
  for (const plain of [Buffer.from("aaaa".repeat(1000)), randomBytes(500)]) {
    const sealed = await sealer.seal(plain, aad);
    const flipped = Buffer.from(sealed);
    flipped[1]! ^= 1;
    await assert.rejects(sealer.open(flipped, aad), SealError);
    for (const pos of [2, 25, 26, sealed.length - 1]) {
      const t = Buffer.from(sealed);
      t[pos]! ^= 0x80;
      await assert.rejects(sealer.open(t, aad), SealError, `byte ${pos}`);
    }
  }
});

test("unknown version, unknown flags and truncation fail with clear messages", async () => {
  const sealed = await sealer.seal(Buffer.from("data"), aad);
  const v9 = Buffer.from(sealed);
  v9[0] = 9;
  await assert.rejects(sealer.open(v9, aad), (e: unknown) => e instanceof SealError && /format version 9/.test(e.message));
  const f = Buffer.from(sealed);
  f[1] = 0x80;
  await assert.rejects(sealer.open(f, aad), (e: unknown) => e instanceof SealError && /unknown flag/.test(e.message));
  await assert.rejects(sealer.open(sealed.subarray(0, SEAL_OVERHEAD - 1), aad), (e: unknown) => e instanceof SealError && /shorter than the minimum/.test(e.message));
});

test("sealed output does not contain the plaintext; nonces differ between seals", async () => {
  const marker = "ZEROFS-PLAINTEXT-MARKER-0123456789";
  for (const opts of [{}, { compress: false }]) {
    const s = createBlockSealer(key, opts);
    const plain = Buffer.from(`${marker} `.repeat(50));
    const a = await s.seal(plain, aad);
    const b = await s.seal(plain, aad);
    assert.equal(a.indexOf(marker), -1);
    assert.equal(a.indexOf(marker.slice(0, 8)), -1);
    assert.ok(!a.subarray(2, 26).equals(b.subarray(2, 26)), "nonces must differ");
    assert.ok(!a.equals(b));
    assert.ok((await s.open(b, aad)).equals(plain));
  }
});

test("rejects a key of the wrong size", () => {
  assert.throws(() => createBlockSealer(randomBytes(31)), /32 bytes/);
});

test("the compressibility guess skips random data only; mixed and structured blocks are still compressed", async () => {
  const { looksIncompressible, sampledEntropy } = await import("../src/crypto/compressibility.ts");
  const random = randomBytes(1 << 20);
  assert.ok(looksIncompressible(random), `random: ${sampledEntropy(random)} bits/byte`);
  // File data frames are ≤ 32 KiB (smaller samples): random still measures as random...
  for (const n of [1500, 4096, 32 * 1024]) {
    const r = randomBytes(n);
    assert.ok(looksIncompressible(r), `random ${n}: ${sampledEntropy(r)} bits/byte`);
  }
  // ...and a half-random frame does not.
  const halfFrame = Buffer.concat([randomBytes(1 << 14), Buffer.alloc(1 << 14)]);
  assert.equal(looksIncompressible(halfFrame), false, `half-random frame: ${sampledEntropy(halfFrame)} bits/byte`);
  const text = Buffer.from("SELECT id, name FROM files WHERE parent = ? ORDER BY name;\n".repeat(2000));
  const zeros = Buffer.alloc(1 << 16);
  // Half random, half zeros: zstd halves it, and the sample sees the zeros.
  const mixed = Buffer.concat([randomBytes(1 << 15), Buffer.alloc(1 << 15)]);
  // Small integers in big-endian u64 fields, like inode records and keys.
  const ints = Buffer.alloc(1 << 16);
  for (let i = 0; i < ints.length / 8; i++) ints.writeBigUInt64BE(BigInt(i * 4099), i * 8);
  for (const [name, data] of [["text", text], ["zeros", zeros], ["mixed", mixed], ["integers", ints]] as const) {
    assert.equal(looksIncompressible(data), false, `${name}: ${sampledEntropy(data)} bits/byte`);
    const sealed = await sealer.seal(data, aad);
    assert.equal(sealed[1], 1, `${name} is compressed`);
    assert.ok((await sealer.open(sealed, aad)).equals(data));
  }
  assert.equal(sampledEntropy(Buffer.alloc(0)), 0);
  assert.equal(sampledEntropy(Buffer.alloc(10_000, 7)), 0);
});
