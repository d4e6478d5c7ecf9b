/**
 * `npx node bench/readdir.ts` — the server's own cost of READDIRPLUS, in process and without the
 * network: listing a directory of `--entries` (default 2,000) files page by page (maxcount
 * 32 KiB, dircount 8 KiB) through the NFS handler and the XDR encoder, as the RPC layer would
 * before writing the reply. The directory lives either in the memtable (just created) or in
 * SSTs (`--flushed`, after a restart; `--cold` also keeps the inode cache from helping). Prints entries/s and µs of CPU per entry, median of
 * `--rounds` (default 7) rounds of 10 listings.
 */
import { ZeroFs } from "../server/src/fs/zerofs.ts";
import { Db } from "../server/src/lsm/db.ts";
import { encodeReaddirplusResult } from "../server/src/nfs/nfs3-codec.ts";
import { AuthFlavor } from "../server/src/nfs/rpc.ts";
import { XdrWriter } from "../server/src/nfs/xdr.ts";
import { ZeroFsNfs3Handler } from "../server/src/nfs/zerofs-handler.ts";
import { MemoryStore } from "../server/src/store/memory-store.ts";
import { testKeys } from "../test/support/test-keys.ts";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]));
const entries = Number(args.get("entries") ?? "2000");
const rounds = Number(args.get("rounds") ?? "7");
const flushed = args.has("flushed");
/** Every listing reads the inodes from the engine (as after a restart or with a cold cache). */
const cold = args.has("cold");

const store = new MemoryStore();
let db = await Db.open(store, testKeys(), { gcIntervalMs: 0 });
let fs = await ZeroFs.open(db);
const root = { uid: 0, gid: 0, gids: [] };
const dir = await fs.mkdir(root, fs.rootIno, Buffer.from("big"), { mode: 0o755 });
for (let i = 0; i < entries; i += 100) {
  await Promise.all(Array.from({ length: Math.min(100, entries - i) }, (_, j) => fs.create(root, dir.attrs.ino, Buffer.from(`entry-${String(i + j).padStart(6, "0")}`), { mode: "unchecked", attrs: { mode: 0o644 } })));
}
if (flushed) {
  await fs.close();
  await db.flushMemtable();
  await db.close();
  db = await Db.open(store, testKeys(), { gcIntervalMs: 0 });
  fs = await ZeroFs.open(db, cold ? { inodeCacheEntries: 1 } : {});
}
const handler = new ZeroFsNfs3Handler(fs);
const cred = { flavor: AuthFlavor.AUTH_SYS, uid: 0, gid: 0, gids: [] } as never;
const dirFh = fs.handleOf(dir.attrs);

async function listing(): Promise<number> {
  let cookie = 0n;
  let cookieverf: Buffer = Buffer.alloc(8);
  let seen = 0;
  for (;;) {
    const a = { dir: dirFh, cookie, cookieverf, dircount: 8192, maxcount: 32768 };
    const r = await handler.readdirplus(cred, a);
    if (r.status !== 0) throw new Error(`READDIRPLUS failed: ${r.status}`);
    const w = new XdrWriter();
    encodeReaddirplusResult(w, r, a);
    w.chunks();
    seen += r.entries.length;
    if (r.entries.length > 0) cookie = BigInt(r.entries[r.entries.length - 1]!.cookie);
    cookieverf = r.cookieverf;
    if (r.eof) return seen;
  }
}

await listing();
const rates: number[] = [];
const cpus: number[] = [];
for (let r = 0; r < rounds; r++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  for (let p = 0; p < 10; p++) n += await listing();
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  rates.push(n / s);
  cpus.push((c.user + c.system) / n);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`READDIRPLUS of ${entries} entries (${flushed ? "in SSTs" : "in the memtable"}${cold ? ", inodes not cached" : ""}), in process: ${median(rates).toFixed(0)} entries/s, ${median(cpus).toFixed(2)} µs CPU per entry (median of ${rounds})`);
await fs.close();
await db.close();
