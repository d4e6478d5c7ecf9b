/**
 * The metrics behind two of the chart's alerts (charts/zerofs-operator/files/alerts.yaml):
 * zerofs_writer_fenced turns 1 on a server another server fenced out of its volume (and stays
 * 0 on the one that took over), and the on-disk cache reports its budget and use
 * (zerofs_disk_cache_limit_bytes = SLATEDB_CACHE_SIZE_GB, zerofs_disk_cache_used_bytes). On S3
 * (versitygw): a local-directory volume has no disk cache (both gauges 0).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startVersitygw, type Versitygw } from "../../../test/support/versitygw.ts";
import { startZerofs, type ZerofsProcess } from "../../../test/support/zerofs-process.ts";
import { metric, waitFor, Writer } from "./outage-support.ts";

describe("fencing and disk cache metrics of a running zerofs", () => {
  let vgw: Versitygw;
  const servers: ZerofsProcess[] = [];
  const start = async (): Promise<ZerofsProcess> => {
    const s = await startZerofs({
      url: `s3://${vgw.bucket}/fenced`,
      env: { AWS_ENDPOINT_URL: vgw.endpoint, AWS_ACCESS_KEY_ID: vgw.accessKeyId, AWS_SECRET_ACCESS_KEY: vgw.secretAccessKey, AWS_DEFAULT_REGION: vgw.region, AWS_ALLOW_HTTP: "true" },
    });
    servers.push(s);
    return s;
  };
  before(async () => {
    vgw = await startVersitygw();
  });
  after(async () => {
    for (const s of servers) await s.kill();
    await vgw?.stop();
  });

  it("a server fenced out by a second one on the same volume reports zerofs_writer_fenced 1", async () => {
    const a = await start();
    assert.equal(await metric(a, "zerofs_writer_fenced"), 0, "a lone server is not fenced");
    // The disk cache budget is the harness's SLATEDB_CACHE_SIZE_GB=0.25 (GiB).
    assert.equal(await metric(a, "zerofs_disk_cache_limit_bytes"), 0.25 * 2 ** 30);
    const wa = await Writer.start(a.nfsPort, "from-a", 1);
    await waitFor("a's first acknowledged writes", async () => wa.count >= 3, 30_000);

    const b = await start();
    // a finds out at its next durable write (its WAL object or manifest update is refused);
    // its /metrics must keep answering then (it once failed whole: a collector asked the failed
    // engine for its segments).
    await waitFor("zerofs_writer_fenced on the fenced server", async () => (await metric(a, "zerofs_writer_fenced")) === 1, 30_000);
    await wa.stop();
    assert.equal(await metric(b, "zerofs_writer_fenced"), 0, "the server that took over is not fenced");

    // b's writes go through its disk cache's budget; reads of immutable objects fill it.
    const wb = await Writer.start(b.nfsPort, "from-b", 2);
    await waitFor("b's acknowledged writes", async () => wb.count >= 3, 30_000);
    await wb.stop();
    assert.equal(await metric(b, "zerofs_disk_cache_limit_bytes"), 0.25 * 2 ** 30);
    const used = await metric(b, "zerofs_disk_cache_used_bytes");
    assert.ok(used >= 0 && used <= 0.25 * 2 ** 30, `disk cache use ${used} within its budget`);
  });
});
