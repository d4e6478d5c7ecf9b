/**
 * `npx node bench/local-reads.ts` — ranged GETs of the local-directory store as the engine makes
 * them on a block-cache or extent-cache miss (16 KiB at random offsets of SST/segment files the
 * OS has cached), 32 in flight: with the file kept open between reads (cached read handles)
 * and without (open + fstat + read + close per GET). Alternating rounds, medians printed.
 *
 * Options: --rounds=<n> (default 5), --seconds=<per round> (default 2).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalStore } from "../server/src/store/local-store.ts";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]));
const rounds = Number(args.get("rounds") ?? "5");
const seconds = Number(args.get("seconds") ?? "2");
const OBJECTS = 32;
const OBJECT_BYTES = 2 * 1024 * 1024;
const READ_BYTES = 16 * 1024;
const IN_FLIGHT = 32;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function round(root: string, cached: boolean): Promise<{ opsPerSec: number; cpuUsPerOp: number }> {
  const store = new LocalStore(root, cached ? { readHandles: { maxOpen: 256, immutable: () => true } } : {});
  const end = performance.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let ops = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        const i = Math.floor(Math.random() * OBJECTS);
        const offset = Math.floor(Math.random() * (OBJECT_BYTES / READ_BYTES)) * READ_BYTES;
        await store.get(`sst/${i}`, { offset, length: READ_BYTES });
        ops++;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await store.close();
  return { opsPerSec: ops / elapsed, cpuUsPerOp: (cpu.user + cpu.system) / ops };
}

const dir = await mkdtemp(join(tmpdir(), "zerofs-bench-reads-"));
try {
  const root = join(dir, "root");
  const setup = new LocalStore(root);
  for (let i = 0; i < OBJECTS; i++) await setup.put(`sst/${i}`, randomBytes(OBJECT_BYTES));
  const results = { open: [] as { opsPerSec: number; cpuUsPerOp: number }[], cached: [] as { opsPerSec: number; cpuUsPerOp: number }[] };
  await round(root, false); // warm the page cache
  for (let r = 0; r < rounds; r++) {
    for (const cached of r % 2 === 0 ? [false, true] : [true, false]) {
      const x = await round(root, cached);
      (cached ? results.cached : results.open).push(x);
      console.log(`round ${r + 1} ${cached ? "kept handles" : "open per GET"}: ${x.opsPerSec.toFixed(0)} GET/s, ${x.cpuUsPerOp.toFixed(1)} µs CPU per GET`);
    }
  }
  for (const [name, xs] of Object.entries(results)) {
    console.log(`median ${name === "cached" ? "kept handles" : "open per GET"}: ${median(xs.map((x) => x.opsPerSec)).toFixed(0)} GET/s, ${median(xs.map((x) => x.cpuUsPerOp)).toFixed(1)} µs CPU per GET`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
