import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { AdminApiError, AdminClient } from "../src/provisioner/admin-client.ts";
import { startFakeAdmin, type FakeAdmin } from "./support/fake-admin.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startZerofs, type ZerofsProcess } from "../../test/support/zerofs-process.ts";

describe("admin API client", () => {
  let fake: FakeAdmin;
  before(async () => {
    fake = await startFakeAdmin(() => "s3cret\n");
  });
  after(() => fake.close());

  it("creates, reads, lists and deletes a directory with its quota", async () => {
    const c = new AdminClient({ baseUrl: fake.url, token: "s3cret" });
    const d = await c.putDirectory("ns-claim-1234", { bytes: 1 << 20, inodes: null });
    assert.equal(d.name, "ns-claim-1234");
    assert.equal(d.path, "/ns-claim-1234");
    assert.deepEqual(d.quota, { bytes: 1 << 20, inodes: null });
    const again = await c.putDirectory("ns-claim-1234", { bytes: 2 << 20, inodes: 100 });
    assert.equal(again.projectId, d.projectId, "PUT is idempotent: same directory, new limits");
    assert.deepEqual((await c.getDirectory("ns-claim-1234"))?.quota, { bytes: 2 << 20, inodes: 100 });
    assert.deepEqual((await c.listDirectories()).map((x) => x.name), ["ns-claim-1234"]);
    assert.equal(await c.deleteDirectory("ns-claim-1234"), true);
    assert.equal(await c.deleteDirectory("ns-claim-1234"), false, "404 after success is fine");
    assert.equal(await c.getDirectory("ns-claim-1234"), undefined);
  });

  it("a wrong token is an error naming the server and the directory", async () => {
    const c = new AdminClient({ baseUrl: fake.url, token: "wrong" });
    await assert.rejects(c.putDirectory("x", { bytes: 1, inodes: null }), (e: unknown) => e instanceof AdminApiError && e.status === 401 && e.message.includes(fake.url) && /put directory x: HTTP 401: bad token/.test(e.message));
  });

  it("refuses names that are not one path component before sending anything", async () => {
    const c = new AdminClient({ baseUrl: fake.url, token: "s3cret" });
    const n = fake.requests.length;
    for (const bad of ["..", ".", "a/b", "", "x".repeat(201), "ü"]) await assert.rejects(c.putDirectory(bad, { bytes: 1, inodes: null }), /invalid directory name/);
    assert.equal(fake.requests.length, n);
  });

  it("server errors carry the status (503 while degraded)", async () => {
    const c = new AdminClient({ baseUrl: fake.url, token: "s3cret" });
    fake.failNext(503);
    await assert.rejects(c.listDirectories(), (e: unknown) => e instanceof AdminApiError && e.status === 503);
  });

  describe("a hostile endpoint", () => {
    let server: http.Server;
    let url = "";
    let mode: "huge" | "garbage" | "hang" | "badshape" = "huge";
    before(async () => {
      server = http.createServer((_req, res) => {
        if (mode === "huge") {
          res.writeHead(200, { "content-type": "application/json" });
          const chunk = Buffer.alloc(64 * 1024, 0x20);
          let sent = 0;
          const pump = () => {
            while (sent < 64 << 20) {
              sent += chunk.length;
              if (!res.write(chunk)) return res.once("drain", pump);
            }
            res.end();
          };
          res.on("error", () => undefined);
          pump();
        } else if (mode === "garbage") {
          res.writeHead(200);
          res.end("<html>");
        } else if (mode === "badshape") {
          res.writeHead(200);
          res.end(JSON.stringify({ name: "x", quota: "lots" }));
        }
        // hang: never answer
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    });

    it("bounds the response size, parses strictly and times out", async () => {
      const c = new AdminClient({ baseUrl: url, token: "t", maxResponseBytes: 1 << 20, timeoutMs: 500 });
      mode = "huge";
      await assert.rejects(c.listDirectories(), /larger than 1048576 bytes/);
      mode = "garbage";
      await assert.rejects(c.listDirectories(), /not JSON/);
      mode = "badshape";
      await assert.rejects(c.getDirectory("x"), /unexpected response: .*quota/);
      mode = "hang";
      const t0 = Date.now();
      await assert.rejects(c.getDirectory("x"), AdminApiError);
      assert.ok(Date.now() - t0 < 5000);
    });
  });
});

describe("admin API client against a real zerofs", () => {
  let s: ZerofsProcess;
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-admin-client-"));
    await writeFile(join(dir, "token"), "real-token\n", { mode: 0o600 });
    s = await startZerofs({ url: join(dir, "volume"), env: { ZEROFS_ADMIN_TOKEN_FILE: join(dir, "token"), ZEROFS_CLAIMS_DIR: "/claims" } });
  });
  after(async () => {
    await s?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("speaks the server's interface: the path under the claims directory, quotas, list, delete", async () => {
    const c = new AdminClient({ baseUrl: `http://127.0.0.1:${s.httpPort}`, token: "real-token" });
    const d = await c.putDirectory("apps_data_0f1e", { bytes: 5 * 2 ** 30, inodes: null }, { mode: 0o770 });
    assert.equal(d.path, "/claims/apps_data_0f1e", "the PV's NFS path comes from here");
    assert.deepEqual(d.quota, { bytes: 5 * 2 ** 30, inodes: null });
    assert.equal((await c.putDirectory("apps_data_0f1e", { bytes: 6 * 2 ** 30, inodes: null })).quota.bytes, 6 * 2 ** 30);
    assert.deepEqual((await c.listDirectories()).map((x) => x.name), ["apps_data_0f1e"]);
    assert.equal(await c.deleteDirectory("apps_data_0f1e"), true);
    assert.equal(await c.getDirectory("apps_data_0f1e"), undefined);
    await assert.rejects(new AdminClient({ baseUrl: `http://127.0.0.1:${s.httpPort}`, token: "wrong" }).listDirectories(), (e: unknown) => e instanceof AdminApiError && e.status === 401);
  });
});
