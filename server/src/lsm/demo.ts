/**
 * `make run` until the NFS server lands: opens the engine on the embedded default (a local
 * directory), writes and reads back a working set, reopens it, and prints what it measured.
 *
 *   npm run demo -- [DIR]   (ZEROFS_ENCRYPTION_PASSWORD must be set; the Makefile sets a
 *                            demo password when it is not)
 */
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { pino } from "pino";
import { openDatabase } from "./open-database.ts";
import { WriteBatch } from "./write-batch.ts";

const log = pino({ name: "zerofs-demo" });
const dir = resolve(process.argv[2] ?? "./data");
const password = process.env.ZEROFS_ENCRYPTION_PASSWORD;
if (!password) {
  log.error("ZEROFS_ENCRYPTION_PASSWORD is not set: expected the volume's encryption password");
  process.exit(2);
}
const cacheDir = process.env.SLATEDB_CACHE_DIR;
const cacheGb = Number(process.env.SLATEDB_CACHE_SIZE_GB ?? "1");

const t0 = performance.now();
const vol = await openDatabase({
  url: dir,
  password,
  cache: cacheDir ? { dir: cacheDir, maxBytes: Math.floor(cacheGb * 2 ** 30) } : undefined,
  db: { logger: log },
});
log.info({ dir, ms: Math.round(performance.now() - t0) }, "volume opened (Argon2id key unwrap included)");

const prior = await vol.db.get(Buffer.from("demo:runs"));
const runs = (prior ? Number(prior.toString()) : 0) + 1;
const n = 100_000;
const value = randomBytes(100);
let t = performance.now();
for (let i = 0; i < n; i += 100) {
  const b = new WriteBatch();
  for (let j = i; j < i + 100; j++) b.put(Buffer.from(`demo:key:${String(j).padStart(8, "0")}`), value);
  await vol.db.write(b, { awaitDurable: false });
}
await vol.db.write(new WriteBatch().put(Buffer.from("demo:runs"), Buffer.from(String(runs))));
const putSecs = (performance.now() - t) / 1000;
t = performance.now();
let found = 0;
for (let i = 0; i < n; i += 7) if (await vol.db.get(Buffer.from(`demo:key:${String(i).padStart(8, "0")}`))) found++;
const getSecs = (performance.now() - t) / 1000;
t = performance.now();
let scanned = 0;
for await (const _ of vol.db.scan(Buffer.from("demo:key:"), Buffer.from("demo:key;"))) scanned++;
const scanSecs = (performance.now() - t) / 1000;
log.info(
  {
    run: runs,
    putsPerSec: Math.round(n / putSecs),
    getsPerSec: Math.round(Math.ceil(n / 7) / getSecs),
    scanEntriesPerSec: Math.round(scanned / scanSecs),
    found,
    scanned,
    stats: vol.db.stats(),
  },
  "engine demo done",
);
await vol.close();
if (found !== Math.ceil(n / 7) || scanned !== n) {
  log.error({ found, scanned }, "read-back mismatch");
  process.exit(1);
}
