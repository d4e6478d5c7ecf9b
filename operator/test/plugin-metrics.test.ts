/**
 * `kubectl zerofs status` reads the server's /metrics through the API server's pod proxy. The
 * parsing and the figures are tested here on the real output of a running `zerofs` after a small
 * workload (the proxy itself is exercised in plugin.k8s.test.ts), plus the text format's corner
 * cases and bad input.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CreateMode, Nfs3Proc as P, StableHow } from "../../server/src/nfs/nfs3-types.ts";
import { Nfs3Client, sattr } from "../../test/support/nfs/nfs3-client.ts";
import { startZerofs, type ZerofsProcess } from "../../test/support/zerofs-process.ts";
import { parseMetrics, serverFigures } from "../plugin/src/metrics.ts";
import { renderReport, type VolumeReport } from "../plugin/src/status.ts";

describe("server metrics for kubectl zerofs status", { timeout: 120_000 }, () => {
  let dir: string;
  let s: ZerofsProcess;
  let text: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-plugin-metrics-"));
    s = await startZerofs({ url: join(dir, "vol") });
    const c = await Nfs3Client.connect(s.nfsPort);
    const root = await c.mount("/");
    const f = (await c.ok(P.CREATE, { where: { dir: root, name: Buffer.from("f") }, how: { mode: CreateMode.GUARDED, attributes: sattr() } })).obj!;
    await c.ok(P.WRITE, { file: f, offset: 0n, count: 100_000, stable: StableHow.FILE_SYNC, data: Buffer.alloc(100_000, 7) });
    await c.ok(P.READ, { file: f, offset: 0n, count: 100_000 });
    c.close();
    text = await (await fetch(`http://127.0.0.1:${s.httpPort}/metrics`)).text();
  });
  after(async () => {
    await s?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("parses a real /metrics page into the status figures", () => {
    const samples = parseMetrics(text);
    assert.ok(samples.length > 50, `${samples.length} samples`);
    const m = serverFigures(samples);
    assert.equal(m.ready, true);
    assert.equal(m.store.degraded, false);
    assert.ok(m.nfs.requests >= 3, `NFS requests ${m.nfs.requests}`);
    assert.equal(m.nfs.errors, 0);
    assert.equal(m.nfs.writtenBytes, 100_000);
    assert.equal(m.nfs.readBytes, 100_000);
    assert.equal(typeof m.nfs.connections, "number");
    const put = m.store.byOp.put ?? m.store.byOp.putIfAbsent;
    assert.ok(put && put.requests > 0 && put.bytes > 0, JSON.stringify(m.store.byOp));
    assert.ok((m.store.walFlushes ?? 0) > 0 && (m.store.walFlushMeanSeconds ?? -1) >= 0);
    assert.ok((m.cache.memory.block?.limitBytes ?? 0) > 0 && (m.cache.memory.extent?.limitBytes ?? 0) > 0, JSON.stringify(m.cache.memory));
    assert.equal(typeof m.cache.blockHitRatio, "number");
    assert.equal(typeof m.cache.extentHitRatio, "number");
    assert.ok((m.process.residentBytes ?? 0) > 1 << 20);
    assert.equal(typeof m.data.storedBytes, "number");
  });

  it("renders the figures in the status report", () => {
    const report: VolumeReport = {
      namespace: "ns",
      name: "vol",
      phase: "Ready",
      storage: "s3://bucket/prefix",
      conditions: [{ type: "Ready", status: "True", reason: "Ready", message: "serving", lastTransitionTime: new Date().toISOString() }],
      server: { clusterIP: "10.0.0.9", port: 2049, path: "/", mountOptions: ["nfsvers=3", "tcp"], pods: [{ name: "zerofs-vol-1", phase: "Running", ready: true, restarts: 0 }] },
      encryption: { keyFingerprint: "0123456789abcdef", rotation: { phase: "Succeeded", lastChange: new Date().toISOString() } },
      metrics: serverFigures(parseMetrics(text)),
    };
    const out = renderReport(report);
    assert.match(out, /Metrics \(server \/metrics through the API server\):/);
    assert.match(out, /NFS\s+\d+ connections, \d+ requests \(0 failed\), read 97\.7 KiB, written 97\.7 KiB/);
    assert.match(out, /Store\s+healthy, 0 outages, WAL flushes \d+ \(mean [\d.]+ ms\)/);
    assert.match(out, /Cache\s+hit ratio: block [\d.]+%, extent [\d.]+%, disk [\d.]+%; memory block .* of .*, extent .* of /);
    assert.match(out, /password fingerprint 0123456789abcdef/);
    assert.match(out, /mount -t nfs -o nfsvers=3,tcp 10\.0\.0\.9:\/ \/mnt/);
  });
});

describe("the Prometheus text format", () => {
  it("reads labels with escapes, special values and timestamps", () => {
    const s = parseMetrics('# HELP x y\n# TYPE x counter\nx{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 3 1700000000000\ny +Inf\nz NaN\nw{} -1.5e3\n');
    assert.deepEqual(s[0], { name: "x", labels: { a: 'q"uote', b: "back\\slash", c: "new\nline" }, value: 3 });
    assert.equal(s[1]!.value, Infinity);
    assert.ok(Number.isNaN(s[2]!.value));
    assert.equal(s[3]!.value, -1500);
  });

  it("names the line of bad input", () => {
    assert.throws(() => parseMetrics("ok 1\nbad{a=1} 2\n"), /metrics line 2: bad label/);
    assert.throws(() => parseMetrics('x{a="open} 1'), /metrics line 1: unterminated label value/);
    assert.throws(() => parseMetrics("x notanumber"), /metrics line 1: not a number/);
  });
});
