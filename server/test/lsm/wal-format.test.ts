import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { createBlockSealer } from "../../src/crypto/block-sealer.ts";
import { walKey } from "../../src/lsm/object-names.ts";
import { WAL_COMPRESS_MIN_BYTES, encodeBatch, openWal, sealWal } from "../../src/lsm/wal-format.ts";
import { WriteBatch } from "../../src/lsm/write-batch.ts";

/** "ZWAL" | version | sealed block (version, flags, ...): the sealed block's flags byte. */
const FLAGS_AT = 5 + 1;
const FLAG_ZSTD = 0x01;

async function sealBatches(valueBytes: number, count: number): Promise<{ sealed: Buffer; key: string; sealer: ReturnType<typeof createBlockSealer> }> {
  const sealer = createBlockSealer(randomBytes(32));
  const parts: Buffer[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    // Highly compressible values: zstd would shrink them, so only the size rule decides.
    const b = new WriteBatch().put(Buffer.from(`key-${i}`), Buffer.alloc(valueBytes, 0x61)).delete(Buffer.from(`gone-${i}`));
    const e = encodeBatch(i + 1, b);
    parts.push(...e.parts);
    bytes += e.bytes;
  }
  const key = walKey(7);
  return { sealed: await sealWal(key, 3, count, parts, bytes, sealer), key, sealer };
}

describe("WAL object sealing", () => {
  it("seals a small group commit raw (no zstd), and it reads back", async () => {
    const { sealed, key, sealer } = await sealBatches(100, 8);
    assert.equal(sealed[FLAGS_AT]! & FLAG_ZSTD, 0, "a small WAL body must not go through the compressor");
    const wal = await openWal(key, sealed, sealer);
    assert.equal(wal.epoch, 3);
    assert.equal(wal.batches.length, 8);
    assert.deepEqual(wal.batches[5]!.entries[0]!.value, Buffer.alloc(100, 0x61));
    assert.equal(wal.batches[5]!.entries[1]!.value, null);
  });

  it("compresses a body of at least WAL_COMPRESS_MIN_BYTES, and it reads back", async () => {
    const count = 4;
    const { sealed, key, sealer } = await sealBatches(Math.ceil(WAL_COMPRESS_MIN_BYTES / count), count);
    assert.equal(sealed[FLAGS_AT]! & FLAG_ZSTD, FLAG_ZSTD);
    assert.ok(sealed.length < WAL_COMPRESS_MIN_BYTES / 4, `compressible body sealed to ${sealed.length} bytes`);
    const wal = await openWal(key, sealed, sealer);
    assert.equal(wal.batches.length, count);
    assert.deepEqual(wal.batches[3]!.entries[0]!.value, Buffer.alloc(Math.ceil(WAL_COMPRESS_MIN_BYTES / count), 0x61));
  });
});
