/**
 * One crypto worker thread (see crypto-workers.ts): seals and opens the blocks of each batch with
 * the same code the event loop would run (block-sealer.ts). Inputs are read where they are (the
 * batch's buffer or a shared one); outputs that own their memory go back transferred, the small
 * rest packed into one buffer.
 */
import { parentPort } from "node:worker_threads";
import { isCompressedBlock, openSealed, sealBody } from "./block-sealer.ts";
import { IN_BATCH, META_FIELDS, type BatchMessage, type JobResult, type KeyMessage, type ResultMessage } from "./crypto-workers.ts";
import { SealError } from "./sealer.ts";
import { XChaChaKey } from "./xchacha.ts";

const port = parentPort;
if (!port) throw new Error("crypto-worker.ts runs only as a worker thread");

const keys = new Map<number, XChaChaKey>();

/** Below this, a piece is copied into the packed buffer rather than sent as its own. */
const MIN_TRANSFER_BYTES = 4096;

/**
 * Whether `b` is the whole of a (non-shared) ArrayBuffer nothing else views: then it can move.
 * Only for buffers OpenSSL made: those of native addons (zstd's) cannot be transferred.
 */
function ownsItsMemory(b: Buffer): boolean {
  return b.byteLength >= MIN_TRANSFER_BYTES && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && !(b.buffer instanceof SharedArrayBuffer);
}

async function runBatch(m: BatchMessage): Promise<ResultMessage> {
  const input = Buffer.from(m.buf);
  const shared = m.shared.map((s) => Buffer.from(s));
  const n = m.meta.length / META_FIELDS;
  const movable: boolean[] = new Array<boolean>(n).fill(false);
  const outputs: (Buffer[] | { error: string; seal: boolean })[] = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const f = m.meta.subarray(i * META_FIELDS, (i + 1) * META_FIELDS);
      const [kind, keyIndex, flags, src, dataAt, dataLen, aadAt, aadLen] = [f[0]!, f[1]!, f[2]!, f[3]!, f[4]!, f[5]!, f[6]!, f[7]!];
      const from = src === IN_BATCH ? input : shared[src];
      if (!from) return { error: `crypto worker got no shared buffer ${src}`, seal: false };
      const data = from.subarray(dataAt, dataAt + dataLen);
      const aad = input.subarray(aadAt, aadAt + aadLen);
      const key = keys.get(keyIndex);
      if (!key) return { error: `crypto worker has no key ${keyIndex}`, seal: false };
      movable[i] = kind === 0 || !isCompressedBlock(data);
      try {
        return kind === 0 ? sealBody(key, data, flags, aad) : [await openSealed(key, data, aad)];
      } catch (err) {
        return { error: err instanceof Error ? err.message : String(err), seal: err instanceof SealError };
      }
    }),
  );
  // Decide per piece: moved as its own buffer (once) or copied into the packed one.
  const moved = new Set<ArrayBufferLike>();
  let packedBytes = 0;
  const plan = outputs.map((o, i) =>
    Array.isArray(o)
      ? o.map((p) => {
          const move = movable[i]! && ownsItsMemory(p) && !moved.has(p.buffer);
          if (move) moved.add(p.buffer);
          else packedBytes += p.length;
          return move;
        })
      : [],
  );
  const packed = Buffer.allocUnsafeSlow(packedBytes);
  const bufs: ArrayBuffer[] = [packed.buffer];
  let at = 0;
  const results: JobResult[] = outputs.map((o, i) => {
    if (!Array.isArray(o)) return o;
    return o.map((p, k): [number, number, number] => {
      if (plan[i]![k]) return [bufs.push(p.buffer as ArrayBuffer) - 1, 0, p.length];
      packed.set(p, at);
      at += p.length;
      return [0, at - p.length, p.length];
    });
  });
  return { id: m.id, results, bufs };
}

port.on("message", (m: BatchMessage | KeyMessage) => {
  if (m.type === "key") {
    keys.set(m.index, new XChaChaKey(m.key));
    m.key.fill(0);
    return;
  }
  void runBatch(m).then((r) => {
    try {
      port.postMessage(r, r.bufs);
    } catch {
      // A buffer that cannot move (made by some other native code): send copies instead.
      port.postMessage(r);
    }
  });
});
