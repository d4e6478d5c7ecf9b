/**
 * `npx node bench/s3-put.ts` — client CPU per MiB uploaded to versitygw on loopback, with the
 * SDK's defaults (CRC32 of every body + SigV4 hash of every body) against S3Store's uploads
 * (no CRC32; with and without the SigV4 payload hash, the latter being the https default).
 * 4 MiB bodies, 4 in flight, alternating rounds, medians.
 */
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { randomBytes } from "node:crypto";
import { createS3StoreForTest, startVersitygw } from "../test/support/versitygw.ts";

const vgw = await startVersitygw();
const body = randomBytes(4 * 1024 * 1024);
const N = 48;
const raw = new S3Client({ region: vgw.region, endpoint: vgw.endpoint, forcePathStyle: true, credentials: { accessKeyId: vgw.accessKeyId, secretAccessKey: vgw.secretAccessKey } });
const signed = createS3StoreForTest(vgw, "bench-signed", { unsignedPayload: false });
const unsigned = createS3StoreForTest(vgw, "bench-unsigned", { unsignedPayload: true });
const modes: Record<string, (i: number) => Promise<unknown>> = {
  "SDK defaults (CRC32 + signed SHA-256)": (i) => raw.send(new PutObjectCommand({ Bucket: vgw.bucket, Key: `bench-raw/${i}`, Body: body })),
  "S3Store, plain http (signed SHA-256 only)": (i) => signed.put(`o/${i}`, body),
  "S3Store, https default (UNSIGNED-PAYLOAD)": (i) => unsigned.put(`o/${i}`, body),
};
const results = new Map<string, number[]>();
try {
  for (let round = 0; round < 5; round++) {
    for (const [name, put] of Object.entries(modes)) {
      const c0 = process.cpuUsage();
      let next = 0;
      await Promise.all(Array.from({ length: 4 }, async () => { while (next < N) await put(next++); }));
      const c = process.cpuUsage(c0);
      const msPerMiB = (c.user + c.system) / 1000 / (N * 4);
      results.set(name, [...(results.get(name) ?? []), msPerMiB]);
    }
  }
  for (const [name, xs] of results) console.log(`${name.padEnd(44)} ${[...xs].sort((a, b) => a - b)[2]!.toFixed(2)} ms client CPU per MiB (median of 5)`);
} finally {
  raw.destroy();
  await signed.close();
  await unsigned.close();
  await vgw.stop();
}
