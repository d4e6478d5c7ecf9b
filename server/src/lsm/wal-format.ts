/**
 * WAL object format (version 1). One object per group commit, named `wal/<20-digit id>`.
 *
 *   "ZWAL" | u8 version = 1 | sealed(body)
 *
 * The body is sealed (XChaCha20-Poly1305, zstd first for bodies of at least
 * WAL_COMPRESS_MIN_BYTES; the sealed block's flag says which) with AAD = blockAad(objectKey, 0),
 * so a WAL object cannot be replayed under another id. Body layout, all integers big-endian:
 *
 *   u64 writerEpoch | u32 batchCount | batch*
 *   batch = u64 seq | u32 entryCount | entry*
 *   entry = u8 kind (0 put, 1 delete) | u32 keyLen | u32 valueLen | key | value
 *
 * A batch is the unit of atomicity: it is inside one object or not at all.
 *
 * Ids, gaps and fencing. A writer assigns ids in order and PUTs up to WAL_WINDOW objects at
 * once (put-if-absent); it acknowledges an object only once that object and every lower id are
 * in the store. So after a crash the WAL is a run of consecutive ids, then possibly a gap (an
 * id whose PUT never landed), then at most WAL_WINDOW - 1 stray objects above it, none of
 * which was ever acknowledged. Recovery (recovery.ts) replays the consecutive run and stops at
 * the first gap g. It then claims g with an empty object of its own epoch (put-if-absent; if
 * the old writer's PUT of g lands first, that object is replayed like any other and the claim
 * moves to g+1), and from the claimed id x it claims x+1 .. x+WAL_WINDOW-1 too, deleting any
 * stray it finds there and claiming the id again. Its own objects start at x+WAL_WINDOW.
 *   - A zombie (the old writer, still running) can never acknowledge anything at or above x:
 *     its PUT of x fails, and every higher object of its waits for x.
 *   - A zombie's late PUT into the window fails too (the ids are claimed), and it never forms
 *     ids beyond its lowest unacknowledged id + WAL_WINDOW - 1 ≤ x + WAL_WINDOW - 1, so it cannot
 *     land an object where the new writer will write.
 *   - An object found WAL_WINDOW or more ids past the gap cannot be a crash's stray: the gap is
 *     a lost object, and recovery refuses to open (CorruptObjectError naming it).
 *   - Replay also stops at an object of an older epoch than one already replayed: a stray that
 *     landed late in a newer writer's space (defence in depth; the claims prevent it).
 * The next recovery walks through the claimed empty objects like through any other. Volumes of
 * writers with one PUT at a time (no gaps, a single fence object) read the same way.
 */
import type { Sealer } from "../crypto/sealer.ts";
import { blockAad } from "../crypto/sealer.ts";
import type { Entry } from "./entry.ts";
import { CorruptObjectError } from "./errors.ts";
import type { WriteBatch } from "./write-batch.ts";

/** Most WAL objects a writer has formed and not yet acknowledged (see above). */
export const WAL_WINDOW = 8;

const MAGIC = Buffer.from("ZWAL", "latin1");
const VERSION = 1;
const HEADER = Buffer.concat([MAGIC, Buffer.of(VERSION)]);
const ENTRY_HEADER = 9;

export interface WalBatch {
  seq: number;
  entries: Entry[];
}

export interface WalContents {
  epoch: number;
  batches: WalBatch[];
}

/** Encodes a batch as a list of buffers (headers + the caller's key/value buffers, uncopied). */
export function encodeBatch(seq: number, batch: WriteBatch): { parts: Buffer[]; bytes: number } {
  const head = Buffer.allocUnsafe(12 + batch.ops.length * ENTRY_HEADER);
  head.writeBigUInt64BE(BigInt(seq), 0);
  head.writeUInt32BE(batch.ops.length, 8);
  const parts: Buffer[] = [head.subarray(0, 12)];
  let bytes = 12;
  let off = 12;
  for (const op of batch.ops) {
    const h = head.subarray(off, off + ENTRY_HEADER);
    h[0] = op.value === null ? 1 : 0;
    h.writeUInt32BE(op.key.length, 1);
    h.writeUInt32BE(op.value?.length ?? 0, 5);
    off += ENTRY_HEADER;
    parts.push(h, op.key);
    bytes += ENTRY_HEADER + op.key.length;
    if (op.value !== null && op.value.length > 0) {
      parts.push(op.value);
      bytes += op.value.length;
    }
  }
  return { parts, bytes };
}

/**
 * WAL bodies smaller than this are sealed without zstd. A group commit of metadata operations
 * is a few KiB that lives until the next memtable flush; compressing it cost ~65 µs of CPU and
 * a thread-pool round trip (~0.2 ms on a loaded machine) on the commit's critical path, to
 * save a few hundred bytes of one short-lived object. Readers need no change: the sealed
 * block's flag says whether it was compressed.
 */
export const WAL_COMPRESS_MIN_BYTES = 64 * 1024;

/** Largest WAL body a WalScratch keeps around for reuse. */
const SCRATCH_MAX_BYTES = 16 * 1024 * 1024;

/**
 * A reusable buffer for the plaintext body of WAL objects: the body is garbage once sealed,
 * and assembling every multi-MiB body in freshly allocated memory costs page faults and garbage
 * collections. One scratch serves one sealWal at a time.
 */
export class WalScratch {
  private buf: Buffer = Buffer.alloc(0);

  take(size: number): Buffer {
    if (size > SCRATCH_MAX_BYTES) return Buffer.allocUnsafe(size);
    if (this.buf.length < size) this.buf = Buffer.allocUnsafe(Math.max(size, Math.min(2 * this.buf.length, SCRATCH_MAX_BYTES)));
    return this.buf.subarray(0, size);
  }
}

export async function sealWal(
  objectKey: string,
  epoch: number,
  batchCount: number,
  parts: Buffer[],
  bytes: number,
  sealer: Sealer,
  scratch?: WalScratch,
): Promise<Buffer> {
  const body = scratch ? scratch.take(12 + bytes) : Buffer.allocUnsafe(12 + bytes);
  body.writeBigUInt64BE(BigInt(epoch), 0);
  body.writeUInt32BE(batchCount, 8);
  let off = 12;
  for (const p of parts) {
    body.set(p, off);
    off += p.length;
  }
  if (off !== body.length) throw new RangeError(`WAL parts hold ${off - 12} bytes, expected ${bytes}`);
  const sealed = (await sealer.prepare(body, { compress: body.length >= WAL_COMPRESS_MIN_BYTES })).sealParts(blockAad(objectKey, 0));
  return Buffer.concat([HEADER, ...sealed], HEADER.length + sealed.reduce((n, p) => n + p.length, 0));
}

export async function openWal(objectKey: string, data: Buffer, sealer: Sealer): Promise<WalContents> {
  if (data.length < 5 || !data.subarray(0, 4).equals(MAGIC)) {
    throw new CorruptObjectError(objectKey, "not a WAL object (bad magic)");
  }
  if (data[4] !== VERSION) throw new CorruptObjectError(objectKey, `unsupported WAL format version ${data[4]}`);
  let body: Buffer;
  try {
    body = await sealer.open(data.subarray(5), blockAad(objectKey, 0));
  } catch (err) {
    throw new CorruptObjectError(objectKey, "WAL body fails authentication (corrupt, truncated or wrong key)", { cause: err });
  }
  const fail = (what: string): never => {
    throw new CorruptObjectError(objectKey, `WAL body malformed: ${what}`);
  };
  if (body.length < 12) fail("short header");
  const epoch = Number(body.readBigUInt64BE(0));
  const batchCount = body.readUInt32BE(8);
  let off = 12;
  const batches: WalBatch[] = [];
  for (let b = 0; b < batchCount; b++) {
    if (off + 12 > body.length) fail(`batch ${b} header past end`);
    const seq = Number(body.readBigUInt64BE(off));
    const count = body.readUInt32BE(off + 8);
    off += 12;
    const entries: Entry[] = [];
    for (let i = 0; i < count; i++) {
      if (off + ENTRY_HEADER > body.length) fail(`entry ${i} of batch ${b} past end`);
      const kind = body[off]!;
      const kl = body.readUInt32BE(off + 1);
      const vl = body.readUInt32BE(off + 5);
      off += ENTRY_HEADER;
      if (kind > 1) fail(`entry kind ${kind}`);
      if (off + kl + vl > body.length) fail(`entry ${i} of batch ${b} data past end`);
      const key = body.subarray(off, off + kl);
      off += kl;
      const value = kind === 1 ? null : body.subarray(off, off + vl);
      off += vl;
      entries.push({ key, value });
    }
    batches.push({ seq, entries });
  }
  if (off !== body.length) fail(`${body.length - off} trailing bytes`);
  return { epoch, batches };
}
