/**
 * `npm run bench:kernel`: fixed workloads in the test VM through the Linux kernel NFS client,
 * timed on ZeroFS and, side by side in the same run, on the guest's tmpfs and (when
 * nfs-kernel-server is installed) the guest kernel's own nfsd exporting a tmpfs over loopback.
 * The VM is emulated (TCG), so the ratios are what to compare, not the seconds.
 *
 *   npm run bench:kernel [-- --json out.json] [-- --no-nfsd]
 *
 * Workloads: untar a source tree (the project's node_modules/@smithy, ~1,600 files) + sync;
 * 20,000 SQLite rows in 200 transactions (synchronous=FULL); git clone of that tree (file://,
 * a pack and a checkout) + sync; make -j2 of a 16-file C project + sync; rm -rf of the untarred
 * tree and the clone.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runGuest, stepTimes } from "./vm.ts";
import { REPO_ROOT, startZerofs } from "./zerofs-server.ts";

const { values } = parseArgs({ options: { json: { type: "string" }, "no-nfsd": { type: "boolean" } } });

const wantNfsd = values["no-nfsd"] !== true;
if (wantNfsd) {
  try {
    execFileSync("bash", [join(REPO_ROOT, "scripts/tools/ensure-apt.sh"), "rpc.nfsd", "nfs-kernel-server"], { stdio: "inherit" });
  } catch {
    console.error("bench:kernel: could not install nfs-kernel-server; the nfsd column will be missing");
  }
}
const tree = execFileSync("tar", ["-cf", "-", "-C", join(REPO_ROOT, "node_modules"), "@smithy"], { maxBuffer: 1 << 30 });

const server = await startZerofs();
let ok = false;
try {
  const started = Date.now();
  const r = await runGuest({
    script: "bench",
    server,
    memMb: 3072,
    timeoutMs: 40 * 60_000,
    env: { BENCH_NFSD: wantNfsd ? 1 : 0 },
    files: { "tree.tar": tree },
    onLine: (l) => {
      if (l.startsWith("STEP ") || l.startsWith("BENCH-")) console.error(`  ${l}`);
    },
  });
  const times = stepTimes(r.console);
  const workloads = ["untar", "sqlite", "clone", "compile", "rm-rf"];
  const targets = ["tmpfs", "zerofs", "nfsd"].filter((t) => workloads.some((w) => times.has(`bench_${w}_${t}`)));
  const notes = r.console.split("\n").filter((l) => l.startsWith("BENCH-"));
  const rows = workloads.map((w) => {
    const seconds: Record<string, number | undefined> = {};
    for (const t of targets) seconds[t] = times.get(`bench_${w}_${t}`);
    return { workload: w, seconds };
  });
  const fmt = (n: number | undefined): string => (n === undefined ? "-" : n.toFixed(2));
  const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b === 0 ? "-" : `${(a / b).toFixed(1)}x`);
  const head = ["workload", ...targets.map((t) => `${t} s`), "zerofs/tmpfs", ...(targets.includes("nfsd") ? ["zerofs/nfsd", "nfsd/tmpfs"] : [])];
  const lines = rows.map((row) => {
    const t = row.seconds;
    return [
      row.workload,
      ...targets.map((x) => fmt(t[x])),
      ratio(t.zerofs, t.tmpfs),
      ...(targets.includes("nfsd") ? [ratio(t.zerofs, t.nfsd), ratio(t.nfsd, t.tmpfs)] : []),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const show = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join("  ");
  console.log(`\nkernel NFS client in a qemu TCG guest (2 vCPUs); ${notes.filter((n) => !n.startsWith("BENCH-DONE")).join("; ")}`);
  console.log(show(head));
  for (const l of lines) console.log(show(l));
  console.log(`(VM run ${Math.round((Date.now() - started) / 1000)} s; zerofs over qemu user networking to the host, nfsd over the guest's loopback)`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ rows, notes, when: new Date().toISOString() }, null, 2));
  ok = true;
} finally {
  await server.dispose({ keep: !ok });
}
