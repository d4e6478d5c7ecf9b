/**
 * The workload of `kubectl zerofs check`, run by `node -e` in the check Job's container (the
 * server image has Node). Plain JavaScript in a string: it runs in the image, not in the plugin.
 * It writes CHECK_SIZE_MB of random data with one fsync, reads it back and compares SHA-256
 * digests, then creates, stats, lists, renames and removes CHECK_FILES small files, all under
 * CHECK_DIR/.zerofs-check-<CHECK_ID> (removed at the end). The result is one JSON object,
 * printed and written to /dev/termination-log, where the plugin reads it from the pod status
 * (at most 4096 bytes: messages are cut).
 *
 * The read-back goes through the client's page cache for whatever it still holds; the write
 * figure includes the fsync (COMMIT), so it is the durable write rate.
 */
export const CHECK_WORKLOAD = String.raw`
const fs = require("node:fs");
const path = require("node:path");
const crypto = require("node:crypto");
const MiB = 1 << 20;
const root = process.env.CHECK_DIR || "/data";
const sizeMb = Number(process.env.CHECK_SIZE_MB || "64");
const files = Number(process.env.CHECK_FILES || "200");
const dir = path.join(root, ".zerofs-check-" + (process.env.CHECK_ID || String(process.pid)));
const round = (x) => Math.round(x * 100) / 100;
const now = () => Number(process.hrtime.bigint()) / 1e9;
let result;
const t0 = now();
let step = "create " + dir;
try {
  fs.mkdirSync(dir, { mode: 0o700 });
  step = "write " + sizeMb + " MiB";
  const file = path.join(dir, "data");
  const wHash = crypto.createHash("sha256");
  let fd = fs.openSync(file, "w", 0o600);
  const tw = now();
  for (let i = 0; i < sizeMb; i++) {
    const buf = crypto.randomBytes(MiB);
    wHash.update(buf);
    for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off, buf.length - off);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const writeSeconds = now() - tw;
  step = "read back and verify";
  const rHash = crypto.createHash("sha256");
  const rbuf = Buffer.alloc(MiB);
  fd = fs.openSync(file, "r");
  const tr = now();
  let total = 0;
  for (;;) {
    const n = fs.readSync(fd, rbuf, 0, MiB, null);
    if (n === 0) break;
    rHash.update(rbuf.subarray(0, n));
    total += n;
  }
  fs.closeSync(fd);
  const readSeconds = now() - tr;
  if (total !== sizeMb * MiB) throw new Error("read back " + total + " bytes of " + sizeMb * MiB);
  if (wHash.digest("hex") !== rHash.digest("hex")) throw new Error("data read back differs from data written (SHA-256 mismatch)");
  fs.unlinkSync(file);
  step = "metadata workload";
  const meta = path.join(dir, "meta");
  fs.mkdirSync(meta);
  let ops = 1;
  const tm = now();
  for (let i = 0; i < files; i++) {
    fs.writeFileSync(path.join(meta, "f" + i), "zerofs check " + i + "\n");
    fs.statSync(path.join(meta, "f" + i));
    ops += 2;
  }
  const names = fs.readdirSync(meta);
  ops++;
  if (names.length !== files) throw new Error("readdir listed " + names.length + " of " + files + " files");
  for (let i = 0; i < files; i++) {
    fs.renameSync(path.join(meta, "f" + i), path.join(meta, "g" + i));
    if (fs.readFileSync(path.join(meta, "g" + i), "utf8") !== "zerofs check " + i + "\n") throw new Error("file g" + i + " has the wrong content after rename");
    fs.unlinkSync(path.join(meta, "g" + i));
    ops += 3;
  }
  fs.rmdirSync(meta);
  ops++;
  const metaSeconds = now() - tm;
  fs.rmdirSync(dir);
  result = {
    result: "Passed",
    bytes: sizeMb * MiB,
    files,
    writeMiBPerSecond: round(sizeMb / Math.max(writeSeconds, 1e-6)),
    readMiBPerSecond: round(sizeMb / Math.max(readSeconds, 1e-6)),
    metadataOps: ops,
    metadataOpsPerSecond: round(ops / Math.max(metaSeconds, 1e-6)),
    seconds: round(now() - t0),
  };
} catch (err) {
  const hint = err && err.code === "EACCES" ? " (the check runs as uid " + process.getuid() + ": pass --dir with a directory it may write, or --run-as-user)" : "";
  result = { result: "Failed", message: step + ": " + (err && err.message ? err.message : String(err)) + hint, seconds: round(now() - t0) };
  try { fs.rmSync(dir, { recursive: true, force: true }); } catch {}
}
const line = JSON.stringify(result);
process.stdout.write(line + "\n");
try { fs.writeFileSync("/dev/termination-log", line); } catch {}
process.exitCode = result.result === "Passed" ? 0 : 1;
`;
