/**
 * One crypto worker thread (see crypto-workers.ts): seals and opens the blocks of each batch with
 * the same code the event loop would run (block-sealer.ts), and sends the results back packed in
 * one transferred buffer.
 */
import { parentPort } from "node:worker_threads";
import { openSealed, sealBody } from "./block-sealer.ts";
import type { BatchMessage, JobResult, KeyMessage, ResultMessage } from "./crypto-workers.ts";
import { SealError } from "./sealer.ts";
import { XChaChaKey } from "./xchacha.ts";

const port = parentPort;
if (!port) throw new Error("crypto-worker.ts runs only as a worker thread");

const keys = new Map<number, XChaChaKey>();

async function runBatch(m: BatchMessage): Promise<ResultMessage> {
  const input = Buffer.from(m.buf);
  const n = m.meta.length / 7;
  const outputs: (Buffer[] | { error: string; seal: boolean })[] = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const f = m.meta.subarray(i * 7, i * 7 + 7);
      const [kind, keyIndex, flags, dataAt, dataLen, aadAt, aadLen] = [f[0]!, f[1]!, f[2]!, f[3]!, f[4]!, f[5]!, f[6]!];
      const data = input.subarray(dataAt, dataAt + dataLen);
      const aad = input.subarray(aadAt, aadAt + aadLen);
      const key = keys.get(keyIndex);
      if (!key) return { error: `crypto worker has no key ${keyIndex}`, seal: false };
      try {
        return kind === 0 ? sealBody(key, data, flags, aad) : [await openSealed(key, data, aad)];
      } catch (err) {
        return { error: err instanceof Error ? err.message : String(err), seal: err instanceof SealError };
      }
    }),
  );
  let total = 0;
  for (const o of outputs) if (Array.isArray(o)) for (const p of o) total += p.length;
  const out = Buffer.allocUnsafeSlow(total);
  let at = 0;
  const results: JobResult[] = outputs.map((o) => {
    if (!Array.isArray(o)) return o;
    const start = at;
    for (const p of o) {
      out.set(p, at);
      at += p.length;
    }
    return [start, at - start];
  });
  return { id: m.id, results, buf: out.buffer };
}

port.on("message", (m: BatchMessage | KeyMessage) => {
  if (m.type === "key") {
    keys.set(m.index, new XChaChaKey(m.key));
    m.key.fill(0);
    return;
  }
  void runBatch(m).then((r) => port.postMessage(r, [r.buf]));
});
