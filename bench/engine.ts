/**
 * `npm run bench:engine` — engine figures for the local-directory store and a real S3 server
 * (versitygw on loopback): put throughput (100-byte and 64 KiB values, batched and single),
 * durable group-commit throughput and latency, point gets (block-cache hit and miss) with
 * p50/p99, range scan rate, store bytes written per user byte, and objects PUT per GiB.
 *
 * Options: --only=local|s3, --scale=<factor> (default 1; 0.1 for a quick look).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { Db, type DbOptions, type SealerSource } from "../server/src/lsm/db.ts";
import { WriteBatch } from "../server/src/lsm/write-batch.ts";
import { createBlockSealer } from "../server/src/crypto/block-sealer.ts";
import type { Sealer } from "../server/src/crypto/sealer.ts";
import { LocalStore } from "../server/src/store/local-store.ts";
import type { ObjectStore } from "../server/src/store/object-store.ts";
import { CountingStore } from "./counting-store.ts";
import { createS3StoreForTest, startVersitygw } from "../test/support/versitygw.ts";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]));
const scale = Number(args.get("scale") ?? "1");
const only = args.get("only");

function keys(): SealerSource {
  const dek = randomBytes(32);
  const m = new Map<string, Sealer>();
  return {
    sealer: (p) => {
      let s = m.get(p);
      if (!s) m.set(p, (s = createBlockSealer(createHash("sha256").update(dek).update(p).digest())));
      return s;
    },
  };
}

const key = (i: number): Buffer => {
  const b = Buffer.allocUnsafe(16);
  b.write("bench:", 0, "latin1");
  b.writeUIntBE(0, 6, 2);
  b.writeUIntBE(Math.floor(i / 2 ** 32), 8, 4);
  b.writeUInt32BE(i >>> 0, 12);
  return b;
};

function shuffle(n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * Distinct incompressible values: slices of a random pool larger than zstd's window, so the
 * bytes-per-user-byte and MiB/s figures are not flattered by repeated values compressing away.
 */
const POOL = randomBytes(80 * 2 ** 20);
const valueAt = (i: number, size: number): Buffer => {
  const slots = Math.floor(POOL.length / size) - 1;
  const off = (i % slots) * size + (i % 61);
  return POOL.subarray(off, off + size);
};

const fmt = (n: number, d = 0): string => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

interface Row {
  name: string;
  figure: string;
}

async function benchStore(label: string, makeStore: () => Promise<{ store: ObjectStore; cleanup: () => Promise<void> }>): Promise<Row[]> {
  const rows: Row[] = [];
  const row = (name: string, figure: string): void => {
    rows.push({ name, figure });
    console.log(`  ${label.padEnd(6)} ${name.padEnd(46)} ${figure}`);
  };
  const opts: Partial<DbOptions> = { gcIntervalMs: 0 };

  // --- 100-byte values, batched (100 per batch), sequential then random keys.
  for (const order of ["sequential", "random"] as const) {
    const { store: inner, cleanup } = await makeStore();
    const store = new CountingStore(inner);
    const db = await Db.open(store, keys(), opts);
    const n = Math.round(300_000 * scale);
    const ids = order === "sequential" ? Array.from({ length: n }, (_, i) => i) : shuffle(n);
    const t0 = performance.now();
    for (let i = 0; i < n; i += 100) {
      const b = new WriteBatch();
      for (let j = i; j < Math.min(n, i + 100); j++) b.put(key(ids[j]!), valueAt(j, 100));
      await db.write(b, { awaitDurable: false });
    }
    await db.flush();
    const secs = (performance.now() - t0) / 1000;
    row(`put 100 B ${order}, batched x100`, `${fmt(n / secs)} puts/s`);
    await db.close();
    const user = n * (16 + 100);
    row(`  store bytes written per user byte`, `${fmt(store.bytesPut / user, 2)} (WAL + SST + manifest, after close)`);
    row(`  objects PUT per GiB of user data`, `${fmt(store.puts / (user / 2 ** 30))}`);

    await cleanup();
  }

  // --- 100-byte values, one put per batch (not awaiting durability), then durable ones.
  {
    const { store, cleanup } = await makeStore();
    const db = await Db.open(store, keys(), opts);
    const n = Math.round(100_000 * scale);
    let t0 = performance.now();
    for (let i = 0; i < n; i++) await db.write(new WriteBatch().put(key(i), valueAt(i, 100)), { awaitDurable: false });
    await db.flush();
    row(`put 100 B single (async durability)`, `${fmt(n / ((performance.now() - t0) / 1000))} puts/s`);

    // Durable single puts from 64 concurrent writers: group commit shares WAL objects.
    const writers = 64;
    const per = Math.max(2, Math.round(20 * scale));
    const lat: number[] = [];
    t0 = performance.now();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < per; i++) {
          const s = performance.now();
          await db.write(new WriteBatch().put(key(n + w * per + i), valueAt(w * per + i, 100)));
          lat.push(performance.now() - s);
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    row(`put 100 B durable, ${writers} concurrent writers`, `${fmt((writers * per) / secs)} puts/s, p50 ${fmt(pct(lat, 50), 1)} ms, p99 ${fmt(pct(lat, 99), 1)} ms`);
    await db.close();
    await cleanup();
  }

  // --- 64 KiB values (file chunks), batched x16 and single.
  {
    const { store: inner, cleanup } = await makeStore();
    const store = new CountingStore(inner);
    const db = await Db.open(store, keys(), opts);
    const n = Math.round(2048 * scale);
    let t0 = performance.now();
    for (let i = 0; i < n; i += 16) {
      const b = new WriteBatch();
      for (let j = i; j < Math.min(n, i + 16); j++) b.put(key(j), valueAt(j, 65536));
      await db.write(b, { awaitDurable: false });
    }
    await db.flush();
    let secs = (performance.now() - t0) / 1000;
    row(`put 64 KiB batched x16`, `${fmt(n / secs)} puts/s, ${fmt((n * 65536) / 2 ** 20 / secs, 1)} MiB/s`);
    t0 = performance.now();
    for (let i = 0; i < n; i++) await db.write(new WriteBatch().put(key(n + i), valueAt(n + i, 65536)), { awaitDurable: false });
    await db.flush();
    secs = (performance.now() - t0) / 1000;
    row(`put 64 KiB single`, `${fmt(n / secs)} puts/s, ${fmt((n * 65536) / 2 ** 20 / secs, 1)} MiB/s`);
    await db.close();
    const user = 2 * n * (65536 + 16);
    row(`  store bytes written per user byte`, `${fmt(store.bytesPut / user, 2)}`);
    row(`  objects PUT per GiB of user data`, `${fmt(store.puts / (user / 2 ** 30))}`);
    await cleanup();
  }

  // --- Reads: 100-byte values flushed into SSTs, then point gets (hit / miss) and scans.
  {
    const { store, cleanup } = await makeStore();
    const k = keys();
    const n = Math.round(200_000 * scale);
    let db = await Db.open(store, k, opts);
    for (let i = 0; i < n; i += 500) {
      const b = new WriteBatch();
      for (let j = i; j < Math.min(n, i + 500); j++) b.put(key(j), valueAt(j, 100));
      await db.write(b, { awaitDurable: false });
    }
    await db.compactAll();
    await db.close();

    db = await Db.open(store, k, opts);
    const probes = Math.round(100_000 * scale);
    // Warm the block cache with one pass, then measure cache hits.
    for (let i = 0; i < n; i += 50) await db.get(key(i));
    const lat: number[] = [];
    let t0 = performance.now();
    for (let i = 0; i < probes; i++) {
      const s = performance.now();
      await db.get(key(Math.floor(Math.random() * n)));
      if ((i & 15) === 0) lat.push(performance.now() - s);
    }
    let secs = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    row(`get 100 B, block cache hit`, `${fmt(probes / secs)} gets/s, p50 ${fmt(pct(lat, 50) * 1000)} µs, p99 ${fmt(pct(lat, 99) * 1000)} µs`);

    // Uncached: a tiny block cache makes nearly every get fetch and open a block from the store.
    await db.close();
    db = await Db.open(store, k, { ...opts, blockCacheBytes: 256 * 1024 });
    const missProbes = Math.round(5_000 * scale);
    const mlat: number[] = [];
    t0 = performance.now();
    for (let i = 0; i < missProbes; i++) {
      const s = performance.now();
      await db.get(key(Math.floor(Math.random() * n)));
      mlat.push(performance.now() - s);
    }
    secs = (performance.now() - t0) / 1000;
    mlat.sort((a, b) => a - b);
    row(`get 100 B, block cache miss`, `${fmt(missProbes / secs)} gets/s, p50 ${fmt(pct(mlat, 50), 2)} ms, p99 ${fmt(pct(mlat, 99), 2)} ms`);
    await db.close();

    db = await Db.open(store, k, opts);
    t0 = performance.now();
    let count = 0;
    let bytes = 0;
    for await (const e of db.scan()) {
      count++;
      bytes += e.key.length + (e.value?.length ?? 0);
    }
    secs = (performance.now() - t0) / 1000;
    row(`range scan (cold cache, read-ahead)`, `${fmt(count / secs)} entries/s, ${fmt(bytes / 2 ** 20 / secs, 1)} MiB/s`);
    await db.close();
    await cleanup();
  }
  return rows;
}

console.log(`ZeroFS engine benchmark (scale ${scale}, node ${process.version})`);
if (only !== "s3") {
  await benchStore("local", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zerofs-bench-"));
    const store = new LocalStore(dir);
    return { store, cleanup: async () => { await store.close(); await rm(dir, { recursive: true, force: true }); } };
  });
}
if (only !== "local") {
  const vgw = await startVersitygw();
  try {
    let n = 0;
    await benchStore("s3", async () => {
      const store = createS3StoreForTest(vgw, `bench-${n++}`, { maxAttempts: 5 });
      return { store, cleanup: () => store.close() };
    });
  } finally {
    await vgw.stop();
  }
}
